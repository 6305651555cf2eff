"""The DNS server as a node part: names, core, listeners and systemd-resolved, started and
stopped with the node (``node.parts.add(dns_part(...))``).

It listens on the node's TUN address (when there is a TUN) and on ``dns_loopback``
(127.0.0.1 by default), port ``dns_port`` (53). A listener that cannot open is an error in the
log and in ``hyphal dns status``, and the node keeps running: DNS is on by default, and a
machine that already runs a DNS server on that address must still join the mesh.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Mapping
from ipaddress import IPv6Address
from typing import Any

from hyphal.config import NodeConfig
from hyphal.dns.core import REVERSE_ZONES, DnsCore, DnsPolicy
from hyphal.dns.names import (
    MemberDirectory,
    MemberNameBook,
    NameBook,
    ServiceBook,
    StaticNameBook,
    domain_for,
)
from hyphal.dns.resolved import ResolvedLink, Runner, run_command
from hyphal.dns.server import DnsServer
from hyphal.identity import NodeIdentity

log = logging.getLogger("hyphal.dns")


class DnsPart:
    """One node's DNS server (a :class:`hyphal.node.parts.NodePart`)."""

    name = "dns"

    def __init__(
        self,
        config: NodeConfig,
        identity: NodeIdentity,
        book: NameBook,
        clock: Callable[[], float],
        tun_up: Callable[[], bool],
        *,
        policy: DnsPolicy | None = None,
        runner: Runner = run_command,
        services: ServiceBook | None = None,
    ) -> None:
        self.config = config
        self.identity = identity
        self.domain = domain_for(config.network_name, config.dns_domain)
        self.core = DnsCore(
            self.domain, book, clock(), policy, [str(identity.address)], services=services
        )
        self.server = DnsServer(self.core, clock, config.dns_port)
        self.resolved = ResolvedLink(runner)
        self._tun_up = tun_up
        self.addresses: list[str] = []

    async def start(self) -> None:
        tun = not self.config.no_tun and self._tun_up()
        self.addresses = ([str(self.identity.address)] if tun else []) + (
            [self.config.dns_loopback] if self.config.dns_loopback else []
        )
        for address in self.addresses:
            for error in await self.server.listen(address):
                log.error("%s", error)
        up = [k for k, v in self.server.listening.items() if v == "listening"]
        log.info(
            "serving %s and the overlay's reverse zones on %s",
            self.domain,
            ", ".join(up) or "nothing (every listener failed)",
        )
        if tun and self.config.dns_resolved and any(str(self.identity.address) in k for k in up):
            try:
                ifindex = socket.if_nametoindex(self.config.tun_name)
            except OSError as exc:
                log.warning("no interface %s for systemd-resolved: %s", self.config.tun_name, exc)
                return
            await self.resolved.register(
                self.config.tun_name,
                ifindex,
                self.identity.address,
                self.server.bound_port,
                [self.domain, *REVERSE_ZONES],
            )

    async def stop(self) -> None:
        await self.resolved.revert()
        await self.server.close()

    def status(self) -> dict[str, Any]:
        resolved = self.resolved.status
        if self.config.no_tun:
            resolved_state, detail = "off", "no TUN (--no-tun)"
        elif not self.config.dns_resolved:
            resolved_state, detail = "off", "dns_resolved = false in the config"
        else:
            resolved_state, detail = resolved.state, resolved.detail
        return {
            "enabled": True,
            "domain": self.domain,
            "reverseZones": list(REVERSE_ZONES),
            "port": self.server.bound_port,
            "listeners": [
                {
                    "listener": key,
                    "state": "listening" if value == "listening" else "error",
                    "error": None if value == "listening" else value,
                }
                for key, value in self.server.listening.items()
            ],
            "names": len(self.core.book),
            "ttl": self.core.policy.ttl,
            "negativeTtl": self.core.policy.negative_ttl,
            "offlineTtl": self.core.policy.offline_ttl,
            "udpPayload": self.core.policy.udp_payload,
            "rateLimit": {
                "perSource": self.core.policy.limits.rate,
                "burst": self.core.policy.limits.burst,
                "sourcesTracked": len(self.core.limiter),
            },
            "resolved": {"state": resolved_state, "detail": detail, "link": resolved.link},
            "forwarding": None,  # no upstreams: names outside our zones are REFUSED
            "counters": dict(self.counters()),
        }

    def counters(self) -> Mapping[str, int]:
        return {**self.core.counters, **self.server.counters}


def dns_part(
    config: NodeConfig,
    identity: NodeIdentity,
    key_for_prefix: Callable[[bytes], bytes | None],
    clock: Callable[[], float],
    tun_up: Callable[[], bool],
    members: MemberDirectory | None = None,
    services: ServiceBook | None = None,
) -> DnsPart | None:
    """The node's DNS part (None when ``no_dns``): names from the member records when
    ``members`` is given, then the config's static ``[names]`` table and our own name; service
    names (``NAME.svc``, ``_NAME._tcp.svc``, ``NAME.vip``) when ``services`` is given.

    A name is reachable while the router has a route to its /64."""
    if config.no_dns:
        return None

    def reachable(address: IPv6Address) -> bool:
        return key_for_prefix(address.packed[:8]) is not None

    if members is None:
        book: NameBook = StaticNameBook(
            config.member_name, identity.address, config.names, reachable
        )
    else:  # our own name is in our own member record
        static = StaticNameBook(None, identity.address, config.names, reachable)
        book = MemberNameBook(members, static, reachable, identity.address)
    return DnsPart(config, identity, book, clock, tun_up, services=services)
