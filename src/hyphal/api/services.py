"""Service endpoints under ``/api/v1/services``: what the mesh serves and where, and this node's
own instances (add, remove, drain, resume).

* ``GET /services``: every service this node knows of, each instance with this node's verdicts
  (authorised, reachable, metric, healthy, draining), nearest usable first; plus our own.
* ``GET /services/{name}``: one service; ``GET /services/{name}/choose`` the instance a new flow
  would get now (what DNS answers first).
* ``POST /services``: add a local instance (body as a ``[[service]]`` table); 201 and its row.
* ``DELETE /services/{name}`` (``?proto=&port=`` for one of several): stop serving it.
* ``POST /services/{name}/drain`` and ``/resume``: no new flows / new flows again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from hyphal.api.errors import error, error_responses
from hyphal.services.part import ServiceError
from hyphal.services.spec import SpecError, parse_spec

if TYPE_CHECKING:
    from hyphal.services.part import ServicesPart


class ServiceBody(BaseModel):
    """A local instance to add (the same keys as a ``[[service]]`` table)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="Service name, a DNS label")
    port: int = Field(description="Port the local instance listens on")
    proto: Literal["tcp", "udp"] = "tcp"
    check: str | None = Field(
        default=None,
        description="tcp, http://PATH or none (default tcp; udp: none); exec:CMD only in the "
        "config file",
    )
    interval: float | None = Field(default=None, description="Seconds between checks (1)")
    timeout: float | None = Field(default=None, description="Seconds a check may take (1)")
    rise: int | None = Field(default=None, description="Passes in a row to become healthy (2)")
    fall: int | None = Field(default=None, description="Failures in a row to become unhealthy (2)")
    weight: int | None = Field(default=None, description="1..255, share among near-equal (100)")
    grant: str | None = Field(default=None, description="The owner's grant (hsg1....)")


def services_router(services: ServicesPart) -> APIRouter:
    router = APIRouter(prefix="/api/v1")

    @router.get("/services", tags=["Services"])
    async def list_services() -> dict[str, Any]:
        """Every service this node knows (``services``) and this node's own instances
        (``local``); ``servicePrefix`` is the /64 holding every service address."""
        return services.status()

    @router.post(
        "/services", tags=["Services"], status_code=201, responses=error_responses(400, 409)
    )
    async def add_service(body: ServiceBody) -> Any:
        """Serve a local instance: it is unhealthy until its check passes ``rise`` times, then
        published in our member record. Kept across restarts (the state file)."""
        try:
            spec = parse_spec(body.model_dump(exclude_none=True))
        except SpecError as exc:
            return error(400, str(exc))
        if spec.check.kind == "exec":
            return error(
                400,
                "exec checks run a command as the daemon's user, so the API does not take them "
                "(any local process may call it); declare the service in a [[service]] table "
                "in the config file instead",
            )
        try:
            return JSONResponse(status_code=201, content=services.add(spec))
        except ServiceError as exc:
            status = 409 if "already" in str(exc) else 400
            return error(status, str(exc))

    @router.get("/services/{name}", tags=["Services"], responses=error_responses(404))
    async def get_service(name: str) -> Any:
        """One service: its address and every instance, nearest usable first."""
        for row in services.mesh_rows():
            if row["name"] == name:
                return row
        return error(404, f"no node publishes a service named {name[:80]!r}")

    @router.get("/services/{name}/choose", tags=["Services"], responses=error_responses(404))
    async def choose(name: str, proto: Literal["tcp", "udp"] = "tcp") -> Any:
        """The instance a new flow to ``name`` gets now (null fields: none is healthy)."""
        found = services.choose(name, proto)
        if found is None:
            return error(404, f"no healthy, authorised, reachable instance of {name[:80]!r}")
        return {
            "name": name,
            "node": found.node_name,
            "publicKey": found.public_key.hex(),
            "address": str(found.address),
            "port": found.port,
            "proto": found.proto,
            "metric": found.metric,
            "weight": found.weight,
        }

    @router.delete("/services/{name}", tags=["Services"], responses=error_responses(400, 404))
    async def remove_service(
        name: str, proto: Literal["tcp", "udp"] | None = None, port: int | None = None
    ) -> Any:
        """Stop serving ``name`` here (every port, or the one ``proto``/``port`` names)."""
        try:
            removed = services.remove(name, proto, port)
        except ServiceError as exc:
            return error(404 if "serves no" in str(exc) else 400, str(exc))
        return {"name": name, "removed": removed}

    @router.post("/services/{name}/drain", tags=["Services"], responses=error_responses(404))
    async def drain(name: str) -> Any:
        """No new flows to our instances of ``name``; flows pinned to them finish."""
        try:
            return services.drain(name, True)
        except ServiceError as exc:
            return error(404, str(exc))

    @router.post("/services/{name}/resume", tags=["Services"], responses=error_responses(404))
    async def resume(name: str) -> Any:
        """Undo a drain: new flows may come to our instances of ``name`` again."""
        try:
            return services.drain(name, False)
        except ServiceError as exc:
            return error(404, str(exc))

    return router
