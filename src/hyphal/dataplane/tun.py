"""Linux TUN device for the overlay data plane.

:meth:`TunDevice.open` creates a layer-3 TUN interface through ``/dev/net/tun`` (``IFF_TUN |
IFF_NO_PI``: every read and write is exactly one IPv6 packet, no 4-byte packet-info header) in the
calling thread's network namespace and configures it with pyroute2 over netlink:

* MTU (default :data:`DEFAULT_MTU`) and transmit queue length (:data:`DEFAULT_TXQUEUELEN`);
* no IPv6 link-local address (``addr_gen_mode`` = none), so the kernel sends no router
  solicitations or MLD reports into the overlay;
* the node's address with prefix length 7 and ``IFA_F_NODAD``, then link up.

Why ``address/7`` rather than ``address/64`` plus a route for 400::/7: it is one netlink request,
the kernel derives the on-link prefix route from it and removes it together with the address (and
the device), and it makes the node's address the preferred source for every overlay destination.
A TUN has no link layer (``IFF_NOARP``), so "on-link" triggers no neighbour discovery; all 400::/7
traffic, including to other addresses of the node's own /64, simply enters the TUN, which is
what the forwarder wants. This matches what Mycelium does.

The descriptor is non-blocking: register :meth:`TunDevice.fileno` with ``loop.add_reader`` and
drain with :meth:`TunDevice.read_into` until it returns 0. The device is not persistent, so
closing the descriptor makes the kernel delete the interface with its address and routes.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct
from ipaddress import IPv6Address, IPv6Network
from types import TracebackType
from typing import Any, Final

__all__ = [
    "DEFAULT_MTU",
    "DEFAULT_TXQUEUELEN",
    "MAX_MTU",
    "OVERLAY_NETWORK",
    "TunDevice",
    "TunError",
]

MAX_MTU: Final = 65535
"""Largest MTU a Linux TUN accepts (and the largest non-jumbo IPv6 packet)."""

DEFAULT_MTU: Final = 65535
"""Default TUN MTU: the largest a TUN accepts.

Links carry overlay packets inside TCP streams, so no underlay path limits the inner packet size,
and in a Python data plane the cost is per packet (a syscall at each TUN crossing plus interpreter
work), hardly per byte. Measured on the 2-vCPU benchmark VM, a single-threaded Python loop that
only bridged two TUNs (epoll, ``read_into`` into one reused buffer, ``write`` of a memoryview)
carried one iperf3 TCP stream at 1.2 Gbit/s with MTU 1400, 5.8 with 9000, 9.1 with 16384 and
13.6 with 65535, at 35k-150k packets/s: the packet rate is roughly fixed, so bytes per packet is
the lever. Yggdrasil (53049) shows the same effect, and is 10x slower at 1500. Costs: 64 KiB
receive buffers per reader, and a future UDP/QUIC-datagram link would need a smaller MTU or
overlay fragmentation. Hosts that still want a small MTU can pass ``mtu`` explicitly.
"""

DEFAULT_TXQUEUELEN: Final = 1000
"""Packets the kernel may queue towards the daemon (the TUN default is 500).

With MTU 65535 a full queue is ~64 MiB of data waiting for the reader: long enough to ride out a
scheduling hiccup of the Python process, short enough to signal congestion to inner TCP by drops.
"""

OVERLAY_NETWORK: Final = IPv6Network("400::/7")
"""The overlay address range; the TUN address gets this prefix length."""

_TUN_PATH: Final = "/dev/net/tun"
_TUNSETIFF: Final = 0x400454CA
_IFF_TUN: Final = 0x0001
_IFF_NO_PI: Final = 0x1000
_IFNAMSIZ: Final = 16
_IFA_F_NODAD: Final = 0x02
_IPV6_MIN_MTU: Final = 1280
_ADDR_GEN_MODE_NONE: Final = 1
_NO_TUN_HINT: Final = "or use --no-tun"


class TunError(OSError):
    """A TUN device could not be created, configured or used; the message says what to do."""


def _check_name(name: str) -> bytes:
    raw = name.encode()
    if not raw or len(raw) >= _IFNAMSIZ or any(c in name for c in "/: \t\n") or name in (".", ".."):
        raise TunError(
            errno.EINVAL,
            f"invalid interface name {name!r}: use 1-{_IFNAMSIZ - 1} characters "
            "without '/', ':' or whitespace",
        )
    return raw


def _permission_error(exc: OSError, what: str) -> TunError:
    return TunError(
        exc.errno or errno.EPERM,
        f"{what}: permission denied; run as root or with CAP_NET_ADMIN, {_NO_TUN_HINT}",
    )


def _write_sysctl(name: str, key: str, value: int) -> None:
    """Best-effort per-interface IPv6 sysctl in the calling thread's network namespace."""
    try:
        with open(f"/proc/sys/net/ipv6/conf/{name}/{key}", "w") as f:
            f.write(str(value))
    except OSError:
        pass


