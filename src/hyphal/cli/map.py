"""`hyphal map feeder|store|status|import`: run the mapping plane's services, see how it is doing,
and load RIPE Atlas or Globalping data into the store.

``map_app`` is the typer group every ``hyphal map`` command hangs off (the worker's commands are
registered onto it from ``cli/mapwork.py``). The services listen on this node's overlay address
by default (asked from the local hyphal API), and admit mesh members with an allowed role, or
callers with the bearer token from ``--token-file``. Listening there, they advertise themselves
as the hyphal services ``map-feeder``/``map-store``, and clients name them ``svc:NAME``
(``mapping/discovery.py``) or give a URL.
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
import uvicorn
from rich.table import Table

from hyphal.api.auth import read_or_create_token
from hyphal.cli.common import (
    EXIT_RUNTIME,
    EXIT_USAGE,
    ApiAddr,
    JsonFlag,
    fail,
    out,
    print_json,
    visible,
)
from hyphal.client import ApiError, Client, bearer_headers, find_token
from hyphal.config import DEFAULT_API_ADDR
from hyphal.mapping.db import Database
from hyphal.mapping.discovery import (
    FEEDER_SERVICE,
    STORE_SERVICE,
    SVC,
    DiscoveryError,
    Locator,
    advertise,
    withdraw,
)
from hyphal.mapping.service_app import (
    Access,
    BindError,
    MemberResolver,
    ServiceInfo,
    check_bind,
    overlay_address,
)

map_app = typer.Typer(
    help="The mapping plane: target feeder, result store, workers (docs/mapping.md).",
    no_args_is_help=True,
)

FEEDER_PORT = 7410
STORE_PORT = 7411

Listen = Annotated[
    str | None,
    typer.Option(
        "--listen",
        help="Address to listen on [default: this node's overlay address].",
        metavar="IP",
    ),
]
Public = Annotated[
    bool, typer.Option("--public", help="Allow listening on a public (or every) address.")
]
TokenFile = Annotated[
    Path | None,
    typer.Option(
        "--token-file",
        help="Bearer token file (created, mode 0600, if missing); "
        "callers with this token are let in.",
        metavar="FILE",
    ),
]
AllowRole = Annotated[
    list[str] | None,
    typer.Option(
        "--allow-role",
        help="Member roles (or map-role tags) let in; repeatable "
        "[default: peer, client: every member].",
        metavar="ROLE",
    ),
]


def _input_files(flag: str, help: str) -> Any:
    """A repeatable option naming input files that must exist."""
    return typer.Option(flag, help=help, exists=True, metavar="FILE")


def _client_token(help: str) -> Any:
    """``--token-file`` of a command that calls a service (the file is read, never created)."""
    return typer.Option("--token-file", help=help, metavar="FILE")


Port = Annotated[int, typer.Option("--port", help="TCP port.", metavar="PORT")]
StoreUrl = Annotated[
    str,
    typer.Option(
        "--store", help="Store URL, or svc:NAME (the nearest healthy instance).", metavar="URL"
    ),
]
Advertise = Annotated[
    bool | None,
    typer.Option(
        "--advertise/--no-advertise",
        help="Serve as a hyphal service on this node, so clients may name it svc:NAME "
        "[default: when listening on the overlay address].",
    ),
]
Name = Annotated[
    str | None, typer.Option("--name", help="Instance name [default: hostname].", metavar="NAME")
]

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$", re.IGNORECASE)
_UNITS = {
    "": 1,
    "b": 1,
    "k": 10**3,
    "kb": 10**3,
    "kib": 2**10,
    "m": 10**6,
    "mb": 10**6,
    "mib": 2**20,
    "g": 10**9,
    "gb": 10**9,
    "gib": 2**30,
}
_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_AGE_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_size(text: str) -> int:
    """``100MB``, ``512k``, ``1GiB``, ``20000`` -> bytes."""
    m = _SIZE.match(text)
    unit = m.group(2).lower() if m else ""
    if not m or unit not in _UNITS:
        raise typer.BadParameter(f"{text!r} is not a size like 100MB")
    return int(float(m.group(1)) * _UNITS[unit])


def parse_age(text: str) -> float:
    """``7d``, ``12h``, ``3600`` -> seconds."""
    m = _AGE.match(text)
    if not m:
        raise typer.BadParameter(f"{text!r} is not a duration like 7d or 12h")
    return float(m.group(1)) * _AGE_UNITS[m.group(2)]


def _token(path: Path | None) -> str | None:
    """The bearer token a service admits, from ``--token-file`` (created when missing)."""
    if path is None:
        return None
    token, created = read_or_create_token(path)
    if created:
        out.print(f"created the token file {path}", highlight=False)
    return token


def read_token(path: Path | None) -> str | None:
    """A client's bearer token from ``--token-file`` (None: no file given, or it is empty)."""
    if path is None:
        return None
    try:
        return path.read_text().strip() or None
    except OSError as exc:
        raise fail(f"cannot read the token file {path}: {exc.strerror}", EXIT_USAGE) from None


