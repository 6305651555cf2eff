"""The Magnet-style IRC network on hyphal, built in network namespaces: one module for the demo
script (``run.py``) and the netns test (``tests/netns/test_irc_network.py``).

The layout (every box is a network namespace; every server runs a real hyphal daemon with a TUN
device, and InspIRCd where it says so)::

    user_eu -- ingr_eu -- leaf_eu ---+                 +--- leaf_us -- ingr_us -- user_us
      (no hyphal) (hyphal)  (hyphal,   \\               /   (hyphal,     (hyphal)  (no hyphal)
                            InspIRCd)   +--- hub -----+     InspIRCd)
                                            (hyphal, InspIRCd)

* The hyphal links are the lines between servers; ``user_*`` namespaces have only a veth to
  their region's ingress (its "public" address) and no route anywhere else.
* Each leaf's InspIRCd links to the hub's over hyphal overlay addresses (``<link>`` and
  ``<autoconnect>`` in ``leaf.conf``); the hub accepts any ``*.leaf.irc.example`` from 400::/7.
* Clients reach a leaf through its ``hook="haproxy"`` bind, which expects a PROXY v2 header.
  :meth:`MagnetNetwork.connect_with_header` writes that header by hand from the ingress
  namespace (what the ingress will do); :meth:`MagnetNetwork.connect_via_ingress` connects
  from a user namespace to the region's hyphal ingress, which writes it.

The IRC users are the ``irc`` library's connections (jaraco/irc), all on one reactor, their
sockets opened inside the right namespace (``setns`` around the connect: a socket belongs to
the namespace it was created in).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import secrets
import signal
import socket
import struct
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path
from typing import Any, TypeVar

import irc.client

from hyphal.testing.netlab import Node, Topology, TopologyError, has_route, kill_tree

T = TypeVar("T")

CONF_DIR = Path(__file__).resolve().parent
INSPIRCD = "/usr/sbin/inspircd"
REGIONS = ("eu", "us")
HUB_SERVER = "hub.irc.example"
CLIENT_PORT = 6667
"""The leaves' PROXY v2 (``hook="haproxy"``) client port, and the ingress's public port."""
OPER_PORT = 6668
"""A plain client port on 127.0.0.1 of each server, for operators on the machine itself."""
SERVER_PORT = 7000
CHANNEL = "#magnet"
SERVICE = "irc"
HEALTH_INTERVAL = 0.5
"""Seconds between health checks of each leaf (short, for the test and the demo)."""
RISE = 2
FALL = 2

#: hyphal links: leaves to the hub, each ingress to its region's leaf, each user to its ingress
#: (the user namespaces run no daemon: their "link" is just the veth to the ingress).
TOPOLOGY = "leaf_eu-hub leaf_us-hub ingr_eu-leaf_eu ingr_us-leaf_us user_eu-ingr_eu user_us-ingr_us"
HYPHAL_NODES = ("hub", "leaf_eu", "leaf_us", "ingr_eu", "ingr_us")


def leaf_server(region: str) -> str:
    """The InspIRCd server name of a region's leaf."""
    return f"{region}.leaf.irc.example"


# ---------------------------------------------------------------------------------------------
# namespaces and the PROXY v2 header

_CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextlib.contextmanager
def in_netns(ns: str) -> Iterator[None]:
    """Run the body with this thread in network namespace ``ns`` (``ip netns`` name)."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(own)
    finally:
        os.close(target)
        os.close(own)


PROXY_V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_v2_header(src: tuple[str, int], dst: tuple[str, int]) -> bytes:
    """A PROXY protocol v2 PROXY-command header for a TCP connection from ``src`` to ``dst``
    (both IPv4 or both IPv6), as an ingress writes it before the client's first byte."""
    s, d = ip_address(src[0]), ip_address(dst[0])
    if s.version != d.version:
        raise ValueError(f"PROXY v2 needs one family for both ends, got {s} and {d}")
    family = 0x11 if isinstance(s, IPv4Address) else 0x21  # TCP over IPv4 / IPv6
    body = s.packed + d.packed + struct.pack("!HH", src[1], dst[1])
    return PROXY_V2_SIGNATURE + bytes([0x21, family]) + struct.pack("!H", len(body)) + body


# ---------------------------------------------------------------------------------------------
# InspIRCd


