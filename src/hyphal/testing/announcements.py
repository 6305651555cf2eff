"""Validly signed origin announcements for benchmarks that feed routers: one fresh key per prefix,
each signed the way an origin signs its own /64 (``docs/routing.md``)."""

from __future__ import annotations

import os

from hyphal.crypto.signing import XEdDSASigner
from hyphal.identity import NodeIdentity, prefix64_for_public_key
from hyphal.wire.control import announcement_message


def signed_announcements(count: int, seqno: int, issued: int) -> list[tuple[bytes, bytes, bytes]]:
    """``count`` (prefix, router id, signature) rows at ``seqno``, signed as of ``issued``."""
    rows = []
    for _ in range(count):
        ident = NodeIdentity.generate()
        router_id = ident.public_key + os.urandom(8)
        prefix = prefix64_for_public_key(ident.public_key)
        signature = XEdDSASigner(ident.private_bytes()).sign(
            announcement_message(prefix, seqno, router_id, issued)
        )
        rows.append((prefix, router_id, signature))
    return rows
