"""`hyphal map worker` and `hyphal map trace`: the probing side of the mapping plane.

``map worker`` runs a worker: targets from the feeder (or a list), guarded and rate-limited
Paris traceroutes and pings, results buffered in a rotating SQLite outbox and shipped to the
store; a small API on the node's overlay address for one-shot measurements. ``map trace`` runs
one Paris traceroute from a chosen worker (by member name, region or overlay address; or here,
with ``--from local``) and prints it like ``mtr --report``.

The commands are registered onto the ``map`` group (``cli/map.py``'s ``map_app``, shared with
the feeder and store commands) by :func:`register`, called from ``cli/__init__.py``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import socket
import statistics
import time
from ipaddress import ip_address
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from hyphal.cli.common import (
    EXIT_USAGE,
    ApiAddr,
    JsonFlag,
    fail,
    mode,
    out,
    print_json,
    visible,
)
from hyphal.cli.map import base_url, locate, read_token
from hyphal.client import ApiError, Client, bearer_headers
from hyphal.config import DEFAULT_API_ADDR

WORKER_PORT = 9683
WORKER_TAG = "map-worker"
DEFAULT_DESCRIPTION_URL = "https://hyphal.invalid/probing"
log = logging.getLogger("hyphal.mapping")


def _local_node(api_addr: str) -> dict[str, Any] | None:
    """The local daemon's admin info (overlay address, key), or None if none answers."""
    try:
        return dict(Client(api_addr, timeout=3.0).get("/admin"))
    except ApiError:
        return None


def _self_member(api_addr: str) -> dict[str, Any] | None:
    try:
        rows = Client(api_addr, timeout=3.0).get("/members")
    except ApiError:
        return None
    for row in rows:
        if row.get("self"):
            return dict(row)
    return None


