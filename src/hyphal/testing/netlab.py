"""The namespace lab: real hyphal daemons in real network namespaces joined by veth pairs.

A description names nodes and links::

    Topology.build("A-B B-C")                                  # a line
    Topology.build("A-B B-D A-D:slow C")                       # per-link options; C is isolated
    Topology.build("A-B:delay=40,jitter=5 B-C:up=10,down=30")  # delay-line options in ms
    Topology.build({"nodes": ["A", "B", "C", "D"],
                    "links": [("A", "B"), ("B", "D"), ("A", "D", {"delay_ms": 40})]})

* Every node is one namespace (``hyt-<pid>-<rand>-<node>``) with loopback up; its daemon's API is
  ``127.0.0.1:8989`` inside that namespace.
* Every link ``i`` is a veth pair with ``fd00:<tag>:<i>::1/64`` (dialer) and ``::2/64`` (acceptor),
  plus ``10.<i/256>.<i%256>.1/24`` and ``.2/24``. The namespaces have no route anywhere else.
* In edge ``A-B``, A dials B (``--peers tcp://[fd00:<tag>:<i>::2]:9651``) and B accepts.
* A link with a delay runs ``python -m hyphal.tools.delayline`` inside A's namespace, listening on
  A's link address (port ``9700 + i``) and forwarding to B; A's peer URI points at the proxy.
  "up" is A -> B, "down" is B -> A.

Everything (processes, namespaces and with them the veths) is removed by :meth:`Topology.close`,
which the pytest fixture always calls; an ``atexit`` hook covers the rest, and
:func:`reap_stale_namespaces` removes what a SIGKILLed run left behind.

The daemon command line is built in :meth:`Node.daemon_argv` (one place to adapt).
"""

from __future__ import annotations

import atexit
import contextlib
import json as jsonlib
import os
import re
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv4Interface, IPv6Address, IPv6Interface, IPv6Network
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from hyphal.identity import NodeIdentity
from hyphal.testing.routes import SELECTED_ROUTES_PATH, next_hop_key, selected_route

T = TypeVar("T")

DAEMON_PORT = 9651
API_ADDR = "127.0.0.1:8989"
PROXY_BASE_PORT = 9700
NS_PREFIX = "hyt"
READY_PATH = "/api/v1/admin"

#: Named link presets usable as ``"A-B:slow"``.
LINK_PRESETS: dict[str, dict[str, float]] = {
    "slow": {"delay_ms": 40.0},
    "veryslow": {"delay_ms": 150.0},
    "lan": {"delay_ms": 1.0},
    "wan": {"delay_ms": 25.0, "jitter_ms": 3.0},
}
_OPTION_ALIASES = {
    "delay": "delay_ms",
    "delay_ms": "delay_ms",
    "up": "up_delay_ms",
    "up_delay": "up_delay_ms",
    "up_delay_ms": "up_delay_ms",
    "down": "down_delay_ms",
    "down_delay": "down_delay_ms",
    "down_delay_ms": "down_delay_ms",
    "jitter": "jitter_ms",
    "jitter_ms": "jitter_ms",
    "max_buffer": "max_buffer",
}
_NODE_NAME = re.compile(r"^[A-Za-z0-9_]{1,10}$")


class TopologyError(RuntimeError):
    """Building, starting or driving a topology failed; the message carries the log tails."""


class TopologyTimeout(TopologyError, TimeoutError):
    """A wait-until condition did not become true in time."""


class ApiResponse(NamedTuple):
    """An HTTP answer from a node's API: ``status`` 0 means no connection."""

    status: int
    data: Any
    text: str = ""


@dataclass(frozen=True)
class LinkSpec:
    a: str
    b: str
    options: Mapping[str, float] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# description parsing


def _parse_options(text: str) -> dict[str, float]:
    options: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        if item in LINK_PRESETS:
            options.update(LINK_PRESETS[item])
        elif "=" in item:
            key, _, value = item.partition("=")
            if key.strip() not in _OPTION_ALIASES:
                raise ValueError(f"unknown link option {key!r} (known: {sorted(_OPTION_ALIASES)})")
            options[_OPTION_ALIASES[key.strip()]] = float(value.strip().removesuffix("ms"))
        elif item.endswith("ms"):
            options["delay_ms"] = float(item[:-2])
        else:
            raise ValueError(f"unknown link option {item!r} (presets: {sorted(LINK_PRESETS)})")
    return options


