"""Issue 8, short soak: a victim with an unreachable static peer, a flapping peer and background
messages keeps RSS, open fds and its link count within bench/soak.py's bounds for about 75 s."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from hyphal.testing.netlab_pytest import netns_unavailable

pytestmark = pytest.mark.netns

SOAK = Path(__file__).resolve().parents[2] / "bench" / "soak.py"


def test_short_soak_stays_within_bounds(tmp_path: Path) -> None:
    reason = netns_unavailable()
    if reason:
        pytest.skip(reason)
    result = subprocess.run(
        [
            sys.executable,
            str(SOAK),
            "--minutes",
            "1.25",
            "--interval",
            "10",
            "--flap",
            "6",
            "--assert",
            "--workdir",
            str(tmp_path / "soak"),
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout + result.stderr