def _api_url(api_addr: str) -> str:
    host, _, port = api_addr.rpartition(":")
    host = host.strip("[]")
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _access(api_addr: str, token_file: Path | None, roles: list[str] | None) -> Access:
    return Access(
        token=_token(token_file),
        members=MemberResolver(_api_url(api_addr), token=find_token()),
        roles=frozenset(roles or ["peer", "client"]),
    )


def _bind(listen: str | None, public: bool, api_addr: str) -> str:
    host = listen
    if host is None:
        try:
            host = overlay_address(_api_url(api_addr), find_token())
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            raise fail(
                f"cannot ask the hyphal daemon at {api_addr} for this node's overlay address "
                f"({exc}); start 'hyphal run' or pass --listen IP",
                EXIT_RUNTIME,
            ) from None
    try:
        check_bind(host, public)
    except BindError as exc:
        raise fail(str(exc), EXIT_USAGE) from None
    return host


def _daemon(api_addr: str) -> Client:
    """The local hyphal API, for service lookups and advertising."""
    try:
        return Client(api_addr, timeout=5.0)
    except ApiError as exc:
        raise fail(str(exc), EXIT_USAGE) from None


def locate(value: str, api_addr: str) -> Locator:
    """A ``--store``/``--feeder`` value: a URL, or ``svc:NAME`` resolved by the local daemon."""
    try:
        return Locator(value, _daemon(api_addr) if value.strip().startswith(SVC) else None)
    except DiscoveryError as exc:
        raise fail(str(exc), EXIT_USAGE) from None


def base_url(value: str, api_addr: str) -> str:
    """:func:`locate`, resolved now (for one-shot commands)."""
    try:
        return locate(value, api_addr).url_now()
    except DiscoveryError as exc:
        raise fail(str(exc), EXIT_RUNTIME) from None


def _serve(app: Any, host: str, port: int, service: str, api_addr: str, advertised: bool) -> None:
    """Run ``app`` until SIGINT/SIGTERM; while it runs, ``advertised`` makes it an instance of
    hyphal service ``service`` on this node (withdrawn again when it stops, if we added it)."""
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    out.print(f"{service} listening on http://{where}", highlight=False)
    api = _daemon(api_addr) if advertised else None
    added = False
    if api is not None:
        try:
            added = advertise(api, service, port)
            out.print(f"{service}: clients may name it {SVC}{service}", highlight=False)
        except DiscoveryError as exc:
            out.print(f"{service}: {exc}; clients need its URL", style="yellow", highlight=False)
    config = uvicorn.Config(
        app, host=host, port=port, log_config=None, access_log=False, lifespan="on"
    )
    # uvicorn re-raises the signal that stopped it once it has shut down; the default SIGTERM
    # action would end the process before the service is withdrawn, so SIGTERM exits cleanly.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        uvicorn.Server(config).run()
    finally:
        if api is not None and added:
            withdraw(api, service, port)


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _instance_name(name: str | None) -> str:
    import socket

    return name or socket.gethostname()


