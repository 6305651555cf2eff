"""Service addresses through the real bridge, forwarder and end-to-end crypto of three nodes.

A client C reaches service "web" at its service address; instances A and B serve it. Packets
pass between the nodes' real forwarders (sealed for the chosen instance, opened there) and land
on each node's TUN, here a list. The directory is a small table the tests change.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from ipaddress import IPv6Address

import pytest

from hyphal.crypto.e2e import E2ECrypto
from hyphal.dataplane import ipv6
from hyphal.dataplane.bridge import IPv6Bridge
from hyphal.dataplane.forwarder import Forwarder
from hyphal.identity import NodeIdentity
from hyphal.services.directory import Instance, Proto
from hyphal.services.flows import TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN, FlowLimits
from hyphal.services.vip import REVALIDATE, ServiceAddresses

PREFIX = bytes.fromhex("04bbccddeeff0011")
VIP = PREFIX + bytes.fromhex("00000000000000aa")
OTHER_VIP = PREFIX + bytes.fromhex("00000000000000bb")


@dataclass
class Directory:
    """The ServiceDirectory seam, answered from a table the test edits."""

    instances_by_service: dict[str, list[Instance]] = field(default_factory=dict)
    authorised: dict[str, set[bytes]] = field(default_factory=dict)

    def instances(self, service: str, proto: Proto = "tcp") -> list[Instance]:
        found = [i for i in self.instances_by_service.get(service, []) if i.proto == proto]
        return sorted(found, key=lambda i: i.metric)

    def choose(self, service: str, proto: Proto = "tcp") -> Instance | None:
        found = self.instances(service, proto)
        return found[0] if found else None

    def address_of(self, service: str) -> IPv6Address:
        return IPv6Address(VIP if service == "web" else OTHER_VIP)

    def service_at(self, address: IPv6Address) -> str | None:
        return {VIP: "web", OTHER_VIP: "none"}.get(address.packed)

    def is_instance(self, service: str, public_key: bytes) -> bool:
        return public_key in self.authorised.get(service, set())

    def local_services(self) -> list[str]:
        return []


class Mesh:
    """Forwarders whose links are direct calls: one hop from every node to every other."""

    def __init__(self) -> None:
        self.nodes: dict[bytes, Node] = {}

    def route_public_key(self, prefix64: bytes) -> bytes | None:
        node = self.nodes.get(prefix64)
        return node.identity.public_key if node is not None else None

    def next_hop(self, prefix64: bytes) -> int | None:
        return 1 if prefix64 in self.nodes else None


class Node:
    def __init__(self, mesh: Mesh, clock: list[float]) -> None:
        self.identity = identity = NodeIdentity.generate()
        self.address = identity.address_bytes
        self.tun: list[bytes] = []
        self.mesh = mesh
        mesh.nodes[self.address[:8]] = self
        self.forwarder = Forwarder(
            self.address[:8],
            E2ECrypto(identity),
            mesh,
            self._send,
            lambda opened: self.bridge.from_mesh(opened),
            lambda peer: None,
        )
        self.bridge = IPv6Bridge(
            identity,
            self.forwarder,
            self._write,
            mesh.route_public_key,
            1400,
            lambda: clock[0],
        )

    def _write(self, packet: bytes | bytearray | memoryview) -> bool:
        self.tun.append(bytes(packet))
        return True

    def _send(self, peer: int, packet: bytes | bytearray | memoryview) -> bool:
        target = self.mesh.nodes[bytes(packet[2:10])]  # the outer destination's /64
        target.forwarder.from_peer(1, memoryview(bytes(packet)))
        return True

    def send(self, packet: bytes) -> None:
        """``packet`` leaves this node's kernel through the TUN."""
        self.bridge.from_tun(memoryview(bytes((1,)) + packet))

    def drops(self, reason: str) -> int:
        return self.forwarder.stats.drops[reason]


def tcp(src: bytes, dst: bytes, sport: int, dport: int, flags: int, seq: int = 100) -> bytes:
    seg = struct.pack("!HHIIBBHHH", sport, dport, seq, 7, 5 << 4, flags, 65535, 0, 0)
    return struct.pack("!IHBB16s16s", 0x60000000, len(seg), 6, 64, src, dst) + seg


def udp(src: bytes, dst: bytes, sport: int, dport: int, payload: bytes = b"query") -> bytes:
    dgram = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    return struct.pack("!IHBB16s16s", 0x60000000, len(dgram), 17, 64, src, dst) + dgram