def worker(
    name: Annotated[
        str | None,
        typer.Option("--name", help="Worker name in results [default: our member name or host]"),
    ] = None,
    region: Annotated[
        str | None, typer.Option("--region", help="Region label [default: our member region]")
    ] = None,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            help="Store URL over the overlay, e.g. http://[4xx::1]:7411 (the store's default "
            "port), or svc:map-store: the nearest healthy store, asked again when it fails",
        ),
    ] = None,
    feeder: Annotated[
        str | None,
        typer.Option(
            "--feeder", help="Feeder URL over the overlay (GET /targets), or svc:map-feeder"
        ),
    ] = None,
    targets_file: Annotated[
        Path | None,
        typer.Option("--targets", help="Probe these IPs (one a line) instead of the feeder's"),
    ] = None,
    target: Annotated[
        list[str] | None, typer.Option("--target", help="A target IP (repeatable)")
    ] = None,
    kind: Annotated[
        str, typer.Option("--type", help="traceroute or ping, for --targets/--target")
    ] = "traceroute",
    proto: Annotated[str, typer.Option("--proto", help="icmp, udp or tcp")] = "icmp",
    allow: Annotated[
        list[str] | None,
        typer.Option("--allow", help="Probe this non-global CIDR anyway (labs; repeatable)"),
    ] = None,
    opt_out: Annotated[
        Path | None, typer.Option("--opt-out", help="File of CIDRs never to probe (one a line)")
    ] = None,
    outbox_dir: Annotated[
        Path, typer.Option("--outbox", help="Directory of the rotating SQLite outbox")
    ] = Path("/var/lib/hyphal/map-worker/outbox"),
    pps: Annotated[float, typer.Option("--pps", help="Packets/s cap for this worker")] = 20.0,
    prefix_pps: Annotated[
        float, typer.Option("--prefix-pps", help="Packets/s cap into one /24 (IPv6 /48)")
    ] = 0.2,
    prefix_burst: Annotated[float, typer.Option("--prefix-burst", help="Burst per prefix")] = 3.0,
    cooldown: Annotated[
        float, typer.Option("--cooldown", help="Seconds between measurements of one target")
    ] = 300.0,
    concurrency: Annotated[
        int, typer.Option("--concurrency", help="Measurements at once", min=1, max=256)
    ] = 16,
    max_ttl: Annotated[int, typer.Option("--max-ttl", min=1, max=64)] = 32,
    attempts: Annotated[int, typer.Option("--attempts", help="Probes per hop", min=1, max=10)] = 2,
    gap_limit: Annotated[
        int, typer.Option("--gap-limit", help="Silent hops in a row before giving up", min=1)
    ] = 5,
    wait: Annotated[float, typer.Option("--wait", help="Seconds to wait per probe")] = 2.0,
    count: Annotated[int, typer.Option("--count", help="Probes per ping", min=1, max=100)] = 4,
    interval: Annotated[
        float, typer.Option("--interval", help="Seconds between a ping's probes", min=0.01)
    ] = 1.0,
    raw: Annotated[
        bool, typer.Option("--raw", help="Raw ICMP sockets (CAP_NET_RAW): keeps quoted TTLs")
    ] = False,
    contact: Annotated[
        str | None,
        typer.Option("--contact", help="Attribution string put in every probe (RFC 9511)"),
    ] = None,
    description_url: Annotated[
        str, typer.Option("--description-url", help="Probe-description URL (RFC 9511)")
    ] = DEFAULT_DESCRIPTION_URL,
    listen: Annotated[
        str | None,
        typer.Option(
            "--listen",
            help=f"Worker API HOST:PORT ('none' for no API) [default: overlay address:{WORKER_PORT}]",
        ),
    ] = None,
    token_file: Annotated[
        Path | None, typer.Option("--token-file", help="Bearer token for the store, feeder, API")
    ] = None,
    allow_role: Annotated[
        list[str] | None,
        typer.Option("--allow-role", help="Only members with this role may use the API"),
    ] = None,
    once: Annotated[
        bool, typer.Option("--once", help="With --targets: stop once all are probed and shipped")
    ] = False,
    api_addr: ApiAddr = DEFAULT_API_ADDR,
    as_json: JsonFlag = False,
) -> None:
    """Run a mapping worker: probe targets within hard rate limits and ship the results."""
    from hyphal.mapping.limits import Limiter, Limits
    from hyphal.mapping.probe import packets
    from hyphal.mapping.probe.engine import Identity
    from hyphal.mapping.probe.plan import PingParams, TraceParams
    from hyphal.mapping.worker.guard import TargetGuard, parse_networks
    from hyphal.mapping.worker.outbox import Outbox
    from hyphal.mapping.worker.service import Task, Worker, WorkerConfig
    from hyphal.mapping.worker.shipper import Shipper

    if kind not in ("traceroute", "ping") or proto not in ("icmp", "udp", "tcp"):
        raise fail("--type is traceroute or ping; --proto is icmp, udp or tcp", EXIT_USAGE)
    fixed = list(target or [])
    if targets_file is not None:
        try:
            fixed += [
                line.split("#")[0].strip()
                for line in targets_file.read_text().splitlines()
                if line.split("#")[0].strip()
            ]
        except OSError as exc:
            raise fail(f"cannot read {targets_file}: {exc.strerror}", EXIT_USAGE) from None
    if feeder is None and not fixed:
        raise fail("give --feeder URL, or targets with --targets FILE / --target IP", EXIT_USAGE)
    try:
        limits = Limits(
            pps=pps,
            prefix_pps=prefix_pps,
            prefix_burst=prefix_burst,
            cooldown=cooldown,
            max_concurrent=concurrency,
        )
        trace = TraceParams(max_ttl=max_ttl, attempts=attempts, gap_limit=gap_limit, wait=wait)
        ping = PingParams(count=count, interval=interval, wait=wait)
        guard = TargetGuard(
            parse_networks(allow or []),
            parse_networks(opt_out.read_text().splitlines()) if opt_out else [],
        )
    except (ValueError, OSError) as exc:
        raise fail(f"bad limits or lists: {exc}", EXIT_USAGE) from None
    node = _local_node(api_addr)
    me = _self_member(api_addr) if node else None
    worker_name = name or (me or {}).get("name") or socket.gethostname()
    worker_region = region or (me or {}).get("region") or "unknown"
    key = (node or {}).get("nodePubkey", "")
    text = contact or f"hyphal-map worker {worker_name}; {description_url}"
    try:
        packets.contact_bytes(text)
    except ValueError as exc:
        raise fail(f"--contact: {exc}", EXIT_USAGE) from None
    ident = Identity(worker_name, key, worker_region, text)
    token = read_token(token_file)
    host, port = _listen_addr(listen, node)

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    store_at = locate(store, api_addr) if store else None

    async def main() -> int:
        outbox = Outbox(outbox_dir)
        shipper = Shipper(outbox, store_at, worker_name, token=token) if store_at else None

        def printed(result: dict[str, Any]) -> None:
            if as_json:
                print(json.dumps(result), flush=True)
            else:
                out.print(_summary(result), highlight=False)

        tasks = [Task(t, proto, kind) for t in fixed]
        w = Worker(
            ident,
            Limiter(limits, time.monotonic()),
            guard,
            outbox,
            WorkerConfig(trace=trace, ping=ping, raw=raw, once=once),
            feeder=locate(feeder, api_addr) if feeder else None,
            targets=tasks,
            shipper=shipper,
            token=token,
            on_result=printed,
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, w.stop.set)
        server = None
        if host is not None:
            server = await _serve_api(w, host, port, token, api_addr, allow_role or [])
            _announce(api_addr, port)
        if not as_json:
            out.print(
                f"map worker {worker_name} (region {worker_region}): {limits.pps:g} pps, "
                f"{limits.prefix_pps:g} pps per /24, outbox {outbox_dir}"
                + (f", API on [{host}]:{port}" if host else ""),
                highlight=False,
            )
        try:
            await w.run()
        finally:
            if server is not None:
                server.should_exit = True
                await asyncio.sleep(0.2)
            if shipper is not None:
                await shipper.close()
            left = len(outbox)
            outbox.close()
        return 1 if (once and left and store) else 0

    try:
        code = asyncio.run(main())
    except KeyboardInterrupt:
        code = 0
    raise typer.Exit(code)


