"""What the node remembers of recent events, for `hyphal status`: when each link came up, and
the last RING_SIZE route losses and failovers.

The route events come from :class:`~hyphal.node.routelog.RouteLog` (the router's RouteChange
actions, named): :class:`RecentRouteEvents` subscribes to it, so the status, the log line and
any later dashboard all see one and the same event.
"""

from __future__ import annotations

from collections import deque

from hyphal.node.routelog import RouteEvent

RING_SIZE = 32


class RecentRouteEvents:
    """A bounded ring of the most recent failovers and losses, oldest first (a RouteLog
    subscriber; routes becoming reachable are the normal case and not kept)."""

    def __init__(self, size: int = RING_SIZE) -> None:
        self._ring: deque[RouteEvent] = deque(maxlen=size)
        self.total = 0

    def __call__(self, event: RouteEvent) -> None:
        if event.kind == "reachable":
            return
        self._ring.append(event)
        self.total += 1

    def snapshot(self) -> list[RouteEvent]:
        return list(self._ring)


class LinkUptimes:
    """When each live link was established (wall clock), by link id."""

    def __init__(self) -> None:
        self._since: dict[int, float] = {}

    def up(self, link_id: int, at: float) -> None:
        self._since[link_id] = at

    def down(self, link_id: int) -> None:
        self._since.pop(link_id, None)

    def since(self, link_id: int) -> float | None:
        return self._since.get(link_id)
