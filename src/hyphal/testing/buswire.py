"""Message services wired back to back in one event loop, no network: each service's bus packets
are handed to the destination service's ``handle_packet`` on a later loop turn, as a node's
end-to-end data path would deliver them. Each service resolves the others' overlay addresses.
"""

from __future__ import annotations

import asyncio
from ipaddress import IPv6Address
from types import TracebackType
from typing import Any

from hyphal.bus.service import MessageService
from hyphal.identity import NodeIdentity, address_for_public_key


class BusWire:
    """``add()`` services, then ``async with`` the wire to start them all and close them after.

    Keyword arguments are passed to every ``MessageService`` (e.g. ``forward_dir``, ``limits``).
    """

    def __init__(self, **service_kwargs: Any) -> None:
        self._kwargs = service_kwargs
        self.services: dict[bytes, MessageService] = {}
        self._by_address: dict[IPv6Address, bytes] = {}

    def add(self) -> MessageService:
        public_key = NodeIdentity.generate().public_key

        def send_packet(dst: bytes, body: bytes) -> bool:
            peer = self.services.get(dst)
            if peer is None:
                return False
            asyncio.get_running_loop().call_soon(peer.handle_packet, public_key, body)
            return True

        service = MessageService(public_key, send_packet, self._by_address.get, **self._kwargs)
        self.services[public_key] = service
        self._by_address[address_for_public_key(public_key)] = public_key
        return service

    async def __aenter__(self) -> BusWire:
        for service in self.services.values():
            await service.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for service in self.services.values():
            await service.close()
