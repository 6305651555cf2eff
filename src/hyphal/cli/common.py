"""Pieces every `hyphal` subcommand shares: consoles, option types, errors, API client."""

from __future__ import annotations

import json
import sys
import unicodedata
from ipaddress import IPv6Address
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from hyphal.client import ApiError, Client
from hyphal.identity import IdentityError, parse_public_key

out = Console()
err = Console(stderr=True)

KeyFile = Annotated[
    Path,
    typer.Option("-k", "--key-file", help="Private key file (32 raw bytes).", show_default=True),
]
ApiAddr = Annotated[
    str,
    typer.Option(
        "--api-addr", help="Address of the daemon's API (env HYPHAL_API_ADDR).", show_default=True
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def client(api_addr: str) -> Client:
    return Client(api_addr)


def fetch(api_addr: str, path: str) -> Any:
    """GET an API path and return its JSON, or exit with the daemon's error."""
    try:
        return Client(api_addr).get(path)
    except ApiError as exc:
        raise fail(str(exc)) from None


_KEPT = frozenset("\n\t")
_BIDI = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def visible(text: str) -> str:
    """``text`` safe for a terminal: control characters (ESC, CSI, BEL, CR, DEL, ...) and bidi
    overrides shown as escapes like ``\\x1b``, so remote text cannot drive the terminal."""
    return "".join(
        ch
        if ch in _KEPT or (ch not in _BIDI and unicodedata.category(ch) != "Cc")
        else ch.encode("unicode_escape").decode("ascii")
        for ch in text
    )


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, indent=2) + "\n")


def destination_body(dest: str) -> dict[str, str]:
    """A DEST argument (overlay IP or hex public key) as an API destination."""
    try:
        IPv6Address(dest)
        return {"ip": dest}
    except ValueError:
        pass
    try:
        return {"pk": parse_public_key(dest).hex()}
    except IdentityError:
        raise fail(
            f"{dest!r} is neither an overlay IPv6 address nor a 64-character hex public key"
        ) from None


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"