def _normalise_options(options: Mapping[str, Any]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in options.items():
        if key not in _OPTION_ALIASES:
            raise ValueError(f"unknown link option {key!r} (known: {sorted(_OPTION_ALIASES)})")
        out[_OPTION_ALIASES[key]] = float(value)
    return out


def parse_description(desc: str | Mapping[str, Any]) -> tuple[list[str], list[LinkSpec]]:
    """Nodes (in first-seen order) and links of a string or dict description."""
    nodes: list[str] = []
    links: list[LinkSpec] = []

    def add_node(name: str) -> None:
        if not _NODE_NAME.match(name):
            raise ValueError(f"node name {name!r}: use 1-10 letters, digits or _")
        if name not in nodes:
            nodes.append(name)

    if isinstance(desc, str):
        for token in desc.split():
            edge, _, opts = token.partition(":")
            if "-" in edge:
                a, _, b = edge.partition("-")
                add_node(a)
                add_node(b)
                links.append(LinkSpec(a, b, _parse_options(opts)))
            else:
                if opts:
                    raise ValueError(f"options on a lone node: {token!r}")
                add_node(edge)
    else:
        for name in desc.get("nodes", []):
            add_node(str(name))
        for entry in desc.get("links", []):
            if len(entry) == 2:
                a, b = entry
                opts_map: Mapping[str, Any] = {}
            elif len(entry) == 3:
                a, b, opts_map = entry
            else:
                raise ValueError(f"a link is (a, b) or (a, b, options), got {entry!r}")
            add_node(str(a))
            add_node(str(b))
            links.append(LinkSpec(str(a), str(b), _normalise_options(opts_map)))
    for link in links:
        if link.a == link.b:
            raise ValueError(f"self-link {link.a}-{link.b}")
    if not nodes:
        raise ValueError("empty topology description")
    return nodes, links


def line_spec(n: int) -> str:
    """``"N1-N2 N2-N3 ..."``: a line of ``n`` nodes."""
    return " ".join(f"N{i}-N{i + 1}" for i in range(1, n)) or "N1"


def ring_spec(n: int) -> str:
    """A ring of ``n`` >= 3 nodes."""
    return line_spec(n) + f" N{n}-N1"


def mesh_spec(n: int) -> str:
    """A full mesh of ``n`` nodes (the lower-numbered node dials)."""
    return " ".join(f"N{i}-N{j}" for i in range(1, n + 1) for j in range(i + 1, n + 1)) or "N1"


# ---------------------------------------------------------------------------------------------
# helpers


def route_to(src: Node, dst: Node) -> dict[str, Any] | None:
    """``src``'s reachable selected route to ``dst``'s subnet, or None."""
    return selected_route(src.get(SELECTED_ROUTES_PATH), str(dst.subnet))


def has_route(src: Node, dst: Node) -> bool:
    """Whether ``src`` has a reachable route to ``dst``."""
    return route_to(src, dst) is not None


def next_hop(src: Node, dst: Node) -> str | None:
    """Hex public key of ``src``'s next hop towards ``dst``, or None when unreachable."""
    return next_hop_key(src.get(SELECTED_ROUTES_PATH), str(dst.subnet))


def run(
    argv: Sequence[str], *, timeout: float = 30, check: bool = True, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing text output; raise TopologyError with stderr when ``check``."""
    try:
        result = subprocess.run(
            list(argv), capture_output=True, text=True, timeout=timeout, input=input, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise TopologyError(f"timed out after {timeout}s: {shlex.join(argv)}") from exc
    if check and result.returncode != 0:
        raise TopologyError(
            f"command failed ({result.returncode}): {shlex.join(argv)}\n{result.stderr.strip()}"
        )
    return result


def _tail(path: Path, lines: int) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 256 * lines))
            data = handle.read().decode(errors="replace")
    except FileNotFoundError:
        return "(no log file)"
    return "\n".join(data.splitlines()[-lines:])


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kill_tree(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL, wait: float = 10) -> None:
    """Signal the process group of ``proc`` (started with start_new_session) and reap it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        if sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGCONT)  # a stopped process cannot handle SIGTERM
    try:
        proc.wait(timeout=wait)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    # Anything left in the group (children that escaped the wait).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


def list_namespaces() -> list[str]:
    out = run(["ip", "netns", "list"], check=False).stdout
    return [line.split()[0] for line in out.splitlines() if line.strip()]


def _kill_namespace(ns: str) -> None:
    pids = run(["ip", "netns", "pids", ns], check=False).stdout.split()
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, ValueError, PermissionError):
            os.kill(int(pid), signal.SIGKILL)
    run(["ip", "netns", "del", ns], check=False)


