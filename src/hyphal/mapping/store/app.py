"""The store's HTTP adapter on the common service frame: ``POST /results`` (the contract's
ingest), the query API (``/recent``, ``/results``, ``/edges``, ``/stats``, ``/dump``) and the
measurement API (``POST /measurements``, ``GET /measurements/{id}``, its SSE stream
``/measurements/{id}/stream``, and ``GET /measurements/pending?worker=`` for workers).

Database work runs in worker threads (the handlers are plain functions or use
``run_in_threadpool``); the clock is read here. Ingest is shed with 429 + ``Retry-After`` when
more than ``max_pending_ingests`` batches wait for the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, StreamingResponse
from prometheus_client import Counter, Gauge
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask

from hyphal.mapping.model import ResultError, hop_addresses, parse_result
from hyphal.mapping.service_app import (
    Access,
    Overloaded,
    ReadyCheck,
    ServiceInfo,
    make_service_app,
    register_paths,
)
from hyphal.mapping.store.backend import MAX_QUERY_LIMIT, Store
from hyphal.mapping.store.hops import HopShipper

MAX_BATCH = 1000
STREAM_SECONDS = 300.0


class MeasurementIn(BaseModel):
    type: Literal["traceroute", "ping"]
    target: str = Field(max_length=64)
    proto: Literal["icmp", "udp", "tcp"] = "icmp"
    worker: str | None = Field(default=None, max_length=200, description="Run on this worker")
    region: str | None = Field(default=None, max_length=200, description="...or in this region")
    params: dict[str, str | int | float | bool | None] = Field(default_factory=dict, max_length=32)


def store_app(
    store: Store,
    info: ServiceInfo,
    access: Access,
    shipper: HopShipper | None = None,
    max_pending_ingests: int = 8,
    expire_every: float = 3600.0,
) -> FastAPI:
    async def database() -> None:
        await run_in_threadpool(store.db.ping)

    async def feeder() -> None:
        if shipper is not None and shipper.failures and shipper.last_error and shipper.queue:
            raise RuntimeError(f"hops are not reaching the feeder: {shipper.last_error}")

    tasks: list[asyncio.Task[None]] = []

    async def expire_loop() -> None:
        while True:
            await asyncio.sleep(expire_every)
            await run_in_threadpool(store.expire, time.time())
            await run_in_threadpool(store.maybe_rotate, time.time())

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if shipper is not None:
            tasks.append(asyncio.create_task(shipper.run()))
        tasks.append(asyncio.create_task(expire_loop()))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    checks: dict[str, ReadyCheck] = {"database": database}
    if shipper is not None:
        checks["feeder"] = feeder
    app = make_service_app(
        info,
        access,
        checks=checks,
        max_body=4 * 1024 * 1024,
        lifespan=lifespan,
        description="Mapping results, queries, measurements (docs/mapping.md).",
    )
    registry = app.state.registry
    accepted_c = Counter("hyphal_map_store_results_accepted", "Results stored.", registry=registry)
    dup_c = Counter(
        "hyphal_map_store_results_duplicate", "Duplicate results acknowledged.", registry=registry
    )
    rejected_c = Counter(
        "hyphal_map_store_results_rejected", "Results refused as malformed.", registry=registry
    )
    queue_g = Gauge("hyphal_map_store_hop_queue", "Hops waiting for the feeder.", registry=registry)
    if shipper is not None:
        queue_g.set_function(lambda: len(shipper.queue))
    register_paths(
        [
            "/results",
            "/recent",
            "/stats",
            "/edges",
            "/dump",
            "/measurements",
            "/measurements/pending",
        ]
    )
    pending = {"n": 0}
    pending_lock = threading.Lock()

    @app.post("/results", tags=["Store"], responses={429: {"description": "overloaded"}})
    async def post_results(request: Request) -> dict[str, Any]:
        """Ingest a batch ``{"worker": "...", "results": [...]}`` (at most 1000 results, 4 MiB).
        ``ids`` lists every id now durably stored (new or duplicate): the worker deletes those
        from its outbox. ``rejected`` lists results refused as malformed, with the reason: they
        will never be accepted, so the worker should drop them too."""
        try:
            body = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            raise HTTPException(400, "the body is not JSON") from None
        if not isinstance(body, dict) or not isinstance(body.get("results"), list):
            raise HTTPException(400, 'the body is {"worker": NAME, "results": [...]}')
        items = body["results"]
        if len(items) > MAX_BATCH:
            raise HTTPException(413, f"at most {MAX_BATCH} results per batch")
        good, rejected = [], []
        for item in items:
            try:
                good.append(parse_result(item))
            except ResultError as exc:
                rid = item.get("id") if isinstance(item, dict) else None
                rejected.append({"id": rid if isinstance(rid, str) else None, "error": str(exc)})
        rejected_c.inc(len(rejected))
        with pending_lock:
            if pending["n"] >= max_pending_ingests:
                raise Overloaded("the store is busy writing; retry later", retry_after=1)
            pending["n"] += 1
        try:
            report = await run_in_threadpool(store.ingest, good, time.time())
        finally:
            with pending_lock:
                pending["n"] -= 1
        accepted_c.inc(report.accepted)
        dup_c.inc(report.duplicates)
        if shipper is not None:
            for result in report.new:
                shipper.put(hop_addresses(result))
        return {
            "accepted": report.accepted,
            "duplicates": report.duplicates,
            "ids": report.ids,
            "rejected": rejected,
        }

    @app.get("/recent", tags=["Query"])
    def recent(
        ip: str | None = Query(default=None, max_length=64),
        limit: int = Query(default=20, ge=1, le=MAX_QUERY_LIMIT),
    ) -> list[dict[str, Any]]:
        """The newest results towards ``ip`` or passing through it (all results without ip)."""
        return store.recent(ip, limit)

    @app.get("/results", tags=["Query"])
    def results(
        since: float | None = Query(default=None, description="start time >= (unix seconds)"),
        until: float | None = Query(default=None, description="start time < (unix seconds)"),
        worker: str | None = Query(default=None, max_length=200),
        target: str | None = Query(default=None, max_length=64),
        type: Literal["traceroute", "ping"] | None = None,
        limit: int = Query(default=100, ge=1, le=MAX_QUERY_LIMIT),
        cursor: str | None = Query(
            default=None, max_length=200, description="nextCursor of the previous page"
        ),
    ) -> dict[str, Any]:
        """Results by start time, newest first; pass ``nextCursor`` back for the next page."""
        try:
            page, nxt = store.query(since, until, worker, target, type, limit, cursor)
        except ValueError:
            raise HTTPException(400, "bad cursor") from None
        return {"results": page, "nextCursor": nxt}

    @app.get("/edges", tags=["Query"])
    def edges(
        limit: int = Query(default=1000, ge=1, le=10_000),
        cursor: str | None = Query(default=None, max_length=300),
    ) -> dict[str, Any]:
        """Links seen between consecutive TTLs of a flow: (a, b, flowId, firstSeen, lastSeen,
        count), for the map."""
        try:
            rows, nxt = store.edges(limit, cursor)
        except ValueError:
            raise HTTPException(400, "bad cursor") from None
        return {"edges": rows, "nextCursor": nxt}

    @app.get("/stats", tags=["Query"])
    def stats() -> dict[str, Any]:
        """Totals, results/s over the last minute, and each worker's last result."""
        out = store.stats(time.time())
        if shipper is not None:
            out["hopQueue"] = {
                "queued": len(shipper.queue),
                "shipped": shipper.shipped,
                "addedByFeeder": shipper.added,
                "dropped": shipper.dropped,
                "failures": shipper.failures,
            }
        return out

    @app.get("/dump", tags=["Query"], response_model=None)
    def dump(
        since: float | None = None,
        until: float | None = None,
        format: Literal["ndjson", "sqlite"] = "ndjson",
    ) -> StreamingResponse | FileResponse:
        """Every stored result as NDJSON (canonical JSON, one per line, oldest first), or with
        ``format=sqlite`` a consistent copy of the live SQLite results file."""
        if format == "sqlite":
            if store.pg:
                raise HTTPException(400, "format=sqlite needs the SQLite backend; use ndjson")
            fd, name = tempfile.mkstemp(suffix=".db")
            os.close(fd)
            store.snapshot(Path(name))
            return FileResponse(
                name,
                media_type="application/vnd.sqlite3",
                filename="results.db",
                background=BackgroundTask(Path(name).unlink),
            )
        return StreamingResponse(store.dump(since, until), media_type="application/x-ndjson")

    @app.post("/measurements", tags=["Measurements"], status_code=202)
    def create(body: MeasurementIn) -> dict[str, Any]:
        """Ask for a one-off measurement; answers at once with its id. A worker (the one
        named, one in the region, or any) picks it up from ``/measurements/pending``."""
        try:
            parse_result(
                {
                    "id": "0" * 32,
                    "type": "ping",
                    "worker": "x",
                    "target": body.target,
                    "af": 6 if ":" in body.target else 4,
                    "proto": body.proto,
                    "started": 0,
                    "ended": 0,
                    "ping": {"sent": 0, "received": 0},
                }
            )
        except ResultError as exc:
            raise HTTPException(422, f"target: {exc}") from None
        mid = store.create_measurement(body.model_dump(), time.time())
        return {"id": mid, "status": "pending"}

    @app.get("/measurements/pending", tags=["Measurements"])
    def pending_requests(
        worker: str = Query(min_length=1, max_length=200),
        region: str | None = Query(default=None, max_length=200),
        limit: int = Query(default=10, ge=1, le=100),
    ) -> dict[str, Any]:
        """For workers: measurement requests to run now (claimed for this worker). Post each
        result with ``params.measurementId`` set to the request's id."""
        return {"measurements": store.claim_measurements(worker, region, time.time(), limit)}

    @app.get("/measurements/{mid}", tags=["Measurements"], responses={404: {}})
    def get_measurement(mid: str) -> dict[str, Any]:
        """Status (pending, running, finished) and results so far."""
        found = store.measurement(mid[:64])
        if found is None:
            raise HTTPException(404, f"no measurement {mid[:64]}")
        return found

    @app.get("/measurements/{mid}/stream", tags=["Measurements"], responses={404: {}})
    async def stream(mid: str) -> StreamingResponse:
        """Server-sent events: ``status`` when it changes, ``result`` for each new result,
        ``end`` when finished (or after 5 minutes)."""

        def look() -> dict[str, Any] | None:
            return store.measurement(mid[:64])

        first = await run_in_threadpool(look)
        if first is None:
            raise HTTPException(404, f"no measurement {mid[:64]}")

        async def events() -> AsyncIterator[str]:
            sent: set[str] = set()
            status = None
            deadline = time.monotonic() + STREAM_SECONDS
            current: dict[str, Any] | None = first
            while True:
                if current is None:
                    break
                if current["status"] != status:
                    status = current["status"]
                    yield f"event: status\ndata: {json.dumps({'status': status})}\n\n"
                for result in current["results"]:
                    if result["id"] not in sent:
                        sent.add(result["id"])
                        yield f"event: result\ndata: {json.dumps(result)}\n\n"
                if status == "finished" or time.monotonic() > deadline:
                    yield f"event: end\ndata: {json.dumps({'status': status})}\n\n"
                    break
                await asyncio.sleep(0.25)
                current = await run_in_threadpool(look)

        return StreamingResponse(
            events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )

    return app
