"""The `hyphal` command: the daemon (`run`), key tools, and clients of a running daemon's API.

One module per command group: ``node`` (run, inspect, generate-keys, demo), ``probe`` (ping,
stats), ``peers``, ``routes``, ``messages``, ``sim``; ``common`` holds what they share.
"""

from __future__ import annotations

import sys

import typer

from hyphal.cli.messages import message_app
from hyphal.cli.node import demo, generate_keys, inspect, run
from hyphal.cli.peers import peers_app
from hyphal.cli.probe import ping, stats
from hyphal.cli.routes import routes_app
from hyphal.cli.service import install_service
from hyphal.cli.sim import sim

app = typer.Typer(
    help="hyphal: an encrypted, self-healing, latency-aware IPv6 overlay mesh.",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)
app.add_typer(peers_app, name="peers")
app.add_typer(routes_app, name="routes")
app.add_typer(message_app, name="message")
app.command(context_settings={"allow_extra_args": False})(run)
app.command()(inspect)
app.command("generate-keys")(generate_keys)
app.command()(ping)
app.command()(stats)
app.command()(demo)
app.command(help="Simulate the real router on thousands of nodes.")(sim)
app.command("install-service")(install_service)


def _expand_multi_value_peers(argv: list[str]) -> list[str]:
    """Mycelium-style `--peers A B C` becomes `--peers A --peers B --peers C`."""
    result: list[str] = []
    in_peers = False
    for arg in argv:
        if arg == "--peers":
            in_peers = True
            continue
        if in_peers and "://" in arg and not arg.startswith("-"):
            result += ["--peers", arg]
            continue
        in_peers = False
        result.append(arg)
    return result


def main() -> None:
    app(args=_expand_multi_value_peers(sys.argv[1:]), prog_name="hyphal")
