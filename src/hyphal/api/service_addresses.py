"""``GET /api/v1/service-addresses``: the service addresses this node holds on its TUN, its
pinned flows (a sample of at most :data:`~hyphal.services.vippart.SHOWN_FLOWS`) and their
counts by state (docs/service-addresses.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter

from hyphal.api.errors import error, error_responses

if TYPE_CHECKING:
    from hyphal.node.view import ViewSource


def service_addresses_router(node: ViewSource) -> APIRouter:
    router = APIRouter(prefix="/api/v1")
    view = node.view

    @router.get("/service-addresses", tags=["Services"], responses=error_responses(404))
    async def service_addresses() -> Any:
        status = view.part_status("service_addresses")
        if status is None:
            return error(404, "service addresses are off on this node")
        return status

    return router
