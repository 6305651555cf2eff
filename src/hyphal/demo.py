"""`hyphal demo`: a local four-node mesh that shows routes converging, a multi-hop overlay ping,
and a reroute after a relay is killed. Runs on loopback, so it needs no root and no TUN.

With root and network namespaces (and without ``--no-netns``), acts 2 and 3 follow
(:mod:`hyphal.demo_netns`): an ingress in front of nginx in two regions, and a traceroute from a
mapping worker through a lab of routers.

Topology: A-B-C-D in a line of fast links, plus a direct A-D link made slow (a delay line adds
25 ms each way). A reaches D over three fast hops until B dies, then over the slow direct link.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from hyphal.client import ApiError, Client
from hyphal.identity import NodeIdentity
from hyphal.testing.loopback import daemon_argv, free_port
from hyphal.testing.routes import SELECTED_ROUTES, selected_route

console = Console()
SLOW_LINK_MS = 25


REGIONS = {"A": "fra", "B": "ams", "C": "lon", "D": "nyc"}


@dataclass
class DemoNode:
    name: str
    identity: NodeIdentity
    port: int
    api_port: int
    dns_port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def api(self) -> Client:
        return Client(f"127.0.0.1:{self.api_port}", timeout=5)


@contextlib.contextmanager
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    try:
        yield started
    finally:
        for proc in started:
            if proc.poll() is None:
                proc.terminate()
        for proc in started:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()


def wait_for(predicate: Any, timeout: float, interval: float = 0.05) -> float | None:
    """Seconds until predicate() held, or None on timeout."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        with contextlib.suppress(ApiError):
            if predicate():
                return time.monotonic() - start
        time.sleep(interval)
    return None


def next_hop_of(node: DemoNode, target: DemoNode, names: dict[str, str]) -> str | None:
    row = selected_route(node.api.get(SELECTED_ROUTES), str(target.identity.subnet))
    return None if row is None else _hop_name(row, names)


def run_demo(keep_running: bool = False, netns: bool = True) -> int:
    """Act 1 on loopback, then (when possible and wanted) acts 2 and 3 in namespaces."""
    started = time.monotonic()
    code = run_loopback_act(keep_running)
    if code != 0:
        return code
    if not netns or keep_running:
        why = "--no-netns" if not netns else "--keep"
        console.print(f"\n[dim]Acts 2 and 3 (ingress, mapping trace) skipped: {why}.[/]")
    else:
        from hyphal.demo_netns import run_netns_acts, unavailable

        reason = unavailable()
        if reason is not None:
            console.print(f"\n[dim]Acts 2 and 3 (ingress, mapping trace) skipped: {reason}.[/]")
        else:
            code = run_netns_acts(console)
    console.print(f"\nDemo finished in {time.monotonic() - started:.0f} s.")
    return code


