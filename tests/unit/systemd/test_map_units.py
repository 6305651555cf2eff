"""The mapping plane's systemd units: the feeder and store with no capabilities, the worker with
CAP_NET_RAW only, all with the daemon's hardening, `systemd-analyze verify` clean and a low
exposure score."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(
    ANALYZE is None,
    reason="systemd-analyze is not installed (scripts/setup.sh installs the Debian package systemd)",
)
UNITS = ["hyphal-map-feeder.service", "hyphal-map-store.service"]
WORKER = "hyphal-map-worker.service"
# The worker's one capability (raw sockets) costs it a little exposure.
MAX_EXPOSURE = {**dict.fromkeys(UNITS, 2.0), WORKER: 2.5}
COMMAND = f"{Path(sys.executable).absolute()} -m hyphal"


def text(unit: str) -> str:
    return resources.files("hyphal.systemd").joinpath(unit).read_text()


def directives(body: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in body.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key, []).append(value)
    return found


@pytest.mark.parametrize("unit", UNITS)
def test_hardening(unit: str) -> None:
    d = directives(text(unit))
    assert d["CapabilityBoundingSet"] == [""] and d["AmbientCapabilities"] == [""]
    for key, value in {
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "NoNewPrivileges": "yes",
        "DynamicUser": "yes",
        "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
    }.items():
        assert d[key] == [value], key
    service = unit.removeprefix("hyphal-map-").removesuffix(".service")
    assert d["ExecStart"][0].startswith(f"/usr/bin/hyphal map {service} $HYPHAL_MAP_")
    assert d["StateDirectory"] == [f"hyphal-map-{service}"]


def test_worker_one_capability_and_hardening() -> None:
    d = directives(text(WORKER))
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


def rendered(tmp_path: Path, unit: str) -> Path:
    path = tmp_path / unit
    path.write_text(text(unit).replace("/usr/bin/hyphal", COMMAND, 1))
    return path


@needs_analyze
@pytest.mark.parametrize("unit", [*UNITS, WORKER])
def test_verify_and_exposure(tmp_path: Path, unit: str) -> None:
    path = rendered(tmp_path, unit)
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
    assert float(match.group(1)) <= MAX_EXPOSURE[unit]
