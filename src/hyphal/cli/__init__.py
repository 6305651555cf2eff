"""The `hyphal` command: the daemon (`run`), key tools, and clients of a running daemon's API.

One module per command group: ``node`` (run, inspect, generate-keys, generate-network-key,
demo), ``status`` (status, ip, version), ``probe`` (ping, stats), ``peers``, ``routes``,
``messages``, ``members`` (members, resolve, set), ``configcmd`` (config check/show), ``dns`` (dns
status), ``services`` (service add/list/remove/drain/grant), ``ingress`` (ingress
list/add/unwrap/remove), ``map`` (map feeder/store/status), ``sim``; ``common`` holds what they
share.

:func:`main` is the one place errors end: a usage error exits 2, a runtime error 1, an
unreachable daemon 3, and nothing reaches the user as a Python traceback (set
``HYPHAL_TRACEBACK=1`` to see one for a bug report).
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Annotated

import typer
from typer._click.exceptions import ClickException, UsageError

from hyphal import __version__
from hyphal.cli import join, members
from hyphal.cli.common import EXIT_RUNTIME, EXIT_USAGE, api_failure, mode, report_error
from hyphal.cli.configcmd import config_app
from hyphal.cli.dns import dns_app
from hyphal.cli.ingress import ingress_app
from hyphal.cli.map import map_app
from hyphal.cli.messages import message_app
from hyphal.cli.node import demo, generate_keys, generate_network_key, inspect, run
from hyphal.cli.peers import peers_app
from hyphal.cli.probe import ping, stats
from hyphal.cli.routes import routes_app
from hyphal.cli.service import install_service
from hyphal.cli.services import service_app
from hyphal.cli.sim import sim
from hyphal.cli.status import ip, status, version
from hyphal.client import ApiError

app = typer.Typer(
    help="hyphal: an encrypted, self-healing, latency-aware IPv6 overlay mesh.\n\n"
    "Start with 'hyphal status'. Exit codes: 0 ok, 1 runtime error, 2 usage error, "
    "3 no daemon at the API address (docs/cli.md).",
    no_args_is_help=True,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain help: "[default: ...]" stays text, flags show no <bool>
)


def show_click_error(exc: ClickException) -> None:
    """A usage error as click shows it: usage line, hint and message (help for a bare group)."""
    exc.show()


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"hyphal {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    _version: Annotated[
        bool,
        typer.Option(
            "-V",
            "--version",
            help="Print the version and exit.",
            callback=_print_version,
            is_eager=True,
        ),
    ] = False,
) -> None:
    mode.json = False  # set again by the subcommand's --json while its options are parsed


app.add_typer(peers_app, name="peers")
app.add_typer(routes_app, name="routes")
app.add_typer(message_app, name="message")
app.add_typer(config_app, name="config")
app.add_typer(dns_app, name="dns")
app.add_typer(ingress_app, name="ingress")
app.add_typer(service_app, name="service")
app.add_typer(map_app, name="map")
app.command()(status)
app.command()(ip)
app.command()(version)
app.command(context_settings={"allow_extra_args": False})(run)
app.command()(inspect)
app.command("generate-keys")(generate_keys)
app.command("generate-network-key")(generate_network_key)
app.command()(ping)
app.command()(stats)
app.command()(demo)
app.command(help="Simulate the real router on thousands of nodes.")(sim)
app.command("install-service")(install_service)
members.register(app)
join.register(app)


def _expand_multi_value_peers(argv: list[str]) -> list[str]:
    """Mycelium-style `--peers A B C` becomes `--peers A --peers B --peers C`.

    Every word after ``--peers`` up to the next option is a peer, URI or not, so that
    ``--peers 127.0.0.1:9651`` reaches the peer parser (which suggests ``tcp://127.0.0.1:9651``)
    instead of becoming an "unexpected extra argument".
    """
    result: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        i += 1
        if arg == "--":
            result += argv[i - 1 :]
            break
        if arg != "--peers":
            result.append(arg)
            continue
        values: list[str] = []
        while i < len(argv) and not argv[i].startswith("-"):
            values.append(argv[i])
            i += 1
        if not values:
            result.append(arg)  # click says "--peers requires an argument"
        for value in values:
            result += ["--peers", value]
    return result


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns (and, as the console script, exits with) the exit code."""
    args = _expand_multi_value_peers(sys.argv[1:] if argv is None else argv)
    mode.json = False
    try:
        code = app(args=args, prog_name="hyphal", standalone_mode=False)
    except typer.Exit as exc:
        code = exc.exit_code
    except typer.Abort:
        report_error("interrupted", 130, "runtime")
        code = 130
    except ClickException as exc:
        mode.json = mode.json or "--json" in args
        code = EXIT_USAGE if isinstance(exc, UsageError) else exc.exit_code
        if mode.json:
            report_error(exc.format_message(), code, "usage" if code == EXIT_USAGE else None)
        else:
            show_click_error(exc)
    except ApiError as exc:  # a client command that did not catch its own
        code = api_failure(exc).exit_code
    except KeyboardInterrupt:
        code = 130
    except BrokenPipeError:
        code = EXIT_RUNTIME
    except Exception as exc:
        if os.environ.get("HYPHAL_TRACEBACK"):
            traceback.print_exc()
        report_error(
            f"unexpected {type(exc).__name__}: {exc} (this is a bug in hyphal; "
            "run again with HYPHAL_TRACEBACK=1 and report the traceback)",
            EXIT_RUNTIME,
            "internal",
        )
        code = EXIT_RUNTIME
    code = 0 if code is None else int(code)
    if argv is None:
        sys.exit(code)
    return code