def _listen_addr(listen: str | None, node: dict[str, Any] | None) -> tuple[str | None, int]:
    if listen == "none":
        return None, 0
    if listen is None:
        if node is None:
            return None, 0  # no overlay: no API (never a public address by default)
        return str(node["nodeIp"]), WORKER_PORT
    host, _, port_text = listen.rpartition(":")
    host = host.strip("[]")
    try:
        ip_address(host)
        return host, int(port_text)
    except ValueError:
        raise fail(f"--listen {listen!r}: use HOST:PORT with an IP address", EXIT_USAGE) from None


async def _serve_api(
    w: Any, host: str, port: int, token: str | None, api_addr: str, roles: list[str]
) -> Any:
    import uvicorn

    from hyphal.mapping.service_app import Access, MemberResolver
    from hyphal.mapping.worker.api import create_app

    local_token = None
    try:
        from hyphal.client import find_token

        local_token = find_token()
    except OSError:
        local_token = None
    members = MemberResolver(f"http://{api_addr}", local_token)
    app = create_app(w, Access(token=token, members=members, roles=frozenset(roles)))
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    asyncio.get_running_loop().create_task(server.serve())
    for _ in range(100):
        if server.started:
            break
        await asyncio.sleep(0.05)
    return server


def _announce(api_addr: str, port: int) -> None:
    """Tag our member record ``map-worker=<port>`` so `hyphal map trace --from` finds us."""
    try:
        Client(api_addr, timeout=3.0).request(
            "PATCH", "/members/self", json={"tags": {WORKER_TAG: str(port)}}
        )
    except ApiError as exc:
        log.warning("could not announce the worker in our member record: %s", exc)


def _summary(result: dict[str, Any]) -> str:
    if result["type"] == "ping":
        p = result["ping"]
        return f"ping {result['target']}: {p['received']}/{p['sent']} answered"
    hops = len(result["hops"])
    return (
        f"trace {result['target']} ({result['proto']}, flow {result['flowId']}): {hops} hops, "
        f"{result['stopReason']}, destination {'answered' if result['destinationReplied'] else 'silent'}"
    )


# ------------------------------------------------------------------------------------------------
# map trace


def _find_worker(source: str, api_addr: str) -> tuple[str, int, str]:
    """(address, port, label) of the worker named by ``source``: address, member name, region."""
    host, _, port_text = source.rpartition(":") if source.count(":") == 1 else ("", "", "")
    try:
        if host:
            ip_address(host.strip("[]"))
            return host.strip("[]"), int(port_text), source
    except ValueError:
        pass
    try:
        addr = ip_address(source.strip("[]"))
        return str(addr), WORKER_PORT, source
    except ValueError:
        pass
    try:
        rows = Client(api_addr, timeout=5.0).get("/members")
    except ApiError as exc:
        raise fail(f"cannot list members to find {source!r}: {exc}") from None
    workers = [r for r in rows if WORKER_TAG in (r.get("tags") or {}) and not r.get("left")]
    chosen = [r for r in workers if r.get("name") == source] or [
        r for r in workers if r.get("region") == source and r.get("reachable")
    ]
    if not chosen:
        known = ", ".join(sorted({f"{r.get('name')} ({r.get('region')})" for r in workers}))
        raise fail(
            f"no map worker is named {source!r} or in region {source!r} "
            f"(workers: {known or 'none announced'})"
        )
    best = min(chosen, key=lambda r: (r.get("metric") is None, r.get("metric") or 0))
    try:
        port = int(best["tags"][WORKER_TAG])
    except (TypeError, ValueError):
        port = WORKER_PORT
    return str(best["address"]), port, f"{best.get('name')} ({best.get('region')})"


