"""One TCP peer link: drives the sans-IO handshake, then carries encrypted frames both ways.

This is the data path, so it is built to copy as little as possible:

* Receiving, the link is an ``asyncio.BufferedProtocol``: the socket is read straight into the
  record receiver's buffer and records are decrypted where they landed.
* Sending, frames are appended to one staging buffer (the only copy of a packet's bytes), which
  is sealed into one record per flush. The owner flushes every link it wrote to at
  the end of each batch of work (a TUN drain, a received chunk), so a burst of packets costs one
  AEAD call and one socket write, and a lone packet waits for no extra loop turn. Frames queued
  from anywhere else are flushed on the next loop turn.
* Idle links give memory back: a link with no traffic for IDLE_TRIM_SECONDS frees its staging
  buffer (reallocated on the next send) and shrinks a receive buffer grown by a large record.

Receiving is time-sliced: when the frames of one read have kept the loop for SLICE_SECONDS,
the link pauses reading and hands the rest to the next loop turn, so one neighbour's input
(a burst of signed updates to verify, say) cannot hold the loop for the others.

The send side is bounded: when the kernel socket buffer passes the high-water mark, data frames
are dropped (and counted) while control frames still go out, so routing survives overload. The
total backlog (control frames included) has a hard cap, MAX_BACKLOG: a neighbour that stops
reading is aborted, with one log line, once it is passed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol, cast

from hyphal.crypto.handshake import HandshakeError, LinkHandshake
from hyphal.links.capabilities import decode_capabilities
from hyphal.links.endpoint import Endpoint
from hyphal.wire.errors import DecodeError
from hyphal.wire.link import FRAME_DATA, FRAME_HEADER_SIZE, frame_header, iter_frames

if TYPE_CHECKING:
    from hyphal.crypto.session import RecordReceiver, RecordSender
    from hyphal.links.manager import LinkKind

log = logging.getLogger("hyphal.links")

HANDSHAKE_TIMEOUT = 10.0
STAGING_SIZE = 256 * 1024
SEND_HIGH_WATER = 4 * 1024 * 1024
SEND_LOW_WATER = 1 * 1024 * 1024
MAX_BACKLOG = 8 * 1024 * 1024
HANDSHAKE_READ = 4096
IDLE_TRIM_SECONDS = 30.0  # a link with no traffic for this long gives its large buffers back
SLICE_SECONDS = 0.02  # longest run of received frames handled before other work gets a turn


class LinkEvents(Protocol):
    """What the link reports to its owner (the peer manager)."""

    def link_established(self, link: PeerLink) -> None: ...
    def link_frame(self, link: PeerLink, frame_type: int, body: memoryview) -> None: ...
    def link_closed(self, link: PeerLink, reason: str) -> None: ...
    def link_has_output(self, link: PeerLink) -> None: ...
    def admit_inbound(self, link: PeerLink, host: str) -> str | None: ...
    def flush_links(self) -> None: ...


class PeerLink(asyncio.BufferedProtocol):
    """An authenticated, encrypted link to one neighbour over one TCP connection."""

    def __init__(
        self,
        link_id: int,
        events: LinkEvents,
        handshake: LinkHandshake,
        *,
        initiator: bool,
        endpoint: Endpoint | None,
        kind: LinkKind,
    ) -> None:
        self.id = link_id
        self.initiator = initiator
        self.endpoint = endpoint
        self.kind = kind
        self.remote_public_key: bytes | None = None
        self.features = 0  # the peer's capability bits, known once established
        self.remote_address = ""
        self.remote_host = ""
        self.established = False
        self.closed = False
        self.tx_bytes = 0
        self.rx_bytes = 0
        self.dropped_frames = 0
        self.backlog_overflowed = False
        self.close_reason = ""
        # Why the handshake failed (HandshakeError.reason, "timeout", or "pinned-key"), if it did.
        self.handshake_failure: str | None = None
        self.refused = False  # refused at accept time (the manager logged it)
        self._events = events
        self._handshake: LinkHandshake | None = handshake
        self._handshake_buffer = bytearray(HANDSHAKE_READ)
        self._sender: RecordSender | None = None
        self._receiver: RecordReceiver | None = None
        self._transport: asyncio.Transport | None = None
        self._staging: bytearray | None = None  # allocated on first send, freed when idle
        self._staged = 0
        self._paused = False
        self._timeout: asyncio.TimerHandle | None = None
        self._idle_timer: asyncio.TimerHandle | None = None
        self._idle_mark = (-1, -1)
        # Frames received but not yet handed on (a read whose frames outlasted a slice).
        self._inbound: deque[Iterator[tuple[int, memoryview]]] = deque()
        self._resume: asyncio.Handle | None = None

    @property
    def connected(self) -> bool:
        """True once the transport handed us a connection (connection_lost will follow)."""
        return self._transport is not None

    # asyncio.BufferedProtocol -----------------------------------------------------------------

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
            self.remote_host = host
            self.remote_address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        if not self.initiator:
            refusal = self._events.admit_inbound(self, self.remote_host)
            if refusal is not None:  # the manager logged it (rate-limited); abort at once
                self.closed = True
                self.refused = True
                self.close_reason = refusal
                transport.abort()
                return
        transport.set_write_buffer_limits(high=SEND_HIGH_WATER, low=SEND_LOW_WATER)
        loop = asyncio.get_running_loop()
        self._timeout = loop.call_later(HANDSHAKE_TIMEOUT, self._handshake_timed_out)
        assert self._handshake is not None
        transport.write(self._handshake.initial_bytes())

    def get_buffer(self, sizehint: int) -> memoryview:
        if self._receiver is not None:
            try:
                return self._receiver.get_buffer(sizehint)
            except DecodeError:
                pass  # poisoned: the link is closing; swallow what is still in flight
        return memoryview(self._handshake_buffer)

    def buffer_updated(self, nbytes: int) -> None:
        self.rx_bytes += nbytes
        if self.closed:
            return
        self._guarded(nbytes)

    def _guarded(self, nbytes: int) -> None:
        """Take ``nbytes`` new bytes (or, with 0, go on with frames held back), closing the link
        on a handshake failure or malformed input."""
        try:
            if self._handshake is not None:
                self._handshake_data(bytes(self._handshake_buffer[:nbytes]))
            elif self._receiver is not None:
                if nbytes:
                    self._deliver(self._receiver.buffer_updated(nbytes))
                else:
                    self._drain()
        except HandshakeError as exc:
            if exc.reply and self._transport is not None:
                self._transport.write(exc.reply)  # tell the peer why, before closing
            self.handshake_failure = exc.reason
            self.close(f"handshake failed ({exc.reason}): {exc}")
        except DecodeError as exc:
            self.close(f"malformed data from peer, dropping it: {exc}")
        self._events.flush_links()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timeout is not None:
            self._timeout.cancel()
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        if not self.close_reason:
            self.close_reason = f"connection lost: {exc}" if exc else "connection closed by peer"
            who = self.remote_address or "peer"
            log.debug("link %d to %s: %s", self.id, who, self.close_reason)
        self.closed = True
        self._staged = 0
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
        self.features = decode_capabilities(handshake.remote_payload)
        self._sender, self._receiver, leftover = handshake.split()
        self.remote_public_key = handshake.remote_public_key
        self._handshake = None
        if self._timeout is not None:
            self._timeout.cancel()
            self._timeout = None
        self.established = True
        self._idle_timer = asyncio.get_running_loop().call_later(IDLE_TRIM_SECONDS, self._idle_tick)
        self._events.link_established(self)
        if leftover and not self.closed:
            self._deliver(self._receiver.feed(leftover))

    def _deliver(self, plaintexts: list[bytes]) -> None:
        self._inbound.extend(iter_frames(plaintext) for plaintext in plaintexts)
        if self._resume is None:
            self._drain()

    def _drain(self) -> None:
        """Hand received frames on until none are left or a slice is used up; then pause
        reading and continue on the next loop turn (other links and timers go first)."""
        self._resume = None
        deadline = time.monotonic() + SLICE_SECONDS
        inbound = self._inbound
        while inbound:
            for frame_type, body in inbound[0]:
                if self.closed:
                    inbound.clear()
                    return
                self._events.link_frame(self, frame_type, body)
                if time.monotonic() > deadline:
                    if self._transport is not None:
                        self._transport.pause_reading()
                    self._resume = asyncio.get_running_loop().call_soon(self._guarded, 0)
                    return
            if self.closed:
                return
            inbound.popleft()
        if self._transport is not None and not self._transport.is_reading():
            self._transport.resume_reading()

    @property
    def buffer_bytes(self) -> int:
        """Bytes of send and receive buffers this link holds on to."""
        staging = len(self._staging) if self._staging is not None else 0
        return staging + (self._receiver.capacity if self._receiver is not None else 0)

    def _idle_tick(self) -> None:
        """Every IDLE_TRIM_SECONDS: if nothing moved since the last tick, give buffers back."""
        mark = (self.rx_bytes, self.tx_bytes)
        if mark == self._idle_mark and self._staged == 0:
            self._staging = None
            if self._receiver is not None:
                self._receiver.trim()
        self._idle_mark = mark
        self._idle_timer = asyncio.get_running_loop().call_later(IDLE_TRIM_SECONDS, self._idle_tick)

    def _handshake_timed_out(self) -> None:
        self.handshake_failure = "timeout"
        self.close(f"handshake did not complete within {HANDSHAKE_TIMEOUT:.0f} s")

    # sending ----------------------------------------------------------------------------------

    def send_frame(self, frame_type: int, body: bytes | bytearray | memoryview) -> bool:
        """Queue one frame; False when it was dropped (link closed, or data under overload)."""
        if self.closed or self._sender is None:
            return False
        if frame_type == FRAME_DATA and self._paused:
            self.dropped_frames += 1
            return False
        size = FRAME_HEADER_SIZE + len(body)
        if self._staged + size > STAGING_SIZE:
            self.flush()
            if size > STAGING_SIZE:  # a frame larger than the staging buffer goes on its own
                self._write(self._sender.seal(frame_header(frame_type, len(body)) + body))
                return True
        if self._staged == 0:
            self._events.link_has_output(self)
        staging = self._staging
        if staging is None:
            staging = self._staging = bytearray(STAGING_SIZE)
        pos = self._staged
        staging[pos : pos + FRAME_HEADER_SIZE] = frame_header(frame_type, len(body))
        staging[pos + FRAME_HEADER_SIZE : pos + size] = body
        self._staged = pos + size
        return True

    def flush(self) -> None:
        """Seal everything staged into one record and write it."""
        staged = self._staged
        if staged == 0 or self._staging is None or self._sender is None or self.closed:
            self._staged = 0
            return
        self._staged = 0
        with memoryview(self._staging) as view:
            record = self._sender.seal(view[:staged])
        self._write(record)

    def _write(self, record: bytearray | bytes) -> None:
        if self._transport is None:
            return
        self.tx_bytes += len(record)
        self._transport.write(record)
        backlog = self._transport.get_write_buffer_size()
        if backlog > MAX_BACKLOG:  # control frames included: a peer that never reads is dropped
            self.backlog_overflowed = True
            self.close(f"send backlog of {backlog} bytes is over the {MAX_BACKLOG} byte cap")
            self._transport.abort()  # a graceful close would wait for the peer to read

    def close(self, reason: str) -> None:
        """Close the link; the owner hears about it through link_closed and logs it."""
        if self.closed:
            return
        self.closed = True
        self.close_reason = reason
        self._inbound.clear()
        if self._resume is not None:
            self._resume.cancel()
            self._resume = None
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None
        who = self.remote_address or "peer"
        if self.remote_public_key is not None:
            who += f" ({self.remote_public_key.hex()[:16]}…)"
        log.debug("link %d to %s closing: %s", self.id, who, reason)
        if self._transport is not None:
            self._transport.close()
