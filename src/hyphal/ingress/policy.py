"""The policy routing transparent unwrap needs, set up with pyroute2 and taken down again.

A backend's replies to a spoofed client address must come back to our transparent socket, not
leave the machine: packets from the backend's address that arrive on ``lo`` look up a table in
which every destination is local (``ip rule add from 127.0.0.1 iif lo table T``;
``ip route add local 0.0.0.0/0 dev lo table T``, and the same for IPv6). Adding is idempotent
(an existing rule or route is reused) and counted, so two listeners on one backend address
share the rule and the last one to stop removes it. pyroute2's synchronous API runs an event
loop of its own, so netlink work runs in a thread (``asyncio.to_thread``).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections import Counter
from ipaddress import ip_address
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

log = logging.getLogger("hyphal.ingress")
RULE_PRIORITY = 1066


class PolicyRouting:
    def __init__(self) -> None:
        self._held: Counter[tuple[str, int]] = Counter()
        self._ours: set[tuple[str, int]] = set()

    async def acquire(self, backend_ip: str, table: int) -> None:
        """Route replies from ``backend_ip`` on lo back to local sockets via ``table``."""
        key = (backend_ip, table)
        if self._held[key] == 0:
            added = await asyncio.to_thread(_install, backend_ip, table)
            if added:
                self._ours.add(key)
        self._held[key] += 1

    async def release(self, backend_ip: str, table: int) -> None:
        key = (backend_ip, table)
        if self._held[key] <= 0:
            return
        self._held[key] -= 1
        if self._held[key] == 0:
            del self._held[key]
            if key in self._ours:
                self._ours.discard(key)
                await asyncio.to_thread(_remove, backend_ip, table)

    def status(self) -> list[dict[str, Any]]:
        return [
            {"from": ip, "table": table, "users": n, "ours": (ip, table) in self._ours}
            for (ip, table), n in sorted(self._held.items())
        ]


def _family(ip: str) -> tuple[int, int, str]:
    v6 = ip_address(ip).version == 6
    return (socket.AF_INET6, 128, "::") if v6 else (socket.AF_INET, 32, "0.0.0.0")


def _install(backend_ip: str, table: int) -> bool:
    """Add the rule and the local route unless present; True if we added either."""
    family, _, default = _family(backend_ip)
    added = False
    with IPRoute() as ipr:
        lo = ipr.link_lookup(ifname="lo")[0]
        rules = ipr.get_rules(family=family)
        if not any(
            r.get("table") == table
            and r.get_attr("FRA_SRC") == backend_ip
            and r.get_attr("FRA_IIFNAME") == "lo"
            for r in rules
        ):
            _rule(ipr, "add", backend_ip, table)
            added = True
        try:
            ipr.route("add", **_local_route(default, lo, table, family))
            added = True
        except NetlinkError as exc:
            if exc.code != 17:  # EEXIST: someone (or an earlier run of ours) set it up
                if added:
                    _rule(ipr, "del", backend_ip, table)
                raise
    log.info(
        "transparent unwrap: replies from %s on lo go to local sockets (rule + table %d)",
        backend_ip,
        table,
    )
    return added


def _remove(backend_ip: str, table: int) -> None:
    family, _, default = _family(backend_ip)
    with IPRoute() as ipr:
        lo = ipr.link_lookup(ifname="lo")[0]
        try:
            _rule(ipr, "del", backend_ip, table)
        except NetlinkError as exc:
            log.warning("could not remove the policy rule for %s: %s", backend_ip, exc)
        try:
            ipr.route("del", **_local_route(default, lo, table, family))
        except NetlinkError as exc:
            if exc.code not in (2, 3):  # ENOENT/ESRCH: already gone
                log.warning("could not remove table %d's local route: %s", table, exc)


def _local_route(default: str, lo: int, table: int, family: int) -> dict[str, Any]:
    """``local default dev lo table T`` (scope host, as ``ip route`` makes it for IPv4)."""
    route: dict[str, Any] = {
        "dst": default,
        "dst_len": 0,
        "type": "local",
        "oif": lo,
        "table": table,
        "family": family,
    }
    if family == socket.AF_INET:
        route["scope"] = 254
    return route


def _rule(ipr: Any, action: str, backend_ip: str, table: int) -> None:
    """Add or delete ``from BACKEND iif lo lookup TABLE`` (our priority)."""
    family, plen, _ = _family(backend_ip)
    ipr.rule(
        action,
        family=family,
        table=table,
        priority=RULE_PRIORITY,
        src=backend_ip,
        src_len=plen,
        iifname="lo",
    )
