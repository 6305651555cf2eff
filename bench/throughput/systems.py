"""One driver per measured system: bring its two endpoints up in the pair, measure, stop them.

Each driver takes the :class:`Pair` and the parsed arguments and returns a
:class:`SystemResult`; a system whose binary is missing gets a "not installed" row.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from hyphal.testing.netlab import has_route, run

from .lab import HYPHAL_TUN, Pair, check_alive
from .measure import measure
from .profile import profile_hyphal
from .results import BenchError, SystemResult

REPO = Path(__file__).resolve().parents[2]
YGG_PORT = 12345
WG_PORT = 51820
WG_MTU = 1420
WG_A, WG_B = "fd01::1", "fd01::2"


def bench_veth(pair: Pair, args: argparse.Namespace) -> SystemResult:
    result = SystemResult("veth", version=f"kernel {platform.release()}")
    result.mtu = pair.link_mtu(pair.b, pair.link.ifname_b)
    measure(pair, result, pair.veth_b, args)
    return result


def daemon_status(pair: Pair) -> str:
    """Whether each hyphal daemon still runs, with the last line of its log."""
    parts = []
    for node in (pair.a, pair.b):
        proc = node.proc
        state = "running" if node.running else f"exited {proc.returncode if proc else '?'}"
        parts.append(f"hyphal {node.name} {state}, log: {node.log_tail(1)[:160]}")
    return "; ".join(parts)


def hyphal_version() -> str:
    out = run(
        [sys.executable, "-c", "import importlib.metadata as m; print(m.version('hyphal'))"],
        check=False,
    ).stdout.strip()
    rev = run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], check=False).stdout.strip()
    return f"{out or '?'} ({rev or 'no git'})"


def bench_hyphal(pair: Pair, args: argparse.Namespace) -> SystemResult:
    """``hyphal run`` in both namespaces (A dials B, TUN ``hyphal0``), ready once routes show."""
    result = SystemResult("hyphal", version=hyphal_version())
    a, b = pair.a, pair.b
    t0 = time.monotonic()
    try:
        pair.topo.start()  # waits until both APIs answer; fails fast if a daemon exits

        def routes() -> bool:
            check_alive(("hyphal A", a.proc), ("hyphal B", b.proc))
            return has_route(a, b) and has_route(b, a)

        pair.wait(routes, 60, "hyphal routes in both directions", 0.25)
        pair.wait(lambda: pair.ping_ok(a, str(b.address)), 20, "ping over hyphal")
        result.setup_seconds = round(time.monotonic() - t0, 2)
        result.mtu = pair.link_mtu(a, HYPHAL_TUN)
        mtu_b = pair.link_mtu(b, HYPHAL_TUN)
        if mtu_b != result.mtu:
            result.note = f"TUN MTU differs: A {result.mtu}, B {mtu_b}"
        if a.pid is None or b.pid is None:
            raise BenchError("hyphal did not start")
        pids = {"A (sender)": a.pid, "B (receiver)": b.pid}
        try:
            measure(pair, result, str(b.address), args, pids)
            check_alive(("hyphal A", a.proc), ("hyphal B", b.proc))
        except BenchError as exc:
            raise BenchError(f"{exc}; {daemon_status(pair)}") from exc
        if args.profile:
            profile_hyphal(pair, args, str(b.address), result)
    finally:
        a.kill(signal.SIGTERM)
        b.kill(signal.SIGTERM)
    return result


def bench_yggdrasil(pair: Pair, args: argparse.Namespace) -> SystemResult:
    exe = shutil.which("yggdrasil")
    if exe is None:
        return SystemResult("yggdrasil", status="not installed")
    version = run([exe, "-version"], check=False).stdout.strip().splitlines()
    result = SystemResult("yggdrasil", version=" ".join(version[:2]) or "?")
    confs = {side: json.loads(run([exe, "-genconf", "-json"]).stdout) for side in ("a", "b")}
    listen = f"tcp://[{pair.veth_b}]:{YGG_PORT}"
    workdir = pair.topo.workdir
    for side, other in (("a", "b"), ("b", "a")):
        confs[side].update(
            Peers=[listen] if side == "a" else [],
            Listen=[listen] if side == "b" else [],
            InterfacePeers={},
            MulticastInterfaces=[],  # no discovery: these two only peer with each other
            AllowedPublicKeys=[confs[other]["PublicKey"]],
            AdminListen="none",
            IfName="ygg0",
            IfMTU=65535,
            NodeInfoPrivacy=True,
        )
        (workdir / f"ygg-{side}.json").write_text(json.dumps(confs[side]))
    conf_a, conf_b = str(workdir / "ygg-a.json"), str(workdir / "ygg-b.json")
    addr_b = run([exe, "-useconffile", conf_b, "-address"]).stdout.strip()
    t0 = time.monotonic()
    b = pair.b.popen([exe, "-useconffile", conf_b, "-logto", "stdout"], "ygg-b.log")
    procs = [b]
    try:
        # A retries a refused dial only about once a minute: start it once B listens.
        pair.wait(lambda: pair.b.listening(YGG_PORT), 20, "yggdrasil B listening")
        a = pair.a.popen([exe, "-useconffile", conf_a, "-logto", "stdout"], "ygg-a.log")
        procs.append(a)
        pair.wait(lambda: pair.ping_ok(pair.a, addr_b), 40, "ping over yggdrasil", 0.5)
        result.setup_seconds = round(time.monotonic() - t0, 2)
        result.mtu = pair.link_mtu(pair.a, "ygg0")
        measure(pair, result, addr_b, args, {"A (sender)": a.pid, "B (receiver)": b.pid})
    finally:
        pair.stop(*procs)
    return result


def bench_wireguard(pair: Pair, args: argparse.Namespace) -> SystemResult:
    exe, wg = shutil.which("wireguard-go"), shutil.which("wg")
    if exe is None:
        return SystemResult("wireguard-go", status="not installed")
    if wg is None:
        return SystemResult(
            "wireguard-go",
            status="skipped",
            note="wg (wireguard-tools) not installed; cannot configure",
        )
    version = run([exe, "--version"], check=False).stdout.strip().splitlines()
    result = SystemResult("wireguard-go", version=version[0] if version else "?")
    # UAPI sockets live in the shared /var/run/wireguard/<if>.sock: names must be unique.
    short = pair.topo.id.replace("-", "")[-8:]
    dev = {"a": f"wga{short}", "b": f"wgb{short}"}
    nodes = {"a": pair.a, "b": pair.b}
    keys: dict[str, tuple[Path, str]] = {}
    for side in ("a", "b"):
        path = pair.topo.workdir / f"wg-{side}.key"
        path.write_text(run([wg, "genkey"]).stdout)
        path.chmod(0o600)
        keys[side] = (path, run([wg, "pubkey"], input=path.read_text()).stdout.strip())
    env = {"WG_PROCESS_FOREGROUND": "1", "LOG_LEVEL": "error"}
    t0 = time.monotonic()
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for side, node in nodes.items():
            procs[side] = node.popen([exe, "-f", dev[side]], f"wg-{side}.log", env)
        for side, other, me, peer_addr, peer_ep in (
            ("a", "b", WG_A, WG_B, pair.veth_b),
            ("b", "a", WG_B, WG_A, pair.veth_a),
        ):
            node = nodes[side]
            sock = Path(f"/var/run/wireguard/{dev[side]}.sock")
            pair.wait(sock.exists, 10, f"{sock}")
            wg_set = [wg, "set", dev[side], "listen-port", str(WG_PORT)]
            wg_set += ["private-key", str(keys[side][0]), "peer", keys[other][1]]
            wg_set += ["allowed-ips", f"{peer_addr}/128", "endpoint", f"[{peer_ep}]:{WG_PORT}"]
            node.exec(wg_set, check=True)
            node.exec(["ip", "addr", "add", f"{me}/64", "dev", dev[side], "nodad"], check=True)
            node.exec(["ip", "link", "set", dev[side], "mtu", str(WG_MTU), "up"], check=True)
        pair.wait(lambda: pair.ping_ok(pair.a, WG_B), 20, "ping over wireguard-go")
        result.setup_seconds = round(time.monotonic() - t0, 2)
        result.mtu = pair.link_mtu(pair.a, dev["a"])
        daemons = {"A (sender)": procs["a"].pid, "B (receiver)": procs["b"].pid}
        measure(pair, result, WG_B, args, daemons)
    finally:
        pair.stop(*procs.values())
    return result


RUNNERS: dict[str, Callable[[Pair, argparse.Namespace], SystemResult]] = {
    "veth": bench_veth,
    "hyphal": bench_hyphal,
    "yggdrasil": bench_yggdrasil,
    "wireguard-go": bench_wireguard,
}
