"""The IPv6 bridge: TUN packets into the mesh and mesh packets onto the TUN.

Sans-IO like the forwarder: it is given a ``write_tun`` output and the forwarder, and it decides
per packet. Outbound it checks the source is ours, finds the destination /64's route and answers
with ICMPv6 errors (no route, address unreachable, source not ours, packet too big). Inbound it
drops packets whose inner source lies outside the sender's own /64 (no spoofing) and writes the
rest with the inner hop limit set to the outer one, so each relay counts as a router hop.

Service addresses (:mod:`hyphal.services.vip`) come in through one optional hook,
:attr:`IPv6Bridge.services`: packets to the service prefix go where the hook says (sealed for
the pinned instance, the packet unchanged), a local instance may answer from a service address
it serves, and a packet from the mesh may carry a service address as its source or destination
only if the hook vouches for it. Without the hook all of that stays refused and counted.

Relays that must drop a packet (hop limit spent, no route) send its source a notice: the
original sealed header and the start of its ciphertext. Only the source can turn that back into
an ICMPv6 error quoting its own packet: it holds the session key, and AES-GCM is counter mode, so
the quoted prefix decrypts without the tag. That is what makes `traceroute -6` show each relay.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable
from typing import NamedTuple, Protocol

from hyphal.crypto.e2e import E2EError, OpenedPacket
from hyphal.dataplane import ipv6
from hyphal.dataplane.forwarder import Forwarder
from hyphal.identity import NodeIdentity, address_bytes_for_public_key, prefix64_for_public_key
from hyphal.wire import data as wire_data
from hyphal.wire.errors import DecodeError

log = logging.getLogger("hyphal.dataplane")

NOTICE_TIME_EXCEEDED = 1
NOTICE_NO_ROUTE = 2
QUOTE_CIPHERTEXT = 1 + 1232  # kind byte + as much of the inner packet as an ICMPv6 error quotes
_NOTICE = struct.Struct(">B")
NOTICES_PER_SECOND = 200.0

WriteTun = Callable[[bytes | bytearray | memoryview], bool]
KeyForPrefix = Callable[[bytes], bytes | None]


Clock = Callable[[], float]


class TokenBucket:
    """Rate limit for generated errors (a relay must not become an amplifier)."""

    def __init__(self, rate: float, burst: float, clock: Clock) -> None:
        self.rate, self.burst, self.clock = rate, burst, clock
        self.tokens = burst
        self.stamp = clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class ServiceVerdict(NamedTuple):
    """What to do with a packet to a service address: seal it for ``key``, or (``key`` None)
    drop it, counted as ``reason``, and write ``reply`` (an ICMPv6 error or a TCP reset) to
    the TUN if there is one."""

    key: bytes | None
    reply: bytes | None
    reason: str


class ServiceHook(Protocol):
    """What the bridge asks about service addresses (:class:`hyphal.services.vip.ServiceAddresses`)."""

    prefix: bytes
    """The /64 (8 bytes) every service address lies in."""

    def outbound(self, packet: memoryview, now: float) -> ServiceVerdict: ...

    def lost(self, packet: memoryview, now: float) -> bytes | None:
        """Sealing for the verdict's key found no route: the error to answer with."""
        ...

    def local_address(self, address: bytes) -> bool:
        """Whether ``address`` is the address of a service this node serves."""
        ...

    def inbound(self, sender: bytes, packet: memoryview, now: float) -> bool:
        """Whether a packet from ``sender`` whose source is a service address is genuine."""
        ...


