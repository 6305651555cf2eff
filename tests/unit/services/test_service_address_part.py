"""The service addresses part: it hooks the bridge, and holds on the TUN exactly the addresses
of the services this node serves (the kernel side is in tests/netns/test_service_addresses.py)."""

from __future__ import annotations

import asyncio
from ipaddress import IPv6Address

from hyphal.crypto.e2e import E2ECrypto
from hyphal.dataplane.bridge import IPv6Bridge
from hyphal.dataplane.forwarder import Forwarder
from hyphal.identity import NodeIdentity
from hyphal.services.directory import Instance, Proto
from hyphal.services.vippart import ServiceAddressPart

PREFIX = bytes.fromhex("04bbccddeeff0011")


class Directory:
    def __init__(self) -> None:
        self.local: list[str] = []

    def instances(self, service: str, proto: Proto = "tcp") -> list[Instance]:
        return []

    def choose(self, service: str, proto: Proto = "tcp") -> Instance | None:
        return None

    def address_of(self, service: str) -> IPv6Address:
        return IPv6Address(PREFIX + service.encode().rjust(8, b"\0"))

    def service_at(self, address: IPv6Address) -> str | None:
        return None

    def is_instance(self, service: str, public_key: bytes) -> bool:
        return False

    def local_services(self) -> list[str]:
        return list(self.local)


class Recorder:
    def __init__(self) -> None:
        self.held: set[IPv6Address] = set()
        self.fail: set[IPv6Address] = set()

    def add(self, address: IPv6Address) -> None:
        if address in self.fail:
            raise PermissionError(1, "Operation not permitted")
        self.held.add(address)

    def remove(self, address: IPv6Address) -> None:
        self.held.discard(address)


def bridge() -> IPv6Bridge:
    identity = NodeIdentity.generate()

    class Routes:
        def next_hop(self, prefix64: bytes) -> int | None:
            return None

        def route_public_key(self, prefix64: bytes) -> bytes | None:
            return None

    forwarder = Forwarder(
        identity.address_bytes[:8],
        E2ECrypto(identity),
        Routes(),
        lambda peer, packet: True,
        lambda opened: None,
        lambda peer: None,
    )
    return IPv6Bridge(identity, forwarder, lambda p: True, lambda p: None, 1400, lambda: 0.0)


def test_the_part_follows_local_services() -> None:
    async def run() -> None:
        directory, kernel, the_bridge = Directory(), Recorder(), bridge()
        part = ServiceAddressPart(
            lambda: the_bridge, lambda: directory, lambda: PREFIX, lambda: 0.0, kernel
        )
        directory.local = ["web", "dns"]
        await part.start()
        assert the_bridge.services is part.hook and part.hook is not None
        web, dns = directory.address_of("web"), directory.address_of("dns")
        assert kernel.held == {web, dns}
        assert part.hook.local_address(web.packed) and part.hook.local_address(dns.packed)
        directory.local = ["dns", "irc"]
        irc = directory.address_of("irc")
        kernel.fail.add(irc)
        await part.refresh()
        assert kernel.held == {dns}
        assert not part.hook.local_address(web.packed)
        assert not part.hook.local_address(irc.packed)  # not on the TUN: not claimed either
        status = part.status()
        assert status["addresses"] == [{"service": "dns", "address": str(dns)}]
        assert str(irc) in status["errors"]
        kernel.fail.clear()
        await part.refresh()
        assert kernel.held == {dns, irc} and part.status()["errors"] == {}
        await part.stop()
        assert kernel.held == set() and the_bridge.services is None

    asyncio.run(run())


def test_without_a_tun_the_part_stays_idle() -> None:
    async def run() -> None:
        part = ServiceAddressPart(lambda: None, Directory, lambda: PREFIX, lambda: 0.0, None)
        await part.start()
        assert part.hook is None and part.status()["enabled"] is False
        await part.stop()

    asyncio.run(run())
