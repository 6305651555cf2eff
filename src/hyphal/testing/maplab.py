"""The mapping lab: a small "internet" of Linux routers in network namespaces.

::

                   +-- R2a --+
    W1 --+         |         |
         +-- R1 ---+         +-- R3 (ICMP rate-limited) -- S (silent) -- R4 -- T
    W2 --+         |         |
                   +-- R2b --+

* Every router forwards IPv4 and IPv6. R1 (and R3, on the way back) has two equal-cost next
  hops hashed on the 5-tuple (see ``HASH_POLICY``): flows are spread by their L4 ports, so a classic
  UDP traceroute (a new destination port per probe) sees R2a and R2b at TTL 2, a Paris one only
  one of them per flow id.
* R3 rate-limits its ICMP errors (``icmp_ratelimit``, ``net.ipv6.icmp.ratelimit``); every other
  router answers without a limit so the assertions are exact.
* S forwards but never answers: a ``tc`` filter drops every ICMP packet it originates.
* T holds the targets: ``198.19.0.1`` and ``2001:db8:ff::1`` (and ``198.19.0.1-.40``,
  ``198.19.1.2-.40`` and ``2001:db8:ff:1::2-:28`` as extra targets in two /24s and one /48,
  and every address of ``198.19.128.0/17``: 128 /24s for benchmarks).
* W1 and W2 are the workers' namespaces; a caller may pass existing namespaces for them (the
  namespaces of hyphal daemons built by :mod:`hyphal.testing.netlab`), so the workers are also
  overlay nodes.

Addresses come only from 198.18.0.0/15 and 2001:db8::/32. No namespace has a default route or
any route outside those ranges (:meth:`MapLab.assert_closed` checks it). Everything the lab
created is removed by :meth:`MapLab.close`; namespaces are named ``hyt-<pid>-...`` so
:func:`hyphal.testing.netlab.reap_stale_namespaces` removes what a killed run left.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import secrets
import subprocess
import sys
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from hyphal.testing.netlab import NS_PREFIX, TopologyError, run

ROUTERS = ("R1", "R2a", "R2b", "R3", "S", "R4")
TARGET4 = "198.19.0.1"
TARGET6 = "2001:db8:ff::1"
LAB_NETS = (ipaddress.ip_network("198.18.0.0/15"), ipaddress.ip_network("2001:db8::/32"))
LAB_ALLOW = ("--allow", "198.18.0.0/15", "--allow", "2001:db8::/32")
"""The worker's and ``map trace``'s flags that let them probe the lab's (non-global) nets."""


def local_trace_argv(target: str, *extra: str, wait: str = "0.4") -> list[str]:
    """``hyphal map trace TARGET --from local --json -q 1 -w WAIT`` (this Python, the lab's nets
    allowed), then ``extra``: run it in a worker's namespace."""
    return [
        *(sys.executable, "-m", "hyphal", "map", "trace", target, "--from", "local", "--json"),
        *("-q", "1", "-w", wait, *LAB_ALLOW, *extra),
    ]


# (a, b): a is ".1" / "::1", b is ".2" / "::2" on link i
_LINKS: tuple[tuple[str, str], ...] = (
    ("R1", "W1"),
    ("R1", "R2a"),
    ("R1", "R2b"),
    ("R2a", "R3"),
    ("R2b", "R3"),
    ("R3", "S"),
    ("S", "R4"),
    ("R1", "W2"),
)
_TARGET_LINK = 9  # R4 - T: 198.19.0.0/24 and 2001:db8:ff::/64
EXTRA_TARGETS = 40
ANYIP4 = "198.19.128.0/17"
# ECMP hashing on the 5-tuple. Policy 1 ("L4") would be the obvious choice, but Linux lets it
# reuse an skb's existing L4 hash, and a veth carries the *sender's* socket hash
# (sk_txhash, random per socket and re-drawn on connect()) into the router's namespace: with
# policy 1 a lab router hashes per sending socket, not per flow. Policy 3 (custom) with the
# fields src/dst address, protocol, src/dst port always dissects the packet: the hash a real
# router computes on the wire.
HASH_POLICY = 3
HASH_FIELDS = 0x0037


