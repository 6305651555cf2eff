"""TUN data-plane throughput and latency: hyphal vs the raw veth and other overlays, in one run.

Two network namespaces joined by one veth pair (ULA ``fd00::1/64`` and ``fd00::2/64``). For each
system the benchmark brings up its two endpoints, one in each namespace, and measures from A to B:

* ``iperf3`` TCP, one stream and ``-P 4`` (receiver side, ``end.sum_received``), ``--repeat`` times;
* ``ping -6`` RTT (warm-up, then ``--pings`` pings at ``--ping-interval``): avg, p50, p99;
* CPU of the two endpoint daemons during the single-stream runs (``/proc/<pid>/stat``).

Systems: ``veth`` (baseline, no overlay), ``hyphal`` (``hyphal run`` with its TUN), and, only when
their binaries are installed, ``yggdrasil`` (peering only with each other: no multicast discovery,
no admin socket, AllowedPublicKeys set) and ``wireguard-go`` (configured with ``wg``). Nothing is
installed here; a missing system gets a "not installed" row.

``--profile`` adds one extra single-stream hyphal run with ``py-spy record`` attached to both
daemons (non-blocking sampling), writes a flame graph SVG and the raw collapsed stacks to
``bench/results/`` and prints the top functions and lines by own time. The profiled run's
throughput is reported separately so sampling never skews the table.

Everything (processes, namespaces) is removed on exit, including Ctrl-C and SIGTERM. Needs root.
Run it through ``bench/throughput.sh``; see ``bench/README.md`` for how to read the output.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import json
import os
import platform
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

REPO = Path(__file__).resolve().parent.parent
VENV_BIN = REPO / ".venv" / "bin"
HYPHAL = VENV_BIN / "hyphal"
PY_SPY = VENV_BIN / "py-spy"
RESULTS = REPO / "bench" / "results"

VETH_A, VETH_B = "fd00::1", "fd00::2"
WG_A, WG_B = "fd01::1", "fd01::2"
IPERF_PORT = 5201
HYPHAL_PORT = 9651
HYPHAL_API = "127.0.0.1:8989"
HYPHAL_TUN = "hyphal0"
YGG_PORT = 12345
WG_PORT = 51820
WG_MTU = 1420
CLK_TCK = os.sysconf("SC_CLK_TCK")
SYSTEMS = ("veth", "hyphal", "yggdrasil", "wireguard-go")
LABELS = {
    "veth": "veth (baseline)",
    "hyphal": "hyphal",
    "yggdrasil": "yggdrasil",
    "wireguard-go": "wireguard-go",
}


class BenchError(Exception):
    """A system could not be set up or measured; the message says why."""


# results ------------------------------------------------------------------------------------


@dataclass
class Rtt:
    sent: int
    received: int
    avg_ms: float | None
    p50_ms: float | None
    p99_ms: float | None
    min_ms: float | None
    max_ms: float | None


@dataclass
class Iperf:
    gbps: float
    retransmits: int | None
    mss: int | None
    seconds: float


@dataclass
class Cpu:
    """CPU during the single-stream runs, in % of one core (machine busy is % of all cores)."""

    daemons: dict[str, dict[str, float]] = field(default_factory=dict)
    machine_busy_pct: float | None = None


@dataclass
class SystemResult:
    system: str
    status: str = "ok"  # ok | not installed | failed | skipped
    note: str = ""
    version: str = ""
    mtu: int | None = None
    address: str = ""
    tcp1: list[Iperf] = field(default_factory=list)
    tcp4: list[Iperf] = field(default_factory=list)
    rtt: Rtt | None = None
    cpu: Cpu | None = None
    setup_seconds: float | None = None

    @property
    def gbps1(self) -> float | None:
        return statistics.median(r.gbps for r in self.tcp1) if self.tcp1 else None

    @property
    def gbps4(self) -> float | None:
        return statistics.median(r.gbps for r in self.tcp4) if self.tcp4 else None


# the lab: namespaces and processes ----------------------------------------------------------


class Lab:
    """Two namespaces joined by a veth; owns every process it starts and removes it all."""

    def __init__(self, workdir: Path) -> None:
        tag = f"{os.getpid()}-{random.randrange(16**4):04x}"
        self.tag = tag
        self.ns_a = f"hyb-{tag}-a"
        self.ns_b = f"hyb-{tag}-b"
        self.workdir = workdir
        self.procs: list[subprocess.Popen[bytes]] = []
        self._namespaces: list[str] = []
        self._cleaned = False

    def setup(self) -> None:
        for ns in (self.ns_a, self.ns_b):
            run(["ip", "netns", "add", ns])
            self._namespaces.append(ns)
        run(
            [
                "ip",
                "link",
                "add",
                "veth-a",
                "netns",
                self.ns_a,
                "type",
                "veth",
                "peer",
                "name",
                "veth-b",
                "netns",
                self.ns_b,
            ]
        )
        for ns, dev, addr in ((self.ns_a, "veth-a", VETH_A), (self.ns_b, "veth-b", VETH_B)):
            self.sh(ns, ["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=0"])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
            run(["ip", "-n", ns, "addr", "add", f"{addr}/64", "dev", dev, "nodad"])
            run(["ip", "-n", ns, "link", "set", dev, "up"])
        wait_for(lambda: ping_ok(self, self.ns_a, VETH_B), 10, "veth ping A -> B")

    def sh(
        self, ns: str, argv: Sequence[str | Path], timeout: float = 30, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return run(["ip", "netns", "exec", ns, *map(str, argv)], timeout=timeout, check=check)

    def start(
        self, ns: str, argv: Sequence[str | Path], log: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start a long-running process in ``ns`` (``ip netns exec`` execs, so the pid is its)."""
        out = (self.workdir / log).open("ab")
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, *map(str, argv)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches only us; cleanup stops the children in order
            env={**os.environ, **(env or {})},
        )
        out.close()
        self.procs.append(proc)
        return proc

    def stop(self, *procs: subprocess.Popen[bytes]) -> None:
        for proc in procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(timeout=5)
            if proc in self.procs:
                self.procs.remove(proc)

    def cleanup(self) -> None:
        if self._cleaned:
            return
        self._cleaned = True
        with contextlib.suppress(Exception):
            self.stop(*list(self.procs))
        for ns in self._namespaces:
            # Anything still inside our namespaces was started by us (e.g. a child of a daemon).
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True)
            for pid in pids.stdout.split():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self._namespaces.clear()


