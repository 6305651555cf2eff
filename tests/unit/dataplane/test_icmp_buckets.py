"""Issue 8 item 9: ICMP rate limits are split, so junk of one kind cannot starve traceroute."""

from __future__ import annotations

from hyphal.crypto.e2e import E2ECrypto, OpenedPacket
from hyphal.dataplane.bridge import NOTICES_PER_SECOND, IPv6Bridge
from hyphal.dataplane.forwarder import Forwarder
from hyphal.identity import NodeIdentity
from hyphal.wire import data as wire

LINK = 3
ICMP_TIME_EXCEEDED = 3
ICMP_UNREACHABLE = 1


class Table:
    """Every known prefix is one hop away, over LINK."""

    def __init__(self, *identities: NodeIdentity) -> None:
        self.keys = {i.address_bytes[:8]: i.public_key for i in identities}

    def next_hop(self, prefix64: bytes) -> int | None:
        return LINK if prefix64 in self.keys else None

    def route_public_key(self, prefix64: bytes) -> bytes | None:
        return self.keys.get(prefix64)


class Host:
    """A forwarder and bridge with a frozen clock (no bucket refills) and captured outputs."""

    def __init__(self, identity: NodeIdentity, table: Table) -> None:
        self.sent: list[bytes] = []
        self.tun: list[bytes] = []
        self.forwarder = Forwarder(
            identity.address_bytes[:8],
            E2ECrypto(identity),
            table,
            lambda peer, packet: self.sent.append(bytes(packet)) is None,
            self._deliver,
            lambda peer: None,
        )
        self.bridge = IPv6Bridge(
            identity,
            self.forwarder,
            lambda packet: self.tun.append(bytes(packet)) is None,
            table.route_public_key,
            1280,
            lambda: 0.0,
        )

    def _deliver(self, opened: OpenedPacket) -> None:
        if opened.kind == wire.KIND_ICMP_RELAY:
            self.bridge.from_notice(opened)


def ipv6_packet(src: bytes, dst: bytes, hop_limit: int) -> memoryview:
    """Kind byte, then an IPv6 header with no next header and 8 bytes of payload."""
    header = bytes((0x60, 0, 0, 0, 0, 8, 59, hop_limit)) + src + dst
    return memoryview(bytes((wire.KIND_IPV6,)) + header + bytes(8))


def test_junk_from_the_tun_cannot_starve_traceroute_errors() -> None:
    s_id, r_id, d_id = NodeIdentity.generate(), NodeIdentity.generate(), NodeIdentity.generate()
    source = Host(s_id, Table(r_id, d_id))
    relay = Host(r_id, Table(s_id))
    # Local junk (a foreign source address) spends the whole local-error budget.
    foreign = NodeIdentity.generate().address_bytes
    for _ in range(int(NOTICES_PER_SECOND) + 1):
        source.bridge.from_tun(ipv6_packet(foreign, d_id.address_bytes, 64))
    assert len(source.tun) == NOTICES_PER_SECOND
    assert source.forwarder.stats.drops["icmp-rate-limited"] == 1
    # A traceroute probe from S dies at the relay; its notice still becomes Time Exceeded.
    source.bridge.from_tun(ipv6_packet(s_id.address_bytes, d_id.address_bytes, 1))
    (probe,) = source.sent
    relay.bridge.relay_error("hop-limit", probe)
    (notice,) = relay.sent
    source.forwarder.from_peer(LINK, memoryview(notice))
    assert source.tun[-1][40] == ICMP_TIME_EXCEEDED
    assert source.tun[-1][8:24] == r_id.address_bytes  # from the relay's overlay address
