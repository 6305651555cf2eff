"""``GET /api/v1/dns``: what the DNS server serves, where it listens, systemd-resolved's state
and its counters (what ``hyphal dns status`` shows)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter

from hyphal.api.errors import error, error_responses

if TYPE_CHECKING:
    from hyphal.node.view import ViewSource


def dns_router(node: ViewSource) -> APIRouter:
    router = APIRouter(prefix="/api/v1")
    view = node.view

    @router.get("/dns", tags=["DNS"], responses=error_responses(404))
    async def dns_status() -> Any:
        status = view.part_status("dns")
        if status is None:
            return error(404, "the DNS server is off on this node (no_dns / --no-dns)")
        return status

    return router