def run(
    argv: Sequence[str | Path], timeout: float = 30, check: bool = True
) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(
            [str(a) for a in argv], capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(
            f"{' '.join(map(str, argv[3:6]))}... timed out after {timeout:.0f} s"
        ) from exc
    if check and proc.returncode != 0:
        raise BenchError(
            f"{' '.join(map(str, argv))} exited {proc.returncode}: "
            f"{(proc.stderr or proc.stdout).strip()[-500:]}"
        )
    return proc


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, step: float = 0.2) -> float:
    """Poll until ``predicate`` holds; return the seconds it took or raise BenchError."""
    start = time.monotonic()
    while True:
        if predicate():
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise BenchError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(step)


def ping_ok(lab: Lab, ns: str, addr: str) -> bool:
    return lab.sh(ns, ["ping", "-6", "-c", "1", "-W", "1", addr], check=False).returncode == 0


def listening(lab: Lab, ns: str, port: int, proto: str = "t") -> bool:
    out = lab.sh(ns, ["ss", f"-Hln{proto}", "sport", "=", f":{port}"], check=False).stdout
    return bool(out.strip())


def link_mtu(lab: Lab, ns: str, dev: str) -> int | None:
    out = run(["ip", "-n", ns, "-j", "link", "show", "dev", dev], check=False)
    try:
        return int(json.loads(out.stdout)[0]["mtu"])
    except (ValueError, LookupError):
        return None


def check_alive(*procs: tuple[str, subprocess.Popen[bytes]]) -> None:
    for name, proc in procs:
        if proc.poll() is not None:
            raise BenchError(f"{name} exited with code {proc.returncode} (see its log)")


# measurements -------------------------------------------------------------------------------


def measure_ping(lab: Lab, addr: str, count: int, interval: float) -> Rtt:
    lab.sh(lab.ns_a, ["ping", "-6", "-c", "10", "-i", "0.05", "-q", addr], check=False)  # warm-up
    out = lab.sh(
        lab.ns_a,
        ["ping", "-6", "-c", str(count), "-i", str(interval), "-W", "2", addr],
        timeout=count * interval + 30,
        check=False,
    ).stdout
    times = sorted(float(m) for m in re.findall(r"time=([\d.]+) ms", out))
    if not times:
        return Rtt(count, 0, None, None, None, None, None)

    def pct(p: float) -> float:
        return times[min(len(times) - 1, round(p / 100 * (len(times) - 1)))]

    return Rtt(count, len(times), statistics.fmean(times), pct(50), pct(99), times[0], times[-1])


def measure_iperf(lab: Lab, addr: str, streams: int, seconds: int) -> Iperf:
    """One iperf3 run A -> B against a fresh one-off server (no state left from a failed run)."""
    server = lab.start(lab.ns_b, ["iperf3", "-s", "-1", "-p", str(IPERF_PORT)], "iperf3.log")
    try:
        wait_for(lambda: listening(lab, lab.ns_b, IPERF_PORT), 10, "iperf3 server", 0.05)
        return _iperf_client(lab, addr, streams, seconds)
    finally:
        lab.stop(server)


