"""Issue 10, roles: a client's forwarder delivers its own packets and relays nobody else's."""

from __future__ import annotations

from dataclasses import dataclass, field

from hyphal.crypto.e2e import E2ECrypto, OpenedPacket
from hyphal.dataplane.forwarder import TRANSIT_REFUSED, Forwarder
from hyphal.identity import NodeIdentity, prefix64_for_public_key
from hyphal.wire import data as wire

UPLINK, OTHER = 3, 4  # the client's two neighbours (link ids)


class Routes:
    """Every destination but the client's own is reachable through OTHER."""

    def __init__(self, keys: dict[bytes, bytes]) -> None:
        self.keys = keys

    def next_hop(self, prefix64: bytes) -> int | None:
        return OTHER if prefix64 in self.keys else None

    def route_public_key(self, prefix64: bytes) -> bytes | None:
        return self.keys.get(prefix64)


@dataclass
class Setup:
    forwarder: Forwarder
    me: NodeIdentity
    far: NodeIdentity
    sent: list[tuple[int, bytes]] = field(default_factory=list)
    delivered: list[OpenedPacket] = field(default_factory=list)


def build(relay: bool) -> Setup:
    me, far = NodeIdentity.generate(), NodeIdentity.generate()
    sent: list[tuple[int, bytes]] = []
    delivered: list[OpenedPacket] = []

    def send(peer: int, packet: bytes | bytearray | memoryview) -> bool:
        sent.append((peer, bytes(packet)))
        return True

    forwarder = Forwarder(
        me.address_bytes[:8],
        E2ECrypto(me),
        Routes({prefix64_for_public_key(far.public_key): far.public_key}),
        send,
        delivered.append,
        lambda peer: None,
        relay=relay,
    )
    return Setup(forwarder, me, far, sent, delivered)


def test_client_refuses_transit_and_counts_it() -> None:
    setup = build(relay=False)
    client, sent, delivered = setup.forwarder, setup.sent, setup.delivered
    stranger = E2ECrypto(NodeIdentity.generate())
    # a neighbour hands the client a packet for the far node: transit
    transit = stranger.seal(setup.far.public_key, wire.KIND_ECHO_REQUEST, b"x")
    for _ in range(3):
        client.from_peer(UPLINK, memoryview(transit))
    assert sent == []
    assert client.stats.drops[TRANSIT_REFUSED] == 3
    assert client.stats.forwarded.packets == 0
    # a packet for the client itself is delivered
    mine = stranger.seal(setup.me.public_key, wire.KIND_ECHO_REQUEST, b"hello")
    client.from_peer(UPLINK, memoryview(mine))
    assert [bytes(o.body) for o in delivered] == [b"hello"]
    # and its own traffic goes out as usual
    assert client.send_to(setup.far.public_key, wire.KIND_ECHO_REQUEST, b"out") is None
    assert [peer for peer, _ in sent] == [OTHER]
    assert client.stats.drops[TRANSIT_REFUSED] == 3


def test_peer_relays_the_same_packet() -> None:
    """Control: with relay on, the transit packet is forwarded to the next hop."""
    setup = build(relay=True)
    peer, sent = setup.forwarder, setup.sent
    stranger = E2ECrypto(NodeIdentity.generate())
    transit = stranger.seal(setup.far.public_key, wire.KIND_ECHO_REQUEST, b"x")
    peer.from_peer(UPLINK, memoryview(transit))
    assert [p for p, _ in sent] == [OTHER]
    assert peer.stats.forwarded.packets == 1
    assert TRANSIT_REFUSED not in peer.stats.drops
