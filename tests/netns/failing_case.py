"""Helper for test_topology_tool: a test body that fails after building a topology.

Not collected normally (no ``test_`` prefix); run explicitly in a child pytest with
HYPHAL_TOPO_SELFTEST=<file> to check that a failing test still tears everything down.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hyphal.testing.netlab import TopologyFactory


@pytest.mark.netns
def test_body_fails_after_build(topology: TopologyFactory) -> None:
    record = os.environ.get("HYPHAL_TOPO_SELFTEST")
    if not record:
        pytest.skip("only run by test_topology_tool")
    fake = str(Path(__file__).with_name("fake_daemon.py"))
    import sys

    topo = topology("A-B B-C:delay=20", start=True, daemon_cmd=[sys.executable, fake])
    pids = [str(n.pid) for n in topo.nodes.values()] + [
        str(link.proxy.pid) for link in topo.links if link.proxy
    ]
    Path(record).write_text("\n".join(topo.namespaces) + "\n#pids " + " ".join(pids) + "\n")
    raise AssertionError("deliberate failure in the test body")
