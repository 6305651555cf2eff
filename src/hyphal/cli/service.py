"""`hyphal install-service`: install the hardened systemd unit (and a first config) and start it."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Annotated

import typer

from hyphal.cli.common import JsonFlag, err, fail, out, print_json
from hyphal.config import ConfigError, load_config_file
from hyphal.systemd import CONFIG_DIR, SYSTEMD_RUNNING_MARKER, Plan, ServiceError, apply, plan


def install_service(
    name: Annotated[
        str | None,
        typer.Option(
            "--name",
            help="Install hyphal@NAME (template unit, config /etc/hyphal/NAME.toml, state "
            "/var/lib/hyphal-NAME) to run one of several networks on this machine "
            "[default: the single hyphal.service]",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help=f"Config file the service runs with; written with defaults if missing "
            f"[default: {CONFIG_DIR}/hyphal.toml, or {CONFIG_DIR}/NAME.toml with --name]",
        ),
    ] = None,
    tcp_listen_port: Annotated[
        int | None,
        typer.Option("--tcp-listen-port", help="Peer port written into a new config."),
    ] = None,
    api_addr: Annotated[
        str | None, typer.Option("--api-addr", help="API address written into a new config.")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be written and run; change nothing.")
    ] = False,
    root: Annotated[
        Path,
        typer.Option(
            "--root",
            help="Install into this directory tree instead of / (an image); runs no systemctl.",
        ),
    ] = Path("/"),
    as_json: JsonFlag = False,
) -> None:
    """Install hyphal as a systemd service and start it (systemctl enable --now).

    Writes the hardened unit to /etc/systemd/system, a first config to /etc/hyphal unless it
    exists, then runs systemctl daemon-reload and enable --now where systemd runs. An existing
    config is checked first and never overwritten.
    """
    root = root.resolve()
    try:
        p = plan(name=name, config=config, tcp_port=tcp_listen_port, api_addr=api_addr, root=root)
    except ServiceError as exc:
        raise fail(str(exc), 2) from None
    on_disk = root / p.config.relative_to("/")
    if p.config_content is None:
        try:
            load_config_file(on_disk)
        except ConfigError as exc:
            raise fail(f"{exc}; fix it before installing the service", 2) from None
        if not stat.S_IMODE(on_disk.stat().st_mode) & stat.S_IROTH:
            p.warnings.append(
                f"{p.config} is not world-readable; the service's dynamic user cannot read it "
                f"(chmod 644 {p.config}; keep secrets in separate files)"
            )
    if not p.systemd and root == Path("/"):
        p.warnings.append(
            f"systemd is not running here ({SYSTEMD_RUNNING_MARKER} is missing, e.g. in a "
            f"container): the unit is written but not started; run the daemon with: "
            f"hyphal run --config-file {p.config}"
        )
    done: list[str] = []
    if not dry_run:
        if root == Path("/") and os.geteuid() != 0:
            raise fail(
                "install-service writes /etc/systemd/system and /etc/hyphal: run it as root "
                "(sudo), or see what it would do with --dry-run"
            )
        try:
            done = apply(p, root)
        except (ServiceError, OSError) as exc:
            raise fail(str(exc)) from None
    if as_json:
        print_json(
            {
                "unit": p.unit,
                "unitFile": str(p.unit_file),
                "config": str(p.config),
                "configCreated": p.config_content is not None and not dry_run,
                "dropinFile": None if p.dropin_file is None else str(p.dropin_file),
                "systemd": p.systemd,
                "started": p.systemd and not dry_run,
                "commands": [" ".join(c) for c in p.commands],
                "done": done,
                "dryRun": dry_run,
                "warnings": p.warnings,
            }
        )
        return
    _print_human(p, done, dry_run)
    for warning in p.warnings:
        err.print(f"[yellow]warning:[/] {warning}", highlight=False)


def _print_human(p: Plan, done: list[str], dry_run: bool) -> None:
    if dry_run:
        out.print(f"[bold]would write {p.unit_file}:[/]", highlight=False)
        typer.echo(p.unit_content)  # verbatim: no wrapping, so it can be copied
        if p.dropin_file is not None:
            out.print(f"[bold]would write {p.dropin_file}:[/]", highlight=False)
            typer.echo(p.dropin_content or "")
        if p.config_content is not None:
            out.print(f"[bold]would write {p.config}:[/]", highlight=False)
            typer.echo(p.config_content)
        else:
            out.print(f"would keep {p.config} (exists; checked)", highlight=False)
        for cmd in p.commands:
            out.print(f"would run: {' '.join(cmd)}", markup=False, highlight=False)
        return
    for line in done:
        out.print(line, markup=False, highlight=False)
    if p.systemd:
        unit = p.unit.removesuffix(".service")
        out.print(
            f"{p.unit} is enabled and running. Status: systemctl status {unit}; logs: "
            f"journalctl -u {unit}; after editing {p.config}: systemctl reload {unit}",
            markup=False,
            highlight=False,
        )
