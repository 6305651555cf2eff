"""The README's first command's demo, run for real: four daemons on loopback converge, sign
member records, answer a ping by name and reroute around a killed node (no root needed). The acts in namespaces are
tests/netns/test_demo_netns.py's."""

from __future__ import annotations

import os
import re
import subprocess
import sys


def test_demo_runs_to_the_end() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hyphal", "demo", "--no-netns"],
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "COLUMNS": "200", "PYTHONUNBUFFERED": "1"},
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "routes converged" in out
    assert "every node signed a member record" in out and " nyc " in out
    assert "reply from D" in out
    assert "d.hyphal.internal AAAA" in out
    assert re.search(r"✓ [45][0-9a-f]{0,3}:", out), out  # dig's answer from A's DNS server
    assert "A rerouted to D over the direct slow link" in out
    assert "Acts 2 and 3 (ingress, mapping trace) skipped: --no-netns." in out
