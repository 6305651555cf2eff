"""The shipped systemd units: hardening present, `systemd-analyze verify` clean, the exposure
score low; `hyphal install-service` into a scratch root (no systemctl there)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hyphal.cli import app
from hyphal.config import (
    SYSTEM_CONFIG_FILE,
    USER_CONFIG_FILE,
    default_config_file,
    load_config_file,
)
from hyphal.systemd import SHIPPED_EXEC, plan, unit_text

ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(
    ANALYZE is None,
    reason="systemd-analyze is not installed (scripts/setup.sh installs the Debian package systemd)",
)
COMMAND = f"{Path(sys.executable).absolute()} -m hyphal"


def directives(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key, []).append(value)
    return found


@pytest.mark.parametrize("template", [False, True])
def test_units_carry_the_hardening(template: bool) -> None:
    d = directives(unit_text(template))
    assert d["CapabilityBoundingSet"] == ["CAP_NET_ADMIN CAP_NET_RAW"]
    assert d["AmbientCapabilities"] == ["CAP_NET_ADMIN CAP_NET_RAW"]
    for key, value in {
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "NoNewPrivileges": "yes",
        "DynamicUser": "yes",
        "DevicePolicy": "closed",
        "DeviceAllow": "/dev/net/tun rw",
        "ExecReload": "/bin/kill -HUP $MAINPID",
    }.items():
        assert d[key] == [value], key
    assert set(d["RestrictAddressFamilies"][0].split()) == {
        "AF_UNIX",
        "AF_INET",
        "AF_INET6",
        "AF_NETLINK",
    }
    assert d["SystemCallFilter"] == ["@system-service", "~@privileged @resources"]
    assert d["ExecStart"][0].startswith(SHIPPED_EXEC + " run --config-file /etc/hyphal/")
    state = d["StateDirectory"][0]
    assert state == ("hyphal-%i" if template else "hyphal")


def rendered(tmp_path: Path, name: str | None) -> Path:
    p = plan(name=name, root=tmp_path, command=COMMAND)
    unit = tmp_path / (p.unit if name is not None else "hyphal.service")
    unit.write_text(p.unit_content)
    if name is not None:  # verify the instance, next to its template
        (tmp_path / "hyphal@.service").write_text(p.unit_content)
    return unit


@needs_analyze
@pytest.mark.parametrize("name", [None, "lab"])
def test_systemd_analyze_verify_passes(tmp_path: Path, name: str | None) -> None:
    unit = rendered(tmp_path, name)
    result = subprocess.run(
        [str(ANALYZE), "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == ""


@needs_analyze
def test_systemd_analyze_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    """The check above can fail: a unit whose program is missing is reported."""
    unit = tmp_path / "hyphal.service"
    unit.write_text(unit_text().replace(SHIPPED_EXEC, "/nonexistent/hyphal"))
    result = subprocess.run(
        [str(ANALYZE), "verify", str(unit)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0 and "not executable" in result.stderr


@needs_analyze
def test_security_exposure_is_low(tmp_path: Path) -> None:
    unit = rendered(tmp_path, None)
    result = subprocess.run(
        [str(ANALYZE), "security", "--offline=yes", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    match = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert match is not None, result.stdout + result.stderr
    assert float(match.group(1)) <= 2.5  # systemd rates <= 2.5 "OK"; a bare unit scores 9.6


def test_default_config_path_is_system_wide_for_root() -> None:
    assert Path("/etc/hyphal/hyphal.toml") == SYSTEM_CONFIG_FILE
    assert default_config_file(0) == SYSTEM_CONFIG_FILE
    assert default_config_file(1000) == USER_CONFIG_FILE


runner = CliRunner()


def test_install_service_into_a_root_writes_unit_and_config(tmp_path: Path) -> None:
    result = runner.invoke(app, ["install-service", "--root", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["unit"] == "hyphal.service" and info["configCreated"] is True
    assert info["commands"] == [] and info["systemd"] is False
    unit = tmp_path / "etc/systemd/system/hyphal.service"
    config = tmp_path / "etc/hyphal/hyphal.toml"
    assert unit.stat().st_mode & 0o777 == 0o644 and config.stat().st_mode & 0o777 == 0o644
    assert SHIPPED_EXEC not in unit.read_text()  # ExecStart names this hyphal
    loaded = load_config_file(config)
    assert loaded.key_file == Path("/var/lib/hyphal/priv_key.bin")
    assert loaded.message_store == Path("/var/lib/hyphal/messages")
    config.write_text(config.read_text() + "tcp_listen_port = 9700\n")
    again = runner.invoke(app, ["install-service", "--root", str(tmp_path), "--json"])
    assert again.exit_code == 0 and json.loads(again.stdout)["configCreated"] is False
    assert "tcp_listen_port = 9700" in config.read_text()  # an existing config is kept


def test_install_service_for_a_second_network(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "install-service",
            "--root",
            str(tmp_path),
            "--name",
            "lab",
            "--tcp-listen-port",
            "9652",
            "--api-addr",
            "127.0.0.1:8990",
        ],
    )
    assert result.exit_code == 0, result.output
    assert (tmp_path / "etc/systemd/system/hyphal@.service").is_file()
    loaded = load_config_file(tmp_path / "etc/hyphal/lab.toml")
    assert (loaded.tcp_listen_port, loaded.api_addr, loaded.tun_name) == (
        9652,
        "127.0.0.1:8990",
        "hy-lab",
    )
    assert loaded.key_file == Path("/var/lib/hyphal-lab/priv_key.bin")


def test_install_service_refuses_bad_input_and_dry_run_writes_nothing(tmp_path: Path) -> None:
    bad_name = runner.invoke(app, ["install-service", "--root", str(tmp_path), "--name", "a/b"])
    assert bad_name.exit_code == 2 and "--name" in bad_name.output
    (tmp_path / "etc/hyphal").mkdir(parents=True)
    (tmp_path / "etc/hyphal/hyphal.toml").write_text("tcp_listen_prot = 1\n")
    broken = runner.invoke(app, ["install-service", "--root", str(tmp_path)])
    assert broken.exit_code == 2 and "unknown keys" in broken.output
    assert "Traceback" not in broken.output
    assert not (tmp_path / "etc/systemd").exists()
    dry = runner.invoke(
        app, ["install-service", "--root", str(tmp_path), "--name", "x", "--dry-run"]
    )
    assert dry.exit_code == 0 and "would write /etc/systemd/system/hyphal@.service" in dry.stdout
    assert not (tmp_path / "etc/systemd").exists()
    assert not (tmp_path / "etc/hyphal/x.toml").exists()


def test_systemctl_commands_when_systemd_runs() -> None:
    p = plan(name="lab", command=COMMAND, systemd_running=True)
    assert p.commands == [
        ["systemctl", "daemon-reload"],
        ["systemctl", "enable", "--now", "hyphal@lab.service"],
    ]
