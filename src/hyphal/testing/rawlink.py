"""A hand-driven link to a daemon, for hostile tests: a real handshake over a blocking socket,
then whatever frames the caller chooses to send, sealed with the real link keys.

It runs the project's own handshake and record code, so the daemon sees a peer that completed
the handshake honestly; nothing else about it need be honest. It reads only while handshaking:
after that a caller that never calls :meth:`RawLink.wait_closed` never reads at all.
"""

from __future__ import annotations

import socket
import time

from hyphal.crypto.handshake import LinkHandshake
from hyphal.identity import NodeIdentity
from hyphal.wire import control
from hyphal.wire.link import FRAME_CONTROL, encode_frame


class RawLink:
    """One link to ``host:port`` as ``identity`` (a fresh one by default)."""

    def __init__(
        self,
        host: str,
        port: int,
        identity: NodeIdentity | None = None,
        *,
        receive_buffer: int | None = None,
        timeout: float = 5.0,
    ) -> None:
        self.identity = identity or NodeIdentity.generate()
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        if receive_buffer is not None:  # before connect, so the window stays small
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self._hello_seqno = 0
        self._last_hello = 0.0
        hs = LinkHandshake(self.identity, initiator=True, network_name=None, network_key=None)
        self.sock.sendall(hs.initial_bytes())
        while not hs.complete:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("the daemon closed the link during the handshake")
            reply = hs.receive(data)
            if reply:
                self.sock.sendall(reply)
        self._sender, self._receiver, self._leftover = hs.split()
        self.sock.settimeout(None)

    def send_frame(self, frame_type: int, body: bytes) -> None:
        self.sock.sendall(bytes(self._sender.seal(encode_frame(frame_type, body))))

    def send_tlvs(self, tlvs: list[control.Tlv]) -> None:
        self.send_frame(FRAME_CONTROL, control.encode_payload(tlvs))

    def hello(self, interval: float = 0.5) -> control.Hello:
        """The next Hello we would send (seqno and timestamp advance)."""
        self._hello_seqno = (self._hello_seqno + 1) & 0xFFFF
        stamp = int(time.monotonic() * 1e6) & 0xFFFFFFFF
        return control.Hello(self._hello_seqno, int(interval * 100), stamp)

    def keep_alive(self, every: float = 0.5) -> None:
        """Send a Hello when ``every`` seconds have passed since the last, so the daemon keeps
        the link (it drops a neighbour silent for its dead interval)."""
        now = time.monotonic()
        if now - self._last_hello >= every:
            self._last_hello = now
            self.send_tlvs([self.hello(every)])

    def wait_closed(self, timeout: float = 5.0) -> bool:
        """Read until the daemon closes the link (True) or ``timeout`` passes (False)."""
        self.sock.settimeout(timeout)
        try:
            while self.sock.recv(65536):
                pass
        except TimeoutError:
            return False
        except OSError:
            pass
        return True

    def close(self) -> None:
        self.sock.close()
