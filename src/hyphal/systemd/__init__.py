"""The systemd units shipped with hyphal and what ``hyphal install-service`` does with them.

``hyphal.service`` runs one daemon with ``/etc/hyphal/hyphal.toml``; the template
``hyphal@.service`` runs ``hyphal@NAME`` with ``/etc/hyphal/NAME.toml`` and its own state
directory, for several networks on one machine. Both run as a dynamic user that holds only
CAP_NET_ADMIN and CAP_NET_RAW, on a read-only file system (docs/systemd.md).

:func:`plan` works out every file and command of an installation without touching anything;
:func:`apply` carries it out. Keeping the two apart is what ``--dry-run`` shows and what the tests
check, with a ``root`` directory standing in for ``/``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

UNIT = "hyphal.service"
TEMPLATE = "hyphal@.service"
UNIT_DIR = Path("/etc/systemd/system")
CONFIG_DIR = Path("/etc/hyphal")
STATE_ROOT = Path("/var/lib")
SHIPPED_EXEC = "/usr/bin/hyphal"
#: The file systemd creates when it is the running init system (sd_booted()).
SYSTEMD_RUNNING_MARKER = Path("/run/systemd/system")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,31}")
_HIDDEN = (Path("/home"), Path("/root"), Path("/run/user"))  # ProtectHome=yes hides these

Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


class ServiceError(Exception):
    """An installation that cannot work; the message says what to do instead."""


def unit_text(template: bool = False) -> str:
    """The shipped unit (``hyphal@.service`` when ``template``), as packaged."""
    name = TEMPLATE if template else UNIT
    return resources.files(__package__).joinpath(name).read_text()


def hyphal_command() -> str:
    """How systemd should start this hyphal: the installed script, else this interpreter."""
    found = shutil.which("hyphal")
    if found:
        return str(Path(found).resolve())
    # Not resolved: a virtualenv's python is known by where its symlink lives.
    return f"{Path(sys.executable).absolute()} -m hyphal"


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ServiceError(
            f"--name {name!r}: use 1-32 letters, digits, '-' or '_' (it names the unit "
            "hyphal@NAME, the config /etc/hyphal/NAME.toml and the state directory)"
        )
    return name


def _hidden(path: Path) -> bool:
    return any(path == h or h in path.parents for h in _HIDDEN)


@dataclass
class Plan:
    """Everything an installation writes and runs."""

    unit: str  # the unit to enable: hyphal.service or hyphal@NAME.service
    unit_file: Path
    unit_content: str
    config: Path
    config_content: str | None  # None: the config exists and is kept as it is
    dropin_file: Path | None = None  # ExecStart override for a config elsewhere
    dropin_content: str | None = None
    commands: list[list[str]] = field(default_factory=list)
    systemd: bool = False
    warnings: list[str] = field(default_factory=list)


def default_config(name: str | None, tcp_port: int | None, api_addr: str | None) -> str:
    """The config a fresh installation starts with (keys as in ``hyphal run --help``)."""
    state = STATE_ROOT / ("hyphal" if name is None else f"hyphal-{name}")
    lines = [
        "# hyphal daemon configuration (keys mirror `hyphal run` flags; see docs/systemd.md).",
        "# Apply changes to peers and log level with: systemctl reload "
        + (UNIT if name is None else f"hyphal@{name}"),
        f'key_file = "{state}/priv_key.bin"',
        f'message_store = "{state}/messages"',
        "peers = []",
    ]
    if name is not None:
        lines.append(f'tun_name = "{("hy-" + name)[:15]}"')
    if tcp_port is not None:
        lines.append(f"tcp_listen_port = {tcp_port}")
    if api_addr is not None:
        lines.append(f'api_addr = "{api_addr}"')
    if name is not None and (tcp_port is None or api_addr is None):
        lines.append("# Every network on this machine needs its own tcp_listen_port and api_addr.")
    return "\n".join(lines) + "\n"


def plan(
    *,
    name: str | None = None,
    config: Path | None = None,
    tcp_port: int | None = None,
    api_addr: str | None = None,
    root: Path = Path("/"),
    command: str | None = None,
    systemd_running: bool | None = None,
) -> Plan:
    """What installing the service would write and run (nothing is touched)."""
    if name is not None:
        check_name(name)
    command = command or hyphal_command()
    template = name is not None
    unit = UNIT if name is None else f"hyphal@{name}.service"
    unit_file = UNIT_DIR / (TEMPLATE if template else UNIT)
    content = unit_text(template).replace(SHIPPED_EXEC, command, 1)
    default = CONFIG_DIR / ("hyphal.toml" if name is None else f"{name}.toml")
    config = Path(os.path.abspath(config)) if config is not None else default
    on_disk = _under(root, config)
    config_content = None if on_disk.exists() else default_config(name, tcp_port, api_addr)
    if root != Path("/"):
        systemd_running = False
    elif systemd_running is None:
        systemd_running = SYSTEMD_RUNNING_MARKER.is_dir()
    result = Plan(unit, unit_file, content, config, config_content, systemd=systemd_running)
    if config != default:
        if _hidden(config):
            raise ServiceError(
                f"--config {config}: the service cannot read files under /home or /root "
                "(ProtectHome=yes); put the config in /etc/hyphal"
            )
        result.dropin_file = UNIT_DIR / f"{unit}.d" / "config.conf"
        result.dropin_content = (
            "# Written by hyphal install-service --config: run with this config file.\n"
            f"[Service]\nExecStart=\nExecStart={command} run --config-file {config}\n"
        )
    program = Path(command.split()[0])
    if _hidden(program) or _hidden(program.resolve()):
        result.warnings.append(
            f"hyphal runs from {program} (really {program.resolve()}), which the service "
            "cannot see "
            "(ProtectHome=yes hides /home and /root): install hyphal system-wide, e.g. "
            "python3 -m venv /opt/hyphal && /opt/hyphal/bin/pip install hyphal, then run "
            "/opt/hyphal/bin/hyphal install-service"
        )
    if systemd_running:
        result.commands = [["systemctl", "daemon-reload"], ["systemctl", "enable", "--now", unit]]
    return result


def _under(root: Path, path: Path) -> Path:
    return root / path.relative_to("/")


def _write(path: Path, text: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.chmod(mode)
    tmp.replace(path)


def apply(p: Plan, root: Path = Path("/"), run: Runner | None = None) -> list[str]:
    """Write the plan's files under ``root`` and run its commands; returns what was done."""
    done: list[str] = []
    _write(_under(root, p.unit_file), p.unit_content, 0o644)
    done.append(f"wrote {p.unit_file}")
    if p.dropin_file is not None and p.dropin_content is not None:
        _write(_under(root, p.dropin_file), p.dropin_content, 0o644)
        done.append(f"wrote {p.dropin_file}")
    if p.config_content is not None:
        # World-readable on purpose: the dynamic user must read it; it holds no secrets (the
        # node key is created in the state directory, a network key file is referenced).
        _write(_under(root, p.config), p.config_content, 0o644)
        done.append(f"wrote {p.config}")
    runner = run or _run
    for cmd in p.commands:
        result = runner(cmd)
        if result.returncode != 0:
            detail = (result.stderr or result.stdout or "").strip()
            raise ServiceError(f"{' '.join(cmd)} failed (exit {result.returncode}): {detail}")
        done.append(f"ran {' '.join(cmd)}")
    return done


def _run(cmd: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, check=False, timeout=120)
