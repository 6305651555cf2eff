"""A :class:`~hyphal.testing.rawlink.RawLink` that behaves like a live neighbour: a reader thread
opens every record the daemon sends, answers each of its Hellos with an IHU (so the daemon
measures an RTT and counts the link usable) and throws the rest away after counting it, and a
keep-alive thread sends our own Hellos, so the daemon never finds the link silent.

Everything the caller sends goes through :meth:`LiveLink.send_payload` / ``send_tlvs``, which
share one lock with the two threads (the record sender's nonce counter is not thread-safe).
Used by ``bench/router_rss.py`` to hold thousands of routes in a real daemon.
"""

from __future__ import annotations

import contextlib
import socket
import threading

from hyphal.identity import NodeIdentity
from hyphal.testing.rawlink import RawLink
from hyphal.wire import control
from hyphal.wire.errors import DecodeError
from hyphal.wire.link import FRAME_CONTROL, encode_frame, iter_frames


class LiveLink(RawLink):
    """One link to ``host:port`` that stays up and usable until :meth:`close`."""

    def __init__(
        self,
        host: str,
        port: int,
        identity: NodeIdentity | None = None,
        *,
        hello_every: float = 0.25,
        timeout: float = 5.0,
    ) -> None:
        super().__init__(host, port, identity, timeout=timeout)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.hello_every = hello_every
        self.closed_reason: str | None = None
        #: what the daemon sent: records, bytes, TLVs by type (1 Hello, 2 IHU, 3 Update, 4 ...)
        self.records_received = 0
        self.bytes_received = 0
        self.tlvs_received: dict[str, int] = {}  # TLV type name -> count
        self.ihus_sent = 0
        self._reader = threading.Thread(target=self._read_loop, name="livelink-read", daemon=True)
        self._ticker = threading.Thread(target=self._hello_loop, name="livelink-hello", daemon=True)
        self._reader.start()
        self._ticker.start()

    @property
    def alive(self) -> bool:
        return self.closed_reason is None

    def send_frame(self, frame_type: int, body: bytes) -> None:
        with self._lock:
            self.sock.sendall(bytes(self._sender.seal(encode_frame(frame_type, body))))

    def send_payload(self, payload: bytes) -> None:
        """One control frame with an already encoded TLV payload."""
        self.send_frame(FRAME_CONTROL, payload)

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        super().close()
        self._reader.join(2.0)
        self._ticker.join(2.0)

    # ------------------------------------------------------------------ threads

    def _hello_loop(self) -> None:
        while not self._stop.wait(self.hello_every):
            try:
                self.send_tlvs([self.hello(self.hello_every)])
            except OSError as exc:
                self._closed(f"send failed: {exc}")
                return

    def _read_loop(self) -> None:
        pending = self._leftover
        while not self._stop.is_set():
            if pending:
                data, pending = pending, b""
            else:
                try:
                    data = self.sock.recv(262144)
                except OSError as exc:
                    self._closed(f"receive failed: {exc}")
                    return
                if not data:
                    self._closed("the daemon closed the link")
                    return
            self.bytes_received += len(data)
            try:
                records = self._receiver.feed(data)
                answers: list[control.Tlv] = []
                for plaintext in records:
                    self.records_received += 1
                    for frame_type, body in iter_frames(plaintext):
                        if frame_type == FRAME_CONTROL:
                            self._scan(bytes(body), answers)
            except DecodeError as exc:
                self._closed(f"bad record from the daemon: {exc}")
                return
            if answers:
                try:
                    self.send_tlvs(answers)
                except OSError as exc:
                    self._closed(f"send failed: {exc}")
                    return
                self.ihus_sent += len(answers)

    def _scan(self, payload: bytes, answers: list[control.Tlv]) -> None:
        """Count the TLVs of one control payload by type; queue an IHU for every Hello."""
        counts = self.tlvs_received
        for tlv in control.decode_payload(payload):
            kind = type(tlv).__name__
            counts[kind] = counts.get(kind, 0) + 1
            if isinstance(tlv, control.Hello):
                answers.append(control.IHU(tlv.seqno, round(self.hello_every * 100), tlv.timestamp))

    def _closed(self, reason: str) -> None:
        if self.closed_reason is None and not self._stop.is_set():
            self.closed_reason = reason
