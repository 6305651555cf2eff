"""The worker's run loop: targets in, guarded and rate-limited measurements, results out.

Targets come from the feeder (``GET {feeder}/targets?worker=NAME&n=K``) or a fixed list. Each
target passes the :class:`~hyphal.mapping.worker.guard.TargetGuard` and then the limiter's
``start`` (cooldown, one measurement per prefix, bounded concurrency); one the limiter defers
waits in a bounded queue and is tried again later. Every result goes to the outbox first; the
shipper takes it from there. When the outbox is full the worker stops measuring (nothing is
ever dropped to make room).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from hyphal.client import bearer_headers
from hyphal.mapping.discovery import DiscoveryError, Locator
from hyphal.mapping.limits import Limiter
from hyphal.mapping.probe.engine import Identity, LimitRefused, measure
from hyphal.mapping.probe.plan import PingParams, TraceParams
from hyphal.mapping.probe.sockets import ProbeSocketError
from hyphal.mapping.worker.guard import TargetGuard, TargetRefused
from hyphal.mapping.worker.outbox import Outbox
from hyphal.mapping.worker.shipper import Shipper

log = logging.getLogger("hyphal.mapping.worker")
MAX_DEFERRED = 10_000


@dataclass
class Task:
    target: str
    proto: str = "icmp"
    kind: str = "traceroute"
    cycle_id: str | None = None
    flow_id: int = 1
    measurement_id: str | None = None  # a one-off request from the store's measurement API


@dataclass
class WorkerConfig:
    trace: TraceParams = field(default_factory=TraceParams)
    ping: PingParams = field(default_factory=PingParams)
    raw: bool = False
    batch: int = 16  # targets asked of the feeder at once
    idle: float = 5.0  # seconds between feeder polls when it has nothing
    once: bool = False  # stop when a fixed target list is done and shipped
    poll_store: float = 2.0  # seconds between asks for the store's one-off measurements


class Worker:
    def __init__(
        self,
        ident: Identity,
        limiter: Limiter,
        guard: TargetGuard,
        outbox: Outbox,
        config: WorkerConfig,
        *,
        feeder: str | Locator | None = None,
        targets: list[Task] | None = None,
        shipper: Shipper | None = None,
        token: str | None = None,
        on_result: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.ident = ident
        self.limiter = limiter
        self.guard = guard
        self.outbox = outbox
        self.config = config
        self.feeder = Locator(feeder) if isinstance(feeder, str) else feeder
        self.fixed: deque[Task] = deque(targets or [])
        self.deferred: deque[Task] = deque()
        self.shipper = shipper
        self.on_result = on_result
        headers = bearer_headers(token)
        self._http = httpx.AsyncClient(timeout=15.0, headers=headers)
        self.running: set[asyncio.Task[None]] = set()
        self.counters = {"results": 0, "refused": 0, "errors": 0, "deferred": 0, "feederErrors": 0}
        self.last_result: float | None = None
        self.started = time.time()
        self.stop = asyncio.Event()

    async def _fetch(self) -> list[Task]:
        if self.feeder is None:
            out: list[Task] = []
            while self.fixed and len(out) < self.config.batch:
                out.append(self.fixed.popleft())
            return out
        try:
            response = await self._http.get(
                await self.feeder.url() + "/targets",
                params={"worker": self.ident.worker, "n": self.config.batch},
            )
            response.raise_for_status()
            data = response.json()
            cycle = data.get("cycleId")
            return [
                Task(
                    str(t["ip"]),
                    str(t.get("proto", "icmp")),
                    str(t.get("type", "traceroute")),
                    cycle,
                )
                for t in data.get("targets", [])[: self.config.batch * 4]
                if isinstance(t, dict) and "ip" in t
            ]
        except (httpx.HTTPError, ValueError, KeyError, TypeError, DiscoveryError) as exc:
            self.counters["feederErrors"] += 1
            self.feeder.forget()
            log.warning("feeder %s: %s; retrying in %.0f s", self.feeder, exc, self.config.idle)
            return []

    async def _poll_store(self) -> None:
        """One-off requests (``hyphal map trace`` through the store) go first in the queue."""
        if self.shipper is None or len(self.deferred) >= MAX_DEFERRED:
            return
        params: dict[str, str | int] = {"worker": self.ident.worker, "limit": 4}
        if self.ident.region:
            params["region"] = self.ident.region
        try:
            url = await self.shipper.store.url() + "/measurements/pending"
            response = await self._http.get(url, params=params)
            response.raise_for_status()
            rows = response.json().get("measurements", [])
        except (httpx.HTTPError, ValueError, AttributeError, DiscoveryError):
            return  # the shipper reports the store's trouble
        for row in rows[:4]:
            try:
                extra = row.get("params") or {}
                task = Task(
                    str(row["target"]),
                    str(row.get("proto", "icmp")),
                    str(row.get("type", "traceroute")),
                    None,
                    int(extra.get("flowId", 1)) & 0xFFF,
                    str(extra.get("measurementId") or row["id"])[:64],
                )
            except (KeyError, TypeError, ValueError, AttributeError):
                continue
            if self._admit(task):
                self.deferred.appendleft(task)

    def _next_task(self) -> Task | None:
        now = time.monotonic()
        for _ in range(len(self.deferred)):
            task = self.deferred.popleft()
            why = self.limiter.start(task.target, now)
            if why is None:
                return task
            self.deferred.append(task)
        return None

    async def _run_task(self, task: Task) -> None:
        try:
            result = await _measure_started(self, task)
        except (OSError, ProbeSocketError, ValueError) as exc:
            self.counters["errors"] += 1
            log.warning("measurement of %s failed: %s", task.target, exc)
            return
        finally:
            self.limiter.finish(task.target, time.monotonic())
        result["cycleId"] = task.cycle_id
        if task.measurement_id is not None:
            result["params"]["measurementId"] = task.measurement_id
        self.outbox.add(result)
        self.counters["results"] += 1
        self.last_result = time.time()
        if self.on_result is not None:
            self.on_result(result)
        if self.shipper is not None:
            self.shipper.wake.set()

    def _admit(self, task: Task) -> bool:
        try:
            task.target = self.guard.check(task.target)
        except TargetRefused as exc:
            self.counters["refused"] += 1
            log.warning("not probing: %s", exc)
            return False
        if task.proto not in ("icmp", "udp", "tcp") or task.kind not in ("traceroute", "ping"):
            self.counters["refused"] += 1
            return False
        return True

    async def run(self) -> None:
        ship_task = None
        if self.shipper is not None:
            ship_task = asyncio.create_task(self.shipper.run(self.stop))
        polled = 0.0
        try:
            while not self.stop.is_set():
                if time.monotonic() - polled >= self.config.poll_store and not self.config.once:
                    polled = time.monotonic()
                    await self._poll_store()
                if self.outbox.full():
                    await asyncio.sleep(1.0)
                    continue
                started = self._start_ready()
                if (
                    len(self.deferred) < self.config.batch
                    and len(self.running) < self.limiter.limits.max_concurrent
                ):
                    fetched = await self._fetch()
                    for task in fetched:
                        if self._admit(task) and len(self.deferred) < MAX_DEFERRED:
                            self.deferred.append(task)
                    if fetched:
                        continue
                    if (
                        self.feeder is None
                        and not self.fixed
                        and not self.deferred
                        and not self.running
                    ) and self.config.once:
                        break
                if not started:
                    await asyncio.sleep(
                        0.05 if self.deferred else self.config.idle if self.feeder else 0.2
                    )
            if self.running:
                await asyncio.gather(*self.running, return_exceptions=True)
            if self.shipper is not None and self.config.once:
                for _attempt in range(30):
                    if not len(self.outbox):
                        break
                    try:
                        if not await self.shipper.ship_once():
                            break
                    except Exception as exc:  # reported, then retried (a bounded number of times)
                        log.warning("%s", exc)
                        await asyncio.sleep(1.0)
        finally:
            self.stop.set()
            if ship_task is not None:
                await asyncio.gather(ship_task, return_exceptions=True)
            await self._http.aclose()

    def _start_ready(self) -> bool:
        started = False
        while len(self.running) < self.limiter.limits.max_concurrent:
            task = self._next_task()
            if task is None:
                break
            job = asyncio.create_task(self._run_task(task))
            self.running.add(job)
            job.add_done_callback(self.running.discard)
            started = True
        return started

    def status(self) -> dict[str, Any]:
        return {
            "worker": self.ident.worker,
            "region": self.ident.region,
            "running": len(self.running),
            "deferred": len(self.deferred),
            "outbox": len(self.outbox),
            "packetsSent": self.limiter.sent,
            "limits": self.limiter.limits.as_dict(),
            "lastResult": self.last_result,
            "uptime": time.time() - self.started,
            **self.counters,
            "shipped": self.shipper.delivered if self.shipper else 0,
            "shipError": self.shipper.last_error if self.shipper else None,
        }


async def _measure_started(worker: Worker, task: Task) -> dict[str, Any]:
    """Run a task whose measurement the limiter already started."""
    from hyphal.mapping.probe.engine import run_ping, run_trace

    if task.kind == "ping":
        proto = task.proto if task.proto in ("icmp", "tcp") else "icmp"
        return await run_ping(
            task.target,
            proto,
            worker.config.ping,
            worker.limiter,
            worker.ident,
            raw=worker.config.raw,
        )
    return await run_trace(
        task.target,
        task.proto,
        worker.config.trace,
        worker.limiter,
        worker.ident,
        flow_id=task.flow_id,
        raw=worker.config.raw,
    )


__all__ = ["LimitRefused", "Task", "Worker", "WorkerConfig", "measure"]