def _iperf_client(lab: Lab, addr: str, streams: int, seconds: int) -> Iperf:
    argv = [
        "iperf3",
        "-c",
        addr,
        "-p",
        str(IPERF_PORT),
        "-t",
        str(seconds),
        "-J",
        "-P",
        str(streams),
        "--connect-timeout",
        "3000",
    ]
    proc = lab.sh(lab.ns_a, argv, timeout=seconds + 40, check=False)
    try:
        data = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise BenchError(f"iperf3 gave no JSON: {(proc.stderr or proc.stdout)[-300:]}") from exc
    if "error" in data:
        raise BenchError(f"iperf3: {data['error']}")
    end = data["end"]
    return Iperf(
        gbps=end["sum_received"]["bits_per_second"] / 1e9,
        retransmits=end.get("sum_sent", {}).get("retransmits"),
        mss=data.get("start", {}).get("tcp_mss_default"),
        seconds=end["sum_received"].get("seconds", seconds),
    )


def proc_ticks(pid: int) -> tuple[int, int] | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[11]), int(fields[12])  # utime, stime (fields 14 and 15 of stat)


def machine_ticks() -> tuple[int, int]:
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values[:8]) - idle, sum(values[:8])


def _cpu_count() -> int:
    return os.cpu_count() or 1


def measure(
    lab: Lab,
    result: SystemResult,
    addr: str,
    args: argparse.Namespace,
    daemons: dict[str, int] | None = None,
) -> None:
    """Ping, then ``--repeat`` single-stream and 4-stream iperf3 runs, with CPU for 1-stream."""
    result.address = addr
    result.rtt = measure_ping(lab, addr, args.pings, args.ping_interval)
    if result.rtt.received == 0:
        raise BenchError(f"no ping reply from {addr}")
    daemons = daemons or {}
    busy_total = 0
    all_total = 0
    ticks: dict[str, list[int]] = {name: [0, 0] for name in daemons}
    wall = 0.0
    for _ in range(args.repeat):
        before = {name: proc_ticks(pid) for name, pid in daemons.items()}
        m_before = machine_ticks()
        t0 = time.monotonic()
        result.tcp1.append(measure_iperf(lab, addr, 1, args.time))
        wall += time.monotonic() - t0
        m_after = machine_ticks()
        busy_total += m_after[0] - m_before[0]
        all_total += m_after[1] - m_before[1]
        for name, pid in daemons.items():
            b, a = before[name], proc_ticks(pid)
            if a is not None and b is not None:
                ticks[name][0] += a[0] - b[0]
                ticks[name][1] += a[1] - b[1]
    for _ in range(args.repeat):
        result.tcp4.append(measure_iperf(lab, addr, 4, args.time))
    cpu = Cpu(machine_busy_pct=100 * _cpu_count() * busy_total / max(1, all_total))
    for name, (user, system) in ticks.items():
        scale = 100 / (CLK_TCK * wall)
        cpu.daemons[name] = {
            "user": round(user * scale, 1),
            "sys": round(system * scale, 1),
            "total": round((user + system) * scale, 1),
        }
    result.cpu = cpu


# systems ------------------------------------------------------------------------------------


def bench_veth(lab: Lab, args: argparse.Namespace) -> SystemResult:
    result = SystemResult("veth", version=f"kernel {platform.release()}")
    result.mtu = link_mtu(lab, lab.ns_b, "veth-b")
    measure(lab, result, VETH_B, args)
    return result


def hyphal_routes_ready(lab: Lab, ns: str, other_key: str) -> bool:
    out = lab.sh(
        ns,
        ["curl", "-s", "-m", "2", f"http://{HYPHAL_API}/api/v1/admin/routes/selected"],
        check=False,
    ).stdout
    try:
        routes = json.loads(out)
    except json.JSONDecodeError:
        return False
    return any(r.get("publicKey") == other_key and r.get("metric") != "infinite" for r in routes)


def start_hyphal(lab: Lab) -> tuple[dict[str, Any], dict[str, subprocess.Popen[bytes]]]:
    """Start hyphal in both namespaces (A dials B) and wait for routes both ways."""
    info: dict[str, Any] = {}
    for side in ("a", "b"):
        key = lab.workdir / f"hyphal-{side}.key"
        run([HYPHAL, "generate-keys", "-k", key, "--json"])
        info[side] = json.loads(run([HYPHAL, "inspect", "--json", "-k", key]).stdout)
        info[side]["key_file"] = key
    base = ["-t", str(HYPHAL_PORT), "--api-addr", HYPHAL_API, "--tun-name", HYPHAL_TUN]
    procs = {
        "B": lab.start(
            lab.ns_b, [HYPHAL, "run", "-k", info["b"]["key_file"], *base], "hyphal-b.log"
        ),
        "A": lab.start(
            lab.ns_a,
            [
                HYPHAL,
                "run",
                "-k",
                info["a"]["key_file"],
                *base,
                "--peers",
                f"tcp://[{VETH_B}]:{HYPHAL_PORT}",
            ],
            "hyphal-a.log",
        ),
    }

    def ready() -> bool:
        check_alive(("hyphal A", procs["A"]), ("hyphal B", procs["B"]))
        return hyphal_routes_ready(lab, lab.ns_a, info["b"]["publicKey"]) and hyphal_routes_ready(
            lab, lab.ns_b, info["a"]["publicKey"]
        )

    info["route_seconds"] = wait_for(ready, 60, "hyphal routes in both directions", 0.25)
    wait_for(lambda: ping_ok(lab, lab.ns_a, info["b"]["address"]), 20, "ping over hyphal")
    return info, procs