class TunDevice:
    """An open, configured, non-blocking TUN interface. Create with :meth:`open`."""

    __slots__ = ("_fd", "address", "mtu", "name", "network", "write_drops")

    def __init__(self, fd: int, name: str, address: IPv6Address, network: IPv6Network, mtu: int):
        self._fd = fd
        self.name = name
        self.address = address
        self.network = network
        self.mtu = mtu
        self.write_drops = 0
        """Packets :meth:`write` dropped (queue full or rejected by the kernel)."""

    @classmethod
    def open(
        cls,
        name: str,
        address: IPv6Address,
        mtu: int = DEFAULT_MTU,
        overlay: IPv6Network = OVERLAY_NETWORK,
        txqueuelen: int = DEFAULT_TXQUEUELEN,
    ) -> TunDevice:
        """Create TUN ``name``, give it ``address``/``overlay.prefixlen``, set ``mtu``, bring it up.

        Works in the calling thread's network namespace. Raises :class:`TunError` (an
        ``OSError``) with an actionable message: not root / no ``CAP_NET_ADMIN``, no
        ``/dev/net/tun``, name in use, IPv6 disabled, bad arguments.
        """
        raw_name = _check_name(name)
        if not _IPV6_MIN_MTU <= mtu <= MAX_MTU:
            raise TunError(errno.EINVAL, f"MTU {mtu} out of range {_IPV6_MIN_MTU}..{MAX_MTU}")
        if address not in overlay:
            raise TunError(errno.EINVAL, f"address {address} is not in the overlay {overlay}")
        if txqueuelen < 1:
            raise TunError(errno.EINVAL, f"txqueuelen must be positive, got {txqueuelen}")

        from pyroute2 import IPRoute  # imported lazily: keeps --no-tun and tests light

        try:
            ipr = IPRoute()
        except PermissionError as exc:
            raise _permission_error(exc, "opening a netlink socket") from exc
        try:
            if ipr.link_lookup(ifname=name):
                raise TunError(
                    errno.EEXIST,
                    f"interface name {name!r} is already in use; choose another name "
                    "(--tun-name) or stop the process that owns it",
                )
            fd = cls._create(raw_name, name)
            try:
                cls._configure(ipr, name, address, overlay.prefixlen, mtu, txqueuelen)
            except BaseException:
                os.close(fd)  # non-persistent: the kernel deletes the half-configured device
                raise
        finally:
            ipr.close()
        return cls(fd, name, address, overlay, mtu)

    @staticmethod
    def _create(raw_name: bytes, name: str) -> int:
        try:
            fd = os.open(_TUN_PATH, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError as exc:
            raise TunError(
                errno.ENOENT, f"{_TUN_PATH} is missing: load the tun module ({_NO_TUN_HINT})"
            ) from exc
        except PermissionError as exc:
            raise _permission_error(exc, f"opening {_TUN_PATH}") from exc
        except OSError as exc:
            if exc.errno in (errno.ENODEV, errno.ENXIO):
                raise TunError(
                    exc.errno, f"{_TUN_PATH} has no driver: load the tun module ({_NO_TUN_HINT})"
                ) from exc
            raise TunError(exc.errno or errno.EIO, f"opening {_TUN_PATH}: {exc}") from exc
        try:
            ifr = struct.pack("16sH22x", raw_name, _IFF_TUN | _IFF_NO_PI)
            fcntl.ioctl(fd, _TUNSETIFF, ifr)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EPERM, errno.EACCES):
                raise _permission_error(exc, f"creating TUN {name!r}") from exc
            if exc.errno in (errno.EBUSY, errno.EEXIST, errno.EINVAL):
                raise TunError(
                    exc.errno,
                    f"cannot create TUN {name!r}: the name is in use by another device; "
                    "choose another name (--tun-name)",
                ) from exc
            raise TunError(exc.errno or errno.EIO, f"creating TUN {name!r}: {exc}") from exc
        return fd

    @staticmethod
    def _configure(
        ipr: Any, name: str, address: IPv6Address, prefixlen: int, mtu: int, txqueuelen: int
    ) -> None:
        try:
            index = ipr.link_lookup(ifname=name)[0]
            ipr.link("set", index=index, mtu=mtu, txqlen=txqueuelen)
            if not os.path.exists(f"/proc/sys/net/ipv6/conf/{name}"):
                raise TunError(
                    errno.EAFNOSUPPORT,
                    f"IPv6 is not available on {name!r}; boot with ipv6.disable=0 {_NO_TUN_HINT}",
                )
            _write_sysctl(name, "addr_gen_mode", _ADDR_GEN_MODE_NONE)
            _write_sysctl(name, "accept_ra", 0)
            _write_sysctl(name, "disable_ipv6", 0)
            ipr.addr(
                "add",
                index=index,
                family=10,
                address=str(address),
                prefixlen=prefixlen,
                flags=_IFA_F_NODAD,
            )
            ipr.link("set", index=index, state="up")
        except TunError:
            raise
        except PermissionError as exc:
            raise _permission_error(exc, f"configuring {name!r}") from exc
        except OSError as exc:  # pyroute2's NetlinkError is an OSError carrying the errno
            code = exc.errno if isinstance(exc.errno, int) else errno.EIO
            if code in (errno.EPERM, errno.EACCES):
                raise _permission_error(exc, f"configuring {name!r}") from exc
            raise TunError(code, f"configuring {name!r}: {os.strerror(code)} ({exc})") from exc

    # --- I/O -------------------------------------------------------------------------------

    def fileno(self) -> int:
        """The non-blocking descriptor, for ``loop.add_reader``. ``-1`` once closed."""
        return self._fd

    @property
    def closed(self) -> bool:
        return self._fd < 0

    def read_into(self, buf: bytearray | memoryview) -> int:
        """Read one packet into ``buf``; its length, or 0 if none is waiting.

        ``buf`` should hold ``mtu`` bytes; a longer packet is truncated by the kernel. Raises
        :class:`TunError` if the device is closed or gone.
        """
        try:
            return os.readv(self._fd, (buf,))
        except BlockingIOError:
            return 0
        except OSError as exc:
            raise self._io_error(exc, "read") from exc

    def read(self) -> bytes:
        """Read one packet as new bytes; ``b""`` if none is waiting (allocates ``mtu`` bytes)."""
        try:
            return os.read(self._fd, self.mtu)
        except BlockingIOError:
            return b""
        except OSError as exc:
            raise self._io_error(exc, "read") from exc

    def write(self, packet: bytes | bytearray | memoryview) -> bool:
        """Hand one IPv6 packet to the kernel. False (and ``write_drops`` += 1) if it was dropped.

        The kernel drops (EINVAL, EAGAIN, ENOBUFS, EIO while down) rather than queue; like a
        NIC, the caller should not retry. Raises :class:`TunError` only if the device is closed.
        """
        try:
            os.write(self._fd, packet)
            return True
        except OSError as exc:
            if exc.errno == errno.EBADF:
                raise self._io_error(exc, "write") from exc
            self.write_drops += 1
            return False

    def _io_error(self, exc: OSError, op: str) -> TunError:
        if self._fd < 0 or exc.errno == errno.EBADF:
            return TunError(errno.EBADF, f"TUN {self.name!r} is closed")
        return TunError(exc.errno or errno.EIO, f"TUN {self.name!r} {op} failed: {exc}")

    # --- lifetime --------------------------------------------------------------------------

    def close(self) -> None:
        """Close the descriptor; the kernel deletes the interface, its address and routes.

        Idempotent. Remove the descriptor from the event loop (``remove_reader``) first.
        """
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def __enter__(self) -> TunDevice:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._fd < 0 else f"fd={self._fd}"
        where = f"{self.address}/{self.network.prefixlen}"
        return f"TunDevice({self.name!r}, {where}, mtu={self.mtu}, {state})"