def trace(
    target: Annotated[str, typer.Argument(help="IP address to trace to", metavar="TARGET")],
    source: Annotated[
        str,
        typer.Option(
            "--from", help="Worker: member name, region, overlay ADDRESS[:PORT], or 'local'"
        ),
    ] = "local",
    proto: Annotated[str, typer.Option("--proto", help="icmp, udp or tcp")] = "icmp",
    flow_id: Annotated[
        int, typer.Option("--flow-id", help="Paris flow id (fixes ports/checksum)", min=0, max=4095)
    ] = 1,
    classic: Annotated[
        bool, typer.Option("--classic", help="Classic (non-Paris) traceroute: the flow moves")
    ] = False,
    queries: Annotated[
        int, typer.Option("-q", "--queries", help="Probes per hop (all are sent)", min=1, max=10)
    ] = 3,
    max_ttl: Annotated[int, typer.Option("-m", "--max-ttl", min=1, max=64)] = 30,
    wait: Annotated[float, typer.Option("-w", "--wait", help="Seconds per probe")] = 1.0,
    raw: Annotated[bool, typer.Option("--raw", help="With --from local: raw ICMP sockets")] = False,
    allow: Annotated[
        list[str] | None,
        typer.Option("--allow", help="With --from local: allow a non-global CIDR (labs)"),
    ] = None,
    token_file: Annotated[
        Path | None,
        typer.Option("--token-file", help="Bearer token for the worker's (or the store's) API"),
    ] = None,
    store: Annotated[
        str | None,
        typer.Option(
            "--store",
            help="Ask through the store's measurement API (--from NAME, or region:NAME): its "
            "URL, or svc:map-store",
        ),
    ] = None,
    api_addr: ApiAddr = DEFAULT_API_ADDR,
    as_json: JsonFlag = False,
) -> None:
    """One Paris traceroute from a worker, printed like `mtr --report`."""
    if proto not in ("icmp", "udp", "tcp"):
        raise fail("--proto is icmp, udp or tcp", EXIT_USAGE)
    body = {
        "target": target,
        "type": "traceroute",
        "proto": proto,
        "flowId": flow_id,
        "paris": not classic,
        "maxTtl": max_ttl,
        "attempts": queries,
        "allAttempts": True,
        "wait": wait,
    }
    if source == "local":
        result = _trace_here(body, raw, allow or [])
        label = "local"
    elif store is not None:
        result = _trace_via_store(base_url(store, api_addr), source, body, read_token(token_file))
        label = f"{source} via the store"
    else:
        address, port, label = _find_worker(source, api_addr)
        token = read_token(token_file)
        headers = bearer_headers(token)
        url = (
            f"http://[{address}]:{port}/measure"
            if ":" in address
            else f"http://{address}:{port}/measure"
        )
        try:
            response = httpx.post(
                url, json=body, headers=headers, timeout=max_ttl * queries * wait + 30
            )
        except httpx.HTTPError as exc:
            raise fail(f"worker {label} at {url} did not answer: {exc}") from None
        if response.status_code != 200:
            try:
                detail = response.json()
                message = detail.get("error") or detail.get("detail") or response.text
            except ValueError:
                message = response.text
            raise fail(
                f"worker {label}: HTTP {response.status_code}: {visible(str(message))[:300]}"
            )
        result = response.json()
    if as_json or mode.json:
        print_json(result)
        return
    out.print(mtr_report(result, label), highlight=False, markup=False)