def reap_stale_namespaces() -> list[str]:
    """Delete ``hyt-<pid>-...`` namespaces whose creating process is gone (a killed earlier run)."""
    reaped = []
    for ns in list_namespaces():
        match = re.match(rf"^{NS_PREFIX}-(\d+)-", ns)
        if match and not _pid_alive(int(match.group(1))):
            _kill_namespace(ns)
            reaped.append(ns)
    return reaped


_LIVE: set[Topology] = set()
_LIVE_LOCK = threading.Lock()


@atexit.register
def _close_all_at_exit() -> None:
    with _LIVE_LOCK:
        live = list(_LIVE)
    for topo in live:
        with contextlib.suppress(Exception):
            topo.close()


# ---------------------------------------------------------------------------------------------
# nodes, links, topology


class Node:
    """One namespace and (optionally) the hyphal daemon running in it."""

    def __init__(self, topo: Topology, name: str, ns: str, workdir: Path) -> None:
        self.topo = topo
        self.name = name
        self.ns = ns
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.key_file = self.dir / "priv_key.bin"
        self.identity = NodeIdentity.generate()
        self.identity.save(self.key_file)
        self.log_path = self.dir / "daemon.log"
        self.extra_args: list[str] = []
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    # identity ------------------------------------------------------------------------------
    @property
    def public_key(self) -> str:
        """Hex public key, as the API's ``nodePubkey`` shows it."""
        return self.identity.public_key.hex()

    @property
    def public_key_bytes(self) -> bytes:
        return self.identity.public_key

    @property
    def address(self) -> IPv6Address:
        """The overlay address."""
        return self.identity.address

    @property
    def subnet(self) -> IPv6Network:
        """The overlay /64 (``str(node.subnet)`` matches the API's ``nodeSubnet``)."""
        return self.identity.subnet

    # links ---------------------------------------------------------------------------------
    @property
    def links(self) -> list[Link]:
        return [link for link in self.topo.links if self in (link.a, link.b)]

    @property
    def peer_uris(self) -> list[str]:
        """What this node dials: one URI per link where it is the dialer."""
        return [link.peer_uri for link in self.topo.links if link.a is self]

    def link_address(self, peer: str) -> IPv6Address:
        """This node's IPv6 address on its (first) link to ``peer``."""
        link = self.topo.link(self.name, peer)
        return link.addr6_a if link.a is self else link.addr6_b

    # commands ------------------------------------------------------------------------------
    def ns_argv(self, cmd: Sequence[str] | str) -> list[str]:
        argv = ["sh", "-c", cmd] if isinstance(cmd, str) else list(cmd)
        return ["ip", "netns", "exec", self.ns, *argv]

    def exec(
        self,
        cmd: Sequence[str] | str,
        timeout: float = 30,
        *,
        check: bool = False,
        input: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``cmd`` (argv list, or a shell string) in the namespace; capture text output."""
        return run(self.ns_argv(cmd), timeout=timeout, check=check, input=input)

    def popen(
        self, cmd: Sequence[str] | str, log_name: str, env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start a background process in the namespace (own process group, killed at close);
        stdout and stderr go to ``<node dir>/<log_name>``."""
        return self.topo._spawn(self.ns_argv(cmd), self.dir / log_name, self.dir, env)

    def serve(
        self,
        cmd: Sequence[str],
        log_name: str,
        port: int,
        *,
        timeout: float = 30,
        env: Mapping[str, str] | None = None,
    ) -> subprocess.Popen[bytes]:
        """Start a server program (``popen``) and wait until it listens on TCP ``port``.

        A program that exits first (not installed, bad config) fails at once with its log,
        not after the timeout; a slow one gets ``timeout`` seconds, generous for a busy machine.
        """
        if shutil.which(cmd[0]) is None:
            raise TopologyError(f"{cmd[0]} is not installed (./scripts/setup.sh installs it)")
        proc = self.popen(cmd, log_name, env)
        log = self.dir / log_name
        self.topo.wait_until(
            lambda: proc.poll() is not None or self.listening(port),
            timeout,
            message=f"{cmd[0]} to listen on {port}",
            context=lambda: f"{log}:\n{_tail(log, 40)}",
        )
        if proc.poll() is not None:
            raise TopologyError(
                f"{cmd[0]} exited with {proc.returncode} before listening on {port}; "
                f"{log}:\n{_tail(log, 40)}"
            )
        return proc

    def api(self, method: str, path: str, json: Any = None, timeout: float = 10) -> ApiResponse:
        """HTTP request to this node's API (inside its namespace, with curl)."""
        argv = [
            "curl",
            "-sS",
            "-m",
            str(timeout),
            "-X",
            method.upper(),
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            "-H",
            "accept: application/json",
        ]
        body = None
        if json is not None:
            argv += ["-H", "content-type: application/json", "--data-binary", "@-"]
            body = jsonlib.dumps(json)
        argv.append(f"http://{API_ADDR}/{path.lstrip('/')}")
        result = self.exec(argv, timeout=timeout + 5, input=body)
        text, _, code = result.stdout.rpartition("\n")
        status = int(code) if code.strip().isdigit() else 0
        try:
            data = jsonlib.loads(text) if text.strip() else None
        except ValueError:
            data = text
        return ApiResponse(status, data, text)

    def get(self, path: str) -> Any:
        """GET and return the JSON body; raise TopologyError unless the status is 2xx."""
        response = self.api("GET", path)
        if not 200 <= response.status < 300:
            raise TopologyError(f"{self.name}: GET {path} -> {response.status} {response.text!r}")
        return response.data

    def cli(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run ``python -m hyphal ARGS`` (the CLI) inside the namespace."""
        return self.exec([*self.topo.daemon_cmd, *args], timeout=timeout)

    def ping(
        self, address: str | IPv6Address, count: int = 1, timeout: float = 10
    ) -> subprocess.CompletedProcess[str]:
        return self.exec(
            ["ping", "-6", "-n", "-c", str(count), "-W", str(int(timeout)), str(address)],
            timeout=timeout * count + 5,
        )

    def listening(self, port: int) -> bool:
        """True when some TCP socket in the namespace listens on ``port``."""
        out = self.exec(["ss", "-ltnH", f"sport = :{port}"]).stdout
        return bool(out.strip())

    # daemon --------------------------------------------------------------------------------
    def daemon_argv(self) -> list[str]:
        """The daemon's command line (the only place that knows the CLI's flags)."""
        topo = self.topo
        argv = [*topo.daemon_cmd, "run", "-k", str(self.key_file)]
        uris = self.peer_uris
        if uris:
            if topo.peers_style == "list":
                argv += ["--peers", *uris]
            else:
                for uri in uris:
                    argv += ["--peers", uri]
        argv += ["-t", str(DAEMON_PORT), "--api-addr", API_ADDR]
        if not topo.tun:
            argv.append("--no-tun")
        elif topo.tun_name:
            argv += ["--tun-name", topo.tun_name]
        if topo.network_name is not None and topo.network_key_file is not None:
            argv += [
                "--network-name",
                topo.network_name,
                "--network-key-file",
                str(topo.network_key_file),
            ]
        return argv + list(topo.daemon_args) + self.extra_args

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self) -> None:
        """Launch the daemon (does not wait; see :meth:`wait_ready`)."""
        if self.running:
            raise TopologyError(f"{self.name}: daemon already running (pid {self.pid})")
        self.starts += 1
        argv = self.ns_argv(self.daemon_argv())
        with self.log_path.open("a") as log:
            log.write(
                f"=== start #{self.starts} at {time.strftime('%H:%M:%S')}: {shlex.join(argv)}\n"
            )
        env = {"XDG_DATA_HOME": str(self.dir), "HOME": str(self.dir)}
        self.proc = self.topo._spawn(argv, self.log_path, self.dir, env)

    def ready(self) -> bool:
        """True when ``GET /api/v1/admin`` answers 200."""
        return self.running and self.api("GET", READY_PATH, timeout=2).status == 200

    def wait_ready(self, timeout: float | None = None) -> None:
        self.topo.wait_ready([self.name], timeout)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the daemon; for SIGKILL/SIGTERM/SIGINT also wait until it is gone."""
        if self.proc is None or self.proc.poll() is not None:
            return
        if sig in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT):
            kill_tree(self.proc, sig, wait=15)
        else:
            os.kill(self.proc.pid, sig)

    def stop(self) -> None:
        """SIGSTOP: the node goes silent without closing its sockets (a silent death)."""
        self.kill(signal.SIGSTOP)

    def cont(self) -> None:
        """SIGCONT: resume a stopped node."""
        self.kill(signal.SIGCONT)

    def restart(
        self, *, sig: int = signal.SIGKILL, wait: bool = True, timeout: float | None = None
    ) -> None:
        """Kill (SIGKILL by default), start again with the same key, and wait for readiness."""
        self.kill(sig)
        self.start()
        if wait:
            self.wait_ready(timeout)

    def log_tail(self, lines: int = 40) -> str:
        return _tail(self.log_path, lines)

    def __repr__(self) -> str:
        return f"<Node {self.name} ns={self.ns} addr={self.address}>"


