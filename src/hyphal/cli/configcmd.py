"""`hyphal config check|show`: validate a config file; print the configuration `run` would use.

`show` takes `run`'s own flags (parsed by `run`'s parser, so they mean exactly what they mean
there) and prints the merged result as TOML a config file can hold, with where each value came
from. Secrets are shown as the paths of their files, never their contents.
"""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path
from typing import Annotated, Any

import typer
from typer._click.core import Command
from typer._click.exceptions import UsageError

from hyphal.cli.common import EXIT_USAGE, JsonFlag, fail, out, print_json, visible
from hyphal.cli.node import effective_config, run
from hyphal.config import ConfigError, NodeConfig, load_config_file, read_network_key

config_app = typer.Typer(
    help="Check a config file, or show the configuration 'hyphal run' would use.",
    no_args_is_help=True,
)

_RUN_ONLY = {"config_file", "debug", "quiet"}  # run's flags that are not config keys


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def config_values(config: NodeConfig) -> dict[str, Any]:
    """Every config key with a TOML-friendly value (paths as strings, peers as URIs)."""
    values: dict[str, Any] = {}
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        if field.name == "peers":
            value = [str(p) for p in value]
        elif field.name == "names":
            value = {label: str(address) for label, address in value}
        elif field.name == "admin_keys":
            value = [k.hex() for k in value]
        elif field.name == "services":  # the file's [[service]] tables
            value = [{k: v for k, v in s.to_json().items() if v is not None} for s in value]
        elif field.name == "service_owners":
            value = {name: key.hex() for name, key in value}
        elif isinstance(value, Path):
            value = str(value)
        values[field.name] = value
    return values


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def _run_command() -> Command:
    runner = typer.Typer()
    runner.command()(run)
    return typer.main.get_command(runner)


@config_app.command(
    "show",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def show(
    ctx: typer.Context,
    config_file: Annotated[
        Path | None,
        typer.Option(
            "-c",
            "--config-file",
            help="TOML config, as for run [default: the default config file if it exists]",
            metavar="FILE",
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Print the effective configuration: defaults, then the config file, then any of run's
    flags given after it (e.g. 'hyphal config show -c node.toml -t 9700'). Secrets are shown as
    file paths, never their contents."""
    try:
        run_ctx = _run_command().make_context("hyphal config show", list(ctx.args))
    except UsageError as exc:
        raise fail(exc.format_message(), EXIT_USAGE) from None
    params = {k: v for k, v in run_ctx.params.items() if k not in _RUN_ONLY}
    params["peers"] = params.get("peers") or None
    params["no_tun"] = True if params.get("no_tun") else None
    params["no_route_audit"] = True if params.get("no_route_audit") else None
    params["no_dns"] = True if params.get("no_dns") else None
    try:
        config, path = effective_config(config_file, **params)
    except ConfigError as exc:
        raise fail(str(exc), EXIT_USAGE) from None
    file_keys: set[str] = set()
    if path is not None:
        try:
            file_keys = set(tomllib.loads(path.read_text()))
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
            file_keys = set()
    flag_keys = {k for k, v in params.items() if v is not None}
    values = config_values(config)

    def source(key: str) -> str:
        in_file = key in file_keys or (key == "services" and "service" in file_keys)
        return "flag" if key in flag_keys else "file" if in_file else "default"

    if as_json:
        print_json(
            {
                "configFile": None if path is None else str(path),
                "config": {camel(k): v for k, v in values.items()},
                "sources": {camel(k): source(k) for k in values},
            }
        )
        return
    out.print(
        f"# effective configuration (config file: {path if path is not None else 'none'})",
        highlight=False,
        markup=False,
    )
    for key, value in values.items():
        line = f"# {key} is not set" if value is None else f"{key} = {toml_value(value)}"
        out.print(visible(f"{line:<60} # {source(key)}"), highlight=False, markup=False)


@config_app.command("check")
def check(
    path: Annotated[Path, typer.Argument(help="The TOML config file to check", metavar="FILE")],
    as_json: JsonFlag = False,
) -> None:
    """Validate a config file: TOML syntax, known keys, types and values, peer URIs, and that
    the network key file (if any) is readable and well formed. Exit 0 if usable, 2 if not."""
    try:
        config = load_config_file(path)
        if config.network_key_file is not None:
            read_network_key(config.network_key_file)
        keys = sorted(tomllib.loads(path.read_text()))
    except ConfigError as exc:
        raise fail(str(exc), EXIT_USAGE) from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise fail(f"cannot read config file {path}: {exc}", EXIT_USAGE) from None
    if as_json:
        print_json({"file": str(path), "ok": True, "keys": keys})
    else:
        out.print(
            f"{path}: ok ({len(keys)} keys: {', '.join(keys) or 'none'})",
            highlight=False,
            markup=False,
        )
