"""Thin asyncio adapter around :class:`hyphal.bus.core.MessageCore`.

The node provides two callbacks and feeds arriving bus packets in:

* ``send_packet(dst_public_key, body) -> bool`` - seal ``body`` as a KIND_BUS e2e packet for that
  node; False (no route, queue full) is treated like loss, the core retransmits.
* ``resolve_ip(address) -> public key | None`` - the routing table's answer for an overlay IP.
* ``service.handle_packet(src_public_key, body)`` for each KIND_BUS packet that arrives.
* ``service.routes_changed()`` whenever the node may have learned routes (after routing input):
  messages waiting for an address's owner start, stalled INITs are resent (a few dict lookups,
  and none at all while nothing waits).

BLAKE3 of a received message of ``PARALLEL_HASH_MIN`` bytes or more runs in a worker thread
(``asyncio.to_thread``); the core delivers it, and sends RECEIVED, once the answer is fed back.
With a store, the core's writes come back as persistence actions (``hyphal.bus.persist``); one
writer task applies them in a worker thread, in order, and only then runs the actions that
followed each write in its batch (RECEIVED after the inbox row is durable, the first INIT after
the outbox row), so a 128 MiB write never stalls the loop.
The core's timers run through the shared :class:`hyphal.node.driver.CoreDriver` (one loop timer
at ``core.next_deadline()``, re-armed after every batch of actions). Long-poll readers and reply
waiters each wait on their own future; no lock is held while waiting, so a long poll never
blocks other API calls.

Readers either ``pop`` (delete + READ at once) or ``take`` a lease, then ``ack`` (delete + READ)
or ``release`` it; a lease not acked in ``limits.lease_time`` returns to the inbox. A message for
a forwarded topic is stored in the inbox, leased, and acked only once the socket has it; on
failure it is released to the inbox readers, and after a restart it is forwarded again. At most
``MAX_FORWARDS`` forwards run at once; a socket's answer is read to EOF within
``max_message_size`` bytes and ``FORWARD_REPLY_TIMEOUT`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Coroutine, Sequence
from ipaddress import IPv6Address
from pathlib import Path
from typing import TYPE_CHECKING

from hyphal.bus.core import (
    PARALLEL_HASH_MIN,
    Action,
    BusError,
    ForwardMessage,
    Limits,
    MessageArrived,
    MessageCore,
    MessageStatus,
    ReplyArrived,
    SendPacket,
    VerifyMessage,
    message_digest,
)
from hyphal.bus.inbox import InboundMessage
from hyphal.bus.persist import Persist, apply
from hyphal.bus.store import MessageStore
from hyphal.bus.topics import TopicTable

if TYPE_CHECKING:
    from hyphal.node.driver import CoreDriver

log = logging.getLogger(__name__)

SendPacketFn = Callable[[bytes, bytes], bool]
ResolveIpFn = Callable[[IPv6Address], "bytes | None"]

FORWARD_CONNECT_TIMEOUT = 5.0
FORWARD_REPLY_TIMEOUT = 60.0
MAX_FORWARDS = 8


class MessageService:
    """The node's message bus: owns a MessageCore, its timer task and the waiters."""

    def __init__(
        self,
        public_key: bytes,
        send_packet: SendPacketFn,
        resolve_ip: ResolveIpFn,
        *,
        limits: Limits | None = None,
        store_dir: Path | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        topics: TopicTable | None = None,
        forward_dir: Path | None = None,
    ) -> None:
        self._send_packet = send_packet
        self._resolve_ip = resolve_ip
        self._clock = clock
        self._store = MessageStore(store_dir) if store_dir is not None else None
        now = clock()
        self.core = MessageCore(
            public_key,
            now,
            limits=limits,
            store=self._store,
            wall_offset=wall_clock() - now,
            topics=topics,
            defer_large_hashes=True,
            defer_writes=True,
        )
        self.core.topics.forward_dir = forward_dir
        # Imported here: hyphal.node's package imports this module, so a module-level import
        # would be circular when hyphal.bus is imported first.
        from hyphal.node.driver import CoreDriver

        self._driver: CoreDriver[Action] = CoreDriver("bus", self.core, self._run, clock)
        self._started = False
        self._forward_slots = asyncio.Semaphore(MAX_FORWARDS)
        self._inbox_waiters: set[asyncio.Future[None]] = set()
        self._reply_waiters: dict[bytes, list[asyncio.Future[InboundMessage]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._send_failures_logged: set[bytes] = set()
        # Store writes and the actions waiting for each, applied by one writer task in order.
        self._writes: asyncio.Queue[tuple[Persist, list[Action]]] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        # The actions waiting for the newest unfinished write: later actions queue behind it too,
        # so nothing (a RECEIVED for a resent INIT, a retransmitted INIT) overtakes a write.
        self._tail: list[Action] | None = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def public_key(self) -> bytes:
        return self.core.public_key

    @property
    def topics(self) -> TopicTable:
        return self.core.topics

    async def start(self) -> None:
        """Arm the core's timer and resume transfers (and forwards) restored from the store."""
        if not self._started:
            self._started = True
            self._driver.start()
            self._driver.feed(self.core.start(self._clock()))

    async def close(self) -> None:
        self._driver.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for fut in self._inbox_waiters:
            if not fut.done():
                fut.cancel()
        if self._writer is not None:
            await self._writes.join()  # every accepted write is durable before the store closes
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
            self._writer = None
        if self._store is not None:
            self._store.close()
            self._store = None

    def _run(self, actions: Sequence[Action]) -> None:
        """Apply actions in order; while a store write is unfinished, they wait until it is
        durable (each write in turn), so every action runs after the writes queued before it."""
        waiting = self._tail
        for action in actions:
            if isinstance(action, Persist):
                waiting = []
                self._queue_write(action, waiting)
            elif waiting is not None:
                waiting.append(action)
            else:
                self._apply(action)

    def _queue_write(self, op: Persist, then: list[Action]) -> None:
        if self._writer is None:
            self._writer = asyncio.get_running_loop().create_task(self._write_loop())
        self._writes.put_nowait((op, then))
        self._tail = then

    async def _write_loop(self) -> None:
        """The one store writer: each write in a worker thread, then what waited for it."""
        store = self._store
        assert store is not None  # the core emits writes only when it has a store
        while True:
            op, then = await self._writes.get()
            try:
                await asyncio.to_thread(apply, store, op)
            except sqlite3.Error as exc:
                if then is self._tail:
                    self._tail = None
                log.error(
                    "message store write %s failed (%s); %d dependent actions dropped",
                    type(op).__name__,
                    exc,
                    len(then),
                )
            else:
                if then is self._tail:
                    self._tail = None
                self._driver.feed(then)
            finally:
                self._writes.task_done()

    def _apply(self, action: Action) -> None:
        if isinstance(action, SendPacket):
            try:
                self._send_packet(action.dst, action.body)
            except Exception as exc:
                self._send_failed(action.dst, exc)
        elif isinstance(action, MessageArrived):
            log.debug("message arrived in the inbox (topic %r)", action.topic)
            waiters, self._inbox_waiters = self._inbox_waiters, set()
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)
        elif isinstance(action, ReplyArrived):
            taken = False
            for reply_fut in self._reply_waiters.pop(action.message.msg_id, []):
                if not reply_fut.done():
                    reply_fut.set_result(action.message)
                    taken = True
            if not taken:  # every waiter gave up meanwhile: keep the reply for readers
                self._run(self.core.deliver_to_inbox(action.message))
        elif isinstance(action, ForwardMessage):
            self._spawn(self._forward(action.message, action.socket_path))
        elif isinstance(action, VerifyMessage):
            self._spawn(self._verify(action))

    def _spawn(self, coro: Coroutine[None, None, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _verify(self, action: VerifyMessage) -> None:
        """Hash a large received message in a worker thread so the loop keeps serving."""
        ok = await asyncio.to_thread(lambda: message_digest(action.payload) == action.digest)
        self._driver.feed(self.core.on_verified(action.key, action.payload, ok, self._clock()))

    def _send_failed(self, dst: bytes, exc: Exception) -> None:
        """``send_packet`` raised instead of returning False: treat it as loss, like False.

        One log line (no traceback) per destination, not one per retransmission.
        """
        if dst in self._send_failures_logged:
            return
        if len(self._send_failures_logged) >= 1024:
            self._send_failures_logged.clear()
        self._send_failures_logged.add(dst)
        log.warning(
            "cannot send bus packets to %s (%s: %s); treating them as lost",
            dst.hex()[:16],
            type(exc).__name__,
            exc,
        )

    # ------------------------------------------------------------------ node side
    def handle_packet(self, src_public_key: bytes, body: bytes) -> None:
        """Feed one arriving KIND_BUS packet body from the authenticated ``src_public_key``."""
        self._driver.feed(self.core.handle_packet(src_public_key, body, self._clock()))

    def routes_changed(self) -> None:
        """The node may know new routes: let waiting and stalled messages use them."""
        if self.core.watching:
            self._driver.feed(self.core.check_routes(self._owner_of_prefix, self._clock()))

    def _owner_of_prefix(self, prefix64: bytes) -> bytes | None:
        return self._resolve_ip(IPv6Address(prefix64 + bytes(8)))

    # ------------------------------------------------------------------ API side
    def owner_of(self, address: IPv6Address) -> bytes | None:
        """The public key of the node that owns an overlay address, if any is known."""
        return self._resolve_ip(address)

    def send(
        self, dst: bytes, payload: bytes, *, topic: bytes = b"", deadline: float | None = None
    ) -> bytes:
        """Queue a message; returns its 8-byte id. Raises BusError subclasses.

        ``dst`` is a public key, or an overlay address (16 bytes) whose owner is not known yet:
        the message then waits for a route to it until its deadline.
        """
        return self._queue(dst, payload, topic, deadline, None)

    async def submit(
        self, dst: bytes, payload: bytes, *, topic: bytes = b"", deadline: float | None = None
    ) -> bytes:
        """:meth:`send`, hashing a payload of ``PARALLEL_HASH_MIN`` bytes or more in a worker
        thread first, so a 128 MiB message does not stall the event loop."""
        digest = None
        if len(payload) >= PARALLEL_HASH_MIN:
            digest = await asyncio.to_thread(message_digest, payload)
        return self._queue(dst, payload, topic, deadline, digest)

    def _queue(
        self, dst: bytes, payload: bytes, topic: bytes, deadline: float | None, digest: bytes | None
    ) -> bytes:
        msg_id, actions = self.core.send(
            dst, payload, self._clock(), topic=topic, deadline=deadline, digest=digest
        )
        self._driver.feed(actions)
        log.debug(
            "message %s queued for %s: %d bytes, topic %r",
            msg_id.hex(),
            dst.hex()[:16],
            len(payload),
            topic,
        )
        return msg_id

    async def send_and_wait_reply(
        self,
        dst: bytes,
        payload: bytes,
        reply_timeout: float,
        *,
        topic: bytes = b"",
        deadline: float | None = None,
    ) -> tuple[bytes, InboundMessage | None]:
        """Send, then wait up to ``reply_timeout`` s for the reply (None on timeout)."""
        msg_id = await self.submit(dst, payload, topic=topic, deadline=deadline)
        fut: asyncio.Future[InboundMessage] = asyncio.get_running_loop().create_future()
        self._reply_waiters.setdefault(msg_id, []).append(fut)
        self.core.expect_reply(msg_id)
        try:
            async with asyncio.timeout(reply_timeout):
                return msg_id, await fut
        except TimeoutError:
            return msg_id, None
        finally:
            self.core.cancel_reply(msg_id)
            waiters = self._reply_waiters.get(msg_id)
            if waiters is not None:
                if fut in waiters:
                    waiters.remove(fut)
                if not waiters:
                    del self._reply_waiters[msg_id]

    def reply(
        self,
        msg_id: bytes,
        payload: bytes,
        *,
        topic: bytes = b"",
        dst: bytes | None = None,
        deadline: float | None = None,
    ) -> None:
        """Reply to a received message (to its sender unless ``dst`` is given)."""
        self._driver.feed(
            self.core.reply(msg_id, payload, self._clock(), topic=topic, dst=dst, deadline=deadline)
        )

    async def pop(
        self,
        topic: bytes | None = None,
        *,
        peek: bool = False,
        timeout: float = 0.0,  # noqa: ASYNC109
    ) -> InboundMessage | None:
        """Next inbox message (topic-prefix filter); waits up to ``timeout`` s for one."""

        def attempt() -> InboundMessage | None:
            message, actions = self.core.pop(self._clock(), topic, peek=peek)
            self._driver.feed(actions)
            return message

        return await self._wait_inbox(attempt, timeout)

    async def take(self, topic: bytes | None, timeout: float) -> InboundMessage | None:  # noqa: ASYNC109
        """Lease the oldest matching message (waits up to ``timeout`` s for one).

        The message is hidden from other readers but neither deleted nor reported read until
        :meth:`ack`; :meth:`release` (or ``limits.lease_time`` without an ack) puts it back.
        Leases are not persisted: after a restart the message is in the inbox again.
        """

        def attempt() -> InboundMessage | None:
            message = self.core.take(self._clock(), topic)
            self._driver.rearm()
            return message

        return await self._wait_inbox(attempt, timeout)

    def ack(self, msg_id: bytes) -> bool:
        """The client has the leased message: delete it and send READ (False: no such lease)."""
        done, actions = self.core.ack(msg_id, self._clock())
        self._driver.feed(actions)
        return done

    def release(self, msg_id: bytes) -> None:
        """Put a leased message back into the inbox, first in line."""
        self._driver.feed(self.core.release(msg_id))

    async def _wait_inbox(
        self,
        attempt: Callable[[], InboundMessage | None],
        timeout: float,  # noqa: ASYNC109
    ) -> InboundMessage | None:
        loop = asyncio.get_running_loop()
        end = loop.time() + max(0.0, timeout)
        while True:
            message = attempt()
            remaining = end - loop.time()
            if message is not None or remaining <= 0:
                return message
            fut: asyncio.Future[None] = loop.create_future()
            self._inbox_waiters.add(fut)
            try:
                async with asyncio.timeout(remaining):
                    await fut
            except TimeoutError:
                pass
            finally:
                self._inbox_waiters.discard(fut)

    def status(self, msg_id: bytes) -> MessageStatus | None:
        return self.core.status(msg_id)

    # topic configuration (thin wrappers over TopicTable)
    def get_default_accept(self) -> bool:
        return self.core.topics.default_accept

    def set_default_accept(self, accept: bool) -> None:
        self.core.topics.default_accept = accept

    # ------------------------------------------------------------------ forwarding
    async def _forward(self, message: InboundMessage, path: str) -> None:
        """Write the message to a topic's Unix socket; send what it answers as the reply.

        The message stays leased in the (stored) inbox until the socket has it; then it is acked.
        """
        limit = self.core.limits.max_message_size
        delivered = False
        try:
            async with self._forward_slots:
                self.core.topics.check_forward_socket(path)
                async with asyncio.timeout(FORWARD_CONNECT_TIMEOUT):
                    reader, writer = await asyncio.open_unix_connection(path, limit=1 << 16)
                try:
                    async with asyncio.timeout(FORWARD_CONNECT_TIMEOUT):
                        writer.write(message.payload)
                        await writer.drain()
                        if writer.can_write_eof():
                            writer.write_eof()
                    self.ack(message.msg_id)  # the socket has it
                    delivered = True
                    async with asyncio.timeout(FORWARD_REPLY_TIMEOUT):
                        answer = await _read_to_eof(reader, limit)
                finally:
                    writer.close()
        except (OSError, TimeoutError, BusError) as exc:
            if delivered:
                log.info("forward socket %s gave no answer (%s)", path, exc)
            else:
                log.info("forwarding to %s failed (%s); message goes to the inbox", path, exc)
                self.release(message.msg_id)
            return
        if answer is None:
            log.info("forward socket %s answered more than %d bytes; answer dropped", path, limit)
            return
        if answer:
            try:
                self.reply(message.msg_id, answer, topic=message.topic, dst=message.src_pk)
            except BusError as exc:
                log.info("cannot send the forward socket's reply: %s", exc)


async def _read_to_eof(reader: asyncio.StreamReader, limit: int) -> bytes | None:
    """Everything ``reader`` sends until EOF; None once it exceeds ``limit`` bytes."""
    parts: list[bytes] = []
    size = 0
    while chunk := await reader.read(1 << 16):
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
    return b"".join(parts)