@dataclass
class World:
    client: Node
    a: Node
    b: Node
    directory: Directory
    clock: list[float]


@pytest.fixture
def world() -> World:
    clock = [0.0]
    mesh = Mesh()
    client, a, b = Node(mesh, clock), Node(mesh, clock), Node(mesh, clock)
    directory = Directory()

    def instance(node: Node, metric: int, port: int = 80, proto: Proto = "tcp") -> Instance:
        return Instance(
            "web", node.identity.public_key, IPv6Address(node.address), port, proto, 1, metric
        )

    directory.instances_by_service["web"] = [
        instance(a, 100),
        instance(b, 300),
        instance(a, 100, 53, "udp"),
        instance(b, 300, 53, "udp"),
    ]
    directory.authorised["web"] = {a.identity.public_key, b.identity.public_key}
    for node in (client, a, b):
        hook = ServiceAddresses(lambda: directory, PREFIX, FlowLimits(max_per_source=8))
        if node is not client:
            hook.set_local([(VIP, "web")])
        node.bridge.services = hook
    return World(client, a, b, directory, clock)


def make_nearer(directory: Directory, node: Node) -> None:
    """``node``'s instances become the nearest (as if a route to it got shorter)."""
    directory.instances_by_service["web"] = [
        Instance(i.service, i.public_key, i.address, i.port, i.proto, i.weight, 10)
        if i.public_key == node.identity.public_key
        else i
        for i in directory.instances_by_service["web"]
    ]


def test_new_flows_go_to_the_nearest_and_stay_pinned(world: World) -> None:
    c = world.client.address
    syn = tcp(c, VIP, 40000, 80, TCP_SYN)
    world.client.send(syn)
    assert (
        world.a.tun == [syn] and world.b.tun == []
    )  # unchanged: the destination is still the service's
    world.client.send(tcp(c, VIP, 40000, 80, TCP_ACK))
    make_nearer(world.directory, world.b)  # B is now nearer: the running connection stays on A
    world.clock[0] = 3600.0
    world.client.send(tcp(c, VIP, 40000, 80, TCP_ACK, seq=5000))
    assert len(world.a.tun) == 3 and world.b.tun == []
    world.client.send(tcp(c, VIP, 40001, 80, TCP_SYN))  # a new connection follows distance
    assert len(world.b.tun) == 1 and len(world.a.tun) == 3


def test_replies_from_the_service_address_only_from_the_pinned_instance(world: World) -> None:
    c = world.client.address
    world.client.send(tcp(c, VIP, 40000, 80, TCP_SYN))
    synack = tcp(VIP, c, 80, 40000, TCP_SYN | TCP_ACK)
    world.a.send(synack)  # A's kernel answers from the service address it owns
    assert world.client.tun == [synack]
    world.b.send(tcp(VIP, c, 80, 40000, TCP_ACK))  # B is an instance, but this flow is A's
    assert len(world.client.tun) == 1 and world.client.drops("spoofed-source") == 1
    world.directory.authorised["web"].discard(world.b.identity.public_key)
    world.b.send(udp(VIP, c, 53, 999))  # no flow, and B is no longer authorised
    assert len(world.client.tun) == 1 and world.client.drops("spoofed-source") == 2


def test_a_node_that_serves_nothing_cannot_answer_from_a_service_address(world: World) -> None:
    hook = world.b.bridge.services
    assert isinstance(hook, ServiceAddresses)
    hook.set_local([])
    world.b.send(udp(VIP, world.client.address, 53, 999))
    assert world.b.drops("tun-source-not-ours") == 1 and world.client.tun == []
    world.client.send(
        udp(world.client.address, VIP, 999, 53)
    )  # A is nearest; a flow to B would be refused
    make_nearer(world.directory, world.b)
    world.client.send(udp(world.client.address, VIP, 998, 53))
    assert world.b.drops("not-our-subnet") == 1
    assert [p[6] for p in world.b.tun] == [ipv6.ICMPV6]  # only the error about its own packet


def test_without_the_hook_service_addresses_stay_refused(world: World) -> None:
    world.a.bridge.services = None
    world.client.send(tcp(world.client.address, VIP, 40000, 80, TCP_SYN))
    assert world.a.tun == [] and world.a.drops("not-our-subnet") == 1
    world.client.bridge.services = None
    world.client.send(tcp(world.client.address, VIP, 40001, 80, TCP_SYN))
    assert world.client.drops("no-route") == 1
    unreachable = world.client.tun[-1]
    assert unreachable[40] == ipv6.ICMPV6_DEST_UNREACHABLE and unreachable[41] == 0


