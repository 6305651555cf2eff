"""The demo's second act (root and network namespaces): real daemons with TUNs, a public
ingress in front of a service served by nginx in two regions, and a traceroute from a mapping
worker through a lab of Linux routers.

Topology (:mod:`hyphal.testing.netlab` namespaces, named ``hyt-<pid>-...``)::

    client C --- I ingress (ams) --- A fra1 (nginx)       C: 203.0.113.10, only a veth to I
                     \\------ 15 ms ---- B nyc1 (nginx)     I: 203.0.113.1:80 -> service web
                                         A --- R1 ... R4 --- T   (hyphal.testing.maplab)

Everything is removed on any exit (normal end, failure, Ctrl-C, SIGTERM): every process this
act started is in a namespace it created and is killed with it. Traffic stays in the
namespaces: the client link is 203.0.113.0/24, the lab 198.18.0.0/15 and 2001:db8::/32.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console
from rich.table import Table

from hyphal.testing.maplab import TARGET4, MapLab
from hyphal.testing.netlab import Node, Topology, TopologyError, has_route, run

CLIENT_ADDR = "203.0.113.10"
PUBLIC_ADDR = "203.0.113.1"
DOMAIN = "hyphal.internal"
PORT = 8080
CHECK_INTERVAL = 0.5
FALL = 2
FAR_DELAY_MS = 15
NAMES = {"I": ("ingress", "ams"), "A": ("fra1", "fra"), "B": ("nyc1", "nyc")}
LAB_ALLOW = ["--allow", "198.18.0.0/15", "--allow", "2001:db8::/32"]
PY = [sys.executable, "-m", "hyphal"]
#: What the worker probes in the background (another /24 than the trace's target, so the
#: per-prefix cap the background probes use up never refuses the trace).
BACKGROUND_TARGET = "198.19.1.5"
SERVED = re.compile(r"served by (\S+) for (\S+):(\d+)")

NGINX_CONF = """daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {dir}/nginx-body;
    proxy_temp_path {dir}/nginx-proxy;
    fastcgi_temp_path {dir}/nginx-fastcgi;
    uwsgi_temp_path {dir}/nginx-uwsgi;
    scgi_temp_path {dir}/nginx-scgi;
    server {{
        listen [::]:{port} proxy_protocol;
        default_type text/plain;
        return 200 "served by {name} for $proxy_protocol_addr:$proxy_protocol_port\\n";
    }}
}}
"""


class ActFailed(RuntimeError):
    """A step of the act did not reach its outcome; the message says which and where the logs are."""


def unavailable() -> str | None:
    """Why this act cannot run here (one line), or None."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, TUN devices)"
    for tool in ("ip", "nginx", "curl"):
        if shutil.which(tool) is None:
            return f"'{tool}' is not installed (./scripts/setup.sh installs it)"
    probe = f"hyt-{os.getpid()}-probe"
    if run(["ip", "netns", "add", probe], check=False).returncode != 0:
        return "'ip netns add' does not work here"
    run(["ip", "netns", "del", probe], check=False)
    if not os.path.exists("/dev/net/tun"):
        return "no /dev/net/tun"
    return None


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM (and SIGHUP) raise KeyboardInterrupt, so the cleanup in ``finally`` runs."""

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


def run_netns_acts(console: Console, workdir: Path | None = None) -> int:
    """Acts 2 and 3; 0 on success, 1 (with a red line) on failure. Always cleans up."""
    work = workdir or Path(tempfile.mkdtemp(prefix="hyphal-demo-netns-"))
    topo: Topology | None = None
    lab: MapLab | None = None
    with sigterm_as_interrupt():
        try:
            topo = build_mesh(console, work)
            ingress_act(console, topo)
            with console.status("building the router lab (12 namespaces)…"):
                lab = MapLab.build({"W1": topo.node("A").ns})
            trace_act(console, topo, lab)
        except (ActFailed, TopologyError) as exc:
            console.print(f"[red]✗ {exc}[/]\nLogs: {work}")
            return 1
        except KeyboardInterrupt as exc:
            console.print(f"\n[yellow]interrupted ({str(exc) or 'SIGINT'}); cleaning up[/]")
            return 130
        finally:
            with console.status("removing namespaces and processes…"):
                if lab is not None:
                    lab.close()
                if topo is not None:
                    topo.close()
    console.print(f"\nLogs: {work}")
    return 0


def wait(what: str, predicate: Callable[[], Any], timeout: float, interval: float = 0.1) -> float:
    """Seconds until ``predicate()`` was truthy (exceptions count as not yet); ActFailed on timeout."""
    start = time.monotonic()
    while True:
        try:
            if predicate():
                return time.monotonic() - start
        except ActFailed:
            raise
        except Exception:  # not yet: a daemon still starting, a refused connect
            pass
        if time.monotonic() - start > timeout:
            raise ActFailed(f"{what}: not within {timeout:.0f} s")
        time.sleep(interval)


def cli(node: Node, *args: str, timeout: float = 30) -> str:
    out = node.exec([*PY, *args], timeout=timeout)
    if out.returncode != 0:
        raise ActFailed(f"{node.name}: hyphal {' '.join(args)}: {out.stderr.strip()[-400:]}")
    return out.stdout


# --- the mesh ---------------------------------------------------------------------------------


def build_mesh(console: Console, work: Path) -> Topology:
    console.rule("[bold]act 2: a public ingress in front of a service in two regions")
    console.print(
        "Namespaces with real daemons and TUNs: the ingress [bold]I[/] (ams) links to [bold]fra1[/] "
        f"directly and to [bold]nyc1[/] over a {FAR_DELAY_MS} ms delay line; a client namespace "
        f"[bold]C[/] ({CLIENT_ADDR}) has one veth, to I's public address {PUBLIC_ADDR}."
    )
    with console.status("creating namespaces, veths and TUNs; starting three daemons…"):
        topo = Topology.build(
            f"C-I I-A I-B:delay={FAR_DELAY_MS}",
            tun=True,
            workdir=work / "mesh",
            node_args={
                n: ["--name", name, "--region", region] for n, (name, region) in NAMES.items()
            },
        )
        try:
            topo.start(["I", "A", "B"])
            public_link(topo)
            i, a, b = (topo.node(n) for n in "IAB")
            took = wait(
                "routes between I, fra1 and nyc1",
                lambda: all(has_route(x, y) for x in (i, a, b) for y in (i, a, b) if x is not y),
                30,
            )
            for node in (a, b):
                start_nginx(node)
            wait("nginx listening", lambda: a.listening(PORT) and b.listening(PORT), 15)
        except BaseException:
            topo.close()
            raise
    console.print(f"[green]✓[/] overlay routes between I, fra1 and nyc1 after {took:.1f} s")
    table = Table("node", "name", "region", "namespace", "overlay address", box=None)
    for n, (name, region) in NAMES.items():
        node = topo.node(n)
        table.add_row(n, name, region, node.ns, str(node.address))
    table.add_row("C", "(client)", "-", topo.node("C").ns, f"{CLIENT_ADDR} (no daemon)")
    console.print(table)
    return topo


def public_link(topo: Topology) -> None:
    """Give the C-I veth documentation addresses only: C reaches I and nothing else."""
    link = topo.link("C", "I")
    for node, ifname, addr in (
        (link.a, link.ifname_a, CLIENT_ADDR),
        (link.b, link.ifname_b, PUBLIC_ADDR),
    ):
        node.exec(["ip", "addr", "flush", "dev", ifname], check=True)
        node.exec(["ip", "addr", "add", f"{addr}/24", "dev", ifname], check=True)


def start_nginx(node: Node) -> None:
    name = NAMES[node.name][0]
    conf = node.dir / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=node.dir, port=PORT, name=name))
    node.popen(["nginx", "-e", str(node.dir / "nginx-error.log"), "-c", str(conf)], "nginx.log")


def stop_nginx(node: Node) -> None:
    pid = int((node.dir / "nginx.pid").read_text().strip())
    os.kill(pid, signal.SIGTERM)  # nginx's fast shutdown; the workers go with the master
    wait(f"{node.name}'s nginx to exit", lambda: not node.listening(PORT), 5, 0.02)


# --- act 2 ------------------------------------------------------------------------------------


def ingress_act(console: Console, topo: Topology) -> None:
    i, a, b, c = (topo.node(n) for n in "IABC")
    common = ["--port", str(PORT), "--check", "tcp", "--interval", str(CHECK_INTERVAL)]
    common += ["--fall", str(FALL), "--rise", "1"]
    console.print(f"\n[bold]$ hyphal service add web {' '.join(common)}[/]   (on fra1 and nyc1)")
    cli(a, "service", "add", "web", *common)
    grant = cli(a, "service", "grant", "web", "--to", b.public_key, "-k", str(a.key_file))
    token = re.search(r"hsg1\.\S+", grant)
    if token is None:
        raise ActFailed(f"fra1: no grant in 'hyphal service grant' output: {grant!r}")
    cli(b, "service", "add", "web", *common, "--grant", token.group(0))
    took = wait("I sees both instances of web healthy", lambda: usable(i) == {"fra1", "nyc1"}, 30)
    console.print(
        f"[green]✓[/] fra1 owns [bold]web[/] and granted nyc1; I sees both healthy after {took:.1f} s"
    )
    show_srv(console, i)

    listen = f"{PUBLIC_ADDR}:80"
    console.print(
        f"\n[bold]$ hyphal ingress add --listen {listen} --service web --proxy-protocol v1[/]   (on I)"
    )
    cli(i, "ingress", "add", "--listen", listen, "--service", "web", "--proxy-protocol", "v1")
    isolated = all(
        c.exec(["ip", "route", "get", str(x.address)]).returncode != 0 for x in (i, a, b)
    )
    console.print(
        f"{'[green]✓[/]' if isolated else '[red]✗[/]'} C has no route to any overlay address "
        "(ip route get): it reaches only the ingress's public address"
    )
    if not isolated:
        raise ActFailed("the client namespace has a route into the overlay")
    console.print(f"[bold]$ curl http://{PUBLIC_ADDR}/[/]   (on C, three times)")
    for _ in range(3):
        by, line, ok = curl(c)
        console.print(f"  {'[green]✓[/]' if ok else '[red]✗[/]'} {line}")
        if not ok:
            raise ActFailed("the backend did not see the client's address")
        if by != "fra1":
            raise ActFailed(f"expected the nearer instance fra1 to serve, got {line!r}")

    console.print(
        f"\n[bold]Stopping fra1's nginx[/] (health check: tcp every {CHECK_INTERVAL} s, "
        f"down after {FALL} failures = {CHECK_INTERVAL * FALL:.1f} s fall interval)…"
    )
    stop_nginx(a)
    stopped = time.monotonic()
    failed = 0
    while True:
        by, line, ok = curl(c)
        if by == "nyc1" and ok:
            break
        failed += 0 if by == "fra1" else 1
        if time.monotonic() - stopped > 15:
            raise ActFailed(f"requests did not move to nyc1 within 15 s (last: {line!r})")
        time.sleep(0.05)
    moved = time.monotonic() - stopped
    down = wait("I marks fra1 unusable", lambda: "fra1" not in usable(i), 15, 0.05)
    down += moved
    console.print(
        f"[green]✓[/] new requests land on nyc1 {moved * 1000:.0f} ms after the stop, "
        f"{failed} failed on the way (the ingress tries the next instance when a connect fails);"
        f" I's directory marked fra1 down after {down:.2f} s"
        f" (fall interval {CHECK_INTERVAL * FALL:.1f} s)"
    )
    console.print(f"  [green]✓[/] {line}")
    show_srv(console, i)
    console.print("[bold]$ hyphal ingress list[/]   (on I)")
    console.print(cli(i, "ingress", "list").rstrip(), highlight=False)


def usable(node: Node) -> set[str]:
    data = node.get("/api/v1/services/web")
    return {str(x.get("node")) for x in data["instances"] if x.get("usable")}


def curl(client: Node) -> tuple[str | None, str, bool]:
    """One request from the client: (the node that served it, the line shown, whether the
    backend saw the client's own address and port)."""
    out = client.exec(
        ["curl", "-sS", "-m", "3", "-w", "|%{local_ip}:%{local_port}", f"http://{PUBLIC_ADDR}/"],
        timeout=10,
    )
    body, _, local = out.stdout.rpartition("|")
    match = SERVED.search(body)
    if match is None:
        return None, f"(no answer: {(out.stderr or body).strip()[:120]})", False
    seen = f"{match.group(2)}:{match.group(3)}"
    ok = seen == local and match.group(2) == CLIENT_ADDR
    return match.group(1), f"{body.strip()}   [dim](curl's own address {local})[/]", ok


def show_srv(console: Console, node: Node) -> None:
    query = ["dig", "+short", "+time=2", "@127.0.0.1", f"_web._tcp.svc.{DOMAIN}", "SRV"]
    console.print(f"[bold]$ {' '.join(query)}[/]   (on I; priority 0 is the nearest)")
    if shutil.which("dig") is None:
        console.print("  (dig is not installed: apt-get install bind9-dnsutils)")
        return
    answer = node.exec(query, timeout=10).stdout.strip()
    for line in answer.splitlines() or ["(no answer)"]:
        console.print(f"  {line}")


# --- act 3 ------------------------------------------------------------------------------------


def trace_act(console: Console, topo: Topology, lab: MapLab) -> None:
    console.rule("[bold]act 3: a traceroute from a mapping worker")
    i, a = topo.node("I"), topo.node("A")
    console.print(
        "fra1's namespace now also has a veth into a lab of Linux routers (R1, ECMP over R2a/R2b, "
        "R3, a silent S, R4) in front of a target T; only 198.18.0.0/15 and 2001:db8::/32, no "
        "route out. A store runs on I and advertises itself as the hyphal service map-store; a "
        "worker on fra1 finds it by that name (svc:map-store), probes "
        + BACKGROUND_TARGET
        + " and ships its results there, over the overlay."
    )
    lab.assert_closed()
    store_url = "svc:map-store"
    with console.status("starting the store on I and the worker on fra1…"):
        i.popen(
            [*PY, "map", "store", "--db", str(i.dir / "mapstore"), "--name", "ams"], "store.log"
        )
        wait("the store listening on I", lambda: i.listening(7411), 20)
        wait(
            "fra1's directory names the store",
            lambda: a.api("GET", "/api/v1/services/map-store/choose").status == 200,
            30,
        )
        worker = a.popen(
            [
                *PY, "map", "worker", "--store", store_url, "--target", BACKGROUND_TARGET, *LAB_ALLOW,
                "--outbox", str(a.dir / "outbox"), "--pps", "50", "--prefix-pps", "5",
            ],
            "map-worker.log",
        )  # fmt: skip
        wait("I sees fra1's map-worker tag", lambda: alive(worker, a) and worker_announced(i), 30)
    args = ["map", "trace", TARGET4, "--from", "fra1", "-q", "2", "-w", "0.4"]
    console.print(
        f"\n[bold]$ hyphal {' '.join(args)}[/]   (on I, over the overlay to fra1's worker)"
    )
    report = cli(i, *args, timeout=60)
    console.print(report.rstrip(), highlight=False, markup=False)
    hops = trace_hops(report, lab)
    console.print(f"[green]✓[/] lab nodes on the way: {' → '.join(hops)}")
    if "T" not in hops:
        raise ActFailed("the trace did not reach the target T")
    wait("the worker's results in the store", lambda: stored(i, store_url) > 0, 20, 0.3)
    console.print("\n[bold]$ hyphal map status[/]   (on I; the store found as svc:map-store)")
    console.print(cli(i, "map", "status").rstrip(), highlight=False)


def stored(node: Node, store_url: str) -> int:
    """How many results the store holds (``hyphal map status --json``)."""
    out = node.exec([*PY, "map", "status", "--store", store_url, "--json"], timeout=20)
    return int(json.loads(out.stdout)["results"]) if out.returncode == 0 else 0


def alive(proc: subprocess.Popen[bytes], node: Node) -> bool:
    """True while ``proc`` runs; ActFailed with its log tail once it has exited."""
    if proc.poll() is None:
        return True
    log = (node.dir / "map-worker.log").read_text(errors="replace").strip()[-600:]
    raise ActFailed(f"the map worker on {NAMES[node.name][0]} exited ({proc.returncode}):\n{log}")


def worker_announced(node: Node) -> bool:
    rows = node.get("/api/v1/members")
    return any("map-worker" in (r.get("tags") or {}) for r in rows)


def trace_hops(report: str, lab: MapLab) -> list[str]:
    """The lab node names of the trace's answering hops, in order; ``S?`` for silent ones."""
    hops: list[str] = []
    for line in report.splitlines():
        if not re.match(r"\s*\d+\.", line):
            continue
        if "???" in line:
            hops.append("??? (silent)")
            continue
        for word in re.findall(r"[0-9a-f.:]+", line):
            owner = lab.owner(word) if ("." in word and word.count(".") == 3) else None
            if owner is not None:
                hops.append(owner)
                break
    return hops
