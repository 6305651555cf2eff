"""The node's TUN side: opens the device, drains it into the bridge, and closes it on failure.

The device and its bridge exist only between :meth:`TunPort.open` and :meth:`TunPort.close`;
IPv6 packets for us that arrive while there is none count as ``no-tun`` drops.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from ipaddress import IPv6Address

from hyphal.crypto.e2e import OpenedPacket
from hyphal.dataplane.bridge import IPv6Bridge
from hyphal.dataplane.forwarder import Forwarder
from hyphal.dataplane.tun import TunError
from hyphal.dataplane.tundev import Tun, TunFactory
from hyphal.identity import NodeIdentity
from hyphal.wire import data as wire_data

log = logging.getLogger("hyphal.node")

BATCH = 64  # packets drained per wake-up: fair to the links


class TunPort:
    """One TUN device wired to the forwarder through an :class:`IPv6Bridge`."""

    def __init__(
        self,
        identity: NodeIdentity,
        forwarder: Forwarder,
        key_for_prefix: Callable[[bytes], bytes | None],
        now: Callable[[], float],
        flush: Callable[[], None],
    ) -> None:
        self._identity = identity
        self._forwarder = forwarder
        self._key_for_prefix = key_for_prefix
        self._now = now
        self._flush = flush
        self._loop: asyncio.AbstractEventLoop | None = None
        self._name = ""
        self.tun: Tun | None = None
        self.bridge: IPv6Bridge | None = None
        self._buffer = bytearray()  # kind byte + one packet, sized by open()

    @property
    def write_drops(self) -> int:
        return self.tun.write_drops if self.tun is not None else 0

    async def open(self, factory: TunFactory, name: str, mtu: int) -> None:
        """Create the device (TunError tells the user what to do when it cannot).

        pyroute2's synchronous API runs an event loop of its own, so setup runs in a thread.
        """
        address: IPv6Address = self._identity.address
        self._loop = asyncio.get_running_loop()
        self._name = name
        tun = self.tun = await asyncio.to_thread(factory, name, address, mtu)
        self._buffer = bytearray(1 + mtu)
        self.bridge = IPv6Bridge(
            self._identity, self._forwarder, tun.write, self._key_for_prefix, mtu, self._now
        )
        self._loop.add_reader(tun.fileno(), self._readable)
        log.info("TUN %s up: %s/7, MTU %d", name, address, mtu)

    def _readable(self) -> None:
        """Drain up to BATCH packets into one reused buffer."""
        tun, bridge = self.tun, self.bridge
        if tun is None or bridge is None:
            return
        buffer = self._buffer
        buffer[0] = wire_data.KIND_IPV6  # packets land behind their kind byte: sealed uncopied
        view = memoryview(buffer)
        space = view[1:]
        try:
            for _ in range(BATCH):
                size = tun.read_into(space)
                if size <= 0:
                    break
                bridge.from_tun(view[: 1 + size])
        except TunError as exc:
            # A TUN that cannot be read is gone for good: stop polling it (no busy loop).
            log.error("TUN %s failed, closing it: %s", self._name, exc)
            self._close()
        self._flush()

    def close(self) -> None:
        if self.tun is not None:
            self._close()
            log.info("TUN %s removed", self._name)

    def _close(self) -> None:
        tun, self.tun, self.bridge = self.tun, None, None
        if tun is not None and self._loop is not None:
            self._loop.remove_reader(tun.fileno())
            tun.close()

    # packets from the mesh ------------------------------------------------------------------

    def deliver_ipv6(self, opened: OpenedPacket) -> None:
        if self.bridge is not None:
            self.bridge.from_mesh(opened)
        else:
            self._forwarder.stats.drop("no-tun")

    def deliver_notice(self, opened: OpenedPacket) -> None:
        if self.bridge is not None:
            self.bridge.from_notice(opened)