def test_a_lost_instance_fails_its_flows(world: World) -> None:
    c = world.client.address
    world.client.send(tcp(c, VIP, 40000, 80, TCP_SYN))
    world.client.send(tcp(c, VIP, 40000, 80, TCP_ACK))
    world.client.send(udp(c, VIP, 5000, 53))
    assert len(world.a.tun) == 3
    world.directory.authorised["web"].discard(world.a.identity.public_key)
    world.directory.instances_by_service["web"] = [
        i
        for i in world.directory.instances_by_service["web"]
        if i.public_key != world.a.identity.public_key
    ]
    world.client.send(tcp(c, VIP, 40000, 80, TCP_ACK, seq=899))  # within REVALIDATE: still A
    assert len(world.a.tun) == 4
    world.clock[0] = REVALIDATE
    world.client.send(tcp(c, VIP, 40000, 80, TCP_ACK, seq=900))
    rst = world.client.tun[-1]
    assert rst[6] == 6 and rst[40 + 13] & TCP_RST and rst[8:24] == VIP
    assert struct.unpack_from("!I", rst, 44)[0] == 7  # seq = the segment's ACK number
    world.client.send(udp(c, VIP, 5000, 53))  # the UDP flow fails once, with an ICMPv6 error
    error = world.client.tun[-1]
    assert error[40] == ipv6.ICMPV6_DEST_UNREACHABLE and error[41] == ipv6.UNREACH_ADDRESS
    assert len(world.a.tun) == 4 and world.b.tun == []
    world.client.send(udp(c, VIP, 5000, 53))  # ... and its next datagram is a new flow, to B
    assert len(world.b.tun) == 1
    world.client.send(tcp(c, VIP, 40000, 80, TCP_ACK, seq=901))  # the TCP one has no flow: reset
    assert world.client.tun[-1][40 + 13] & TCP_RST and len(world.b.tun) == 1
    assert (
        world.client.drops("service-instance-lost") == 2
        and world.client.drops("service-no-flow") == 1
    )


def test_a_pinned_instance_without_a_route_fails_its_flow(world: World) -> None:
    c = world.client.address
    world.client.send(udp(c, VIP, 5000, 53))
    del world.client.mesh.nodes[world.a.address[:8]]  # the route to A is gone
    world.client.send(udp(c, VIP, 5000, 53))
    assert world.client.tun[-1][41] == ipv6.UNREACH_ADDRESS
    world.client.mesh.nodes[world.a.address[:8]] = world.a
    make_nearer(world.directory, world.b)
    world.client.send(udp(c, VIP, 5000, 53))
    assert len(world.b.tun) == 1 and len(world.a.tun) == 1


def test_refusals_answer_with_the_right_error(world: World) -> None:
    c = world.client.address
    world.client.send(tcp(c, VIP, 40000, 8080, TCP_SYN))  # no instance serves port 8080
    assert world.client.tun[-1][41] == 4 and world.client.drops("service-no-instance") == 1
    world.client.send(tcp(c, OTHER_VIP, 40000, 80, TCP_SYN))  # a service with no instance at all
    assert world.client.tun[-1][41] == 0 and world.client.drops("service-no-instance") == 2
    world.client.send(tcp(c, PREFIX + bytes(8), 40000, 80, TCP_SYN))  # no service there
    assert (
        world.client.tun[-1][41] == ipv6.UNREACH_ADDRESS
        and world.client.drops("service-unknown") == 1
    )
    world.client.send(tcp(c, VIP, 40000, 80, TCP_FIN | TCP_ACK))  # mid-connection, never seen
    assert world.client.tun[-1][40 + 13] & TCP_RST and world.client.drops("service-no-flow") == 1
    for port in range(8):
        world.client.send(udp(c, VIP, 1000 + port, 53))
    world.client.send(udp(c, VIP, 2000, 53))  # the ninth flow of one source: refused, none evicted
    assert world.client.tun[-1][41] == 1 and world.client.drops("service-source-full") == 1
    assert len(world.a.tun) == 8
    assert world.a.tun == [udp(c, VIP, 1000 + port, 53) for port in range(8)]


def test_ping_the_service_address(world: World) -> None:
    request = ipv6.echo_request(world.client.address, VIP, ident=42, seq=1)
    world.client.send(request)
    assert world.a.tun == [request]
    reply = ipv6.echo_reply(request)
    assert reply is not None
    world.a.send(reply)
    assert world.client.tun == [reply]
