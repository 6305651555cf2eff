"""Unit tests for TunDevice argument checks and error messages (no root needed)."""

from __future__ import annotations

import errno
import os
import socket
from ipaddress import IPv6Address, IPv6Network

import pytest

from hyphal.dataplane import tun
from hyphal.dataplane.tun import DEFAULT_MTU, MAX_MTU, TunDevice, TunError

ADDR = IPv6Address("400::1")


def test_constants() -> None:
    assert 1280 <= DEFAULT_MTU <= MAX_MTU == 65535
    assert IPv6Network("400::/7") == tun.OVERLAY_NETWORK
    assert issubclass(TunError, OSError)


@pytest.mark.parametrize("name", ["", "x" * 16, "a/b", "a b", "a:b", ".."])
def test_bad_name(name: str) -> None:
    with pytest.raises(TunError, match="invalid interface name"):
        TunDevice.open(name, ADDR, 1500)


@pytest.mark.parametrize("mtu", [1279, 65536, 0])
def test_bad_mtu(mtu: int) -> None:
    with pytest.raises(TunError, match="MTU"):
        TunDevice.open("hyx0", ADDR, mtu)


def test_address_outside_overlay() -> None:
    with pytest.raises(TunError, match="not in the overlay"):
        TunDevice.open("hyx0", IPv6Address("2001:db8::1"), 1500)


def _failing_open(exc: OSError):  # type: ignore[no-untyped-def]
    def fake(*args: object, **kwargs: object) -> int:
        raise exc

    return fake


def test_missing_dev_net_tun_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "open", _failing_open(FileNotFoundError(errno.ENOENT, "nope")))
    with pytest.raises(TunError, match=r"load the tun module.*--no-tun"):
        TunDevice._create(b"hyx0", "hyx0")


def test_permission_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "open", _failing_open(PermissionError(errno.EACCES, "denied")))
    with pytest.raises(TunError, match=r"run as root or with CAP_NET_ADMIN, or use --no-tun"):
        TunDevice._create(b"hyx0", "hyx0")


def test_closed_device_io() -> None:
    r, w = os.pipe()
    os.set_blocking(r, False)
    dev = TunDevice(r, "fake", ADDR, tun.OVERLAY_NETWORK, 1500)
    buf = bytearray(1500)
    assert dev.read_into(buf) == 0  # nothing waiting
    assert dev.read() == b""
    os.write(w, b"abc")
    assert dev.read_into(buf) == 3 and buf[:3] == b"abc"
    dev.close()
    dev.close()  # idempotent
    assert dev.closed and dev.fileno() == -1
    with pytest.raises(TunError, match="closed"):
        dev.read_into(buf)
    with pytest.raises(TunError, match="closed"):
        dev.write(b"x")
    os.close(w)


def test_write_drop_counted() -> None:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    a.setblocking(False)
    dev = TunDevice(a.detach(), "fake", ADDR, tun.OVERLAY_NETWORK, 1500)
    assert dev.write(b"x") is True
    while dev.write(b"y" * 1000):  # fill the peer's queue until the kernel refuses (EAGAIN)
        pass
    assert dev.write_drops == 1
    dev.close()
    b.close()
