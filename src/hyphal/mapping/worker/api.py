"""The worker's own small HTTP API, on the overlay: one-shot measurements and health.

``hyphal map trace --from NAME`` asks a worker here when no store-side measurement API is at
hand. Endpoints: ``/health``, ``/ready``, ``/service-info``, ``/metrics`` (Prometheus text),
``/status``, and ``POST /measure`` (a traceroute or ping run now; the answer is the result,
which also goes to the outbox like any other).

Who may call: a bearer token (``--token-file``), or a mesh member: the caller's overlay source
address must belong to a member the local hyphal daemon knows (``/api/v1/members``), with one
of ``allowed_roles`` when those are set. The worker binds its node's overlay address by default,
never a public one unless told to.
"""

from __future__ import annotations

import hmac
import ipaddress
import time
import uuid
from typing import Any

import httpx
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field

from hyphal import __version__
from hyphal.mapping.probe.engine import LimitRefused, measure
from hyphal.mapping.probe.plan import PingParams, TraceParams
from hyphal.mapping.probe.sockets import ProbeSocketError
from hyphal.mapping.worker.guard import TargetRefused
from hyphal.mapping.worker.service import Worker

MEMBER_CACHE_SECONDS = 10.0


class MeasureRequest(BaseModel):
    target: str = Field(max_length=64)
    type: str = Field(default="traceroute", pattern="^(traceroute|ping)$")
    proto: str = Field(default="icmp", pattern="^(icmp|udp|tcp)$")
    flowId: int = Field(default=1, ge=0, le=4095)
    paris: bool = True
    maxTtl: int = Field(default=32, ge=1, le=64)
    attempts: int = Field(default=2, ge=1, le=10)
    allAttempts: bool = False
    wait: float = Field(default=2.0, ge=0.05, le=10)
    count: int = Field(default=4, ge=1, le=20)


class MemberAuth:
    """Maps a caller's overlay address to a member through the local daemon's API (cached)."""

    def __init__(self, api_url: str | None, token: str | None, roles: frozenset[str]) -> None:
        self.api_url = api_url
        self.roles = roles
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._cache: tuple[float, dict[str, dict[str, Any]]] = (-1e9, {})

    async def member(self, address: str) -> dict[str, Any] | None:
        if self.api_url is None:
            return None
        now = time.monotonic()
        if now - self._cache[0] > MEMBER_CACHE_SECONDS:
            try:
                async with httpx.AsyncClient(timeout=5.0, headers=self._headers) as http:
                    rows = (await http.get(f"{self.api_url}/api/v1/members")).json()
                table = {
                    str(ipaddress.ip_address(r["address"])): r for r in rows if r.get("address")
                }
            except (httpx.HTTPError, ValueError, KeyError, TypeError):
                table = self._cache[1]
            self._cache = (now, table)
        try:
            row = self._cache[1].get(str(ipaddress.ip_address(address)))
        except ValueError:
            return None
        if row is None or row.get("left"):
            return None
        if self.roles and not self.roles & set(row.get("roles") or []):
            return None
        return row


def create_app(
    worker: Worker,
    *,
    token: str | None = None,
    members: MemberAuth | None = None,
) -> FastAPI:
    app = FastAPI(title="hyphal map worker", version=__version__)
    instance = uuid.uuid4().hex

    async def authorise(request: Request) -> None:
        header = request.headers.get("authorization", "")
        if token and header.startswith("Bearer ") and hmac.compare_digest(header[7:], token):
            return
        host = request.client.host if request.client else ""
        if members is not None and await members.member(host) is not None:
            return
        raise HTTPException(403, "only mesh members (or a bearer token) may ask this worker")

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/ready")
    async def ready() -> JSONResponse:
        checks = {
            "outbox": not worker.outbox.full(),
            "store": worker.shipper is None or worker.shipper.last_error is None,
        }
        ok = all(checks.values())
        return JSONResponse({"ready": ok, "checks": checks}, status_code=200 if ok else 503)

    @app.get("/service-info")
    async def service_info() -> dict[str, Any]:
        return {
            "serviceType": "map-worker",
            "version": __version__,
            "name": worker.ident.worker,
            "instanceId": instance,
            "region": worker.ident.region,
            "capabilities": ["traceroute", "ping", "paris", "icmp", "udp", "tcp", "ipv4", "ipv6"],
        }

    @app.get("/metrics")
    async def metrics() -> PlainTextResponse:
        status = worker.status()
        lines = []
        for key in ("results", "refused", "errors", "packetsSent", "outbox", "running", "shipped"):
            name = "hyphal_map_worker_" + "".join(
                "_" + c.lower() if c.isupper() else c for c in key
            )
            lines.append(f"{name} {status[key]}")
        return PlainTextResponse("\n".join(lines) + "\n", media_type="text/plain; version=0.0.4")

    @app.get("/status")
    async def status(request: Request) -> dict[str, Any]:
        await authorise(request)
        return worker.status()

    @app.post("/measure")
    async def run_measure(body: MeasureRequest, request: Request) -> Any:
        await authorise(request)
        try:
            target = worker.guard.check(body.target)
        except TargetRefused as exc:
            raise HTTPException(400, str(exc)) from None
        try:
            result = await measure(
                body.type,
                target,
                body.proto,
                worker.limiter,
                worker.ident,
                trace=TraceParams(
                    max_ttl=body.maxTtl,
                    attempts=body.attempts,
                    wait=body.wait,
                    paris=body.paris,
                    all_attempts=body.allAttempts,
                    gap_limit=worker.config.trace.gap_limit,
                ),
                ping=PingParams(count=body.count, wait=body.wait, interval=0.5),
                flow_id=body.flowId,
                raw=worker.config.raw,
            )
        except LimitRefused as exc:
            return JSONResponse(
                {"error": f"rate limits: {exc}"}, status_code=429, headers={"Retry-After": "10"}
            )
        except (OSError, ProbeSocketError, ValueError) as exc:
            raise HTTPException(500, f"probe failed: {exc}") from None
        worker.outbox.add(result)
        if worker.shipper is not None:
            worker.shipper.wake.set()
        return result

    return app