class IrcServer:
    """One InspIRCd (``--nofork --runasroot``) in a namespace, configured by environment."""

    def __init__(self, node: Node, server_name: str, conf: str, env: dict[str, str]) -> None:
        self.node = node
        self.name = server_name
        self.conf = CONF_DIR / conf
        self.state_dir = node.dir / "inspircd"
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.env = {
            "IRC_CONF_DIR": str(CONF_DIR),
            "IRC_STATE_DIR": str(self.state_dir),
            "IRC_SERVER_NAME": server_name,
            "IRC_OVERLAY_ADDR": str(node.address),
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def log_name(self) -> str:
        return f"inspircd-{self.starts}.out"

    def start(self) -> None:
        if self.running:
            raise TopologyError(f"{self.name}: InspIRCd already running")
        self.starts += 1
        argv = [INSPIRCD, "--config", str(self.conf), "--nofork", "--runasroot"]
        self.proc = self.node.popen(argv, self.log_name, env=self.env)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM) -> None:
        """Stop InspIRCd (SIGTERM: it closes its sockets, as a crash or ``systemctl stop`` does)."""
        if self.proc is not None:
            kill_tree(self.proc, sig, wait=10)

    def listening(self, port: int) -> bool:
        return self.node.listening(port)

    def log_tail(self, lines: int = 30) -> str:
        out = self.node.dir / self.log_name
        ircd = self.state_dir / "ircd.log"
        parts = []
        for path in (out, ircd):
            try:
                text = path.read_text(errors="replace").splitlines()
            except FileNotFoundError:
                text = ["(none)"]
            parts.append(f"--- {self.name} {path.name} ---\n" + "\n".join(text[-lines:]))
        return "\n".join(parts)


# ---------------------------------------------------------------------------------------------
# IRC users


@dataclass
class IrcUser:
    """One IRC connection of the ``irc`` library and every event it received."""

    nick: str
    conn: irc.client.ServerConnection
    events: list[irc.client.Event] = field(default_factory=list)

    def of_type(self, kind: str) -> list[irc.client.Event]:
        return [e for e in self.events if e.type == kind]

    @property
    def welcomed(self) -> bool:
        return bool(self.of_type("welcome"))

    @property
    def server(self) -> str | None:
        """The server that welcomed us (``001``'s source): which leaf we landed on."""
        welcome = self.of_type("welcome")
        return str(welcome[0].source) if welcome else None

    @property
    def connected(self) -> bool:
        return bool(self.conn.is_connected())

    def said(self, text: str, target: str = CHANNEL) -> list[irc.client.Event]:
        """Channel (or private) messages with ``text`` we received for ``target``."""
        return [
            e
            for e in self.events
            if e.type in ("pubmsg", "privmsg") and e.target == target and text in e.arguments
        ]


