"""The bench's two namespaces on :mod:`hyphal.testing.netlab`: A dials B over one veth pair.

:class:`Pair` is a two-node ``Topology("A-B")`` (with TUN devices for hyphal) plus the few
helpers every system driver needs: timed waits that raise :class:`BenchError`, a one-shot ping,
the MTU of a device, and stopping a process the lab started.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hyphal.testing.netlab import Link, Node, Topology, TopologyTimeout, kill_tree

from .results import BenchError

HYPHAL_TUN = "hyphal0"


@dataclass
class Pair:
    topo: Topology
    a: Node
    b: Node
    link: Link

    @classmethod
    def build(cls, workdir: Path) -> Pair:
        """Namespaces A and B joined by a veth; A pings B before this returns."""
        topo = Topology.build("A-B", tun=True, tun_name=HYPHAL_TUN, workdir=workdir)
        pair = cls(topo, topo.node("A"), topo.node("B"), topo.link("A", "B"))
        pair.wait(lambda: pair.ping_ok(pair.a, pair.veth_b), 10, "veth ping A -> B")
        return pair

    @property
    def veth_a(self) -> str:
        return str(self.link.addr6_a)

    @property
    def veth_b(self) -> str:
        return str(self.link.addr6_b)

    def wait(
        self, predicate: Callable[[], object], timeout: float, what: str, step: float = 0.2
    ) -> float:
        """Poll until ``predicate`` holds; return the seconds it took or raise BenchError.

        A BenchError from ``predicate`` (e.g. :func:`check_alive`) ends the wait at once.
        """
        fatal: list[BenchError] = []

        def probe() -> object:
            try:
                return predicate()
            except BenchError as exc:
                fatal.append(exc)
                return True

        start = time.monotonic()
        try:
            self.topo.wait_until(probe, timeout, step, what)
        except TopologyTimeout as exc:
            raise BenchError(str(exc).splitlines()[0]) from exc
        if fatal:
            raise fatal[0]
        return time.monotonic() - start

    @staticmethod
    def ping_ok(node: Node, addr: str) -> bool:
        return node.ping(addr, 1, 1).returncode == 0

    @staticmethod
    def link_mtu(node: Node, dev: str) -> int | None:
        out = node.exec(["ip", "-j", "link", "show", "dev", dev])
        try:
            return int(json.loads(out.stdout)[0]["mtu"])
        except (ValueError, LookupError):
            return None

    @staticmethod
    def stop(*procs: subprocess.Popen[bytes]) -> None:
        """TERM each process group, then KILL what is left after 5 s."""
        for proc in procs:
            kill_tree(proc, signal.SIGTERM, wait=5)

    def close(self) -> None:
        self.topo.close()


def check_alive(*procs: tuple[str, subprocess.Popen[bytes] | None]) -> None:
    for name, proc in procs:
        if proc is not None and proc.poll() is not None:
            raise BenchError(f"{name} exited with code {proc.returncode} (see its log)")
