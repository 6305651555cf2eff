"""Pytest fixtures over the namespace lab, shared by ``tests/netns`` and ``tests/hostile``.

A ``conftest.py`` imports ``topology`` and ``pytest_runtest_makereport`` from here. The
``topology`` factory skips without root or ``ip netns``, always closes what it built, and a
failing test gets every node's log tail attached to its report ("hyphal node logs").

Usage::

    @pytest.mark.netns
    def test_line(topology):
        topo = topology("A-B B-C", start=True)
        topo.wait_until(lambda: netlab.has_route(topo.node("A"), topo.node("C")))
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from hyphal.testing.netlab import Topology, TopologyFactory, reap_stale_namespaces

TOPOLOGIES = pytest.StashKey[list[Topology]]()
_netns_status: list[str | None] = []


def netns_unavailable() -> str | None:
    """Why namespace tests cannot run here, or None (probed once per process)."""
    if _netns_status:
        return _netns_status[0]
    reason: str | None = None
    if os.geteuid() != 0:
        reason = "netns tests need root (ip netns, veth)"
    elif shutil.which("ip") is None:
        reason = "iproute2 'ip' command not found"
    else:
        probe = f"hyt-probe-{os.getpid()}-{secrets.token_hex(2)}"
        add = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
        if add.returncode != 0:
            reason = f"'ip netns add' does not work here: {add.stderr.strip()}"
        else:
            subprocess.run(["ip", "netns", "del", probe], capture_output=True)
            reap_stale_namespaces()
    _netns_status.append(reason)
    return reason


@pytest.fixture
def topology(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[TopologyFactory]:
    """Factory ``topology(desc, **kwargs) -> Topology`` (see ``Topology.build``).

    Skips when not root or without ``ip netns``. Every topology built is closed at teardown,
    whatever the test did; logs stay in ``tmp_path/topoN``.
    """
    reason = netns_unavailable()
    if reason:
        pytest.skip(reason)
    built: list[Topology] = []
    request.node.stash[TOPOLOGIES] = built

    def factory(desc: Any, **kwargs: Any) -> Topology:
        kwargs.setdefault("workdir", tmp_path / f"topo{len(built)}")
        topo = Topology.build(desc, **kwargs)
        built.append(topo)
        return topo

    try:
        yield factory
    finally:
        for topo in built:
            topo.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach every node's log tail to the report of a failed setup or test body."""
    report = yield
    if report.failed and report.when in ("setup", "call"):
        topologies: list[Topology] = item.stash.get(TOPOLOGIES, [])
        for i, topo in enumerate(topologies):
            report.sections.append((f"hyphal node logs (topology {i})", topo.log_tails()))
    return report
