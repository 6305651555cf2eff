"""Member endpoints: ``GET /api/v1/members`` and ``GET /api/v1/members/{name}``.

Rows come from the membership part's view (records plus routing's reachability); nothing here
touches the core.
"""

from __future__ import annotations

from typing import Any, Protocol

from fastapi import APIRouter

from hyphal.api.errors import error, error_responses
from hyphal.membership.gossip import MemberInfo
from hyphal.membership.hlc import wall_part


class MemberSource(Protocol):
    def members(self) -> list[MemberInfo]: ...


def member_row(m: MemberInfo) -> dict[str, Any]:
    return {
        "name": m.name,
        "ownsName": m.owns_name,
        "region": m.region,
        "roles": list(m.roles),
        "tags": dict(m.tags),
        "address": m.address,
        "publicKey": m.public_key.hex(),
        "reachable": m.reachable,
        "left": m.left,
        "self": m.is_self,
        "endpoints": list(m.endpoints),
        "software": m.software,
        "updated": wall_part(m.version),
        "expires": m.expires,
    }


def members_router(source: MemberSource) -> APIRouter:
    router = APIRouter(prefix="/api/v1")

    @router.get("/members", tags=["Members"])
    async def list_members() -> list[dict[str, Any]]:
        """Every member this node holds a record for; ``reachable`` is routing's view now;
        ``ownsName`` is false for a member whose name another member claimed first."""
        return [member_row(m) for m in source.members()]

    @router.get("/members/{name}", tags=["Members"], responses=error_responses(404))
    async def get_member(name: str) -> Any:
        """The member that owns ``name`` (the winner of a duplicate claim)."""
        for m in source.members():
            if m.name == name and m.owns_name and not m.left:
                return member_row(m)
        return error(404, f"no member is named {name!r}")

    return router
