"""A real node that floods the routing table: it mints COUNT identities, has each delegate its
/64 to our key (signed, as the protocol allows) and originates them all.

    table_flooder.py PEER_ADDR COUNT

Prints ``originated COUNT`` once every prefix is announced, then runs until killed.
"""

from __future__ import annotations

import asyncio
import sys
import time

from hyphal.config import NodeConfig
from hyphal.crypto.signing import XEdDSASigner
from hyphal.identity import NodeIdentity, prefix64_for_public_key
from hyphal.links.endpoint import Endpoint
from hyphal.node import Node
from hyphal.wire.control import Delegation, delegation_message

PORT = 9651


def delegation(owner: NodeIdentity, delegate: bytes, expiry: int) -> tuple[bytes, Delegation]:
    prefix = prefix64_for_public_key(owner.public_key)
    signature = XEdDSASigner(owner.private_bytes()).sign(
        delegation_message(prefix, delegate, expiry)
    )
    return prefix, Delegation(owner.public_key, expiry, signature)


async def main(peer: str, count: int) -> None:
    config = NodeConfig(
        no_tun=True, listen_address="::", tcp_listen_port=0, peers=(Endpoint("tcp", peer, PORT),)
    )
    me = NodeIdentity.generate()
    node = Node(config, me)
    await node.start()
    try:
        expiry = int(time.time()) + 3600
        for _ in range(count):
            prefix, grant = delegation(NodeIdentity.generate(), me.public_key, expiry)
            node.originate(prefix, grant)
        print("originated", count, flush=True)
        await asyncio.Event().wait()
    finally:
        await node.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