def daemon_status(lab: Lab, procs: dict[str, subprocess.Popen[bytes]]) -> str:
    """Whether each hyphal daemon still runs, with the last line of its log."""
    parts = []
    for side, proc in procs.items():
        state = "running" if proc.poll() is None else f"exited {proc.returncode}"
        log = (lab.workdir / f"hyphal-{side.lower()}.log").read_text(errors="replace")
        last = log.strip().splitlines()[-1][:160] if log.strip() else ""
        parts.append(f"hyphal {side} {state}, log: {last}")
    return "; ".join(parts)


def hyphal_version() -> str:
    out = run(
        [VENV_BIN / "python", "-c", "import importlib.metadata as m; print(m.version('hyphal'))"],
        check=False,
    ).stdout.strip()
    rev = run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], check=False).stdout.strip()
    return f"{out or '?'} ({rev or 'no git'})"


def bench_hyphal(lab: Lab, args: argparse.Namespace) -> SystemResult:
    result = SystemResult("hyphal", version=hyphal_version())
    t0 = time.monotonic()
    info, procs = start_hyphal(lab)
    try:
        result.setup_seconds = round(time.monotonic() - t0, 2)
        result.mtu = link_mtu(lab, lab.ns_a, HYPHAL_TUN)
        mtu_b = link_mtu(lab, lab.ns_b, HYPHAL_TUN)
        if mtu_b != result.mtu:
            result.note = f"TUN MTU differs: A {result.mtu}, B {mtu_b}"
        pids = {"A (sender)": procs["A"].pid, "B (receiver)": procs["B"].pid}
        try:
            measure(lab, result, info["b"]["address"], args, pids)
            check_alive(("hyphal A", procs["A"]), ("hyphal B", procs["B"]))
        except BenchError as exc:
            raise BenchError(f"{exc}; {daemon_status(lab, procs)}") from exc
        if args.profile:
            profile_hyphal(lab, args, info["b"]["address"], procs, result)
    finally:
        lab.stop(*procs.values())
    return result


def bench_yggdrasil(lab: Lab, args: argparse.Namespace) -> SystemResult:
    exe = shutil.which("yggdrasil")
    if exe is None:
        return SystemResult("yggdrasil", status="not installed")
    version = run([exe, "-version"], check=False).stdout.strip().splitlines()
    result = SystemResult("yggdrasil", version=" ".join(version[:2]) or "?")
    confs = {side: json.loads(run([exe, "-genconf", "-json"]).stdout) for side in ("a", "b")}
    listen = f"tcp://[{VETH_B}]:{YGG_PORT}"
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
        (lab.workdir / f"ygg-{side}.json").write_text(json.dumps(confs[side]))
    addr_b = run([exe, "-useconffile", lab.workdir / "ygg-b.json", "-address"]).stdout.strip()
    t0 = time.monotonic()
    b = lab.start(
        lab.ns_b, [exe, "-useconffile", lab.workdir / "ygg-b.json", "-logto", "stdout"], "ygg-b.log"
    )
    procs = [b]
    try:
        # A retries a refused dial only about once a minute: start it once B listens.
        wait_for(lambda: listening(lab, lab.ns_b, YGG_PORT), 20, "yggdrasil B listening")
        a = lab.start(
            lab.ns_a,
            [exe, "-useconffile", lab.workdir / "ygg-a.json", "-logto", "stdout"],
            "ygg-a.log",
        )
        procs.append(a)
        wait_for(lambda: ping_ok(lab, lab.ns_a, addr_b), 40, "ping over yggdrasil", 0.5)
        result.setup_seconds = round(time.monotonic() - t0, 2)
        result.mtu = link_mtu(lab, lab.ns_a, "ygg0")
        measure(lab, result, addr_b, args, {"A (sender)": a.pid, "B (receiver)": b.pid})
    finally:
        lab.stop(*procs)
    return result


