"""A neighbour that completes a real handshake, then pushes hostile membership items.

    member_attacker.py HOST FLOOD

It sends, in FRAME_MEMBERS frames (unsolicited ITEMs, which any neighbour may push):
* ``forged``: a record in another key's name, signed with ours;
* ``rollback``: our own record at version 2, then an older one at version 1;
* ``malformed``: 2,000 random bytes as a record;
* ``flood``: FLOOD validly signed records from FLOOD freshly minted keys, one frame each.
A Hello every 0.5 s keeps the link; prints ``done`` at the end.
"""

from __future__ import annotations

import os
import sys
import time

from hyphal.crypto.signing import XEdDSASigner
from hyphal.identity import NodeIdentity
from hyphal.membership.record import build
from hyphal.membership.store import KIND_RECORD
from hyphal.membership.wire import FRAME_MEMBERS, encode_item
from hyphal.node.members import PUBLIC_NETWORK
from hyphal.testing.rawlink import RawLink

PORT = 9651


def record(signer: NodeIdentity, origin: bytes, version: int, name: str) -> bytes:
    expires = int(time.time()) + 3600
    signed = build(
        XEdDSASigner(signer.private_bytes()),
        PUBLIC_NETWORK,
        origin=origin,
        version=version,
        expires=expires,
        name=name,
    )
    return signed.encode()


def main() -> None:
    host, flood = sys.argv[1], int(sys.argv[2])
    link = RawLink(host, PORT)
    me = link.identity

    def push(raw: bytes) -> None:
        link.send_frame(FRAME_MEMBERS, encode_item(KIND_RECORD, raw))
        link.keep_alive()

    victim_of_forgery = NodeIdentity.generate()
    push(record(me, victim_of_forgery.public_key, 1 << 20, "forged"))  # signed by the wrong key
    push(record(me, me.public_key, 2 << 20, "mallory"))
    push(record(me, me.public_key, 1 << 20, "mallory-old"))  # a rollback
    push(os.urandom(2000))
    for i in range(flood):
        sybil = NodeIdentity.generate()
        push(record(sybil, sybil.public_key, 1 << 20, f"sybil{i}"))
    end = time.monotonic() + 2
    while time.monotonic() < end:
        link.keep_alive()
        time.sleep(0.1)
    link.close()
    print("done", flush=True)


if __name__ == "__main__":
    main()
