"""What the node needs from a TUN device, so tests can hand it an in-memory one instead."""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv6Address
from typing import Protocol


class Tun(Protocol):
    """A packet device: one IPv6 packet per read and per write, a pollable descriptor."""

    write_drops: int

    def fileno(self) -> int: ...

    def read_into(self, buf: bytearray | memoryview) -> int:
        """One packet into ``buf``: its length, 0 if none waits; TunError once the device is gone."""
        ...

    def write(self, packet: bytes | bytearray | memoryview) -> bool: ...

    def close(self) -> None: ...


# (interface name, address, MTU) -> an open device. Runs in a worker thread (setup may block).
TunFactory = Callable[[str, IPv6Address, int], Tun]
