"""The worker's own small HTTP API, on the overlay: one-shot measurements and health.

``hyphal map trace --from NAME`` asks a worker here when no store-side measurement API is at
hand. Endpoints: ``/health``, ``/ready``, ``/service-info``, ``/metrics`` (Prometheus text),
``/status``, and ``POST /measure`` (a traceroute or ping run now; the answer is the result,
which also goes to the outbox like any other).

Who may call: decided by the mapping services' :class:`~hyphal.mapping.service_app.Access`, the
same check the feeder and store use: a bearer token (``--token-file``), or a mesh member whose
overlay /64 holds the caller's source address (asked from the local hyphal daemon's
``/api/v1/members``), with one of the allowed roles when those are set. The worker binds its node's overlay address by default,
never a public one unless told to.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic import BaseModel, Field

from hyphal import __version__
from hyphal.mapping.probe.engine import LimitRefused, measure
from hyphal.mapping.probe.plan import PingParams, TraceParams
from hyphal.mapping.probe.sockets import ProbeSocketError
from hyphal.mapping.service_app import Access
from hyphal.mapping.worker.guard import TargetRefused
from hyphal.mapping.worker.service import Worker


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


def create_app(worker: Worker, access: Access) -> FastAPI:
    """The worker's API; ``access`` decides who may use /status and /measure."""
    app = FastAPI(title="hyphal map worker", version=__version__)
    instance = uuid.uuid4().hex

    async def authorise(request: Request) -> None:
        verdict = await access.check(request)
        if isinstance(verdict, str):
            raise HTTPException(
                403, f"only mesh members (or a bearer token) may ask this worker: {verdict}"
            )

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
