"""Hops from stored traces, sent on to the feeder's ``POST /hops``: a bounded queue and one
asyncio task that posts batches, retrying with capped exponential backoff.

The queue is bounded (oldest hops are dropped first and counted): the hops are a hint that
grows the target pool, not data of record, and every later trace through the same routers
reports them again. Nothing waits on the feeder: ingest only enqueues.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Iterable

import httpx

from hyphal.client import bearer_headers
from hyphal.mapping.discovery import DiscoveryError, Locator
from hyphal.mapping.model import HopAddress

log = logging.getLogger("hyphal.mapping.store")

BATCH = 1000
MAX_QUEUE = 100_000
BACKOFF_MIN = 0.5
BACKOFF_MAX = 60.0


class HopShipper:
    def __init__(
        self,
        feeder: str | Locator,
        token: str | None = None,
        max_queue: int = MAX_QUEUE,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.feeder = feeder if isinstance(feeder, Locator) else Locator(feeder)
        self.token = token
        self.queue: deque[HopAddress] = deque()
        self.max_queue = max_queue
        self.dropped = 0
        self.shipped = 0
        self.failures = 0
        self.added = 0
        self.last_error: str | None = None
        self._wake = asyncio.Event()
        self._client = client

    def put(self, hops: Iterable[HopAddress]) -> None:
        for hop in hops:
            if len(self.queue) >= self.max_queue:
                self.queue.popleft()
                self.dropped += 1
            self.queue.append(hop)
        self._wake.set()

    async def ship_once(self, client: httpx.AsyncClient) -> bool:
        """Post one batch; True when the queue is now empty. Raises on failure (batch kept)."""
        batch = [self.queue[i] for i in range(min(BATCH, len(self.queue)))]
        if not batch:
            return True
        headers = bearer_headers(self.token)
        body = {
            "hops": [
                {"ip": h.ip, "ttl": h.ttl, "target": h.target, "worker": h.worker} for h in batch
            ]
        }
        url = await self.feeder.url() + "/hops"
        try:
            response = await client.post(url, json=body, headers=headers, timeout=30.0)
        except httpx.HTTPError:
            self.feeder.forget()
            raise
        if response.status_code == 429:
            raise httpx.HTTPStatusError(
                "feeder overloaded (429)", request=response.request, response=response
            )
        response.raise_for_status()
        reply = response.json()
        self.added += int(reply.get("added", 0)) if isinstance(reply, dict) else 0
        for _ in batch:
            self.queue.popleft()
        self.shipped += len(batch)
        return not self.queue

    async def run(self) -> None:
        """Ship forever (cancel to stop)."""
        delay = BACKOFF_MIN
        client = self._client or httpx.AsyncClient()
        try:
            while True:
                if not self.queue:
                    self._wake.clear()
                    await self._wake.wait()
                try:
                    await self.ship_once(client)
                    delay = BACKOFF_MIN
                except (httpx.HTTPError, ValueError, DiscoveryError) as exc:
                    self.failures += 1
                    if self.last_error != str(exc):
                        log.warning(
                            "store: cannot send hops to the feeder at %s: %s; retrying (%d queued)",
                            self.feeder,
                            exc,
                            len(self.queue),
                        )
                    self.last_error = str(exc)
                    await asyncio.sleep(delay)
                    delay = min(BACKOFF_MAX, delay * 2)
        finally:
            if self._client is None:
                await client.aclose()
