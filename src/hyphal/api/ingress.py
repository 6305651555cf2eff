"""``/api/v1/ingress``: the node's public ingress and transparent unwrap listeners (what
``hyphal ingress list|add|unwrap|remove`` shows and changes)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from hyphal.api.errors import error, error_responses
from hyphal.ingress.spec import SpecError, ingress_from_dict, unwrap_from_dict

if TYPE_CHECKING:
    from hyphal.ingress.part import IngressPart
    from hyphal.node.parts import Parts


class LimitsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    maxConnections: int | None = None
    maxPerClient: int | None = None
    connectTimeout: float | None = None
    connectAttempts: int | None = None
    idleTimeout: float | None = None
    bufferBytes: int | None = None
    headerTimeout: float | None = None

    def snake(self) -> dict[str, Any]:
        names = {
            "maxConnections": "max_connections",
            "maxPerClient": "max_per_client",
            "connectTimeout": "connect_timeout",
            "connectAttempts": "connect_attempts",
            "idleTimeout": "idle_timeout",
            "bufferBytes": "buffer_bytes",
            "headerTimeout": "header_timeout",
        }
        return {names[k]: v for k, v in self.model_dump().items() if v is not None}


class AddIngress(BaseModel):
    model_config = ConfigDict(extra="forbid")
    listen: str = Field(description="ADDR:PORT to accept public TCP on, e.g. 0.0.0.0:6697")
    service: str = Field(description="The service whose nearest healthy instance gets it")
    proxyProtocol: Literal["v2", "v1", "none"] = "v2"
    limits: LimitsBody = Field(default_factory=LimitsBody)


class AddUnwrap(BaseModel):
    model_config = ConfigDict(extra="forbid")
    listen: str = Field(description="ADDR:PORT receiving PROXY-wrapped TCP, e.g. [::]:6667")
    backend: str = Field(description="The local backend, e.g. 127.0.0.1:6668")
    allow: list[str] | None = Field(default=None, description="Senders allowed (CIDR)")
    transparent: bool = True
    routeTable: int = 1066
    limits: LimitsBody = Field(default_factory=LimitsBody)


def ingress_router(parts: Parts) -> APIRouter:
    router = APIRouter(prefix="/api/v1")

    def part() -> IngressPart | None:
        found = parts.get("ingress")
        return found  # type: ignore[return-value]

    @router.get("/ingress", tags=["Ingress"], responses=error_responses(404))
    async def list_ingress() -> Any:
        found = part()
        if found is None:
            return error(404, "the ingress is off on this node")
        return found.status()

    async def add(data: dict[str, Any], unwrap: bool) -> Any:
        found = part()
        if found is None:
            return error(404, "the ingress is off on this node")
        try:
            spec = unwrap_from_dict(data) if unwrap else ingress_from_dict(data)
        except SpecError as exc:
            return error(400, str(exc))
        if found.find(spec.key) is not None:
            return error(409, f"{spec.key} already has a listener; remove it first")
        try:
            await found.add(spec, keep=True)
        except SpecError as exc:
            return error(409, str(exc))
        except OSError as exc:
            await found.remove(spec.key)
            return error(409, f"cannot listen on {spec.key}: {exc.strerror or exc}")
        return {row["listen"]: row for row in found.status()["listeners"]}[spec.key]

    @router.post(
        "/ingress", status_code=201, tags=["Ingress"], responses=error_responses(400, 404, 409)
    )
    async def add_ingress(body: AddIngress) -> Any:
        data = {
            "listen": body.listen,
            "service": body.service,
            "proxy_protocol": body.proxyProtocol,
            **body.limits.snake(),
        }
        return await add(data, unwrap=False)

    @router.post(
        "/ingress/unwrap",
        status_code=201,
        tags=["Ingress"],
        responses=error_responses(400, 404, 409),
    )
    async def add_unwrap(body: AddUnwrap) -> Any:
        data: dict[str, Any] = {
            "listen": body.listen,
            "backend": body.backend,
            "transparent": body.transparent,
            "route_table": body.routeTable,
            **body.limits.snake(),
        }
        if body.allow is not None:
            data["allow"] = body.allow
        return await add(data, unwrap=True)

    @router.delete("/ingress", status_code=204, tags=["Ingress"], responses=error_responses(404))
    async def remove_ingress(
        listen: str = Query(description="The listener's ADDR:PORT, as `ingress list` shows it"),
    ) -> Response:
        found = part()
        if found is None:
            return error(404, "the ingress is off on this node")
        if not await found.remove(listen):
            return error(404, f"no ingress or unwrap listener on {listen}")
        return Response(status_code=204)

    return router
