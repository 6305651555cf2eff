"""Pieces every `hyphal` subcommand shares: consoles, option types, errors, exit codes, API client.

Exit codes (docs/cli.md): 0 success, 1 runtime error (the daemon refused, a file cannot be
written, no reply, no message), 2 usage error (bad flag, argument or config value), 3 no hyphal
daemon answered at the API address. Under ``--json`` an error is one JSON object on stderr:
``{"error": message, "kind": "usage"|"runtime"|"unreachable"|"internal", "exitCode": n}``.
"""

from __future__ import annotations

import json
import sys
import unicodedata
from ipaddress import IPv6Address
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from hyphal.client import ApiError, Client, default_api_addr
from hyphal.identity import OVERLAY_NETWORK, IdentityError, parse_public_key
from hyphal.membership.record import is_label

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
_KINDS = {
    EXIT_RUNTIME: "runtime",
    EXIT_USAGE: "usage",
    EXIT_UNREACHABLE: "unreachable",
}
WIDE = 100_000  # "no limit": a table piped into a file or grep is never cut or wrapped


def make_console(stderr: bool = False) -> Console:
    """A console as wide as the terminal on a terminal, and unbounded when piped or redirected."""
    stream = sys.stderr if stderr else sys.stdout
    try:
        tty = stream.isatty()
    except (AttributeError, ValueError):
        tty = False
    return Console(stderr=stderr, width=None if tty else WIDE, soft_wrap=not tty)


out = make_console()
err = make_console(stderr=True)


class _Mode:
    """Whether the command being run was given ``--json`` (set while its options are parsed)."""

    json = False


mode = _Mode()


def _json_mode(value: bool) -> bool:
    if value:
        mode.json = True
    return value


KeyFile = Annotated[
    Path,
    typer.Option(
        "-k",
        "--key-file",
        help="Private key file (32 raw bytes).",
        show_default=True,
        metavar="FILE",
    ),
]
ApiAddr = Annotated[
    str,
    typer.Option(
        "--api-addr",
        help="Address of the daemon's API.",
        envvar="HYPHAL_API_ADDR",
        show_envvar=True,
        show_default=True,
        metavar="HOST:PORT",
    ),
]
JsonFlag = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Print JSON for scripts (camelCase keys; errors as JSON on stderr).",
        callback=_json_mode,
        is_eager=True,
    ),
]


def report_error(message: str, code: int, kind: str | None = None) -> None:
    """Print an error for people, or as one JSON object on stderr under --json."""
    if mode.json:
        sys.stderr.write(
            json.dumps(
                {"error": message, "kind": kind or _KINDS.get(code, "runtime"), "exitCode": code}
            )
            + "\n"
        )
    else:
        err.print(f"[bold red]error:[/] {message}", markup=True, highlight=False)


def fail(message: str, code: int = EXIT_RUNTIME) -> typer.Exit:
    """Report ``message`` and return the Exit to raise (``raise fail(...)``)."""
    report_error(message, code)
    return typer.Exit(code)


def api_failure(exc: ApiError) -> typer.Exit:
    """An API error as an exit: 3 when no hyphal daemon answered, else 1."""
    if exc.unreachable:
        return fail(str(exc), EXIT_UNREACHABLE)
    if exc.status is None:  # refused before sending: a bad --api-addr
        return fail(str(exc), EXIT_USAGE)
    return fail(str(exc), EXIT_RUNTIME)


def client(api_addr: str, timeout: float = 10.0) -> Client:
    """A client for ``api_addr``; a malformed address exits with a usage error."""
    try:
        return Client(api_addr, timeout=timeout)
    except ApiError as exc:
        raise api_failure(exc) from None


def fetch(api_addr: str, path: str) -> Any:
    """GET an API path and return its JSON, or exit with the daemon's error."""
    api = client(api_addr)
    try:
        return api.get(path)
    except ApiError as exc:
        raise api_failure(exc) from None


def api_hint(api_addr: str) -> str:
    """`` --api-addr X`` when X is not what a plain command would use, else ``""``."""
    return "" if api_addr == default_api_addr() else f" --api-addr {api_addr}"


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
    """A DEST argument (overlay IP, hex public key or member name) as an API destination.

    A name is a DNS label (at most 63 characters), so it never looks like an address (no ':')
    or a public key (64 characters); the daemon resolves it (``hyphal resolve``)."""
    try:
        address = IPv6Address(dest)
    except ValueError:
        pass
    else:
        if address not in OVERLAY_NETWORK:
            raise fail(
                f"{dest} is not in {OVERLAY_NETWORK}, so it is no hyphal node's address "
                "(see 'hyphal routes selected' for the nodes this one reaches)",
                EXIT_USAGE,
            )
        return {"ip": dest}
    if is_label(dest):
        return {"name": dest}
    try:
        return {"pk": parse_public_key(dest).hex()}
    except IdentityError:
        raise fail(
            f"{visible(dest)!r} is neither an overlay IPv6 address, a 64-character hex public "
            "key nor a member name (a-z, 0-9, inner '-'; see 'hyphal members')",
            EXIT_USAGE,
        ) from None


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"
