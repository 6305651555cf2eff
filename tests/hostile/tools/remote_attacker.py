"""A hostile mesh member for the hostile tests: a real hyphal node (real handshake, real router,
real end-to-end sealing) that links to one neighbour and sends packets built to break a node
further away. Run inside a namespace: ``remote_attacker.py LINK_ADDR VICTIM_PUBKEY_HEX``.

It sends, end to end to the victim through the neighbour:
* ``bad-notice``: an ICMP relay notice quoting a header whose version byte is 99;
* ``short-notice``: a notice too short to quote any header;
* ``max-echo``: an echo request that fills one link frame exactly, so the victim's reply (one
  byte longer) would not fit one.
Each line it prints is ``sent NAME`` once the packet left; then ``done``.
"""

from __future__ import annotations

import asyncio
import sys

from hyphal.config import NodeConfig
from hyphal.crypto.e2e import MAX_PLAINTEXT_SIZE
from hyphal.identity import NodeIdentity, prefix64_for_public_key
from hyphal.links.endpoint import Endpoint
from hyphal.node import Node
from hyphal.wire import data as wire


def attacks() -> list[tuple[str, int, bytes]]:
    bad_header = bytes([99]) + bytes(wire.HEADER_SIZE - 1)
    return [
        ("bad-notice", wire.KIND_ICMP_RELAY, bytes([1]) + bad_header + b"\x00"),
        ("short-notice", wire.KIND_ICMP_RELAY, b"\x01"),
        # kind byte + body == MAX_PLAINTEXT_SIZE: the largest packet a link frame carries
        ("max-echo", wire.KIND_ECHO_REQUEST, bytes(MAX_PLAINTEXT_SIZE - 1)),
    ]


async def main(link_addr: str, victim: bytes) -> None:
    config = NodeConfig(
        no_tun=True,
        listen_address="::",
        tcp_listen_port=0,
        peers=(Endpoint("tcp", link_addr, 9651),),
    )
    node = Node(config, NodeIdentity.generate())
    await node.start()
    try:
        prefix = prefix64_for_public_key(victim)
        async with asyncio.timeout(30):
            while node.public_key_for_prefix(prefix) is None:  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        for name, kind, body in attacks():
            reason = node.forwarder.send_to(victim, kind, body)  # type: ignore[union-attr]
            if reason is not None:
                raise SystemExit(f"{name}: our own forwarder refused it: {reason}")
            node.peers.flush_links()
            print("sent", name, flush=True)
            await asyncio.sleep(0.5)
        print("done", flush=True)
        await asyncio.sleep(2)
    finally:
        await node.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], bytes.fromhex(sys.argv[2])))
