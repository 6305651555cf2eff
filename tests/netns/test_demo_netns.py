"""The README's first command as root: ``hyphal demo`` runs all three acts for real.

Act 2 and 3 (:mod:`hyphal.demo_netns`) build namespaces with real daemons, nginx reading PROXY
headers, a client on 203.0.113.10 and the mapping router lab; the assertions read the demo's
own output: which node served each request and the client address the backend saw (checked
against curl's own address), the failover to the far instance, the SRV answers, the trace's
hops through the lab and the worker's results in the store. Both runs must leave no namespace.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from hyphal.testing.netlab import list_namespaces
from hyphal.testing.netlab_pytest import netns_unavailable

pytestmark = pytest.mark.netns
ENV = {**os.environ, "COLUMNS": "220", "PYTHONUNBUFFERED": "1"}


@pytest.fixture(autouse=True)
def _needs_netns() -> None:
    reason = netns_unavailable()
    if reason:
        pytest.skip(reason)


def leftovers(pid: int) -> list[str]:
    return [ns for ns in list_namespaces() if ns.startswith(f"hyt-{pid}-")]


def test_demo_runs_every_act() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "hyphal", "demo"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=ENV,
    )
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out
    assert leftovers(proc.pid) == [], out
    # act 1 as before
    assert "routes converged" in out and "A rerouted to D over the direct slow link" in out, out
    assert "✓ C has no route to any overlay address" in out, out
    # act 2: the nearer instance served, and nginx saw exactly curl's own address and port
    served = re.findall(
        r"served by (\w+) for (203\.0\.113\.10):(\d+)\s+\(curl's own address ([\d.]+):(\d+)\)", out
    )
    assert [s[0] for s in served] == ["fra1", "fra1", "fra1", "nyc1"], out
    assert all(s[1:3] == s[3:5] for s in served), served
    assert re.search(r"new requests land on nyc1 \d+ ms after the stop", out), out
    assert re.search(r"marked fra1 down after \d+\.\d+ s", out), out
    assert re.search(r"203\.0\.113\.1:80\s+ingress\s+web", out), out  # hyphal ingress list
    srv = re.findall(r"\d+ \d+ 8080 (\w+)\.hyphal\.internal\.", out)
    assert sorted(srv[:2]) == ["fra1", "nyc1"] and srv[2:] == ["nyc1"], out
    # act 3: the worker's trace through the lab, and its results in the store
    assert "HOST: fra1 [fra1 (fra)] -> 198.19.0.1  Paris icmp" in out, out
    assert re.search(r"lab nodes on the way: R1 → R2[ab] → R3 → \?\?\? \(silent\) → R4 → T", out)
    assert "destination answered" in out
    assert re.search(r"fra1\s+fra\s+yes\s+[\d.]+\s+[1-9]\d*\s", out), out  # map status


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_demo_leaves_nothing_behind(sig: signal.Signals) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", "from hyphal.demo import console; from hyphal.demo_netns import "
         "run_netns_acts; raise SystemExit(run_netns_acts(console))"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=ENV,
    )  # fmt: skip
    assert proc.stdout is not None
    lines = []
    for line in proc.stdout:
        lines.append(line)
        if "hyphal service add web" in line:
            break
    assert leftovers(proc.pid), "".join(lines)  # mid-act: its namespaces exist
    time.sleep(1)
    proc.send_signal(sig)
    rest, _ = proc.communicate(timeout=60)
    out = "".join(lines) + rest
    assert proc.returncode == 130, out
    assert f"interrupted ({'SIGINT' if sig == signal.SIGINT else 'SIGTERM'})" in out, out
    assert leftovers(proc.pid) == [], out