def bench_wireguard(lab: Lab, args: argparse.Namespace) -> SystemResult:
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
    short = lab.tag.replace("-", "")[-8:]
    dev = {"a": f"wga{short}", "b": f"wgb{short}"}
    keys: dict[str, tuple[Path, str]] = {}
    for side in ("a", "b"):
        path = lab.workdir / f"wg-{side}.key"
        path.write_text(run([wg, "genkey"]).stdout)
        path.chmod(0o600)
        pub = subprocess.run(
            [wg, "pubkey"], input=path.read_text(), capture_output=True, text=True, check=True
        ).stdout.strip()
        keys[side] = (path, pub)
    env = {"WG_PROCESS_FOREGROUND": "1", "LOG_LEVEL": "error"}
    t0 = time.monotonic()
    procs: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for side, ns in (("a", lab.ns_a), ("b", lab.ns_b)):
            procs[side] = lab.start(ns, [exe, "-f", dev[side]], f"wg-{side}.log", env)
        for side, ns, other, me, peer_addr, peer_ep in (
            ("a", lab.ns_a, "b", WG_A, WG_B, VETH_B),
            ("b", lab.ns_b, "a", WG_B, WG_A, VETH_A),
        ):
            sock = Path(f"/var/run/wireguard/{dev[side]}.sock")
            wait_for(sock.exists, 10, f"{sock}")
            lab.sh(
                ns,
                [
                    wg,
                    "set",
                    dev[side],
                    "listen-port",
                    str(WG_PORT),
                    "private-key",
                    keys[side][0],
                    "peer",
                    keys[other][1],
                    "allowed-ips",
                    f"{peer_addr}/128",
                    "endpoint",
                    f"[{peer_ep}]:{WG_PORT}",
                ],
            )
            run(["ip", "-n", ns, "addr", "add", f"{me}/64", "dev", dev[side], "nodad"])
            run(["ip", "-n", ns, "link", "set", dev[side], "mtu", str(WG_MTU), "up"])
        wait_for(lambda: ping_ok(lab, lab.ns_a, WG_B), 20, "ping over wireguard-go")
        result.setup_seconds = round(time.monotonic() - t0, 2)
        result.mtu = link_mtu(lab, lab.ns_a, dev["a"])
        measure(
            lab, result, WG_B, args, {"A (sender)": procs["a"].pid, "B (receiver)": procs["b"].pid}
        )
    finally:
        lab.stop(*procs.values())
    return result


RUNNERS: dict[str, Callable[[Lab, argparse.Namespace], SystemResult]] = {
    "veth": bench_veth,
    "hyphal": bench_hyphal,
    "yggdrasil": bench_yggdrasil,
    "wireguard-go": bench_wireguard,
}


# profiling ----------------------------------------------------------------------------------


@dataclass
class ProfileSummary:
    role: str
    raw_file: str
    svg_file: str | None
    samples: int
    idle_samples: int
    expected_samples: int
    top_functions: list[tuple[str, int, float]]
    top_lines: list[tuple[str, int, float]]
    categories: list[tuple[str, int, float]]


_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*?)(?::(?P<line>\d+))?\)$")


def _short_func(name: str) -> str:
    """Rust v0 mangled names (cryptography's bindings) are long; keep their readable tail."""
    return "…" + name[-28:] if name.startswith("_RN") and len(name) > 40 else name


def _short_file(path: str) -> str:
    for marker in ("/site-packages/", "/src/", "/lib/python3"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


IDLE_LEAVES = ("epoll_wait", "epoll_pwait", "epoll_pwait2")
# Rough own-time buckets for native profiles, by leaf symbol prefix (first match wins).
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (
        "syscalls (TUN and socket read/write)",
        ("write ", "writev ", "read ", "readv ", "send", "recv", "__libc_write", "__libc_read"),
    ),
    ("AES-GCM", ("ossl_aes", "aesni_", "ossl_gcm", "gcm_", "EVP_", "evp_", "ossl_ghash")),
    (
        "copies (memcpy/memmove, unresolved libc)",
        ("[libc.so.6 internal]", "memcpy", "memmove", "__memmove", "__memcpy"),
    ),
    ("malloc/free", ("malloc", "free", "brk", "realloc", "mmap", "munmap", "_int_", "sbrk")),
)
OTHER = "Python interpreter, uvloop and the rest"


def categorize(name: str) -> str:
    if name.startswith("[") and "<- " in name:  # an unresolved libc symbol, by its caller
        caller = name.split("<- ", 1)[1]
        return CATEGORIES[3][0] if caller.startswith(CATEGORIES[3][1]) else CATEGORIES[2][0]
    for label, prefixes in CATEGORIES:
        if name.startswith(prefixes):
            return label
    return OTHER


Rows = list[tuple[str, int, float]]