class Link:
    """A veth pair between dialer ``a`` and acceptor ``b`` (and its delay line, if any)."""

    def __init__(
        self, topo: Topology, index: int, a: Node, b: Node, options: Mapping[str, float]
    ) -> None:
        self.topo = topo
        self.index = index
        self.a = a
        self.b = b
        self.options = dict(options)
        delay = self.options.get("delay_ms", 0.0)
        self.up_delay_ms = self.options.get("up_delay_ms", delay)
        self.down_delay_ms = self.options.get("down_delay_ms", delay)
        self.jitter_ms = self.options.get("jitter_ms", 0.0)
        self.ifname_a = f"l{index}-{b.name}"[:15]
        self.ifname_b = f"l{index}-{a.name}"[:15]
        net = IPv6Network(f"fd00:{topo.tag:x}:{index:x}::/64")
        self.net6 = net
        self.iface6_a = IPv6Interface(f"{net[1]}/64")
        self.iface6_b = IPv6Interface(f"{net[2]}/64")
        self.iface4_a = IPv4Interface(f"10.{index >> 8 & 255}.{index & 255}.1/24")
        self.iface4_b = IPv4Interface(f"10.{index >> 8 & 255}.{index & 255}.2/24")
        self.proxy: subprocess.Popen[bytes] | None = None
        self.proxy_port = PROXY_BASE_PORT + index
        self.proxy_log = topo.workdir / f"link{index}-{a.name}-{b.name}-delayline.log"
        self.is_up = False

    @property
    def addr6_a(self) -> IPv6Address:
        return self.iface6_a.ip

    @property
    def addr6_b(self) -> IPv6Address:
        return self.iface6_b.ip

    @property
    def addr4_a(self) -> str:
        return str(self.iface4_a.ip)

    @property
    def addr4_b(self) -> str:
        return str(self.iface4_b.ip)

    @property
    def delayed(self) -> bool:
        return max(self.up_delay_ms, self.down_delay_ms, self.jitter_ms) > 0 or (
            "max_buffer" in self.options
        )

    @property
    def target(self) -> tuple[str, int]:
        """The acceptor's listening endpoint on this link."""
        return str(self.addr6_b), DAEMON_PORT

    @property
    def dial_endpoint(self) -> tuple[str, int]:
        """Where ``a`` connects: the delay line if there is one, else ``b`` directly."""
        if self.delayed:
            return str(self.addr6_a), self.proxy_port
        return self.target

    @property
    def peer_uri(self) -> str:
        host, port = self.dial_endpoint
        return f"tcp://[{host}]:{port}"

    def other(self, node: Node | str) -> Node:
        name = node if isinstance(node, str) else node.name
        return self.b if name == self.a.name else self.a

    def _setup(self) -> None:
        run(
            [
                "ip",
                "link",
                "add",
                self.ifname_a,
                "netns",
                self.a.ns,
                "type",
                "veth",
                "peer",
                "name",
                self.ifname_b,
                "netns",
                self.b.ns,
            ]
        )
        for node, ifname, v6, v4 in (
            (self.a, self.ifname_a, self.iface6_a, self.iface4_a),
            (self.b, self.ifname_b, self.iface6_b, self.iface4_b),
        ):
            node.exec(["ip", "-6", "addr", "add", str(v6), "dev", ifname, "nodad"], check=True)
            node.exec(["ip", "addr", "add", str(v4), "dev", ifname], check=True)
        self.up()

    def _start_proxy(self) -> None:
        if not self.delayed:
            return
        host, port = self.dial_endpoint
        argv = [
            sys.executable,
            "-m",
            "hyphal.tools.delayline",
            "--listen",
            f"[{host}]:{port}",
            "--target",
            f"[{self.target[0]}]:{DAEMON_PORT}",
            "--up-delay",
            str(self.up_delay_ms),
            "--down-delay",
            str(self.down_delay_ms),
            "--jitter-ms",
            str(self.jitter_ms),
            "-v",
        ]
        if "max_buffer" in self.options:
            argv += ["--max-buffer", str(int(self.options["max_buffer"]))]
        self.proxy = self.topo._spawn(self.a.ns_argv(argv), self.proxy_log, self.a.dir, None)

    def _wait_proxy(self, deadline: float) -> None:
        while self.proxy is not None:
            if "listening on" in _tail(self.proxy_log, 50):
                return
            if self.proxy.poll() is not None or time.monotonic() > deadline:
                raise TopologyError(
                    f"delay line of link {self.a.name}-{self.b.name} did not start "
                    f"(exit {self.proxy.poll()}):\n{_tail(self.proxy_log, 30)}"
                )
            time.sleep(0.05)

    def down(self) -> None:
        """Set both veth ends down: a silent cut (no FIN/RST; packets just vanish)."""
        self.a.exec(["ip", "link", "set", self.ifname_a, "down"], check=True)
        self.b.exec(["ip", "link", "set", self.ifname_b, "down"], check=True)
        self.is_up = False

    def up(self) -> None:
        """Bring both veth ends up again (addresses are kept across down/up)."""
        self.a.exec(["ip", "link", "set", self.ifname_a, "up"], check=True)
        self.b.exec(["ip", "link", "set", self.ifname_b, "up"], check=True)
        self.is_up = True

    def proxy_log_tail(self, lines: int = 20) -> str:
        return _tail(self.proxy_log, lines)

    def __repr__(self) -> str:
        delay = f" delay={self.up_delay_ms}/{self.down_delay_ms}ms" if self.delayed else ""
        return f"<Link {self.a.name}->{self.b.name} {self.addr6_a}<->{self.addr6_b}{delay}>"


