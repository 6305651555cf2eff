"""One TCP peer link: drives the sans-IO handshake, then carries encrypted frames both ways.

The link batches every frame queued during one event-loop iteration into a single encrypted record,
so a burst of packets costs one AEAD call and one socket write. Its send queue is bounded: when the
kernel socket buffer and our queue pass the high-water mark, data frames are dropped (and counted)
while control frames still go out, so routing keeps working under overload.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from typing import TYPE_CHECKING, Protocol, cast

from hyphal.crypto.handshake import HandshakeError, LinkHandshake
from hyphal.links.endpoint import Endpoint
from hyphal.wire.errors import DecodeError
from hyphal.wire.link import FRAME_DATA, encode_frame, iter_frames

if TYPE_CHECKING:
    from hyphal.crypto.session import RecordReceiver, RecordSender

log = logging.getLogger("hyphal.links")

HANDSHAKE_TIMEOUT = 10.0
MAX_RECORD_PLAINTEXT = 256 * 1024
SEND_HIGH_WATER = 4 * 1024 * 1024
SEND_LOW_WATER = 1 * 1024 * 1024


class LinkEvents(Protocol):
    """What the link reports to its owner (the peer manager)."""

    def link_established(self, link: PeerLink) -> None: ...
    def link_frame(self, link: PeerLink, frame_type: int, body: memoryview) -> None: ...
    def link_closed(self, link: PeerLink, reason: str) -> None: ...


class PeerLink(asyncio.Protocol):
    """An authenticated, encrypted link to one neighbour over one TCP connection."""

    def __init__(
        self,
        link_id: int,
        events: LinkEvents,
        handshake: LinkHandshake,
        *,
        initiator: bool,
        endpoint: Endpoint | None,
        kind: str,
    ) -> None:
        self.id = link_id
        self.initiator = initiator
        self.endpoint = endpoint
        self.kind = kind
        self.remote_public_key: bytes | None = None
        self.remote_address = ""
        self.established = False
        self.closed = False
        self.tx_bytes = 0
        self.rx_bytes = 0
        self.dropped_frames = 0
        self.close_reason = ""
        self._events = events
        self._handshake: LinkHandshake | None = handshake
        self._sender: RecordSender | None = None
        self._receiver: RecordReceiver | None = None
        self._transport: asyncio.Transport | None = None
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._flush_scheduled = False
        self._paused = False
        self._timeout: asyncio.TimerHandle | None = None

    # asyncio.Protocol -------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        transport = self._transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = transport.get_extra_info("peername")
        if peer:
            host, port = peer[0], peer[1]
            self.remote_address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        transport.set_write_buffer_limits(high=SEND_HIGH_WATER, low=SEND_LOW_WATER)
        loop = asyncio.get_running_loop()
        self._timeout = loop.call_later(HANDSHAKE_TIMEOUT, self._handshake_timed_out)
        assert self._handshake is not None
        transport.write(self._handshake.initial_bytes())

    def data_received(self, data: bytes) -> None:
        self.rx_bytes += len(data)
        try:
            if self._handshake is not None:
                self._handshake_data(data)
            elif self._receiver is not None:
                self._record_data(data)
        except HandshakeError as exc:
            if exc.reply and self._transport is not None:
                self._transport.write(exc.reply)  # tell the peer why, before closing
            self.close(f"handshake failed ({exc.reason}): {exc}")
        except DecodeError as exc:
            self.close(f"malformed data from peer, dropping it: {exc}")

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timeout is not None:
            self._timeout.cancel()
        if not self.close_reason:
            self.close_reason = f"connection lost: {exc}" if exc else "connection closed by peer"
            who = self.remote_address or "peer"
            log.info("link %d to %s: %s", self.id, who, self.close_reason)
        self.closed = True
        self._events.link_closed(self, self.close_reason)

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False

    # handshake and records ------------------------------------------------------------------

    def _handshake_data(self, data: bytes) -> None:
        handshake = self._handshake
        assert handshake is not None and self._transport is not None
        reply = handshake.receive(data)
        if reply:
            self._transport.write(reply)
        if not handshake.complete:
            return
        self._sender, self._receiver, leftover = handshake.split()
        self.remote_public_key = handshake.remote_public_key
        self._handshake = None
        if self._timeout is not None:
            self._timeout.cancel()
            self._timeout = None
        self.established = True
        self._events.link_established(self)
        if leftover and not self.closed:
            self._record_data(leftover)

    def _record_data(self, data: bytes) -> None:
        assert self._receiver is not None
        for plaintext in self._receiver.feed(data):
            for frame_type, body in iter_frames(plaintext):
                if self.closed:
                    return
                self._events.link_frame(self, frame_type, body)

    def _handshake_timed_out(self) -> None:
        self.close(f"handshake did not complete within {HANDSHAKE_TIMEOUT:.0f} s")

    # sending ----------------------------------------------------------------------------------

    def send_frame(self, frame_type: int, body: bytes | bytearray | memoryview) -> bool:
        """Queue one frame; False when it was dropped (link closed, or data under overload)."""
        if self.closed or self._sender is None:
            return False
        if frame_type == FRAME_DATA and (self._paused or self._pending_size > SEND_HIGH_WATER):
            self.dropped_frames += 1
            return False
        frame = encode_frame(frame_type, body)
        self._pending.append(frame)
        self._pending_size += len(frame)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)
        return True

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self.closed or self._transport is None or self._sender is None:
            self._pending.clear()
            self._pending_size = 0
            return
        batch: list[bytes] = []
        size = 0
        records: list[bytes] = []
        for frame in self._pending:
            if batch and size + len(frame) > MAX_RECORD_PLAINTEXT:
                records.append(self._sender.seal(b"".join(batch)))
                batch, size = [], 0
            batch.append(frame)
            size += len(frame)
        if batch:
            records.append(self._sender.seal(batch[0] if len(batch) == 1 else b"".join(batch)))
        self._pending.clear()
        self._pending_size = 0
        for record in records:
            self.tx_bytes += len(record)
        self._transport.writelines(records)

    def close(self, reason: str) -> None:
        """Close the link, logging why; the owner hears about it through link_closed."""
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        who = self.remote_address or "peer"
        if self.remote_public_key is not None:
            who += f" ({self.remote_public_key.hex()[:16]}…)"
        log.warning("link %d to %s closed: %s", self.id, who, reason)
        if self._transport is not None:
            self._transport.close()
