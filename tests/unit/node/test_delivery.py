"""Issue 9 item 1: packet kinds dispatch through a registry; unknown kinds are counted drops."""

from __future__ import annotations

import pytest

from hyphal.crypto.e2e import OpenedPacket
from hyphal.dataplane.stats import DataplaneStats
from hyphal.node.delivery import Registry

TOY_KIND = 0x7E


def opened(kind: int, body: bytes) -> OpenedPacket:
    return OpenedPacket(bytes(32), kind, memoryview(body), 64)


def test_a_toy_kind_is_one_registration() -> None:
    stats = DataplaneStats()
    kinds: Registry[OpenedPacket] = Registry(stats, "unhandled-kind")
    got: list[bytes] = []
    kinds.register(TOY_KIND, lambda packet: got.append(bytes(packet.body)))
    kinds.dispatch(TOY_KIND, opened(TOY_KIND, b"toy"))
    kinds.dispatch(0x7F, opened(0x7F, b"nobody"))
    assert got == [b"toy"]
    assert stats.drops == {"unhandled-kind-127": 1}


def test_a_kind_has_one_handler_and_is_a_byte() -> None:
    kinds: Registry[OpenedPacket] = Registry(DataplaneStats(), "unhandled-kind")
    kinds.register(1, lambda packet: None)
    with pytest.raises(ValueError, match="already"):
        kinds.register(1, lambda packet: None)
    with pytest.raises(ValueError, match="byte"):
        kinds.register(256, lambda packet: None)