class MagnetNetwork:
    """The whole network: topology, hyphal daemons, InspIRCd servers and IRC users.

    ``build()`` creates and starts everything up to linked IRC servers; ``close()`` tears it all
    down (also when ``build()`` fails half-way). Use as a context manager.
    """

    def __init__(self, topo: Topology) -> None:
        self.topo = topo
        self.password = secrets.token_hex(12)
        self.servers: dict[str, IrcServer] = {}
        self.reactor = irc.client.Reactor()
        self.reactor.add_global_handler("all_events", self._on_event, -100)
        self.users: dict[irc.client.ServerConnection, IrcUser] = {}
        self._oper: IrcUser | None = None

    # construction ----------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        topology: Callable[..., Topology] | None = None,
        *,
        workdir: Path | None = None,
        start_irc: bool = True,
    ) -> MagnetNetwork:
        """Namespaces, veths and hyphal daemons (with TUN, ``--region`` per region), routes
        between all servers, then InspIRCd on the hub and both leaves, linked.

        ``topology`` is the netns tests' fixture (it closes what it built); without it a
        Topology is built here and :meth:`close` removes it.
        """
        node_args: dict[str, list[str]] = {"hub": ["--name", "hub", "--region", "core"]}
        for region in REGIONS:
            node_args[f"leaf_{region}"] = ["--name", f"leaf-{region}", "--region", region]
            node_args[f"ingr_{region}"] = ["--name", f"ingress-{region}", "--region", region]
        kwargs: dict[str, Any] = {"tun": True, "node_args": node_args}
        if topology is not None:
            topo = topology(TOPOLOGY, **kwargs)
        else:
            topo = Topology.build(TOPOLOGY, workdir=workdir, **kwargs)
        net = cls(topo)
        try:
            topo.start(HYPHAL_NODES)
            net.wait_routes()
            if start_irc:
                net.start_irc()
        except BaseException:
            net.close()
            raise
        return net

    def node(self, name: str) -> Node:
        return self.topo.node(name)

    def wait_routes(self, timeout: float = 30) -> None:
        """Until every hyphal node has a route to every other one."""
        nodes = [self.node(n) for n in HYPHAL_NODES]

        def all_routes() -> bool:
            return all(has_route(a, b) for a in nodes for b in nodes if a is not b)

        self.topo.wait_until(all_routes, timeout=timeout, message="routes between all servers")

    def start_irc(self, timeout: float = 30) -> None:
        """InspIRCd on the hub and the leaves; wait until the hub lists every leaf as linked."""
        hub = self.node("hub")
        self.servers[HUB_SERVER] = IrcServer(
            hub, HUB_SERVER, "hub.conf", {"IRC_LINK_PASSWORD": self.password}
        )
        for region in REGIONS:
            name = leaf_server(region)
            self.servers[name] = IrcServer(
                self.node(f"leaf_{region}"),
                name,
                "leaf.conf",
                {
                    "IRC_LINK_PASSWORD": self.password,
                    "IRC_HUB_NAME": HUB_SERVER,
                    "IRC_HUB_ADDR": str(hub.address),
                },
            )
        for server in self.servers.values():
            server.start()
        for server in self.servers.values():
            self.wait(partial(server.listening, OPER_PORT), timeout, f"{server.name} listening")
        self.wait_linked(timeout=timeout)

    def leaf(self, region: str) -> IrcServer:
        return self.servers[leaf_server(region)]

    # hyphal services and ingress (phase 2) ------------------------------------------------
    def cli_json(self, node: Node, *args: str) -> Any:
        """Run ``hyphal ARGS --json`` in ``node``'s namespace; TopologyError unless it exits 0."""
        result = node.cli(*args, "--json")
        if result.returncode != 0:
            raise TopologyError(
                f"{node.name}: hyphal {' '.join(args)} exited {result.returncode}:\n"
                f"{result.stdout}{result.stderr}"
            )
        return json.loads(result.stdout)

    def grant_irc(self, region: str) -> str:
        """The service owner's grant for the region's leaf to serve ``irc``. The owner here is
        the hub's key (on a real network: whoever runs the IRC network, offline)."""
        hub, leaf = self.node("hub"), self.node(f"leaf_{region}")
        made = self.cli_json(
            hub, "service", "grant", SERVICE, "--to", leaf.public_key, "-k", str(hub.key_file)
        )
        return str(made["grant"])

    def serve_irc(self, region: str) -> None:
        """``hyphal service add irc`` on the region's leaf: checked by TCP connect to 6667
        every HEALTH_INTERVAL s, healthy after RISE passes, unhealthy after FALL failures."""
        self.cli_json(
            self.node(f"leaf_{region}"),
            "service",
            "add",
            SERVICE,
            "--port",
            str(CLIENT_PORT),
            "--check",
            "tcp",
            "--interval",
            str(HEALTH_INTERVAL),
            "--timeout",
            str(HEALTH_INTERVAL),
            "--rise",
            str(RISE),
            "--fall",
            str(FALL),
            "--grant",
            self.grant_irc(region),
        )

    def open_ingress(self, region: str) -> None:
        """``hyphal ingress add`` on the region's ingress node, on its public v4 and v6
        addresses: new connections go to the nearest healthy ``irc`` with a PROXY v2 header."""
        ingress = self.node(f"ingr_{region}")
        for family in (4, 6):
            addr = self.ingress_public_address(region, family)
            listen = f"{addr}:{CLIENT_PORT}" if family == 4 else f"[{addr}]:{CLIENT_PORT}"
            self.cli_json(
                ingress,
                "ingress",
                "add",
                "--listen",
                listen,
                "--service",
                SERVICE,
                "--proxy-protocol",
                "v2",
            )

    def healthy_instances(self, node: str) -> set[str]:
        """Overlay addresses of the ``irc`` instances ``node`` would send new flows to now."""
        body = self.node(node).get(f"/api/v1/services/{SERVICE}")
        return {str(i["address"]) for i in body["instances"] if i.get("usable")}

    def choice(self, node: str) -> str | None:
        """The overlay address of the instance ``node`` chooses for a new flow now, or None."""
        answer = self.node(node).api("GET", f"/api/v1/services/{SERVICE}/choose")
        return str(answer.data["address"]) if answer.status == 200 else None

    def chooses(self, node: str, address: str) -> bool:
        return self.choice(node) == address

    def start_services(self, timeout: float = 30) -> None:
        """Both leaves serve ``irc``, both ingresses listen; wait until each ingress chooses
        its own region's leaf."""
        for region in REGIONS:
            self.serve_irc(region)
        for region in REGIONS:
            self.open_ingress(region)
        for region in REGIONS:
            leaf = str(self.node(f"leaf_{region}").address)
            self.topo.wait_until(
                partial(self.chooses, f"ingr_{region}", leaf),
                timeout=timeout,
                message=f"ingr_{region} choosing its own region's leaf",
            )

    # waiting -----------------------------------------------------------------------------
    def pump(self, seconds: float = 0.0) -> None:
        """Let the reactor read and dispatch for ``seconds`` (at least once)."""
        end = time.monotonic() + seconds
        while True:
            self.reactor.process_once(min(0.05, max(0.0, end - time.monotonic())))
            if time.monotonic() >= end:
                return

    def wait(self, predicate: Callable[[], T], timeout: float = 10.0, what: str = "condition") -> T:
        """Pump IRC events until ``predicate()`` is truthy; TopologyError with logs if not."""
        return self.topo.wait_until(
            predicate, timeout, 0.1, what, pause=self.pump, context=self.describe
        )

    def linked_servers(self) -> set[str]:
        """Server names the hub's LINKS lists now (asked through the hub's operator port)."""
        if self._oper is None or not self._oper.connected:
            self._oper = self.connect_plain("oper", "hub", "127.0.0.1", OPER_PORT)
            self.wait(lambda: self._oper is not None and self._oper.welcomed, 10, "hub oper")
        oper = self._oper
        before = len(oper.of_type("endoflinks"))
        oper.events = [e for e in oper.events if e.type != "links"]
        oper.conn.links()
        self.wait(lambda: len(oper.of_type("endoflinks")) > before, 10, "LINKS reply")
        return {str(e.arguments[0]) for e in oper.of_type("links")}  # 364: server, uplink, info

    def wait_linked(self, servers: set[str] | None = None, timeout: float = 30) -> set[str]:
        """Until the hub's LINKS lists ``servers`` (default: the hub and every leaf)."""
        want = servers if servers is not None else {HUB_SERVER, *map(leaf_server, REGIONS)}

        def linked() -> set[str] | None:
            got = self.linked_servers()
            return got if got >= want else None

        found = self.wait(linked, timeout, f"IRC links {sorted(want)}")
        assert found is not None
        return found

    # users ---------------------------------------------------------------------------------
    def _on_event(self, conn: irc.client.ServerConnection, event: irc.client.Event) -> None:
        user = self.users.get(conn)
        if user is not None and event.type != "all_raw_messages":
            user.events.append(event)

    def _connect(self, nick: str, ns: str, host: str, port: int, header: bytes | None) -> IrcUser:
        def factory(address: tuple[str, int]) -> socket.socket:
            family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
            with in_netns(ns):
                sock = socket.socket(family, socket.SOCK_STREAM)
            try:
                sock.settimeout(10)
                sock.connect(address)
                if header is not None:
                    sock.sendall(header)  # one write, before any IRC byte (the spec's rule)
                sock.settimeout(None)
            except BaseException:
                sock.close()
                raise
            return sock

        conn = self.reactor.server()
        user = IrcUser(nick, conn)
        self.users[conn] = user
        conn.connect(host, port, nick, username=nick, ircname=nick, connect_factory=factory)
        return user

    def connect_plain(self, nick: str, node: str, host: str, port: int) -> IrcUser:
        """A client inside ``node``'s namespace, without a PROXY header (operator ports)."""
        return self._connect(nick, self.node(node).ns, host, port, None)

    def user_address(self, region: str, family: int = 6) -> str:
        """The address of the region's user namespace on its veth to the ingress."""
        link = self.topo.link(f"user_{region}", f"ingr_{region}")
        return link.addr4_a if family == 4 else str(link.addr6_a)

    def ingress_public_address(self, region: str, family: int = 6) -> str:
        """The ingress's "public" address: its end of the veth to the region's users."""
        link = self.topo.link(f"user_{region}", f"ingr_{region}")
        return link.addr4_b if family == 4 else str(link.addr6_b)

    def connect_with_header(
        self, nick: str, region: str, *, family: int = 6, leaf_region: str | None = None
    ) -> IrcUser:
        """What the ingress does, by hand: from the region's ingress namespace, connect to a
        leaf's overlay address and send a PROXY v2 header naming the user namespace's address
        (and a port of its own) as the client and the ingress's public address as dialled."""
        leaf = self.node(f"leaf_{leaf_region or region}")
        src = (self.user_address(region, family), 20000 + secrets.randbelow(40000))
        dst = (self.ingress_public_address(region, family), CLIENT_PORT)
        header = proxy_v2_header(src, dst)
        return self._connect(
            nick, self.node(f"ingr_{region}").ns, str(leaf.address), CLIENT_PORT, header
        )

    def connect_via_ingress(self, nick: str, region: str, *, family: int = 6) -> IrcUser:
        """A user in ``user_<region>`` dialling the region's ingress (its public address)."""
        host = self.ingress_public_address(region, family)
        return self._connect(nick, self.node(f"user_{region}").ns, host, CLIENT_PORT, None)

    def land(
        self, nick: str, region: str, *, family: int = 6, timeout: float = 10.0
    ) -> tuple[IrcUser, float]:
        """Connect through the region's ingress until a server welcomes us (a try that the
        ingress closes, or that gets no welcome in 3 s, is retried): the user and the seconds
        it took from the first try."""
        started = time.monotonic()
        deadline = started + timeout
        last = "no try yet"
        while time.monotonic() < deadline:
            try:
                user = self.connect_via_ingress(nick, region, family=family)
            except irc.client.ServerConnectionError as exc:
                last = f"connect failed: {exc}"
                self.pump(0.1)
                continue
            try_end = min(deadline, time.monotonic() + 3.0)
            while time.monotonic() < try_end and not user.welcomed and user.connected:
                self.pump(0.05)
            if user.welcomed:
                return user, time.monotonic() - started
            last = "closed before a welcome" if not user.connected else "no welcome in 3 s"
            with contextlib.suppress(Exception):
                user.conn.close()
            self.users.pop(user.conn, None)
            self.pump(0.1)
        raise TopologyError(
            f"{nick} got no IRC welcome through ingr_{region} in {timeout}s ({last})\n"
            + self.describe()
        )

    def whois(self, asker: IrcUser, nick: str, timeout: float = 10) -> tuple[str, str]:
        """``(host, server)`` of ``nick`` as ``asker``'s WHOIS shows it (311 and 312)."""
        asker.events = [e for e in asker.events if e.type not in ("whoisuser", "whoisserver")]
        asker.conn.whois([nick])
        self.wait(
            lambda: asker.of_type("whoisuser") and asker.of_type("whoisserver"),
            timeout,
            f"WHOIS {nick} reply to {asker.nick}",
        )
        user_reply = asker.of_type("whoisuser")[0].arguments  # nick, user, host, *, realname
        server_reply = asker.of_type("whoisserver")[0].arguments  # nick, server, info
        return str(user_reply[2]), str(server_reply[1])

    def disconnect_all(self) -> None:
        for user in list(self.users.values()):
            with contextlib.suppress(Exception):
                user.conn.close()
        self.users.clear()
        self._oper = None

    # reporting and teardown ------------------------------------------------------------------
    def describe(self) -> str:
        parts = [self.topo.describe()]
        for user in self.users.values():
            parts.append(
                f"  irc user {user.nick}: server={user.server} connected={user.connected} "
                f"last events={[(e.type, e.arguments[:2]) for e in user.events[-5:]]}"
            )
        for server in self.servers.values():
            parts.append(server.log_tail(15))
        return "\n".join(parts)

    def close(self) -> None:
        self.disconnect_all()
        for server in self.servers.values():
            with contextlib.suppress(Exception):
                server.stop()
        self.topo.close()

    def __enter__(self) -> MagnetNetwork:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def is_overlay(address: str) -> bool:
    """Whether ``address`` is a hyphal overlay address (400::/7)."""
    try:
        addr = ip_address(address)
    except ValueError:
        return False
    return isinstance(addr, IPv6Address) and (addr.packed[0] & 0xFE) == 0x04
