"""The feeder's HTTP adapter: ``GET /targets``, ``POST /hops``, ``GET /stopset``, ``GET /stats``
and per-consumer ``/consumers/export`` / ``/consumers/import`` on the common service frame.

Handlers are plain functions (FastAPI runs them in its thread pool) over :class:`FeederState`;
the clock is read here and passed in.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI, HTTPException, Query
from prometheus_client import Counter
from pydantic import BaseModel, ConfigDict, Field

from hyphal.mapping.feeder.state import MAX_CLAIM, FeederState, SourcesChanged
from hyphal.mapping.service_app import Access, ServiceInfo, make_service_app, register_paths

MAX_HOPS_PER_POST = 10_000
NAME = Field(min_length=1, max_length=200)


class HopIn(BaseModel):
    model_config = ConfigDict(extra="ignore")
    ip: str = Field(max_length=64)
    ttl: int = Field(ge=1, le=255)
    target: str | None = Field(default=None, max_length=64)
    worker: str | None = Field(default=None, max_length=200)


class HopsIn(BaseModel):
    hops: list[HopIn] = Field(max_length=MAX_HOPS_PER_POST)


class ConsumerIn(BaseModel):
    worker: str = NAME
    given: int = Field(ge=0)
    lastSeen: float
    region: str | None = Field(default=None, max_length=200)


class AssignmentIn(BaseModel):
    worker: str = NAME
    cycle: int = Field(ge=1)
    start: int = Field(ge=0)
    count: int = Field(ge=1, le=MAX_CLAIM)
    at: float


class ConsumersIn(BaseModel):
    consumers: list[ConsumerIn] = Field(default_factory=list, max_length=100_000)
    assignments: list[AssignmentIn] = Field(default_factory=list, max_length=1_000_000)


def feeder_app(state: FeederState, info: ServiceInfo, access: Access) -> FastAPI:
    async def database() -> None:
        state.db.ping()

    app = make_service_app(
        info,
        access,
        checks={"database": database},
        description="Targets for mapping workers, hop feedback (docs/mapping.md).",
        max_body=64 * 1024 * 1024,
    )
    registry = app.state.registry
    served = Counter("hyphal_map_feeder_targets", "Targets handed out.", registry=registry)
    hops_in = Counter(
        "hyphal_map_feeder_hops", "Hops reported, by outcome.", ["outcome"], registry=registry
    )
    register_paths(
        ["/targets", "/hops", "/stopset", "/stats", "/consumers/export", "/consumers/import"]
    )

    @app.get("/targets", tags=["Feeder"])
    def targets(
        worker: str = Query(min_length=1, max_length=200),
        n: int = Query(default=100, ge=1, le=MAX_CLAIM),
        region: str | None = Query(default=None, max_length=200),
    ) -> dict[str, Any]:
        """The next ``n`` targets of the current cycle for ``worker`` (no other worker gets
        their blocks this cycle). Fewer near the end of a cycle: ask again."""
        try:
            claim = state.claim(worker, n, time.time(), region)
        except SourcesChanged as exc:
            raise HTTPException(409, str(exc)) from None
        served.inc(len(claim.targets))
        return {
            "cycleId": claim.cycle_id,
            "targets": [{"ip": t.ip, "proto": t.proto} for t in claim.targets],
        }

    @app.post("/hops", tags=["Feeder"])
    def hops(body: HopsIn) -> dict[str, int]:
        """Hops discovered by traces: filtered, stop-set checked, deduplicated; new ones join
        the target pool."""
        report = state.add_hops([h.model_dump() for h in body.hops], time.time())
        for outcome, count in (
            ("added", report.added),
            ("known", report.known),
            ("filtered", report.filtered),
            ("near", report.near),
        ):
            hops_in.labels(outcome).inc(count)
        return {
            "added": report.added,
            "known": report.known,
            "filtered": report.filtered,
            "nearMonitor": report.near,
        }

    @app.get("/stopset", tags=["Feeder"])
    def stopset(
        worker: str = Query(min_length=1, max_length=200),
        target: str | None = Query(default=None, max_length=64),
        limit: int = Query(default=1000, ge=1, le=10_000),
    ) -> dict[str, Any]:
        """Doubletree stop sets: ``local`` (interfaces near this worker: start traces past
        them) and ``global`` (interfaces already seen towards ``target``'s block: stop there)."""
        return state.stop_set(worker, target, limit)

    @app.get("/stats", tags=["Feeder"])
    def stats() -> dict[str, Any]:
        """The current cycle, the pool's size, and what each worker was given."""
        return state.stats()

    @app.get("/consumers/export", tags=["Feeder"])
    def export(worker: str | None = Query(default=None, max_length=200)) -> dict[str, Any]:
        """Per-consumer state: totals and every assignment (cycle, first position, count)."""
        return state.export(worker)

    @app.post("/consumers/import", tags=["Feeder"])
    def import_(body: ConsumersIn) -> dict[str, int]:
        """Merge an export into this feeder's state (assignments already known are skipped)."""
        return state.import_(body.model_dump())

    return app