@map_app.command("feeder")
def feeder(
    sources: Annotated[
        list[Path],
        typer.Option(
            "--sources",
            "-s",
            help="CIDR list file, or a directory of .txt lists; repeatable.",
            exists=True,
            metavar="PATH",
        ),
    ],
    db: Annotated[
        str,
        typer.Option(
            "--db",
            help="Shared state: a SQLite file, or postgresql://... (several feeders may "
            "share one).",
            metavar="PATH|URL",
        ),
    ] = "/var/lib/hyphal-map/feeder.db",
    optout: Annotated[
        list[Path] | None,
        _input_files("--optout", "Operator opt-out list (CIDRs never probed); repeatable."),
    ] = None,
    allow: Annotated[
        list[str] | None,
        typer.Option(
            "--allow",
            help="Bogon-filter exception (e.g. a lab's 198.18.0.0/15); repeatable.",
            metavar="CIDR",
        ),
    ] = None,
    no_bogon_filter: Annotated[
        bool,
        typer.Option("--no-bogon-filter", help="Do not drop private, reserved and bogon space."),
    ] = False,
    listen: Listen = None,
    port: Port = FEEDER_PORT,
    public: Public = False,
    token_file: TokenFile = None,
    allow_role: AllowRole = None,
    name: Name = None,
    advertised: Advertise = None,
    api_addr: ApiAddr = DEFAULT_API_ADDR,
) -> None:
    """Serve targets from CIDR lists to mapping workers, and take their hops back."""
    from hyphal.mapping.feeder.app import feeder_app
    from hyphal.mapping.feeder.prefixes import PrefixError, TargetFilter, read_prefix_file
    from hyphal.mapping.feeder.space import TargetSpace, read_sources
    from hyphal.mapping.feeder.state import FeederState

    try:
        cidrs = read_sources(sources)
        optouts = [c for f in optout or [] for c in read_prefix_file(f)]
        target_filter = TargetFilter.build(optouts, allow or [], not no_bogon_filter)
    except (PrefixError, ValueError, OSError) as exc:
        raise fail(str(exc), EXIT_USAGE) from None
    space = TargetSpace(cidrs, target_filter)
    if space.blocks == 0:
        raise fail(
            "no target left after the filters: check --sources, --optout and --allow", EXIT_USAGE
        )
    host = _bind(listen, public, api_addr)
    state = FeederState(Database(db), space, target_filter)
    state.adopt_sources(time.time())
    out.print(
        f"feeder: {len(cidrs)} source prefixes, {space.blocks} blocks after filters "
        f"({len(optouts)} opt-out prefixes); state in {state.db.kind}",
        highlight=False,
    )
    info = ServiceInfo(
        FEEDER_SERVICE,
        _instance_name(name),
        capabilities=("targets", "hops", "stopset", "consumers", state.db.kind),
    )
    _serve(
        feeder_app(state, info, _access(api_addr, token_file, allow_role)),
        host,
        port,
        FEEDER_SERVICE,
        api_addr,
        listen is None if advertised is None else advertised,
    )


@map_app.command("store")
def store(
    db: Annotated[
        str,
        typer.Option(
            "--db",
            help="A directory for SQLite files, or postgresql://... for fleets.",
            metavar="DIR|URL",
        ),
    ] = "/var/lib/hyphal-map/store",
    feeder_url: Annotated[
        str | None,
        typer.Option(
            "--feeder",
            help=f"Feeder to send discovered hops to: a URL, or {SVC}{FEEDER_SERVICE}.",
            metavar="URL",
        ),
    ] = None,
    feeder_token_file: Annotated[
        Path | None,
        typer.Option("--feeder-token-file", help="Bearer token for the feeder.", metavar="FILE"),
    ] = None,
    rotate_size: Annotated[
        str,
        typer.Option(
            "--rotate-size", help="SQLite: rotate the results file at this size.", metavar="SIZE"
        ),
    ] = "100MB",
    rotate_age: Annotated[
        str,
        typer.Option(
            "--rotate-age",
            help="SQLite: rotate the results file at this age (s, m, h, d, w).",
            metavar="AGE",
        ),
    ] = "7d",
    keep: Annotated[
        int, typer.Option("--keep", help="SQLite: rotated files kept.", min=0, metavar="N")
    ] = 5,
    retention_days: Annotated[
        float,
        typer.Option(
            "--retention-days", help="PostgreSQL: drop partitions older than this.", metavar="DAYS"
        ),
    ] = 180.0,
    listen: Listen = None,
    port: Port = STORE_PORT,
    public: Public = False,
    token_file: TokenFile = None,
    allow_role: AllowRole = None,
    name: Name = None,
    advertised: Advertise = None,
    api_addr: ApiAddr = DEFAULT_API_ADDR,
) -> None:
    """Store mapping results (SQLite with rotation, or PostgreSQL) and serve queries."""
    from hyphal.mapping.store.app import store_app
    from hyphal.mapping.store.backend import Rotation, Store
    from hyphal.mapping.store.hops import HopShipper

    rotation = Rotation(parse_size(rotate_size), parse_age(rotate_age), keep)
    host = _bind(listen, public, api_addr)
    backend = Store(db, rotation, retention_days)
    shipper = None
    if feeder_url:
        shipper = HopShipper(
            locate(feeder_url, api_addr),
            _token(feeder_token_file) if feeder_token_file else None,
        )
    out.print(
        f"store: {backend.kind} at {db}"
        + (f", hops to {feeder_url}" if feeder_url else ", no feeder (hops are not fed back)"),
        highlight=False,
    )
    info = ServiceInfo(
        STORE_SERVICE,
        _instance_name(name),
        capabilities=("results", "query", "measurements", "sse", backend.kind),
    )
    _serve(
        store_app(backend, info, _access(api_addr, token_file, allow_role), shipper),
        host,
        port,
        STORE_SERVICE,
        api_addr,
        listen is None if advertised is None else advertised,
    )


