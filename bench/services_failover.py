"""Services failover benchmark: from a drain or a dead backend to a remote node's new choice.

Four real nodes in one process over in-memory links, in a line A - B - C - D, serve ``web`` on A
and D; C (one hop from D, two from A) chooses D. Each run measures, against the 5 s target:

* **drain**: ``d.services.drain("web")`` until C's ``choose()`` is A;
* **death**: D's backend (a real TCP listener) closes until C chooses A (tcp check,
  ``--interval``, ``fall 2``).

The baseline, measured in the same run, is D's own view: when D itself marks the instance
draining or unhealthy. The difference is what publishing, pacing and gossip add.

    .venv/bin/python bench/services_failover.py [--runs 3] [--interval 1.0] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import statistics
import time
from collections.abc import Callable

from hyphal.config import NodeConfig
from hyphal.crypto.signing import XEdDSASigner
from hyphal.identity import NodeIdentity
from hyphal.links.endpoint import Endpoint
from hyphal.node import Node
from hyphal.node.members import PUBLIC_NETWORK
from hyphal.services.grant import make_grant
from hyphal.services.spec import parse_spec
from hyphal.testing.memlink import MemoryNetwork

TARGET_S = 5.0
PORT = 9651


async def _until(cond: Callable[[], bool], within: float = 30.0) -> float:
    start = time.monotonic()
    async with asyncio.timeout(within):
        while not cond():  # noqa: ASYNC110
            await asyncio.sleep(0.005)
    return time.monotonic() - start


def _choice(node: Node) -> str | None:
    found = node.services.choose("web")
    return None if found is None else found.node_name


async def _line() -> list[Node]:
    net = MemoryNetwork()
    nodes: list[Node] = []
    for host, peer in (("a", None), ("b", "a"), ("c", "b"), ("d", "c")):
        config = NodeConfig(
            no_tun=True,
            no_dns=True,
            tcp_listen_port=PORT,
            peers=() if peer is None else (Endpoint("tcp", peer, PORT),),
            member_name=host,
        )
        node = Node(config, NodeIdentity.generate(), transport=net.transport(host))
        await node.start()
        nodes.append(node)
    await _until(
        lambda: all(
            n.public_key_for_prefix(m.identity.address_bytes[:8]) for n in nodes for m in nodes
        )
    )
    return nodes


async def measure(runs: int, interval: float) -> dict[str, list[float]]:
    a, _b, c, d = nodes = await _line()
    out: dict[str, list[float]] = {"drain": [], "drain-local": [], "death": [], "death-local": []}
    try:
        now = int(time.time())
        grant = make_grant(
            XEdDSASigner(a.identity.private_bytes()),
            PUBLIC_NETWORK,
            service="web",
            instance=d.identity.public_key,
            owner=a.identity.public_key,
            since=now - 60,
            expires=now + 3600,
        ).text()
        a.services.add(parse_spec({"name": "web", "port": 9, "check": "none"}))
        for run in range(runs):
            server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            spec = {"name": "web", "port": port, "interval": interval, "fall": 2, "grant": grant}
            d.services.add(parse_spec(spec))
            await _until(lambda: _choice(c) == "d", 60)
            start = time.monotonic()
            d.services.drain("web")
            out["drain-local"].append(time.monotonic() - start)  # D's own view: at once
            out["drain"].append(await _until(lambda: _choice(c) == "a"))
            d.services.drain("web", False)
            await _until(lambda: _choice(c) == "d", 60)  # the recovery waits for the reserve
            server.close()
            await server.wait_closed()
            start = time.monotonic()
            local = asyncio.ensure_future(_until(lambda: _choice(d) == "a"))
            out["death"].append(await _until(lambda: _choice(c) == "a"))
            out["death-local"].append(await local + 0.0)
            d.services.remove("web")
            await _until(lambda: _choice(c) == "a")
            if run + 1 < runs:
                await asyncio.sleep(12)  # let the publish allowance refill between runs
    finally:
        for node in reversed(nodes):
            await node.stop()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    result = asyncio.run(measure(args.runs, args.interval))
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"{'event':<8} {'remote C median s':>18} {'max s':>7} {'baseline D s':>13} {'target s':>9}"
    )
    for event in ("drain", "death"):
        remote, local = result[event], result[f"{event}-local"]
        print(
            f"{event:<8} {statistics.median(remote):>18.3f} {max(remote):>7.3f} "
            f"{statistics.median(local):>13.3f} {TARGET_S:>9.1f}"
        )


if __name__ == "__main__":
    main()
