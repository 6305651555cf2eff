"""Issue 8 item 5b: low-order X25519 keys verify no signature and own no announcement."""

from __future__ import annotations

import time

import pytest
import xeddsa
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from test_routing_security import deliver, usable_router

from hyphal.crypto.signing import XEdDSAVerifier
from hyphal.identity import prefix64_for_public_key
from hyphal.wire.control import Update, announcement_message

# R = the Edwards identity (y = 1), S = 0: valid against a small-order key whenever the
# challenge hash is a multiple of the point's order.
FORGED = b"\x01" + bytes(63)
LOW_ORDER_KEYS = [u.to_bytes(32, "little") for u in (0, 1)]
ISSUED = int(time.time())  # fresh for the router's default wall clock


def _verifiable_seqno(key: bytes, router_id: bytes) -> int:
    """A seqno whose announcement the forged signature would pass if the key were accepted."""
    prefix = prefix64_for_public_key(key)
    for seqno in range(256):
        message = announcement_message(prefix, seqno, router_id, ISSUED)
        if _forgery_holds(key, message):
            return seqno
    raise AssertionError("no seqno found")


def _forgery_holds(key: bytes, message: bytes) -> bool:
    """Checks the forgery with the raw Ed25519 equation (no low-order filter)."""
    edwards = Ed25519PublicKey.from_public_bytes(
        bytes(xeddsa.curve25519_pub_to_ed25519_pub(key, False))
    )
    try:
        edwards.verify(FORGED, message)
    except InvalidSignature:
        return False
    return True


@pytest.mark.parametrize("key", LOW_ORDER_KEYS, ids=["u=0", "u=1"])
def test_low_order_key_verifies_no_signature(key: bytes) -> None:
    verifier = XEdDSAVerifier()
    messages = [bytes([i]) for i in range(32)]
    assert any(_forgery_holds(key, m) for m in messages)  # the forgery is real
    assert not any(verifier.verify(key, m, FORGED) for m in messages)


@pytest.mark.parametrize("key", LOW_ORDER_KEYS, ids=["u=0", "u=1"])
def test_low_order_router_id_is_refused(key: bytes) -> None:
    router = usable_router()
    router_id = key + b"\x01" * 8
    seqno = _verifiable_seqno(key, router_id)
    deliver(
        router,
        Update(prefix64_for_public_key(key), seqno, 10, 3000, 0, router_id, FORGED, issued=ISSUED),
    )
    assert router.route_count() == 0
    assert router.counters["updates_rejected_key"] == 1
    assert router.counters["updates_accepted"] == 0