class Topology:
    """Namespaces, veths, delay lines and daemons described by a short spec; see module doc."""

    def __init__(
        self,
        workdir: Path,
        *,
        tun: bool = False,
        tun_name: str | None = None,
        daemon_cmd: Sequence[str] | None = None,
        daemon_args: Sequence[str] = (),
        network_name: str | None = None,
        network_key: bytes | None = None,
        peers_style: str = "repeat",
        ready_timeout: float = 30.0,
    ) -> None:
        self.id = f"{os.getpid()}-{secrets.token_hex(2)}"
        self.tag = secrets.randbelow(0xFFFF) + 1
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.tun = tun
        self.tun_name = tun_name
        env_cmd = os.environ.get("HYPHAL_DAEMON_CMD")
        if daemon_cmd is not None:
            self.daemon_cmd = list(daemon_cmd)
        elif env_cmd:
            self.daemon_cmd = shlex.split(env_cmd)
        else:
            self.daemon_cmd = [sys.executable, "-m", "hyphal"]
        self.daemon_args = list(daemon_args)
        self.network_name = network_name
        self.network_key_file: Path | None = None
        if network_key is not None:
            self.network_key_file = self.workdir / "network.key"
            self.network_key_file.write_bytes(network_key)
            self.network_key_file.chmod(0o600)
        if peers_style not in ("repeat", "list"):
            raise ValueError("peers_style is 'repeat' (--peers X --peers Y) or 'list'")
        self.peers_style = peers_style
        self.ready_timeout = ready_timeout
        self.nodes: dict[str, Node] = {}
        self.links: list[Link] = []
        self._procs: list[subprocess.Popen[bytes]] = []
        self._namespaces: list[str] = []
        self._closed = False
        with _LIVE_LOCK:
            _LIVE.add(self)

    # construction ------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        desc: str | Mapping[str, Any],
        *,
        start: bool = False,
        workdir: Path | str | None = None,
        node_args: Mapping[str, Sequence[str]] | None = None,
        **kwargs: Any,
    ) -> Topology:
        """Create namespaces, veths and delay lines; with ``start=True`` also launch every
        daemon and wait until each API answers (TopologyError with log tails on timeout).

        Keyword arguments: ``tun`` (default False -> ``--no-tun``), ``tun_name``,
        ``daemon_cmd`` (argv prefix, default ``[sys.executable, "-m", "hyphal"]`` or
        ``$HYPHAL_DAEMON_CMD``), ``daemon_args`` (appended to every node), ``node_args``
        ({name: extra argv}), ``network_name`` + ``network_key`` (bytes, written to a file),
        ``peers_style`` ("repeat" or "list"), ``ready_timeout`` (s), ``workdir``.
        """
        names, specs = parse_description(desc)
        if workdir is None:
            import tempfile

            workdir = tempfile.mkdtemp(prefix="hyphal-topo-")
        topo = cls(Path(workdir), **kwargs)
        try:
            for name in names:
                topo._add_node(name)
            for spec in specs:
                topo._add_link(spec)
            for name, extra in (node_args or {}).items():
                topo.node(name).extra_args = list(extra)
            deadline = time.monotonic() + 30
            for link in topo.links:
                link._start_proxy()
            for link in topo.links:
                link._wait_proxy(deadline)
            if start:
                topo.start()
        except BaseException:
            topo.close()
            raise
        return topo

    def _add_node(self, name: str) -> None:
        ns = f"{NS_PREFIX}-{self.id}-{name}"
        self._namespaces.append(ns)
        run(["ip", "netns", "add", ns])
        node = Node(self, name, ns, self.workdir / name)
        self.nodes[name] = node
        node.exec(["ip", "link", "set", "lo", "up"], check=True)
        # Keep IPv6 addresses across link down/up, no DAD delays, no IPv6 forwarding.
        for key in ("default", "all"):
            node.exec(
                [
                    "sysctl",
                    "-q",
                    "-w",
                    f"net.ipv6.conf.{key}.keep_addr_on_down=1",
                    f"net.ipv6.conf.{key}.accept_dad=0",
                ],
                check=True,
            )

    def _add_link(self, spec: LinkSpec) -> None:
        for name in (spec.a, spec.b):
            if name not in self.nodes:
                self._add_node(name)
        link = Link(self, len(self.links), self.nodes[spec.a], self.nodes[spec.b], spec.options)
        self.links.append(link)
        link._setup()

    def _spawn(
        self, argv: Sequence[str], log_path: Path, cwd: Path, env: Mapping[str, str] | None
    ) -> subprocess.Popen[bytes]:
        if self._closed:
            raise TopologyError("topology is closed")
        full_env = dict(os.environ)
        full_env["PYTHONUNBUFFERED"] = "1"
        full_env.update(env or {})
        with log_path.open("ab") as log:
            proc = subprocess.Popen(
                list(argv),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=cwd,
                env=full_env,
                start_new_session=True,
            )
        self._procs.append(proc)
        return proc

    # daemons -----------------------------------------------------------------------------
    def start(
        self, names: Iterable[str] | None = None, *, wait: bool = True, timeout: float | None = None
    ) -> None:
        """Start the daemons of ``names`` (default: all not running) and wait for readiness."""
        selected = (
            list(names)
            if names is not None
            else [n for n, node in self.nodes.items() if not node.running]
        )
        for name in selected:
            self.node(name).start()
        if wait:
            self.wait_ready(selected, timeout)

    def wait_ready(self, names: Iterable[str] | None = None, timeout: float | None = None) -> None:
        """Wait until every named daemon's API answers 200; fail fast if one exits."""
        pending = list(names) if names is not None else list(self.nodes)
        timeout = self.ready_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while pending:
            for name in list(pending):
                node = self.node(name)
                if node.proc is not None and node.proc.poll() is not None:
                    raise TopologyError(
                        f"daemon {name} exited with code {node.proc.returncode} before its API "
                        f"was ready; command: {shlex.join(node.daemon_argv())}\n"
                        f"--- {name} log tail ---\n{node.log_tail()}"
                    )
                if node.ready():
                    pending.remove(name)
            if not pending:
                return
            if time.monotonic() > deadline:
                raise TopologyError(
                    f"daemons {pending} not ready ({READY_PATH} != 200) after {timeout}s\n"
                    + self.log_tails(names=pending)
                )
            time.sleep(0.2)

    # access ------------------------------------------------------------------------------
    def node(self, name: str) -> Node:
        try:
            return self.nodes[name]
        except KeyError:
            raise KeyError(f"no node {name!r} (have {sorted(self.nodes)})") from None

    def link(self, a: str, b: str) -> Link:
        """The (first) link between ``a`` and ``b``, in either direction."""
        for link in self.links:
            if {link.a.name, link.b.name} == {a, b}:
                return link
        raise KeyError(f"no link {a}-{b}")

    @property
    def namespaces(self) -> list[str]:
        return list(self._namespaces)

    def wait_until(
        self,
        predicate: Callable[[], T],
        timeout: float = 30.0,
        interval: float = 0.2,
        message: str = "",
        *,
        pause: Callable[[float], None] = time.sleep,
        context: Callable[[], str] | None = None,
    ) -> T:
        """Poll ``predicate`` until it returns something truthy, and return that.

        An exception raised by the predicate counts as "not yet"; between polls ``pause(interval)``
        runs (a caller pumping its own events passes its pump). On timeout raise TopologyTimeout
        with the last value or exception and ``context()`` (by default every node's log tail).
        """
        deadline = time.monotonic() + timeout
        last: object = None
        while True:
            try:
                value = predicate()
                if value:
                    return value
                last = value
            except Exception as exc:
                last = exc
            if time.monotonic() >= deadline:
                what = message or getattr(predicate, "__name__", "condition")
                raise TopologyTimeout(
                    f"timed out after {timeout}s waiting for {what}; last: {last!r}\n"
                    + (context or self.log_tails)()
                )
            pause(interval)

    def describe(self) -> str:
        lines = [f"topology {self.id} in {self.workdir}"]
        for node in self.nodes.values():
            state = f"pid {node.pid}" if node.running else "not running"
            lines.append(f"  {node.name}: ns={node.ns} overlay={node.address} {state}")
        lines.extend(f"  {link!r}" for link in self.links)
        return "\n".join(lines)

    def log_tails(self, lines: int = 40, names: Iterable[str] | None = None) -> str:
        """Every (named) node's daemon log tail, and the delay lines' tails."""
        parts = [self.describe()]
        for name in names if names is not None else self.nodes:
            node = self.node(name)
            parts.append(f"--- {name} ({node.ns}) daemon log tail ---\n{node.log_tail(lines)}")
        for link in self.links:
            if link.delayed:
                parts.append(
                    f"--- link {link.a.name}-{link.b.name} delay line ---\n"
                    f"{link.proxy_log_tail(10)}"
                )
        return "\n".join(parts)

    # teardown ----------------------------------------------------------------------------
    def close(self) -> None:
        """Kill every process and delete every namespace (and so every veth). Idempotent."""
        if self._closed:
            return
        self._closed = True
        try:
            for proc in self._procs:
                with contextlib.suppress(Exception):
                    kill_tree(proc, signal.SIGKILL, wait=10)
            for ns in self._namespaces:
                with contextlib.suppress(Exception):
                    _kill_namespace(ns)
        finally:
            with _LIVE_LOCK:
                _LIVE.discard(self)

    def __enter__(self) -> Topology:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Topology {self.id} nodes={list(self.nodes)} links={len(self.links)}>"


#: Type of the pytest ``topology`` fixture: ``topology(desc, **build_kwargs) -> Topology``.
TopologyFactory = Callable[..., Topology]