class IPv6Bridge:
    """Moves IPv6 packets between the TUN device and the forwarder."""

    def __init__(
        self,
        identity: NodeIdentity,
        forwarder: Forwarder,
        write_tun: WriteTun,
        key_for_prefix: KeyForPrefix,
        mtu: int,
        clock: Clock,
    ) -> None:
        self.identity = identity
        self.address = identity.address_bytes
        self.prefix = self.address[:8]
        self.forwarder = forwarder
        self.stats = forwarder.stats
        self.write_tun = write_tun
        self.key_for_prefix = key_for_prefix
        self.mtu = mtu
        self.clock = clock
        self.services: ServiceHook | None = None  # installed by the service addresses part
        # One bucket per kind of error, so junk of one kind cannot starve the others: notices we
        # send as a relay, errors about our own packets found here, and errors relays told us of
        # (what traceroute shows; only notices that decrypt to our own packets spend these).
        self.notices = TokenBucket(NOTICES_PER_SECOND, NOTICES_PER_SECOND, clock)
        self.local_errors = TokenBucket(NOTICES_PER_SECOND, NOTICES_PER_SECOND, clock)
        self.relayed_errors = TokenBucket(NOTICES_PER_SECOND, NOTICES_PER_SECOND, clock)
        forwarder.on_relay_error = self.relay_error

    # TUN -> mesh --------------------------------------------------------------------------

    def from_tun(self, plaintext: memoryview) -> None:
        """``plaintext`` is the kind byte (KIND_IPV6) followed by a packet read from the TUN."""
        packet = plaintext[1:]
        size = len(packet)
        if size < ipv6.HEADER_LEN or packet[0] >> 4 != 6:
            self.stats.drop("tun-malformed")
            return
        src = packet[8:24]
        dst_prefix = bytes(packet[24:32])
        if packet[24] == 0xFF:
            self.stats.drop("tun-multicast")
            return
        services = self.services
        if src[:8] != self.prefix and not (
            services is not None
            and src[:8] == services.prefix
            and services.local_address(bytes(src))
        ):
            self.stats.drop("tun-source-not-ours")
            self._icmp_to_tun(
                ipv6.destination_unreachable(packet, self.address, ipv6.UNREACH_POLICY)
            )
            return
        if dst_prefix == self.prefix:
            self.stats.drop("local-address-unreachable")
            self._icmp_to_tun(
                ipv6.destination_unreachable(packet, self.address, ipv6.UNREACH_ADDRESS)
            )
            return
        if size > self.mtu:
            self.stats.drop("packet-too-big")
            self._icmp_to_tun(ipv6.packet_too_big(packet, self.address, self.mtu))
            return
        hop_limit = packet[7]
        if hop_limit == 0:
            self.stats.drop("tun-hop-limit")
            return
        if services is not None and dst_prefix == services.prefix:
            self._to_service(services, packet, plaintext, hop_limit)
            return
        reason = self.forwarder.send_plaintext_to_prefix(dst_prefix, plaintext, hop_limit)
        if reason == "no-route":
            self._icmp_to_tun(
                ipv6.destination_unreachable(packet, self.address, ipv6.UNREACH_NO_ROUTE)
            )

    def _to_service(
        self, services: ServiceHook, packet: memoryview, plaintext: memoryview, hop_limit: int
    ) -> None:
        """A packet to a service address: sealed for its flow's instance, or answered."""
        now = self.clock()
        verdict = services.outbound(packet, now)
        if verdict.key is None:
            self.stats.drop(verdict.reason)
            self._icmp_to_tun(verdict.reply)
            return
        reason = self.forwarder.send_plaintext_to_key(verdict.key, plaintext, hop_limit)
        if reason == "no-route":
            self._icmp_to_tun(services.lost(packet, now))

    # mesh -> TUN --------------------------------------------------------------------------

    def from_mesh(self, opened: OpenedPacket) -> None:
        body = opened.body
        if len(body) < ipv6.HEADER_LEN or body[0] >> 4 != 6:
            self.stats.drop("mesh-malformed")
            return
        services = self.services
        if bytes(body[8:16]) != prefix64_for_public_key(opened.src_public_key) and not (
            services is not None
            and body[8:16] == services.prefix
            and services.inbound(opened.src_public_key, body, self.clock())
        ):
            self.stats.drop("spoofed-source")
            log.debug(
                "dropped a packet from %s with a forged inner source",
                opened.src_public_key.hex()[:16],
            )
            return
        if bytes(body[24:32]) != self.prefix and not (
            services is not None
            and body[24:32] == services.prefix
            and services.local_address(bytes(body[24:40]))
        ):
            self.stats.drop("not-our-subnet")
            return
        if body[7] != opened.hop_limit:
            patched = bytearray(body)
            patched[7] = opened.hop_limit
            body = memoryview(patched)
        if not self.write_tun(body):
            self.stats.drop("tun-write")

    # relay errors ---------------------------------------------------------------------------

    def relay_error(self, reason: str, packet: bytes | bytearray | memoryview) -> None:
        """At a relay: tell the packet's source why it was dropped (rate limited)."""
        if not self.notices.take():
            self.stats.drop("notice-rate-limited")
            return
        try:
            source = wire_data.source_public_key(packet)
        except DecodeError:
            self.stats.drop("notice-unaddressable")
            return
        code = NOTICE_TIME_EXCEEDED if reason == "hop-limit" else NOTICE_NO_ROUTE
        end = min(len(packet) - wire_data.TAG_SIZE, wire_data.HEADER_SIZE + QUOTE_CIPHERTEXT)
        notice = _NOTICE.pack(code) + bytes(packet[:end])
        self.forwarder.send_to(source, wire_data.KIND_ICMP_RELAY, notice)

    def from_notice(self, opened: OpenedPacket) -> None:
        """At the source: turn a relay's notice into an ICMPv6 error on our TUN."""
        body = bytes(opened.body)
        if len(body) < 1 + wire_data.HEADER_SIZE + 1:
            self.stats.drop("notice-malformed")
            return
        code, original = body[0], body[1:]
        try:
            source = wire_data.source_public_key(original)
            destination = wire_data.destination(original)
        except DecodeError:
            self.stats.drop("notice-malformed")
            return
        if source != self.identity.public_key:
            self.stats.drop("notice-not-ours")
            return
        dst_key = self.key_for_prefix(destination[:8])
        if dst_key is None or address_bytes_for_public_key(dst_key)[:8] != destination[:8]:
            return  # the destination is gone from our table: nothing left to report against
        try:
            quote = self.forwarder.e2e.decrypt_quote(dst_key, original)
        except E2EError as exc:
            self.stats.drop(f"notice-{exc.reason}")
            return
        if quote[:1] != bytes((wire_data.KIND_IPV6,)):
            return  # not an IP packet of ours (e.g. a ping or a bus message): nothing to report
        inner = quote[1:]
        if len(inner) < ipv6.HEADER_LEN or inner[8:16] != self.prefix:
            self.stats.drop("notice-bad-quote")
            return
        relay = address_bytes_for_public_key(opened.src_public_key)
        if code == NOTICE_TIME_EXCEEDED:
            self._icmp_to_tun(ipv6.time_exceeded(inner, relay), self.relayed_errors)
        else:
            unreachable = ipv6.destination_unreachable(inner, relay, ipv6.UNREACH_NO_ROUTE)
            self._icmp_to_tun(unreachable, self.relayed_errors)

    def _icmp_to_tun(self, packet: bytes | None, bucket: TokenBucket | None = None) -> None:
        """Write an ICMPv6 error to our TUN if ``bucket`` (default: local errors) allows it."""
        if packet is None:
            return
        if not (bucket or self.local_errors).take():
            self.stats.drop("icmp-rate-limited")
            return
        self.write_tun(packet)
