"""Dispatch tables: packet kinds delivered to this node and link frame types, each to a handler.

Adding a kind (or frame type) is one handler module plus one ``register`` line in the node.
Unknown kinds and frame types are counted as drops (``unhandled-kind-N``, ``unknown-frame-N``),
which the stats and metrics show.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from hyphal.dataplane.stats import DataplaneStats

M = TypeVar("M")


class Registry(Generic[M]):
    """Byte-valued keys (packet kinds or frame types) to handlers of one message type."""

    def __init__(self, stats: DataplaneStats, unknown: str) -> None:
        self._stats = stats
        self._unknown = unknown
        self._handlers: dict[int, Callable[[M], None]] = {}

    def register(self, key: int, handler: Callable[[M], None]) -> None:
        if not 0 <= key <= 0xFF:
            raise ValueError(f"{key} is not a byte")
        if key in self._handlers:
            raise ValueError(f"{key} already has a handler")
        self._handlers[key] = handler

    def dispatch(self, key: int, message: M) -> None:
        handler = self._handlers.get(key)
        if handler is None:
            self._stats.drop(f"{self._unknown}-{key}")
            return
        handler(message)