def _trace_via_store(
    store: str, source: str, body: dict[str, Any], token: str | None
) -> dict[str, Any]:
    """Create a one-off measurement at the store, wait for a worker to run it, return it."""
    headers = bearer_headers(token)
    where = (
        {"region": source.removeprefix("region:")}
        if source.startswith("region:")
        else {"worker": source}
    )
    params = {k: body[k] for k in ("flowId", "paris", "maxTtl", "attempts", "wait")}
    request = {
        "type": "traceroute",
        "target": body["target"],
        "proto": body["proto"],
        **where,
        "params": params,
    }
    base = store.rstrip("/")
    deadline = time.monotonic() + body["maxTtl"] * body["attempts"] * body["wait"] + 60
    try:
        created = httpx.post(f"{base}/measurements", json=request, headers=headers, timeout=10)
        if created.status_code not in (200, 202):
            raise fail(
                f"the store refused the measurement: HTTP {created.status_code}: "
                f"{visible(created.text)[:300]}"
            )
        mid = created.json()["id"]
        while time.monotonic() < deadline:
            state = httpx.get(f"{base}/measurements/{mid}", headers=headers, timeout=10).json()
            if state.get("status") == "finished" and state.get("results"):
                return dict(state["results"][0])
            time.sleep(0.5)
    except (httpx.HTTPError, ValueError, KeyError) as exc:
        raise fail(f"the store at {base}: {exc}") from None
    raise fail(f"no worker ran measurement {mid} in time (is {source!r} up and polling the store?)")


def _trace_here(body: dict[str, Any], raw: bool, allow: list[str]) -> dict[str, Any]:
    from hyphal.mapping.limits import Limiter, Limits
    from hyphal.mapping.probe.engine import Identity, measure
    from hyphal.mapping.probe.plan import TraceParams
    from hyphal.mapping.probe.sockets import ProbeSocketError
    from hyphal.mapping.worker.guard import TargetGuard, TargetRefused, parse_networks

    try:
        target = TargetGuard(parse_networks(allow)).check(body["target"])
    except (TargetRefused, ValueError) as exc:
        raise fail(str(exc), EXIT_USAGE) from None
    params = TraceParams(
        max_ttl=body["maxTtl"],
        attempts=body["attempts"],
        all_attempts=True,
        wait=body["wait"],
        paris=body["paris"],
    )
    limits = Limits(prefix_pps=5.0, prefix_burst=5.0, cooldown=0)  # one trace: worker cap holds
    ident = Identity(
        socket.gethostname(), "", "local", f"hyphal-map trace; {DEFAULT_DESCRIPTION_URL}"
    )
    try:
        return asyncio.run(
            measure(
                "traceroute",
                target,
                body["proto"],
                Limiter(limits, time.monotonic()),
                ident,
                trace=params,
                flow_id=body["flowId"],
                raw=raw,
            )
        )
    except (ProbeSocketError, OSError) as exc:
        raise fail(f"cannot probe from here: {exc}") from None


def mtr_report(result: dict[str, Any], label: str) -> str:
    """A result as `mtr --report` prints a run: one row per responding address per hop."""
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(result.get("started", 0)))
    mode_text = "Paris" if result.get("params", {}).get("paris", True) else "classic"
    ports = ""
    if result.get("srcPort") is not None:
        ports = f" ({result['srcPort']} -> {result['dstPort']})"
    lines = [
        f"Start: {started}",
        f"HOST: {visible(str(result.get('worker')))} [{label}] -> {result['target']}  "
        f"{mode_text} {result['proto']} flow {result['flowId']}{ports}",
        f"{'':4}{'':41}{'Loss%':>6} {'Snt':>4} {'Last':>7} {'Avg':>7} {'Best':>7} {'Wrst':>7} {'StDev':>6}",
    ]
    for hop in result.get("hops", []):
        replies = hop["replies"]
        sent = len(replies)
        by_addr: dict[str, list[float]] = {}
        for reply in replies:
            if "from" in reply:
                by_addr.setdefault(reply["from"], []).append(float(reply["rtt"]))
        if not by_addr:
            lines.append(f"{hop['ttl']:>3}.|-- {'???':<39}{100.0:>6.1f} {sent:>4}")
            continue
        answered = sum(len(v) for v in by_addr.values())
        loss = 100.0 * (sent - answered) / sent if sent else 0.0
        for i, (addr, rtts) in enumerate(by_addr.items()):
            prefix = f"{hop['ttl']:>3}.|-- " if i == 0 else "    |   "
            dev = statistics.pstdev(rtts) if len(rtts) > 1 else 0.0
            lines.append(
                f"{prefix}{visible(addr)[:39]:<39}{loss:>6.1f} {sent:>4} {rtts[-1]:>7.1f} "
                f"{statistics.fmean(rtts):>7.1f} {min(rtts):>7.1f} {max(rtts):>7.1f} {dev:>6.1f}"
            )
    lines.append(
        f"stop: {result.get('stopReason')}, destination "
        f"{'answered' if result.get('destinationReplied') else 'did not answer'}"
    )
    return "\n".join(lines)


def register(group: typer.Typer) -> None:
    """Add `worker` and `trace` to the `map` command group."""
    group.command("worker")(worker)
    group.command("trace")(trace)
