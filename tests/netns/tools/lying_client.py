"""A lying client for the roles netns test: ``hyphal.testing.hostile.LyingClient`` as a daemon.

Run inside a namespace: ``lying_client.py KEY_FILE PEER_ADDR...``. It does not listen (a client),
has no TUN, dials each peer address on 9651, prints ``up`` once started and runs until killed.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from hyphal.config import NodeConfig
from hyphal.identity import NodeIdentity
from hyphal.links.endpoint import Endpoint
from hyphal.testing.hostile import LyingClient, run_until_killed

PORT = 9651


async def main(key_file: Path, peers: list[str]) -> None:
    config = NodeConfig(
        no_tun=True,
        role="client",
        api_addr="127.0.0.1:8989",
        peers=tuple(Endpoint("tcp", peer, PORT) for peer in peers),
    )
    await run_until_killed(LyingClient(config, NodeIdentity.load(key_file)))


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2:]))
