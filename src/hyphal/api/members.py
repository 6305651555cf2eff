"""Member endpoints: ``GET /api/v1/members``, ``GET /api/v1/members/{name}`` and
``PATCH /api/v1/members/self`` (a live change of our own record: name, region, tags).

Rows come from the membership part's view (records plus routing's reachability and metric);
nothing here touches the core. A change goes through the part, which signs and gossips it.
"""

from __future__ import annotations

from typing import Any, Protocol

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from hyphal.api.errors import error, error_responses
from hyphal.identity import prefix64_for_public_key
from hyphal.membership.gossip import MemberInfo
from hyphal.membership.hlc import wall_part
from hyphal.membership.record import MAX_TAGS, RecordError


class MemberSource(Protocol):
    def members(self) -> list[MemberInfo]: ...

    def metric(self, prefix64: bytes) -> int | None: ...

    def own_fields(self) -> dict[str, object]: ...

    def update_self(self, **fields: object) -> MemberInfo: ...


class SelfChange(BaseModel):
    """A change of our own record (merge-patch style: a field left out stays as it is)."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(
        default=None, description='Our member name, a DNS label; "" drops the name'
    )
    region: str | None = Field(default=None, description='Our region, a DNS label; "" drops it')
    tags: dict[str, str | None] | None = Field(
        default=None,
        description="Tags to set (key: value) or remove (key: null); other tags stay",
        max_length=4 * MAX_TAGS,
    )


def member_row(m: MemberInfo, metric: int | None = None) -> dict[str, Any]:
    return {
        "name": m.name,
        "ownsName": m.owns_name,
        "region": m.region,
        "roles": list(m.roles),
        "tags": dict(m.tags),
        "address": m.address,
        "publicKey": m.public_key.hex(),
        "reachable": m.reachable,
        "metric": 0 if m.is_self else metric if m.reachable else None,
        "left": m.left,
        "self": m.is_self,
        "endpoints": list(m.endpoints),
        "software": m.software,
        "updated": wall_part(m.version),
        "expires": m.expires,
    }


def members_router(source: MemberSource) -> APIRouter:
    router = APIRouter(prefix="/api/v1")

    def row(m: MemberInfo) -> dict[str, Any]:
        return member_row(m, source.metric(prefix64_for_public_key(m.public_key)))

    @router.get("/members", tags=["Members"])
    async def list_members() -> list[dict[str, Any]]:
        """Every member this node holds a record for; ``reachable`` is routing's view now and
        ``metric`` the route's (null when unreachable); ``ownsName`` is false for a member
        whose name another member claimed first; ``updated`` is when its record last changed
        or was refreshed (seconds since the epoch, the origin's clock)."""
        return [row(m) for m in source.members()]

    @router.get("/members/{name}", tags=["Members"], responses=error_responses(404))
    async def get_member(name: str) -> Any:
        """The member that owns ``name`` (the winner of a duplicate claim)."""
        for m in source.members():
            if m.name == name and m.owns_name and not m.left:
                return row(m)
        return error(404, f"no member is named {name[:80]!r}")

    @router.patch("/members/self", tags=["Members"], responses=error_responses(400))
    async def change_self(change: SelfChange) -> Any:
        """Change our own record live: it is signed with a new version and gossiped at once.
        Answers our row as it is now (``ownsName`` false: another member had the name first)."""
        fields: dict[str, object] = {}
        if change.name is not None:
            fields["name"] = change.name
        if change.region is not None:
            fields["region"] = change.region
        if change.tags is not None:
            current = source.own_fields().get("tags", {})
            tags = dict(current) if isinstance(current, dict) else {}
            for key, value in change.tags.items():
                if value is None:
                    tags.pop(key, None)
                else:
                    tags[key] = value
            fields["tags"] = tags
        if not fields:
            return error(400, "nothing to change: give name, region or tags")
        try:
            return row(source.update_self(**fields))
        except RecordError as exc:
            return error(400, f"our record cannot say that: {exc}")

    return router
