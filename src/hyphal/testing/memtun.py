"""An in-memory TUN for tests: one end of an AF_UNIX SOCK_SEQPACKET pair (in the spirit of
wireguard-go's tuntest). It is a real descriptor, so the node polls it with ``add_reader`` like a
TUN; the test holds the other end and injects or reads whole IPv6 packets on it.
"""

from __future__ import annotations

import errno
import socket
from ipaddress import IPv6Address

from hyphal.dataplane.tun import TunError


class MemTun:
    """The node's side. Closing the test's side makes reads fail, as a deleted TUN does."""

    def __init__(self, sock: socket.socket, mtu: int) -> None:
        sock.setblocking(False)
        self._sock = sock
        self.mtu = mtu
        self.write_drops = 0

    def fileno(self) -> int:
        return self._sock.fileno()

    def read_into(self, buf: bytearray | memoryview) -> int:
        try:
            size = self._sock.recv_into(buf)
        except BlockingIOError:
            return 0
        except OSError as exc:
            raise TunError(exc.errno or errno.EIO, f"memory TUN read failed: {exc}") from exc
        if size == 0:
            raise TunError(errno.EIO, "memory TUN read failed: the other end is gone")
        return size

    def write(self, packet: bytes | bytearray | memoryview) -> bool:
        try:
            self._sock.send(packet)
            return True
        except OSError:
            self.write_drops += 1
            return False

    def close(self) -> None:
        self._sock.close()


class MemTunPair:
    """A factory for the node (pass :meth:`open` as its ``tun_factory``) plus the test's end."""

    def __init__(self) -> None:
        self._node_end, self.test_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.opened: MemTun | None = None

    def open(self, name: str, address: IPv6Address, mtu: int) -> MemTun:
        self.opened = MemTun(self._node_end, mtu)
        return self.opened

    def send(self, packet: bytes) -> None:
        """Inject one packet as if the kernel routed it into the TUN."""
        self.test_end.send(packet)

    def receive(self, size: int = 1 << 16) -> bytes:
        """One packet the node wrote to its TUN (blocking)."""
        return self.test_end.recv(size)

    def close(self) -> None:
        self.test_end.close()
        if self.opened is None:
            self._node_end.close()
