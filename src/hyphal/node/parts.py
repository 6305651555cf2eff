"""Node parts: features with a lifecycle, added to the node by one ``parts.add`` line.

A part is started after the node's TUN and listeners are up, and stopped (in reverse order)
before they go. It shows itself to the API and metrics through two snapshots: ``status()``
(a JSON-able dict for ``GET /api/v1/<name>`` and the CLI) and ``counters()`` (exported as
``hyphal_<name>_events{event=...}``). A part whose start fails logs why and stays stopped: a
feature never takes the node down with it.

A part whose config tables can change while it runs is also :class:`Reconfigurable`: on a
reload (SIGHUP) it gets the new configuration and applies its own keys (``live_keys``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from hyphal.config import NodeConfig

log = logging.getLogger("hyphal.node")


class NodePart(Protocol):
    """What the node needs from a part."""

    @property
    def name(self) -> str: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def status(self) -> dict[str, Any]: ...

    def counters(self) -> Mapping[str, int]: ...


@runtime_checkable
class Reconfigurable(Protocol):
    """A part that takes its config keys over from a reloaded configuration."""

    live_keys: frozenset[str]

    def reconfigure(self, config: NodeConfig) -> str | None:
        """Apply ``config``'s :attr:`live_keys`; a few words on what changed (None: nothing)."""
        ...


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

    def live_keys(self) -> frozenset[str]:
        """Config keys some part applies on a reload."""
        keys: frozenset[str] = frozenset()
        for part in self._parts.values():
            if isinstance(part, Reconfigurable):
                keys |= part.live_keys
        return keys

    def reconfigure(self, config: NodeConfig) -> list[str]:
        """Hand a reloaded ``config`` to every started reconfigurable part; what each changed.
        A part that fails logs why and keeps what it had."""
        changes: list[str] = []
        for part in self._started:
            if not isinstance(part, Reconfigurable):
                continue
            try:
                change = part.reconfigure(config)
            except Exception:
                log.exception("%s could not apply the reloaded configuration", part.name)
                continue
            if change:
                changes.append(f"{part.name}: {change}")
        return changes

    def counters(self) -> dict[str, dict[str, int]]:
        return {name: dict(part.counters()) for name, part in self._parts.items()}
