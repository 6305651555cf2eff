"""Service addresses as a node part: installs the bridge's hook, and keeps the TUN holding the
address of every service this node serves (``node.parts.add(service_addresses_part(...))``).

On start it puts a :class:`~hyphal.services.vip.ServiceAddresses` on the TUN's bridge; every
:data:`REFRESH` seconds it asks the directory which services this node serves, adds their
addresses to the TUN (``/128``, no duplicate address detection) and removes the ones it no
longer serves, and expires idle flows. Each address is added *deprecated* (preferred lifetime
0): the kernel accepts connections to it and answers from it, but never picks it as the source
of a connection of its own, so the node's other traffic keeps its own address.

Without a TUN (``--no-tun``) there is nothing to hook: the part logs that and stays idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from ipaddress import IPv6Address
from typing import Any, Protocol

from hyphal.dataplane.bridge import IPv6Bridge
from hyphal.services.flows import FlowLimits
from hyphal.services.vip import DirectoryFn, ServiceAddresses

log = logging.getLogger("hyphal.services")

REFRESH = 1.0  # seconds between reconciling the TUN's service addresses
SHOWN_FLOWS = 200  # flows listed in the status (all are counted)
_IFA_F_NODAD = 0x02
_INFINITE = 0xFFFFFFFF


class TunAddresses(Protocol):
    """Adds and removes extra addresses on the node's TUN (blocking: run in a thread)."""

    def add(self, address: IPv6Address) -> None: ...

    def remove(self, address: IPv6Address) -> None: ...


class KernelTunAddresses:
    """The real one: pyroute2 netlink in the daemon's network namespace."""

    def __init__(self, ifname: str) -> None:
        self.ifname = ifname

    def _change(self, command: str, address: IPv6Address) -> None:
        from pyroute2 import IPRoute  # imported lazily, as in dataplane.tun

        with IPRoute() as ipr:
            index = ipr.link_lookup(ifname=self.ifname)[0]
            extra: dict[str, Any] = {}
            if command == "add":
                extra = {"flags": _IFA_F_NODAD, "preferred_lft": 0, "valid_lft": _INFINITE}
            ipr.addr(command, index=index, family=10, address=str(address), prefixlen=128, **extra)

    def add(self, address: IPv6Address) -> None:
        self._change("add", address)

    def remove(self, address: IPv6Address) -> None:
        self._change("del", address)


class ServiceAddressPart:
    """The service addresses of one node (a :class:`hyphal.node.parts.NodePart`)."""

    name = "service_addresses"

    def __init__(
        self,
        bridge: Callable[[], IPv6Bridge | None],
        directory: DirectoryFn,
        prefix: Callable[[], bytes | None],
        clock: Callable[[], float],
        addresses: TunAddresses | None,
        limits: FlowLimits | None = None,
    ) -> None:
        self._bridge = bridge
        self._directory = directory
        self._prefix = prefix
        self._clock = clock
        self._addresses = addresses
        self._limits = limits
        self.hook: ServiceAddresses | None = None
        self.held: dict[IPv6Address, str] = {}  # addresses on the TUN -> their service
        self.errors: dict[str, str] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        bridge = self._bridge()
        prefix = self._prefix()
        if bridge is None or prefix is None:
            log.info("service addresses off: %s", "no TUN" if bridge is None else "no services")
            return
        self.hook = ServiceAddresses(self._directory, prefix, self._limits)
        bridge.services = self.hook
        await self.refresh()
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        bridge = self._bridge()
        if bridge is not None and bridge.services is self.hook:
            bridge.services = None
        for address in list(self.held):
            await self._apply("remove", address)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(REFRESH)
            try:
                await self.refresh()
            except Exception:
                log.exception("refreshing the service addresses failed; retrying")

    async def refresh(self) -> None:
        """Hold exactly the addresses of the services we serve; expire idle flows."""
        hook = self.hook
        if hook is None:
            return
        hook.expire(self._clock())
        directory = self._directory()
        wanted: dict[IPv6Address, str] = {}
        if directory is not None:
            for service in directory.local_services():
                wanted[directory.address_of(service)] = service
        for address in [a for a in self.held if a not in wanted]:
            await self._apply("remove", address)
        for address, service in wanted.items():
            if address not in self.held:
                await self._apply("add", address, service)
        hook.set_local((a.packed, s) for a, s in self.held.items() if a in wanted)

    async def _apply(self, command: str, address: IPv6Address, service: str = "") -> None:
        if command == "remove":
            service = self.held.pop(address, "")
        if self._addresses is not None:
            change = self._addresses.add if command == "add" else self._addresses.remove
            try:
                await asyncio.to_thread(change, address)
            except OSError as exc:
                if command == "add" and getattr(exc, "errno", None) != 17:  # EEXIST: fine
                    self.errors[str(address)] = str(exc)
                    log.error(
                        "cannot add the address %s of service %s to the TUN (%s); this node "
                        "will not answer at it",
                        address,
                        service,
                        exc,
                    )
                    return
        if command == "add":
            self.held[address] = service
            self.errors.pop(str(address), None)
            log.info("serving %s at its service address %s", service, address)
        else:
            log.info("no longer serving %s at %s", service or "a service", address)

    def status(self) -> dict[str, Any]:
        hook = self.hook
        flows = hook.table.flows() if hook is not None else []
        by_state: dict[str, int] = {}
        for flow in flows:
            by_state[flow.state_name] = by_state.get(flow.state_name, 0) + 1
        return {
            "enabled": hook is not None,
            "addresses": [
                {"service": service, "address": str(address)}
                for address, service in sorted(self.held.items())
            ],
            "flows": len(flows),
            "flowsByState": by_state,
            "maxFlows": hook.table.limits.max_flows if hook is not None else 0,
            "pinned": self.flows(SHOWN_FLOWS),
            "errors": dict(self.errors),
        }

    def flows(self, limit: int | None = None) -> list[dict[str, Any]]:
        """The pinned flows (the first ``limit``), for the API."""
        hook = self.hook
        if hook is None:
            return []
        rows = []
        for flow in hook.table.flows()[:limit]:
            key = flow.key
            rows.append(
                {
                    "service": flow.service,
                    "source": str(IPv6Address(key[:16])),
                    "destination": str(IPv6Address(key[16:32])),
                    "proto": {6: "tcp", 17: "udp", 58: "echo"}.get(flow.proto, str(flow.proto)),
                    "sourcePort": int.from_bytes(key[33:35], "big"),
                    "destinationPort": int.from_bytes(key[35:37], "big"),
                    "instance": flow.instance.hex(),
                    "state": flow.state_name,
                    "packets": flow.packets,
                }
            )
        return rows

    def counters(self) -> Mapping[str, int]:
        hook = self.hook
        if hook is None:
            return {}
        return {**hook.table.counters, **hook.counters}


def service_addresses_part(
    bridge: Callable[[], IPv6Bridge | None],
    directory: DirectoryFn,
    prefix: Callable[[], bytes | None],
    clock: Callable[[], float],
    tun_name: str | None,
) -> ServiceAddressPart:
    """The part for a node whose TUN is ``tun_name`` (None: no TUN, addresses are not managed)."""
    addresses = KernelTunAddresses(tun_name) if tun_name else None
    return ServiceAddressPart(bridge, directory, prefix, clock, addresses)
