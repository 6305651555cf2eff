"""The forwarder: end-to-end sealed packets, hop by hop.

Sans-IO: it holds no sockets and reads no clock. The node gives it the router (for next hops and
destination keys), the end-to-end crypto, and two outputs: ``send(peer, packet)`` to hand a packet
to a neighbour's link and ``deliver(opened)`` for packets addressed to this node. Relays only read
the outer header (destination and hop limit); they never hold a key that opens the payload.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from ipaddress import IPv6Address
from typing import Protocol

from hyphal.crypto.e2e import E2ECrypto, E2EError, OpenedPacket
from hyphal.dataplane.stats import DataplaneStats
from hyphal.identity import prefix64_for_public_key
from hyphal.wire import data as wire_data
from hyphal.wire.errors import DecodeError

log = logging.getLogger("hyphal.dataplane")

TRANSIT_REFUSED = "transit-refused"  # drop reason on a client: a packet it would have to relay


class RouteLookup(Protocol):
    def next_hop(self, prefix64: bytes) -> int | None: ...
    def route_public_key(self, prefix64: bytes) -> bytes | None: ...


SendFn = Callable[[int, bytes | bytearray | memoryview], bool]
DeliverFn = Callable[[OpenedPacket], None]
PeerKeyFn = Callable[[int], bytes | None]


class Forwarder:
    """Routes sealed packets: local ones are opened and delivered, others are relayed."""

    def __init__(
        self,
        own_prefix64: bytes,
        e2e: E2ECrypto,
        routes: RouteLookup,
        send: SendFn,
        deliver: DeliverFn,
        peer_key: PeerKeyFn,
        stats: DataplaneStats | None = None,
        *,
        relay: bool = True,
    ) -> None:
        self.own_prefix64 = own_prefix64
        # False on a client (``--role client``): packets from a neighbour for anyone else are
        # dropped and counted ``transit-refused``; our own traffic goes out as usual.
        self.relay = relay
        self.e2e = e2e
        self.routes = routes
        self._send = send
        self._deliver = deliver
        self._peer_key = peer_key
        self.stats = stats or DataplaneStats()
        self._logged_errors: set[str] = set()
        self.on_relay_error: Callable[[str, bytes | bytearray | memoryview], None] | None = None
        # Called with (destination prefix64, kind) for each packet this node originates and
        # hands to a neighbour (the route audit learns which destinations are in use).
        self.on_local_send: Callable[[bytes, int], None] | None = None

    def send_to(
        self,
        dst_public_key: bytes,
        kind: int,
        body: bytes | bytearray | memoryview,
        hop_limit: int = wire_data.DEFAULT_HOP_LIMIT,
    ) -> str | None:
        """Seal ``body`` for a node and send it towards it; returns a drop reason or None."""
        try:
            packet = self.e2e.seal(dst_public_key, kind, body, hop_limit)
        except E2EError as exc:
            self.stats.drop(f"e2e-{exc.reason}")
            return exc.reason
        return self._dispatch(packet, kind)

    def send_plaintext_to_prefix(
        self, prefix64: bytes, plaintext: memoryview, hop_limit: int
    ) -> str | None:
        """Seal a kind-prefixed plaintext for the node owning ``prefix64`` and send it."""
        key = self.routes.route_public_key(prefix64)
        if key is None:
            self.stats.drop("no-route")
            return "no-route"
        return self.send_plaintext_to_key(key, plaintext, hop_limit)

    def send_plaintext_to_key(
        self, key: bytes, plaintext: memoryview, hop_limit: int
    ) -> str | None:
        """Seal a kind-prefixed plaintext for the node with ``key`` and send it towards it."""
        try:
            packet = self.e2e.seal_plaintext(key, plaintext, hop_limit)
        except E2EError as exc:
            self.stats.drop(f"e2e-{exc.reason}")
            return exc.reason
        return self._dispatch(packet, plaintext[0])

    def _dispatch(self, packet: bytearray, kind: int) -> str | None:
        prefix = bytes(packet[wire_data.OFF_DESTINATION : wire_data.OFF_DESTINATION + 8])
        if prefix == self.own_prefix64:
            return self.receive_local(packet)
        peer = self.routes.next_hop(prefix)
        if peer is None:
            self.stats.drop("no-route")
            return "no-route"
        if not self._send(peer, packet):
            self.stats.drop("queue-full")
            return "queue-full"
        self.stats.local_tx.add(len(packet))
        self.stats.by_destination.add(prefix, len(packet))
        if self.on_local_send is not None:
            self.on_local_send(prefix, kind)
        return None

    def from_peer(self, peer: int, packet: memoryview) -> None:
        """A DATA frame from a neighbour: deliver it here or pass it on.

        Whatever a remote node put in its packet, handling it never raises: the neighbour that
        relayed it is not to blame, so its link must stay up. A handler error is a counted drop.
        """
        try:
            self._from_peer(peer, packet)
        except Exception as exc:
            self.stats.drop("handler-error")
            name = type(exc).__name__
            level = logging.DEBUG if name in self._logged_errors else logging.WARNING
            self._logged_errors.add(name)  # one warning per exception type, then debug lines
            log.log(
                level, "dropped a packet from link %d: handling it raised %s: %s", peer, name, exc
            )

    def _from_peer(self, peer: int, packet: memoryview) -> None:
        try:
            prefix = wire_data.destination_prefix64(packet)
        except DecodeError:
            self.stats.drop("malformed")
            return
        key = self._peer_key(peer)
        if key is not None:
            self.stats.peer(key).rx.add(len(packet))
        if prefix == self.own_prefix64:
            self.receive_local(packet)
            return
        if not self.relay:
            self._refuse_transit(peer, prefix)
            return
        next_peer = self.routes.next_hop(prefix)
        if next_peer is None:
            self.stats.drop("no-route")
            if self.on_relay_error is not None:
                self.on_relay_error("no-route", packet)
            return
        relayed = bytearray(packet)
        if wire_data.decrement_hop_limit(relayed) <= 0:
            self.stats.drop("hop-limit")
            if self.on_relay_error is not None:
                self.on_relay_error("hop-limit", packet)
            return
        if not self._send(next_peer, relayed):
            self.stats.drop("queue-full")
            return
        self.stats.forwarded.add(len(relayed))

    def _refuse_transit(self, peer: int, prefix: bytes) -> None:
        self.stats.drop(TRANSIT_REFUSED)
        first = TRANSIT_REFUSED not in self._logged_errors
        self._logged_errors.add(TRANSIT_REFUSED)  # one warning, then debug lines
        log.log(
            logging.WARNING if first else logging.DEBUG,
            "refused to relay a packet from link %d for %s: this node is a client and relays "
            "nothing (a neighbour that routes through a client ignores its role bit)",
            peer,
            IPv6Address(prefix + bytes(8)),
        )

    def receive_local(self, packet: bytes | bytearray | memoryview) -> str | None:
        try:
            opened = self.e2e.open(packet)
        except E2EError as exc:
            self.stats.drop(f"e2e-{exc.reason}")
            return f"e2e-{exc.reason}"
        self.stats.local_rx.add(len(packet))
        self.stats.by_source.add(prefix64_for_public_key(opened.src_public_key), len(packet))
        self._deliver(opened)
        return None
