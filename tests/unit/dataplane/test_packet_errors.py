"""Issue 8 item 1: a remote node's packet never makes its relaying link fail; errors are drops."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from hyphal.crypto.e2e import E2ECrypto, E2EError, OpenedPacket
from hyphal.crypto.session import MAX_RECORD_PLAINTEXT
from hyphal.dataplane.bridge import NOTICE_NO_ROUTE, IPv6Bridge
from hyphal.dataplane.forwarder import Forwarder
from hyphal.identity import NodeIdentity, address_bytes_for_public_key, prefix64_for_public_key
from hyphal.wire import data as wire
from hyphal.wire.link import FRAME_HEADER_SIZE

# A point of order 8 on Curve25519: X25519 with it yields all zeros, which cryptography refuses.
LOW_ORDER_KEY = bytes.fromhex("e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800")
LINK = 7
MAX_PACKET_SIZE = MAX_RECORD_PLAINTEXT - FRAME_HEADER_SIZE  # what one link frame carries


class NoRoutes:
    def __init__(self, keys: dict[bytes, bytes]) -> None:
        self.keys = keys

    def next_hop(self, prefix64: bytes) -> int | None:
        return None

    def route_public_key(self, prefix64: bytes) -> bytes | None:
        return self.keys.get(prefix64)


def make_node(
    identity: NodeIdentity, keys: dict[bytes, bytes], deliver: Callable[[OpenedPacket], None]
) -> Forwarder:
    return Forwarder(
        identity.address_bytes[:8],
        E2ECrypto(identity),
        NoRoutes(keys),
        lambda peer, packet: True,
        deliver,
        lambda peer: None,
    )


def source_with_bridge(keys: dict[bytes, bytes]) -> tuple[NodeIdentity, Forwarder]:
    """The node a notice is for: its forwarder hands notices to its bridge."""
    identity = NodeIdentity.generate()
    bridges: list[IPv6Bridge] = []
    forwarder = make_node(identity, keys, lambda opened: bridges[0].from_notice(opened))
    bridges.append(
        IPv6Bridge(
            identity,
            forwarder,
            lambda packet: True,
            forwarder.routes.route_public_key,
            1280,
            lambda: 0.0,
        )
    )
    return identity, forwarder


def notice_from(remote: E2ECrypto, to: NodeIdentity, original: bytes) -> memoryview:
    body = bytes((NOTICE_NO_ROUTE,)) + original
    return memoryview(remote.seal(to.public_key, wire.KIND_ICMP_RELAY, body))


def test_notice_quoting_a_bad_version_byte_is_a_counted_drop() -> None:
    identity, node = source_with_bridge({})
    remote = E2ECrypto(NodeIdentity.generate())
    original = bytearray(wire.HEADER_SIZE + 8)
    original[0] = 0x99  # not wire.VERSION: the header helpers refuse it
    node.from_peer(LINK, notice_from(remote, identity, bytes(original)))
    assert node.stats.drops["notice-malformed"] == 1
    assert node.stats.drops["handler-error"] == 0


def test_notice_quoting_a_low_order_key_prefix_is_a_counted_drop() -> None:
    prefix = prefix64_for_public_key(LOW_ORDER_KEY)
    identity, node = source_with_bridge({prefix: LOW_ORDER_KEY})
    remote = E2ECrypto(NodeIdentity.generate())
    original = bytearray(wire.HEADER_SIZE + 8)
    original[0] = wire.VERSION
    original[2:18] = address_bytes_for_public_key(LOW_ORDER_KEY)
    original[18:50] = identity.public_key
    node.from_peer(LINK, notice_from(remote, identity, bytes(original)))
    assert node.stats.drops["notice-bad-key"] == 1
    assert node.stats.drops["handler-error"] == 0


def test_seal_refuses_what_no_link_frame_can_carry() -> None:
    a, b = E2ECrypto(NodeIdentity.generate()), E2ECrypto(NodeIdentity.generate())
    body_room = MAX_PACKET_SIZE - wire.HEADER_SIZE - 1 - wire.TAG_SIZE
    request = a.seal(b.public_key, wire.KIND_ECHO_REQUEST, bytes(body_room))
    assert len(request) == MAX_PACKET_SIZE == (1 << 20) - 4
    opened = b.open(request)
    # The echo reply adds the hop-limit byte: one more than a link record can hold.
    reply = bytes(opened.body[:8]) + bytes([opened.hop_limit]) + bytes(opened.body[8:])
    with pytest.raises(E2EError) as refused:
        b.seal(a.public_key, wire.KIND_ECHO_REPLY, reply)
    assert refused.value.reason == "too-big"


def test_oversized_send_is_a_drop_reason_not_an_exception() -> None:
    sender = make_node(NodeIdentity.generate(), {}, lambda opened: None)
    dst = NodeIdentity.generate().public_key
    assert sender.send_to(dst, wire.KIND_ECHO_REPLY, bytes(MAX_PACKET_SIZE)) == "too-big"
    assert sender.stats.drops["e2e-too-big"] == 1


def test_a_failing_handler_is_a_counted_drop() -> None:
    def broken(opened: OpenedPacket) -> None:
        raise RuntimeError("handler bug")

    identity = NodeIdentity.generate()
    node = make_node(identity, {}, broken)
    remote = E2ECrypto(NodeIdentity.generate())
    node.from_peer(LINK, memoryview(remote.seal(identity.public_key, wire.KIND_BUS, b"x")))
    node.from_peer(LINK, memoryview(remote.seal(identity.public_key, wire.KIND_BUS, b"y")))
    assert node.stats.drops["handler-error"] == 2