def _get(url: str, path: str, token: str | None) -> Any:
    headers = bearer_headers(token)
    try:
        response = httpx.get(url.rstrip("/") + path, headers=headers, timeout=10.0)
    except httpx.HTTPError as exc:
        raise fail(f"cannot reach {url}: {exc}", EXIT_RUNTIME) from None
    if response.status_code != 200:
        detail = response.text[:200]
        raise fail(f"{url}{path} answered {response.status_code}: {visible(detail)}", EXIT_RUNTIME)
    return response.json()


def _members(api_addr: str) -> dict[str, dict[str, Any]] | None:
    """The local daemon's member records by name, or None if it cannot be asked."""
    try:
        rows = Client(api_addr, timeout=5.0).get("/members")
    except ApiError:
        return None
    return {str(r.get("name")): r for r in rows if isinstance(r, dict) and r.get("name")}


def _ago(then: float | None, now: float) -> str:
    if not then:
        return "never"
    s = max(0.0, now - then)
    return (
        f"{s:.0f}s ago" if s < 120 else f"{s / 60:.0f}m ago" if s < 7200 else f"{s / 3600:.0f}h ago"
    )


@map_app.command("status")
def status(
    store_url: StoreUrl = SVC + STORE_SERVICE,
    feeder_url: Annotated[
        str | None,
        typer.Option("--feeder", help=f"Feeder URL, or {SVC}{FEEDER_SERVICE}.", metavar="URL"),
    ] = None,
    token_file: Annotated[Path | None, _client_token("Bearer token for the services.")] = None,
    api_addr: ApiAddr = DEFAULT_API_ADDR,
    as_json: JsonFlag = False,
) -> None:
    """Workers (name, region, reachable, probes/s, last result), targets served, results/s and
    hops discovered."""
    token = read_token(token_file)
    now = time.time()
    stats = _get(base_url(store_url, api_addr), "/stats", token)
    feeder_stats = _get(base_url(feeder_url, api_addr), "/stats", token) if feeder_url else None
    members = _members(api_addr)
    workers = []
    for w in stats.get("workers", []):
        member = (members or {}).get(w["worker"])
        workers.append(
            {
                "name": w["worker"],
                "region": w.get("region"),
                "reachable": None if members is None else bool(member and member.get("reachable")),
                "probesPerSecond": w.get("probesPerSecond", 0.0),
                "resultsPerSecond": w.get("resultsPerSecond", 0.0),
                "results": w.get("results", 0),
                "lastResult": w.get("lastResult"),
            }
        )
    body = {
        "workers": workers,
        "results": stats.get("results", 0),
        "resultsPerSecond": stats.get("resultsPerSecond", 0.0),
        "edges": stats.get("edges", 0),
        "hopsDiscovered": None if feeder_stats is None else feeder_stats.get("hopTargets"),
        "targetsServed": None if feeder_stats is None else feeder_stats.get("targetsServed"),
        "cycle": None if feeder_stats is None else feeder_stats.get("cycle"),
        "store": {"backend": stats.get("backend"), "files": stats.get("files")},
    }
    if as_json:
        print_json(body)
        return
    table = Table("worker", "region", "reachable", "probes/s", "results", "last result", box=None)
    for w in workers:
        reach = "?" if w["reachable"] is None else "yes" if w["reachable"] else "NO"
        table.add_row(
            visible(w["name"]),
            visible(w["region"] or "-"),
            reach,
            f"{w['probesPerSecond']:.1f}",
            str(w["results"]),
            _ago(w["lastResult"], now),
        )
    out.print(table if workers else "no worker has sent results yet")
    out.print()
    line = f"results {body['results']} ({body['resultsPerSecond']:.2f}/s), edges {body['edges']}"
    if feeder_stats is not None:
        cycle = feeder_stats.get("cycle") or {}
        line += (
            f"; targets served {body['targetsServed']}, hops discovered {body['hopsDiscovered']}"
        )
        if cycle:
            line += f"; cycle {cycle['id']}: {cycle['handedOut']}/{cycle['blocks']} blocks"
    else:
        line += "; no --feeder given"
    out.print(line, highlight=False)
    if members is None:
        out.print(f"(reachability unknown: no hyphal daemon at {api_addr})", highlight=False)


