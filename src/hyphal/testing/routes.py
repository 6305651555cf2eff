"""Reading the daemon's selected-routes table (``GET .../admin/routes/selected``) in tests and tools."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

#: The selected-routes endpoint, relative to the API root and as a full path.
SELECTED_ROUTES = "/admin/routes/selected"
SELECTED_ROUTES_PATH = "/api/v1" + SELECTED_ROUTES


def selected_route(rows: Iterable[Mapping[str, Any]], subnet: str) -> dict[str, Any] | None:
    """The reachable (finite-metric) row for ``subnet``, or None."""
    for row in rows:
        if row["subnet"] == subnet and row["metric"] != "infinite":
            return dict(row)
    return None


def next_hop_key(rows: Iterable[Mapping[str, Any]], subnet: str) -> str | None:
    """Hex public key of the next hop towards ``subnet``, or None when it is unreachable."""
    row = selected_route(rows, subnet)
    hop = None if row is None else row.get("nextHopPublicKey")
    return None if hop is None else str(hop)
