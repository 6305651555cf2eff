"""Node parts: features with a lifecycle, added to the node by one ``parts.add`` line.

A part is started after the node's TUN and listeners are up, and stopped (in reverse order)
before they go. It shows itself to the API and metrics through two snapshots: ``status()``
(a JSON-able dict for ``GET /api/v1/<name>`` and the CLI) and ``counters()`` (exported as
``hyphal_<name>_events{event=...}``). A part whose start fails logs why and stays stopped: a
feature never takes the node down with it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any, Protocol

log = logging.getLogger("hyphal.node")


class NodePart(Protocol):
    """What the node needs from a part."""

    @property
    def name(self) -> str: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def status(self) -> dict[str, Any]: ...

    def counters(self) -> Mapping[str, int]: ...


class Parts:
    """The node's parts, by name, in the order they were added."""

    def __init__(self) -> None:
        self._parts: dict[str, NodePart] = {}
        self._started: list[NodePart] = []

    def add(self, part: NodePart | None) -> None:
        """Add ``part`` (None: a part the config turned off, ignored)."""
        if part is None:
            return
        if part.name in self._parts:
            raise ValueError(f"a part named {part.name!r} is already added")
        self._parts[part.name] = part

    def get(self, name: str) -> NodePart | None:
        return self._parts.get(name)

    def __iter__(self) -> Iterator[NodePart]:
        return iter(list(self._parts.values()))

    async def start(self) -> None:
        for part in self._parts.values():
            try:
                await part.start()
            except Exception:
                log.exception("%s failed to start; the node runs without it", part.name)
                continue
            self._started.append(part)

    async def stop(self) -> None:
        while self._started:
            part = self._started.pop()
            try:
                await part.stop()
            except Exception:
                log.exception("%s failed to stop cleanly", part.name)

    def counters(self) -> dict[str, dict[str, int]]:
        return {name: dict(part.counters()) for name, part in self._parts.items()}
