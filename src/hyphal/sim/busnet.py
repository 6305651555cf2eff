"""Message cores on an ideal lossy channel, driven by the engine: the net the bus tests use.

Node ``n`` has the public key ``node_key(n)``. A packet a core sends is lost with probability
``loss``, else it reaches its destination ``latency`` (plus up to ``jitter``) later, unless the
destination is ``down`` by then. The cores' own outputs (arrivals, replies) are counted and kept
for inspection; forwarding requests are ignored, as there is no routing here.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable

from hyphal.bus.core import (
    Action,
    Limits,
    MessageArrived,
    MessageCore,
    ReplyArrived,
    SendPacket,
)
from hyphal.bus.inbox import InboundMessage
from hyphal.bus.store import MessageStore
from hyphal.sim.engine import Driven, Engine


def node_key(n: int) -> bytes:
    """The public key of node ``n``."""
    return bytes([n]) * 32


class BusNet:
    """Message cores keyed by public key on one shared channel."""

    def __init__(
        self,
        *,
        seed: int = 1,
        loss: float = 0.0,
        latency: float = 0.02,
        jitter: float = 0.0,
        now: float = 1000.0,
    ) -> None:
        self.seed = seed
        self.loss = loss
        self.latency = latency
        self.jitter = jitter
        self.rng = random.Random(seed)
        self.engine = Engine(now=now)
        self.cores: dict[bytes, MessageCore] = {}
        self.down: set[bytes] = set()
        """Keys whose core receives nothing (its timers still run)."""
        self.replies: dict[bytes, list[InboundMessage]] = {}
        """Request id -> replies that arrived for it."""
        self.arrived = 0
        self.sent_packets = 0
        self.on_send: Callable[[bytes, SendPacket], None] | None = None
        """Sees every packet a core sends, before loss."""
        self._slots: dict[bytes, Driven[Action]] = {}

    @property
    def now(self) -> float:
        return self.engine.now

    @now.setter
    def now(self, value: float) -> None:
        """Let time pass with nothing happening (e.g. while a node is off)."""
        self.engine.now = max(self.engine.now, value)

    def add(
        self,
        n: int,
        limits: Limits | None = None,
        *,
        store: MessageStore | None = None,
    ) -> MessageCore:
        """A fresh core for node ``n`` (replacing any earlier one: a restart)."""
        ids = random.Random(n * 7919 + self.seed)
        core = MessageCore(
            node_key(n),
            self.now,
            limits=limits,
            store=store,
            wall_offset=1.7e9,
            id_source=lambda: ids.randbytes(8),
        )
        self.cores[node_key(n)] = core
        return core

    def send(
        self,
        a: int,
        b: int,
        payload: bytes,
        *,
        topic: bytes = b"",
        deadline: float | None = None,
        reply_to: bytes | None = None,
    ) -> bytes:
        """Queue a message from node ``a`` to node ``b``; returns its id."""
        msg_id, actions = self.cores[node_key(a)].send(
            node_key(b), payload, self.now, topic=topic, deadline=deadline, reply_to=reply_to
        )
        self.run(node_key(a), actions)
        return msg_id

    def run(self, src: bytes, actions: Iterable[Action]) -> None:
        """Carry out what a call into ``src``'s core returned."""
        self._slot(src).feed(actions)

    def _slot(self, key: bytes) -> Driven[Action]:
        slot = self._slots.get(key)
        if slot is None:
            slot = self._slots[key] = self.engine.drive(self._applier(key))
        slot.use(self.cores[key])
        return slot

    def _applier(self, src: bytes) -> Callable[[Iterable[Action]], None]:
        return lambda actions: self._apply(src, actions)

    def _apply(self, src: bytes, actions: Iterable[Action]) -> None:
        for action in actions:
            if isinstance(action, SendPacket):
                self.sent_packets += 1
                if self.on_send is not None:
                    self.on_send(src, action)
                if self.rng.random() < self.loss:
                    continue
                delay = self.latency + self.rng.random() * self.jitter
                self.engine.schedule(self.now + delay, self._carrier(src, action.dst, action.body))
            elif isinstance(action, MessageArrived):
                self.arrived += 1
            elif isinstance(action, ReplyArrived):
                self.replies.setdefault(action.message.msg_id, []).append(action.message)

    def _carrier(self, src: bytes, dst: bytes, body: bytes) -> Callable[[], None]:
        def deliver() -> None:
            target = self.cores.get(dst)
            if target is not None and dst not in self.down:
                self.run(dst, target.handle_packet(src, body, self.now))

        return deliver

    def step(self, limit: float) -> bool:
        """Process the next event (packet or timer) not after ``limit``; False if none."""
        # Tests call cores directly too (pop, reply, start): re-read every deadline first.
        for key in self.cores:
            self._slot(key).rearm()
        return self.engine.step(limit)

    def run_until(self, cond: Callable[[], bool], max_time: float = 3600.0) -> bool:
        """Step until ``cond()`` holds (True) or nothing is due within ``max_time`` (``cond()``)."""
        limit = self.now + max_time
        steps = 0
        while not cond():
            if not self.step(limit):
                return cond()
            steps += 1
            if steps >= 5_000_000:
                raise RuntimeError("bus net: no progress after 5,000,000 events")
        return True