def summarize_raw(path: Path, top: int, native: bool) -> tuple[int, int, Rows, Rows, Rows]:
    """Own-time (leaf frame) totals by function and by source line from py-spy collapsed stacks.

    Returns (samples counted, idle samples dropped, by function, by line, by category; the
    categories only mean something with native frames). py-spy drops idle
    samples itself in Python-only mode; with native frames it cannot, so there we keep only the
    event-loop thread (stacks through ``run_daemon``; the others are idle executor threads) and
    count samples whose leaf is the epoll wait as idle.
    """
    by_func: Counter[str] = Counter()
    by_line: Counter[str] = Counter()
    total = idle = 0
    for line in path.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        leaf = frames[-1]
        if native and (
            not any(f.startswith("run_daemon ") for f in frames) or leaf.startswith(IDLE_LEAVES)
        ):
            idle += count
            continue
        total += count
        if leaf.startswith("0x") and len(frames) > 1:
            # An unresolved symbol in a stripped library (in libc: memcpy/memmove variants);
            # name it after its caller so the row still says which line pays for it.
            lib = leaf.rsplit("(", 1)[-1].rstrip(")")
            caller = _FRAME.match(frames[-2])
            where = (
                f"{_short_func(caller['func'])} ({_short_file(caller['file'])}:"
                f"{caller['line'] or '?'})"
                if caller
                else frames[-2]
            )
            by_func[f"[{lib} internal] <- {where.rsplit(':', 1)[0]})"] += count
            by_line[f"[{lib} internal] <- {where}"] += count
            continue
        m = _FRAME.match(leaf)
        if m is None:
            by_func[leaf] += count
            by_line[leaf] += count
            continue
        where, func = _short_file(m["file"]), _short_func(m["func"])
        by_func[f"{func} ({where})"] += count
        by_line[f"{func} ({where}:{m['line'] or '?'})"] += count

    by_category: Counter[str] = Counter()
    for name, count in by_func.items():
        by_category[categorize(name)] += count

    def rows(counter: Counter[str], n: int | None = top) -> Rows:
        return [(k, v, 100 * v / max(1, total)) for k, v in counter.most_common(n)]

    return total, idle, rows(by_func), rows(by_line), rows(by_category, None)


