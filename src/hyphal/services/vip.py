"""Service addresses in the dataplane: the bridge's one hook, deciding per packet.

A packet our TUN sends to a service address goes, unchanged (its destination stays the
service address), to the instance its flow is pinned to, sealed end to end for that instance's
key. A new flow is pinned to the nearest healthy instance serving the packet's destination port
(:meth:`ServiceDirectory.instances`, nearest first); :mod:`hyphal.services.flows` keeps the pin
for the flow's life. On the instance's node the kernel owns the service address (the services
address part adds it to the TUN), so the backend answers from it; the reply's source is the
service address, which the client's node accepts only from an authorised instance of that
service, and only from the pinned one when it knows the flow.

Sans-IO: it reads no clock (``now`` is passed in) and sends nothing; it returns what to do
(:class:`~hyphal.dataplane.bridge.ServiceVerdict`) and the bridge does it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from ipaddress import IPv6Address
from typing import Final

from hyphal.dataplane import ipv6
from hyphal.dataplane.bridge import ServiceVerdict
from hyphal.services.directory import Instance, Proto, ServiceDirectory
from hyphal.services.flows import (
    ICMPV6,
    TCP,
    UDP,
    FlowLimits,
    FlowTable,
    PacketFlow,
    flow_key,
    reverse_key,
)

UNREACH_PROHIBITED: Final = 1  # ICMPv6 Destination Unreachable code 1
UNREACH_PORT: Final = 4
REVALIDATE: Final = 1.0
"""Seconds between re-asking the directory whether a flow's instance is still authorised (an
instance whose grant is revoked loses its flows within this, on their next packet)."""

DirectoryFn = Callable[[], ServiceDirectory | None]


class ServiceAddresses:
    """Pins flows to service instances and vets packets from and to service addresses."""

    def __init__(
        self, directory: DirectoryFn, prefix: bytes, limits: FlowLimits | None = None
    ) -> None:
        if len(prefix) != 8:
            raise ValueError("the service prefix is 8 bytes")
        self.prefix = prefix
        self._directory = directory
        self.table = FlowTable(limits)
        self.counters: dict[str, int] = {}
        self._local: dict[bytes, str] = {}  # service address -> name, for services we serve

    # what this node serves -----------------------------------------------------------------------

    def set_local(self, services: Iterable[tuple[bytes, str]]) -> None:
        """The service addresses this node accepts (and may answer from)."""
        self._local = {address: name for address, name in services}

    def local(self) -> dict[bytes, str]:
        return dict(self._local)

    def local_address(self, address: bytes) -> bool:
        return address in self._local

    # TUN -> mesh ---------------------------------------------------------------------------------

    def outbound(self, packet: memoryview, now: float) -> ServiceVerdict:
        """A packet from our TUN to a service address: the key to seal it for, or a refusal."""
        directory = self._directory()
        if directory is None:
            return self._refuse(packet, "service-no-directory", ipv6.UNREACH_NO_ROUTE)
        pf = flow_key(packet)
        if pf is None:
            return self._refuse(packet, "service-unsupported", UNREACH_PROHIBITED)
        table = self.table
        flow = table.lookup(pf, now)
        if flow is not None:
            if now - flow.checked >= REVALIDATE:
                if not directory.is_instance(flow.service, flow.instance):
                    table.fail(flow)
                    return self._lost(packet, pf)
                flow.checked = now
            table.outbound(flow, pf, now)
            return ServiceVerdict(flow.instance, None, "")
        if not table.may_open(pf):
            table.counters["tcp-no-flow"] = table.counters.get("tcp-no-flow", 0) + 1
            return ServiceVerdict(None, ipv6.tcp_reset(packet), "service-no-flow")
        service = directory.service_at(IPv6Address(bytes(packet[24:40])))
        if service is None:
            return self._refuse(packet, "service-unknown", ipv6.UNREACH_ADDRESS)
        instance, code = self._pick(directory, service, pf)
        if instance is None:
            return self._refuse(packet, "service-no-instance", code)
        opened = table.open(pf, service, instance.public_key, now)
        if isinstance(opened, str):
            return self._refuse(packet, f"service-{opened}", UNREACH_PROHIBITED)
        table.outbound(opened, pf, now)
        self._count(f"flow-{_PROTO_NAMES[pf.proto]}")
        return ServiceVerdict(instance.public_key, None, "")

    def lost(self, packet: memoryview, now: float) -> bytes | None:
        """Sealing for the pinned instance found no route: the flow fails (never moves)."""
        pf = flow_key(packet)
        if pf is None:
            return None
        flow = self.table.get(pf.key)
        if flow is not None:
            self.table.fail(flow)
        return self._lost(packet, pf).reply

    @staticmethod
    def _pick(
        directory: ServiceDirectory, service: str, pf: PacketFlow
    ) -> tuple[Instance | None, int]:
        """The nearest healthy instance for a new flow, or None and the unreachable code."""
        if pf.proto == ICMPV6:
            candidates = directory.instances(service, "tcp") + directory.instances(service, "udp")
            if not candidates:
                return None, ipv6.UNREACH_NO_ROUTE
            return min(candidates, key=lambda i: i.metric), 0
        proto: Proto = "tcp" if pf.proto == TCP else "udp"
        candidates = directory.instances(service, proto)
        for instance in candidates:  # nearest first, weighted shuffle among near-equal ones
            if instance.port == pf.dst_port:
                return instance, 0
        return None, (UNREACH_PORT if candidates else ipv6.UNREACH_NO_ROUTE)

    def _lost(self, packet: memoryview, pf: PacketFlow) -> ServiceVerdict:
        self._count("pinned-instance-lost")
        if pf.proto == TCP:
            return ServiceVerdict(None, ipv6.tcp_reset(packet), "service-instance-lost")
        reply = ipv6.destination_unreachable(packet, packet[24:40], ipv6.UNREACH_ADDRESS)
        return ServiceVerdict(None, reply, "service-instance-lost")

    def _refuse(self, packet: memoryview, reason: str, code: int) -> ServiceVerdict:
        reply = ipv6.destination_unreachable(packet, packet[24:40], code)
        return ServiceVerdict(None, reply, reason)

    # mesh -> TUN ---------------------------------------------------------------------------------

    def inbound(self, sender: bytes, packet: memoryview, now: float) -> bool:
        """A packet from the mesh whose source is a service address: genuine only from an
        authorised instance of that service, and from the pinned one if we know the flow."""
        pf = flow_key(packet)
        if pf is not None:
            flow = self.table.get(reverse_key(pf.key))
            if flow is not None:
                if flow.instance != sender:
                    self._count("reply-not-pinned")
                    return False
                self.table.inbound(flow, pf.tcp_flags, now)
                return True
        directory = self._directory()
        if directory is None:
            return False
        service = directory.service_at(IPv6Address(bytes(packet[8:24])))
        return service is not None and directory.is_instance(service, sender)

    def expire(self, now: float) -> int:
        return self.table.expire(now)

    def _count(self, event: str) -> None:
        self.counters[event] = self.counters.get(event, 0) + 1


_PROTO_NAMES = {TCP: "tcp", UDP: "udp", ICMPV6: "echo"}