def _read_json_items(path: Path) -> list[Any]:
    """A JSON array, one JSON object, or NDJSON (one object per line)."""
    import json

    text = path.read_text()
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    return data if isinstance(data, list) else [data]


@map_app.command("import")
def import_(
    store: StoreUrl = SVC + STORE_SERVICE,
    atlas: Annotated[
        list[Path] | None,
        _input_files(
            "--atlas", "RIPE Atlas traceroute results (JSON array or NDJSON); repeatable."
        ),
    ] = None,
    globalping: Annotated[
        list[Path] | None,
        _input_files(
            "--globalping", "Globalping measurements (GET /v1/measurements/ID bodies); repeatable."
        ),
    ] = None,
    token_file: Annotated[Path | None, _client_token("Bearer token for the store.")] = None,
    api_addr: ApiAddr = DEFAULT_API_ADDR,
    as_json: JsonFlag = False,
) -> None:
    """Load RIPE Atlas or Globalping traceroutes into the store (importing twice is harmless)."""
    from hyphal.mapping.convert import from_atlas, from_globalping
    from hyphal.mapping.model import ResultError

    results: list[dict[str, Any]] = []
    skipped: list[str] = []
    converters: list[tuple[list[Path], Callable[[Any], list[dict[str, Any]]]]] = [
        (atlas or [], lambda item: [from_atlas(item).to_json()]),
        (globalping or [], lambda item: [r.to_json() for r in from_globalping(item)]),
    ]
    try:
        for paths, convert in converters:
            for path in paths:
                for n, item in enumerate(_read_json_items(path), 1):
                    try:
                        results += convert(item)
                    except (ResultError, AttributeError, TypeError, ValueError) as exc:
                        skipped.append(f"{path}:{n}: {exc}")
    except (OSError, ValueError) as exc:
        raise fail(f"cannot read the input: {exc}", EXIT_USAGE) from None
    token = read_token(token_file)
    headers = bearer_headers(token)
    store_url = base_url(store, api_addr)
    accepted = duplicates = 0
    for i in range(0, len(results), 500):
        try:
            response = httpx.post(
                store_url.rstrip("/") + "/results",
                headers=headers,
                json={"worker": "import", "results": results[i : i + 500]},
                timeout=60.0,
            )
        except httpx.HTTPError as exc:
            raise fail(f"cannot reach {store_url}: {exc}", EXIT_RUNTIME) from None
        if response.status_code != 200:
            raise fail(
                f"{store_url}/results answered {response.status_code}: "
                f"{visible(response.text[:200])}",
                EXIT_RUNTIME,
            )
        body = response.json()
        accepted += int(body["accepted"])
        duplicates += int(body["duplicates"])
        skipped += [f"{r['id']}: {r['error']}" for r in body.get("rejected", [])]
    if as_json:
        print_json({"accepted": accepted, "duplicates": duplicates, "skipped": skipped})
        return
    out.print(
        f"imported {accepted} results ({duplicates} already stored, {len(skipped)} skipped)",
        highlight=False,
    )
    for line in skipped[:10]:
        out.print(f"  skipped {visible(line)}", highlight=False)