def profile_hyphal(
    lab: Lab,
    args: argparse.Namespace,
    addr: str,
    procs: dict[str, subprocess.Popen[bytes]],
    result: SystemResult,
) -> None:
    """One extra single-stream run with py-spy on both daemons; stores the summary on ``args``."""
    if not PY_SPY.exists():
        print(f"profile: {PY_SPY} missing (run ./scripts/setup.sh)", file=sys.stderr)
        return
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    rate = 100
    duration = args.time + 1
    spies: list[tuple[str, Path, Path | None]] = []
    spy_procs: list[subprocess.Popen[bytes]] = []
    for role, key in (("sender", "A"), ("receiver", "B")):
        raw = RESULTS / f"profile-{stamp}-hyphal-{role}.txt"
        svg = RESULTS / f"profile-{stamp}-hyphal-{role}.svg" if role == "sender" else None
        common = [
            "record",
            "-p",
            str(procs[key].pid),
            "-r",
            str(rate),
            "-d",
            str(duration),
        ]
        # The raw recorder unwinds native frames too (it must pause the daemon for that), so
        # time inside uvloop, OpenSSL and syscall wrappers is split out; the SVG one only reads.
        outputs = [("raw", raw, ["--native"] if args.native else ["--nonblocking"])]
        if svg is not None:
            outputs.append(("flamegraph", svg, ["--nonblocking"]))
        for fmt, out, mode in outputs:
            spy = subprocess.Popen(
                [PY_SPY, *common, *mode, "-f", fmt, "-o", out],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            lab.procs.append(spy)
            spy_procs.append(spy)
        spies.append((role, raw, svg))
    time.sleep(0.5)
    profiled = measure_iperf(lab, addr, 1, args.time)
    for spy in spy_procs:
        try:
            spy.wait(timeout=duration + 30)
        except subprocess.TimeoutExpired:
            spy.kill()
        lab.procs.remove(spy)
    summaries = []
    for role, raw, svg in spies:
        if not raw.exists():
            print(f"profile: py-spy wrote no {raw}", file=sys.stderr)
            continue
        total, idle, funcs, lines, categories = summarize_raw(raw, args.top, args.native)
        summaries.append(
            ProfileSummary(
                role,
                str(raw.relative_to(REPO)),
                str(svg.relative_to(REPO)) if svg is not None and svg.exists() else None,
                total,
                idle,
                rate * duration,
                funcs,
                lines,
                categories if args.native else [],
            )
        )
    args.profile_result = {"profiled_tcp1": asdict(profiled), "profiles": summaries}
    result.note = (result.note + "; " if result.note else "") + (
        f"profiled run (py-spy on both daemons): {profiled.gbps:.2f} Gbit/s"
    )


# output -------------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def spread(runs: list[Iperf]) -> str:
    if not runs:
        return "-"
    vals = [r.gbps for r in runs]
    if len(vals) == 1:
        return f"{vals[0]:.2f}"
    return f"{statistics.median(vals):.2f} ({min(vals):.2f}-{max(vals):.2f})"


def table_rows(results: list[SystemResult]) -> tuple[list[str], list[list[str]]]:
    base = next((r for r in results if r.system == "veth" and r.status == "ok"), None)
    headers = [
        "system",
        "Gbit/s 1-stream",
        "Gbit/s 4-stream",
        "RTT avg ms",
        "p50/p99 ms",
        "1-str % veth",
        "4-str % veth",
        "added RTT ms",
        "MTU",
        "daemon CPU % A/B (1-str)",
        "Gbit/s per daemon core",
        "retrans 1-str",
    ]
    rows = []
    for r in results:
        if r.status != "ok":
            rows.append([LABELS[r.system], r.status, *[""] * 7, r.note, "", ""])
            continue

        def ratio(ours: float | None, theirs: float | None) -> str:
            if ours is None or not theirs:
                return "-"
            return f"{100 * ours / theirs:.0f}%"

        rtt = r.rtt
        added = (
            rtt.avg_ms - base.rtt.avg_ms
            if base
            and base.rtt
            and rtt
            and rtt.avg_ms is not None
            and base.rtt.avg_ms is not None
            and r is not base
            else None
        )
        cpu = "-"
        if r.cpu and r.cpu.daemons:
            cpu = " / ".join(f"{d['total']:.0f}" for d in r.cpu.daemons.values())
        cores = sum(d["total"] for d in r.cpu.daemons.values()) / 100 if r.cpu else 0.0
        per_core = fmt(r.gbps1 / cores) if r.gbps1 is not None and cores > 0 else "-"
        retrans = [x.retransmits for x in r.tcp1 if x.retransmits is not None]
        rows.append(
            [
                LABELS[r.system],
                spread(r.tcp1),
                spread(r.tcp4),
                fmt(rtt.avg_ms if rtt else None, 3),
                f"{fmt(rtt.p50_ms if rtt else None, 3)}/{fmt(rtt.p99_ms if rtt else None, 3)}",
                ratio(r.gbps1, base.gbps1 if base else None) if r is not base else "100%",
                ratio(r.gbps4, base.gbps4 if base else None) if r is not base else "100%",
                fmt(added, 3),
                str(r.mtu or "-"),
                cpu,
                per_core,
                str(int(statistics.median(retrans))) if retrans else "-",
            ]
        )
    return headers, rows


def print_report(report: dict[str, Any], results: list[SystemResult]) -> None:
    headers, rows = table_rows(results)
    print(report["header_line"])
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
        print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
        for row in rows:
            print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))
    else:
        table = Table(
            title=f"TUN data plane, iperf3 -t {report['args']['time']} x "
            f"{report['args']['repeat']} (median (min-max)), ping -6 x "
            f"{report['args']['pings']}"
        )
        for i, h in enumerate(headers):
            table.add_column(h, justify="left" if i == 0 else "right")
        for row in rows:
            table.add_row(*row)
        Console(width=200).print(table)
    for r in results:
        extra = []
        if r.version:
            extra.append(r.version)
        if r.setup_seconds is not None:
            extra.append(f"ready in {r.setup_seconds:.1f} s")
        if r.tcp1 and r.tcp1[0].mss:
            extra.append(f"MSS {r.tcp1[0].mss}")
        if r.cpu and r.cpu.daemons:
            extra.append(
                "CPU 1-str "
                + ", ".join(
                    f"{k} u{v['user']:.0f}/s{v['sys']:.0f}" for k, v in r.cpu.daemons.items()
                )
            )
        if r.cpu and r.cpu.machine_busy_pct is not None:
            extra.append(f"machine busy {r.cpu.machine_busy_pct:.0f}% of {100 * _cpu_count()}%")
        if r.note and r.status == "ok":
            extra.append(r.note)
        if extra:
            print(f"  {LABELS[r.system]}: " + "; ".join(extra))
    by = {r.system: r for r in results if r.status == "ok"}
    hy, ygg = by.get("hyphal"), by.get("yggdrasil")
    if hy and ygg and hy.gbps1 and ygg.gbps1:
        print(f"  hyphal / yggdrasil single stream: {hy.gbps1 / ygg.gbps1:.2f}x (target >= 2x)")
    prof = report.get("profile")
    if prof:
        print(f"\nprofile: profiled single-stream run {prof['profiled_tcp1']['gbps']:.2f} Gbit/s")
        mode = "Python + native frames" if report["args"]["native"] else "Python frames"
        for p in prof["profiles"]:
            busy = 100 * p["samples"] / max(1, p["expected_samples"])
            print(
                f"\n{p['role']} daemon ({mode}): {p['samples']} non-idle samples of "
                f"~{p['expected_samples']} (~{busy:.0f}% busy); raw {p['raw_file']}"
                + (f", flame graph {p['svg_file']}" if p["svg_file"] else "")
            )
            print(f"  top {len(p['top_functions'])} functions by own time (% of samples):")
            for name, count, pct in p["top_functions"]:
                print(f"    {pct:5.1f}%  {count:6d}  {name}")
            print("  top lines by own time:")
            for name, count, pct in p["top_lines"]:
                print(f"    {pct:5.1f}%  {count:6d}  {name}")
            if p["categories"]:
                print("  own time by kind of work:")
                for name, count, pct in p["categories"]:
                    print(f"    {pct:5.1f}%  {count:6d}  {name}")


