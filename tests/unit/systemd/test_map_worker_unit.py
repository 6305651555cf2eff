"""The mapping worker's systemd unit: CAP_NET_RAW only, the services' hardening, `systemd-analyze
verify` clean and a low exposure score."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

ANALYZE = shutil.which("systemd-analyze")
UNIT = "hyphal-map-worker.service"


def directives() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in resources.files("hyphal.systemd").joinpath(UNIT).read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key, []).append(value)
    return found


def test_one_capability_and_hardening() -> None:
    d = directives()
    assert d["CapabilityBoundingSet"] == ["CAP_NET_RAW"] == d["AmbientCapabilities"]
    for key, value in {
        "ProtectSystem": "strict",
        "NoNewPrivileges": "yes",
        "DynamicUser": "yes",
        "PrivateDevices": "yes",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
        "StateDirectory": "hyphal-map-worker",
    }.items():
        assert d[key] == [value], key
    assert d["ExecStart"][0] == "/usr/bin/hyphal map worker $HYPHAL_MAP_WORKER_ARGS"
    assert "--raw" in d["Environment"][0]


@pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze is not installed (scripts/setup.sh)")
def test_verify_and_exposure(tmp_path: Path) -> None:
    body = resources.files("hyphal.systemd").joinpath(UNIT).read_text()
    path = tmp_path / UNIT
    path.write_text(
        body.replace("/usr/bin/hyphal", f"{Path(sys.executable).absolute()} -m hyphal", 1)
    )
    done = subprocess.run(
        [str(ANALYZE), "verify", str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and done.stderr.strip() == "", done.stderr
    done = subprocess.run(
        [str(ANALYZE), "security", "--offline=yes", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", done.stdout)
    assert match is not None, done.stdout + done.stderr
    assert float(match.group(1)) <= 2.5
