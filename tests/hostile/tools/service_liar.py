"""A real hyphal node that lies about serving ``web``: it publishes, in its own signed member
record, a healthy instance of ``web`` with the highest weight and one of three false proofs.

    service_liar.py MODE SECONDS

MODE is ``backdated`` (its own claim on the name, ``since`` = 1970: older than any real one),
``copied`` (the grant proof of another instance, taken from that instance's public record) or
``none`` (no proof at all). The node listens on the peer port (its neighbour dials it), has no
TUN, and exits after SECONDS; it prints ``lying`` once the lie is published.
"""

from __future__ import annotations

import asyncio
import sys

from hyphal.config import NodeConfig
from hyphal.crypto.signing import XEdDSASigner
from hyphal.identity import NodeIdentity
from hyphal.node import Node
from hyphal.node.members import PUBLIC_NETWORK
from hyphal.services.extension import Endpoint, PublishedService, services_of, with_services
from hyphal.services.grant import make_grant


def proof_to_copy(node: Node) -> bytes | None:
    for record in node.members.core.store.records():
        for svc in services_of(record.extension) if record.extension else ():
            if (
                svc.name == "web"
                and svc.proof is not None
                and record.origin != node.identity.public_key
            ):
                return svc.proof
    return None


async def main(mode: str, seconds: float) -> None:
    identity = NodeIdentity.generate()
    config = NodeConfig(
        no_tun=True, no_dns=True, tcp_listen_port=9651, member_name="liar", api_addr="127.0.0.1:0"
    )
    node = Node(config, identity)
    await node.start()
    try:
        proof: bytes | None = None
        if mode == "backdated":
            proof = make_grant(
                XEdDSASigner(identity.private_bytes()),
                PUBLIC_NETWORK,
                service="web",
                instance=identity.public_key,
                owner=identity.public_key,
                since=0,
                expires=0xFFFFFFFF,
            ).proof()
        elif mode == "copied":
            async with asyncio.timeout(30):
                while (proof := proof_to_copy(node)) is None:  # noqa: ASYNC110
                    await asyncio.sleep(0.1)
        ep = Endpoint(8080, "tcp", True, False, 255)
        node.members.set_extension(with_services(b"", [PublishedService("web", proof, (ep,))]))
        print("lying", flush=True)
        await asyncio.sleep(seconds)
    finally:
        await node.stop()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2])))