# main ---------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--time", type=int, default=10, help="seconds per iperf3 run (10)")
    parser.add_argument("--repeat", type=int, default=1, help="iperf3 runs per cell (1)")
    parser.add_argument("--pings", type=int, default=50, help="pings after warm-up (50)")
    parser.add_argument("--ping-interval", type=float, default=0.05, help="seconds (0.05)")
    parser.add_argument(
        "--systems",
        default=",".join(SYSTEMS),
        help=f"comma-separated subset of {','.join(SYSTEMS)} (all)",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="py-spy both hyphal daemons in an extra single-stream run",
    )
    parser.add_argument(
        "--native",
        action="store_true",
        help="--profile: also unwind C frames (uvloop, OpenSSL, libc); pauses the daemons per sample",
    )
    parser.add_argument("--top", type=int, default=15, help="profile rows to print (15)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument(
        "--keep-logs", action="store_true", help="keep daemon logs in bench/results/logs-<stamp>/"
    )
    args = parser.parse_args(argv)
    args.systems = [s.strip() for s in args.systems.split(",") if s.strip()]
    unknown = set(args.systems) - set(SYSTEMS)
    if unknown:
        parser.error(f"unknown systems: {', '.join(sorted(unknown))}")
    if "veth" not in args.systems:
        args.systems.insert(0, "veth")  # the ratios need the baseline measured in the same run
    args.profile_result = None
    return args


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if os.geteuid() != 0:
        print("throughput.py needs root (network namespaces, TUN devices)", file=sys.stderr)
        return 2
    for tool in ("ip", "iperf3", "ping", "curl", "ss"):
        if shutil.which(tool) is None:
            print(f"missing {tool}; run ./scripts/setup.sh as root", file=sys.stderr)
            return 2
    signal.signal(signal.SIGTERM, _raise_interrupt)
    signal.signal(signal.SIGHUP, _raise_interrupt)
    workdir = Path(tempfile.mkdtemp(prefix="hyphal-bench-"))
    lab = Lab(workdir)
    atexit.register(lab.cleanup)
    load = os.getloadavg()
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    header = (
        f"hyphal throughput bench {started}  host {platform.node()}  kernel "
        f"{platform.release()}  cpus {_cpu_count()}  loadavg {load[0]:.2f} {load[1]:.2f} "
        f"{load[2]:.2f}  netns {lab.ns_a}/{lab.ns_b}"
    )
    if not args.json:
        print(header, flush=True)
    results: list[SystemResult] = []
    try:
        lab.setup()
        for system in args.systems:
            if not args.json:
                print(f"... {system}", file=sys.stderr, flush=True)
            try:
                results.append(RUNNERS[system](lab, args))
            except (BenchError, subprocess.SubprocessError, OSError) as exc:
                results.append(SystemResult(system, status="failed", note=str(exc)))
    except KeyboardInterrupt:
        print("interrupted; cleaning up", file=sys.stderr)
        lab.cleanup()
        return 130
    finally:
        if args.keep_logs or any(r.status == "failed" for r in results):
            keep = RESULTS / f"logs-{time.strftime('%Y%m%d-%H%M%S')}"
            keep.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(OSError):
                shutil.copytree(workdir, keep)
                print(f"logs kept in {keep.relative_to(REPO)}", file=sys.stderr)
        lab.cleanup()
        shutil.rmtree(workdir, ignore_errors=True)
    end_load = os.getloadavg()
    report: dict[str, Any] = {
        "header_line": header + f"  (loadavg at end {end_load[0]:.2f})",
        "started": started,
        "host": {
            "kernel": platform.release(),
            "cpus": _cpu_count(),
            "loadavg_start": load,
            "loadavg_end": end_load,
        },
        "args": {k: v for k, v in vars(args).items() if k != "profile_result"},
        "results": [
            {**asdict(r), "gbps1_median": r.gbps1, "gbps4_median": r.gbps4} for r in results
        ],
    }
    if args.profile_result:
        report["profile"] = {
            "profiled_tcp1": args.profile_result["profiled_tcp1"],
            "profiles": [asdict(p) for p in args.profile_result["profiles"]],
        }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"throughput-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(report, indent=2, default=str))
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print_report(report, results)
        print(f"\nJSON: {out.relative_to(REPO)}")
    return 0 if all(r.status != "failed" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