def run_loopback_act(keep_running: bool = False) -> int:
    work = Path(tempfile.mkdtemp(prefix="hyphal-demo-"))
    names = "ABCD"
    nodes = {
        n: DemoNode(n, NodeIdentity.generate(), free_port(), free_port(), free_port())
        for n in names
    }
    key_names = {node.identity.public_key.hex(): n for n, node in nodes.items()}
    a, b, c, d = (nodes[n] for n in names)
    console.rule("[bold]hyphal demo, act 1: a mesh on loopback")
    console.print(
        "Four nodes on this machine: [bold]A-B-C-D[/] over fast links, and a direct [bold]A-D[/] link "
        f"slowed to {SLOW_LINK_MS} ms each way by a delay line.\n"
    )
    with processes() as procs:
        delay_port = free_port()
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "hyphal.tools.delayline",
                    "--listen",
                    f"127.0.0.1:{delay_port}",
                    "--target",
                    f"127.0.0.1:{d.port}",
                    "--delay-ms",
                    str(SLOW_LINK_MS),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        peers_of = {
            "A": [f"tcp://127.0.0.1:{b.port}", f"tcp://127.0.0.1:{delay_port}"],
            "B": [f"tcp://127.0.0.1:{c.port}"],
            "C": [f"tcp://127.0.0.1:{d.port}"],
            "D": [],
        }
        table = Table("node", "overlay address", "public key", box=None)
        for node in nodes.values():
            key_file = work / f"{node.name}.key"
            node.identity.save(key_file)
            cmd = daemon_argv(
                key_file,
                node.port,
                node.api_port,
                extra=[
                    "--name",
                    node.name.lower(),
                    "--region",
                    REGIONS[node.name],
                    "--dns-port",
                    str(node.dns_port),
                ],
            )
            for peer in peers_of[node.name]:
                cmd += ["--peers", peer]
            log = (work / f"{node.name}.log").open("wb")
            node.process = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
            procs.append(node.process)
            table.add_row(
                node.name, str(node.identity.address), node.identity.public_key.hex()[:16] + "…"
            )
        console.print(table)

        with console.status("starting daemons…"):
            # A slow, busy machine can take tens of seconds just to import four daemons.
            if wait_for(lambda: all(n.api.get("/admin") for n in nodes.values()), 90) is None:
                console.print(f"[red]daemons did not start in 90 s; logs in {work}")
                return 1
        with console.status("waiting for every node to have a route to every other node…"):
            took = wait_for(
                lambda: (
                    all(
                        len(n.api.get("/admin/routes/selected")) == len(nodes) - 1
                        for n in nodes.values()
                    )
                    and next_hop_of(a, d, key_names) == "B"
                ),
                20,
            )
        if took is None:
            console.print(f"[red]routes did not converge in 20 s; logs in {work}")
            return 1
        console.print(
            f"\n[green]✓[/] routes converged {took:.2f} s after the daemons answered. A's routing table:"
        )
        show_routes(a, key_names)

        with console.status("waiting for every member record to reach A…"):
            took = wait_for(lambda: len(a.api.get("/members")) == len(nodes), 20)
        if took is None:
            console.print(f"[red]A did not learn every member in 20 s; logs in {work}")
            return 1
        console.print(
            "\n[green]✓[/] every node signed a member record; A's view ([bold]hyphal members[/]):"
        )
        show_members(a)
        show_dns(a, d)

        console.print(
            "\n[bold]Overlay ping A → d, by name[/] (end-to-end encrypted; B and C relay without a key to open it):"
        )
        ping(a, d)

        console.print(
            f"\n[bold]Killing B with SIGKILL[/] (pid {b.process.pid if b.process else '?'})…"
        )
        assert b.process is not None
        b.process.send_signal(signal.SIGKILL)
        took = wait_for(lambda: next_hop_of(a, d, key_names) == "D", 10, 0.01)
        if took is None:
            console.print("[red]A did not reroute to D within 10 s")
            return 1
        console.print(
            f"[green]✓[/] A rerouted to D over the direct slow link {took * 1000:.0f} ms after the kill."
        )
        show_routes(a, key_names)
        console.print("\n[bold]Overlay ping A → D again[/] (now direct, through the delay line):")
        ping(a, d)
        console.print(f"\nLogs: {work}")
        if keep_running:
            console.print("Nodes keep running; press Ctrl-C to stop.")
            with contextlib.suppress(KeyboardInterrupt):
                signal.pause()
    return 0


def show_routes(node: DemoNode, key_names: dict[str, str]) -> None:
    table = Table("to", "subnet", "next hop", "metric", box=None)
    for row in node.api.get("/admin/routes/selected"):
        metric = row["metric"]
        table.add_row(
            key_names.get(row["publicKey"], "?"),
            row["subnet"],
            _hop_name(row, key_names),
            metric if isinstance(metric, str) else f"{metric / 10:.1f} ms",
        )
    console.print(table)


def _hop_name(row: dict[str, Any], key_names: dict[str, str]) -> str:
    return key_names.get(row.get("nextHopPublicKey") or "", str(row["nextHop"]))


def show_members(node: DemoNode) -> None:
    table = Table("name", "region", "roles", "address", "reachable", box=None)
    for row in sorted(node.api.get("/members"), key=lambda r: r.get("name") or ""):
        table.add_row(
            row.get("name") or "-",
            row.get("region") or "-",
            ",".join(row.get("roles") or []),
            row["address"],
            "yes" if row["reachable"] else "no",
        )
    console.print(table)


def show_dns(server: DemoNode, target: DemoNode) -> None:
    """Ask A's DNS server for d's name with the real dig (installed by scripts/setup.sh)."""
    query = [
        "dig", "+short", "+time=2", "-p", str(server.dns_port), "@127.0.0.1",
        f"{target.name.lower()}.hyphal.internal", "AAAA",
    ]  # fmt: skip
    console.print(f"\n[bold]DNS[/]: {' '.join(query)}")
    if shutil.which("dig") is None:
        console.print("  (dig is not installed: apt-get install bind9-dnsutils)")
        return
    answer = subprocess.run(query, capture_output=True, text=True, timeout=10).stdout.strip()
    mark = "[green]✓[/]" if answer == str(target.identity.address) else "[red]✗[/]"
    console.print(f"  {mark} {answer or '(no answer)'}")


def ping(source: DemoNode, target: DemoNode, count: int = 3) -> None:
    for seq in range(1, count + 1):
        try:
            reply = source.api.post(
                "/admin/ping", {"dst": {"name": target.name.lower()}, "timeout": 2}
            ).json()
            console.print(
                f"  reply from {target.name} ({target.identity.address}): seq={seq} "
                f"hops={reply['hops']} time={reply['rtt_ms']:.2f} ms"
            )
        except ApiError as exc:
            console.print(f"  seq={seq}: {exc}")
        time.sleep(0.2)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(run_demo())
