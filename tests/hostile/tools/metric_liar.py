"""A metric liar for the hostile tests: ``hyphal.testing.hostile.MetricLiar`` as a daemon.

Run inside a namespace: ``metric_liar.py KEY_FILE PEER_ADDR...``. It listens on 9651 (no TUN),
dials each peer address on 9651, prints ``up`` once started and runs until killed.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from hyphal.config import NodeConfig
from hyphal.identity import NodeIdentity
from hyphal.links.endpoint import Endpoint
from hyphal.testing.hostile import MetricLiar, run_until_killed

PORT = 9651


async def main(key_file: Path, peers: list[str]) -> None:
    config = NodeConfig(
        no_tun=True,
        listen_address="::",
        tcp_listen_port=PORT,
        peers=tuple(Endpoint("tcp", peer, PORT) for peer in peers),
    )
    await run_until_killed(MetricLiar(config, NodeIdentity.load(key_file)))


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), sys.argv[2:]))