@dataclass
class MapLab:
    tag: str
    namespaces: dict[str, str] = field(default_factory=dict)  # node -> netns name
    owned: set[str] = field(default_factory=set)  # namespaces we created (and delete)
    addresses: dict[str, set[str]] = field(default_factory=dict)  # node -> its addresses
    worker_addr4: dict[str, str] = field(default_factory=dict)
    worker_addr6: dict[str, str] = field(default_factory=dict)

    # --- building -----------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        workers: Mapping[str, str] | None = None,
        *,
        rate_limited_ms: int = 500,
    ) -> MapLab:
        """Build the lab. ``workers`` maps "W1"/"W2" to existing namespaces to attach."""
        lab = cls(tag=secrets.token_hex(2))
        try:
            lab._build(dict(workers or {}), rate_limited_ms)
        except BaseException:
            lab.close()
            raise
        return lab

    def ns(self, node: str) -> str:
        return self.namespaces[node]

    def exec(
        self, node: str, argv: Sequence[str], *, check: bool = True, timeout: float = 30
    ) -> subprocess.CompletedProcess[str]:
        return run(["ip", "netns", "exec", self.ns(node), *argv], check=check, timeout=timeout)

    def _sysctl(self, node: str, **values: str | int) -> None:
        args = [f"{k.replace('__', '/')}={v}" for k, v in values.items()]
        self.exec(node, ["sysctl", "-q", "-w", *args])

    def _build(self, workers: dict[str, str], rate_limited_ms: int) -> None:
        nodes = [*ROUTERS, "T", "W1", "W2"]
        for node in nodes:
            if node in workers:
                self.namespaces[node] = workers[node]
                continue
            name = f"{NS_PREFIX}-{os.getpid()}-m{self.tag}-{node}"
            run(["ip", "netns", "add", name])
            self.namespaces[node] = name
            self.owned.add(name)
            self.exec(node, ["ip", "link", "set", "lo", "up"])
        for node in nodes:
            self.addresses[node] = set()
        for node in [*ROUTERS, "T"]:
            self._sysctl(
                node,
                net__ipv4__ip_forward=1,
                net__ipv6__conf__all__forwarding=1,
                net__ipv4__fib_multipath_hash_policy=HASH_POLICY,
                net__ipv6__fib_multipath_hash_policy=HASH_POLICY,
                net__ipv4__fib_multipath_hash_fields=HASH_FIELDS,
                net__ipv6__fib_multipath_hash_fields=HASH_FIELDS,
                net__ipv4__icmp_ratelimit=0,
                net__ipv6__icmp__ratelimit=0,
                net__ipv4__icmp_errors_use_inbound_ifaddr=1,
                net__ipv4__icmp_msgs_per_sec=100000,
            )
        for node in nodes:
            self._sysctl(
                node, net__ipv6__conf__all__accept_dad=0, net__ipv6__conf__default__accept_dad=0
            )
        for w in ("W1", "W2"):
            self._sysctl(w, net__ipv4__ping_group_range="0 2147483647")
        self._sysctl(
            "R3",
            net__ipv4__icmp_ratelimit=rate_limited_ms,
            net__ipv6__icmp__ratelimit=rate_limited_ms,
        )
        links = [*_LINKS, ("R4", "T")]
        for i, (a, b) in enumerate(links):
            index = _TARGET_LINK if (a, b) == ("R4", "T") else i
            self._link(index, a, b)
        # extra targets on T (host routes via T's link address at R4)
        ta = self.namespaces["T"]
        del ta
        for k in range(2, EXTRA_TARGETS + 1):
            self.exec("T", ["ip", "addr", "add", f"198.19.0.{k}/32", "dev", "lo"])
            self.exec("T", ["ip", "addr", "add", f"198.19.1.{k}/32", "dev", "lo"])
            self.exec(
                "T", ["ip", "-6", "addr", "add", f"2001:db8:ff:1::{k:x}/128", "dev", "lo", "nodad"]
            )
        self.addresses["T"].update({f"198.19.0.{k}" for k in range(2, EXTRA_TARGETS + 1)})
        # every address of ANYIP4 (128 /24s) is T's: many prefixes for benchmarks
        self.exec("T", ["ip", "route", "add", "local", ANYIP4, "dev", "lo"])
        self._routes()
        self._silence("S")

    def _ifname(self, index: int, side: str) -> str:
        return f"m{self.tag}{index}{side}"

    def _link(self, index: int, a: str, b: str) -> None:
        ia, ib = self._ifname(index, "a"), self._ifname(index, "b")
        run(
            [
                "ip",
                "link",
                "add",
                ia,
                "netns",
                self.ns(a),
                "type",
                "veth",
                "peer",
                "name",
                ib,
                "netns",
                self.ns(b),
            ]
        )
        if index == _TARGET_LINK:
            nets4, nets6 = "198.19.0", "2001:db8:ff::"
            addr4 = {a: f"{nets4}.254", b: f"{nets4}.1"}
            addr6 = {a: f"{nets6}fe", b: f"{nets6}1"}
        else:
            addr4 = {a: f"198.18.{index}.1", b: f"198.18.{index}.2"}
            addr6 = {a: f"2001:db8:{index:x}::1", b: f"2001:db8:{index:x}::2"}
        addr6 = {node: str(ipaddress.ip_address(addr)) for node, addr in addr6.items()}
        for node, dev in ((a, ia), (b, ib)):
            self.exec(node, ["ip", "addr", "add", f"{addr4[node]}/24", "dev", dev])
            self.exec(node, ["ip", "-6", "addr", "add", f"{addr6[node]}/64", "dev", dev, "nodad"])
            self.exec(node, ["ip", "link", "set", dev, "up"])
            self.addresses[node].update({addr4[node], addr6[node]})
            if node in ("W1", "W2"):
                self.worker_addr4[node] = addr4[node]
                self.worker_addr6[node] = addr6[node]
        self._adj.setdefault(a, []).append((b, index, addr4[b], addr6[b], ia))
        self._adj.setdefault(b, []).append((a, index, addr4[a], addr6[a], ib))

    @property
    def _adj(self) -> dict[str, list[tuple[str, int, str, str, str]]]:
        if not hasattr(self, "_adjacency"):
            self._adjacency: dict[str, list[tuple[str, int, str, str, str]]] = {}
        return self._adjacency

    def _distances(self, src: str) -> dict[str, int]:
        dist = {src: 0}
        queue = deque([src])
        while queue:
            node = queue.popleft()
            for other, *_ in self._adj.get(node, []):
                if other not in dist:
                    dist[other] = dist[node] + 1
                    queue.append(other)
        return dist

    def _routes(self) -> None:
        """Shortest-path routes to every link prefix, with every equal-cost next hop (ECMP)."""
        prefixes: dict[int, tuple[str, str, set[str]]] = {}
        for node, edges in self._adj.items():
            for other, index, *_ in edges:
                net4 = "198.19.0.0/24" if index == _TARGET_LINK else f"198.18.{index}.0/24"
                net6 = "2001:db8:ff::/64" if index == _TARGET_LINK else f"2001:db8:{index}::/64"
                prefixes.setdefault(index, (net4, net6, set()))[2].update({node, other})
        extra = {"T": ["198.19.1.0/24", "2001:db8:ff:1::/64", ANYIP4]}
        dists = {n: self._distances(n) for n in self._adj}
        for node in self._adj:
            routes: list[tuple[str, set[str]]] = []
            for net4, net6, ends in prefixes.values():
                if node in ends:
                    continue
                routes += [(net4, ends), (net6, ends)]
            if node != "T":
                routes += [(p, {"T"}) for p in extra["T"]]
                if node not in ("R4",):
                    pass
            for prefix, ends in routes:
                best = min(dists[e][node] for e in ends)
                hops = [
                    (other, a4, a6, dev)
                    for other, _i, a4, a6, dev in self._adj[node]
                    if min(dists[e][other] for e in ends) == best - 1
                ]
                v6 = ":" in prefix
                if node in ("W1", "W2", "T"):
                    hops = hops[:1]
                nexthops: list[str] = []
                for _other, a4, a6, dev in hops:
                    nexthops += ["nexthop", "via", a6 if v6 else a4, "dev", dev]
                if len(hops) == 1:
                    cmd = ["ip", "-6" if v6 else "-4", "route", "add", prefix, *nexthops[1:]]
                else:
                    cmd = ["ip", "-6" if v6 else "-4", "route", "add", prefix, *nexthops]
                self.exec(node, cmd)
        # T's extra /24 and /64: reachable at R4 via T
        for _other, _i, a4, a6, dev in [e for e in self._adj["R4"] if e[0] == "T"]:
            del _other, _i
            self.exec("R4", ["ip", "route", "replace", "198.19.1.0/24", "via", a4, "dev", dev])
            self.exec(
                "R4", ["ip", "-6", "route", "replace", "2001:db8:ff:1::/64", "via", a6, "dev", dev]
            )

    def _silence(self, node: str) -> None:
        """``node`` forwards but never answers: its ICMP error rate limit is one per ~27 hours.

        Linux starts a new destination's ICMP token bucket at most 60 s full, so with a limit
        far above that not even the first error leaves (IPv4 and IPv6 alike). ``tc`` actions
        are not available on every kernel, the sysctls are.
        """
        self._sysctl(
            node, net__ipv4__icmp_ratelimit=100_000_000, net__ipv6__icmp__ratelimit=100_000_000
        )

    # --- what the lab knows --------------------------------------------------------------------

    def owner(self, address: str) -> str | None:
        """The lab node that holds ``address``."""
        try:
            address = str(ipaddress.ip_address(address))
        except ValueError:
            return None
        for node, addrs in self.addresses.items():
            if address in addrs:
                return node
        return None

    def true_hops(self, worker: str = "W1") -> list[set[str]]:
        """The routers at each TTL from a worker to T (a set where ECMP offers two)."""
        del worker
        return [{"R1"}, {"R2a", "R2b"}, {"R3"}, {"S"}, {"R4"}, {"T"}]

    def assert_closed(self) -> None:
        """No namespace has a route outside the lab ranges (no default route, no way out)."""
        for node, ns in self.namespaces.items():
            for family in ("-4", "-6"):
                out = run(
                    ["ip", "netns", "exec", ns, "ip", family, "route", "show", "table", "main"]
                ).stdout
                for line in out.splitlines():
                    if not line.strip() or line[0].isspace():
                        continue  # an ECMP route's "nexthop" lines
                    dest = line.split()[0]
                    if dest == "default":
                        raise TopologyError(f"{node} has a default route: {line}")
                    if dest in ("fe80::/64", "multicast", "local", "unreachable", "blackhole"):
                        continue
                    net = ipaddress.ip_network(dest, strict=False)
                    if (
                        not any(
                            net.version == lab.version and net.subnet_of(lab)  # type: ignore[arg-type]
                            for lab in LAB_NETS
                        )
                        and node in self.owned_nodes()
                    ):
                        raise TopologyError(f"{node} routes outside the lab: {line}")
            probe = run(["ip", "netns", "exec", ns, "ip", "route", "get", "192.0.2.1"], check=False)
            if probe.returncode == 0 and node in self.owned_nodes():
                raise TopologyError(f"{node} has a route to 192.0.2.1: {probe.stdout.strip()}")

    def owned_nodes(self) -> set[str]:
        return {n for n, ns in self.namespaces.items() if ns in self.owned}

    def count(self, node: str, counter: str) -> int:
        """A kernel SNMP counter (``nstat``) in a node's namespace, e.g. ``IcmpInEchos``."""
        out = self.exec(node, ["nstat", "-az", "--json", counter]).stdout
        import json

        data = json.loads(out)
        return int(next(iter(data.values())).get(counter, 0))

    def close(self) -> None:
        for node, ns in list(self.namespaces.items()):
            if ns in self.owned:
                with contextlib.suppress(Exception):
                    from hyphal.testing.netlab import _kill_namespace

                    _kill_namespace(ns)
            else:  # a borrowed namespace: take our veths out of it
                out = run(["ip", "netns", "exec", ns, "ip", "-o", "link"], check=False).stdout
                for line in out.splitlines():
                    name = line.split(":")[1].strip().split("@")[0]
                    if name.startswith(f"m{self.tag}"):
                        run(["ip", "netns", "exec", ns, "ip", "link", "del", name], check=False)
            del self.namespaces[node]
        self.owned.clear()
