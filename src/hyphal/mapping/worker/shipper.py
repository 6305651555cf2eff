"""Ships outbox batches to the store and deletes exactly what the store acknowledged.

One ``POST {store}/results`` with ``{"worker": name, "results": [...]}`` per batch (at most
1000 results and 4 MiB by the contract; we send at most ``batch`` and 3 MiB). The store answers
the ids it now holds durably; only those leave the outbox, so a batch lost on the way, a store
that crashed half way or one that stored a subset costs a resend, never a result. A 429 waits
``Retry-After``; any other failure backs off exponentially up to a minute. The worker only ever
dials out (its node may be a NAT'd ``client``-role member).
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

import httpx

from hyphal.client import bearer_headers
from hyphal.mapping.discovery import DiscoveryError, Locator
from hyphal.mapping.worker.outbox import Outbox

log = logging.getLogger("hyphal.mapping.shipper")
MAX_BACKOFF = 60.0


class ShipError(RuntimeError):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Shipper:
    def __init__(
        self,
        outbox: Outbox,
        store: str | Locator,
        worker: str,
        *,
        token: str | None = None,
        batch: int = 500,
        timeout: float = 30.0,
    ) -> None:
        self.outbox = outbox
        self.store = store if isinstance(store, Locator) else Locator(store)
        self.worker = worker
        self.batch = max(1, min(batch, 1000))
        headers = bearer_headers(token)
        self._client = httpx.AsyncClient(timeout=timeout, headers=headers)
        self.delivered = 0
        self.rejected = 0
        self.failures = 0
        self.last_error: str | None = None
        self.wake = asyncio.Event()

    async def ship_once(self) -> int:
        """Send one batch; returns how many results the store acknowledged (0: nothing to send)."""
        results = self.outbox.peek(self.batch)
        if not results:
            return 0
        try:
            base = await self.store.url()
        except DiscoveryError as exc:
            raise ShipError(str(exc)) from exc
        try:
            response = await self._client.post(
                base + "/results", json={"worker": self.worker, "results": results}
            )
        except httpx.HTTPError as exc:
            self.store.forget()
            raise ShipError(f"store unreachable at {base}: {exc}") from exc
        if response.status_code == 429:
            retry = _retry_after(response.headers.get("retry-after"))
            raise ShipError("store overloaded (429)", retry)
        if response.status_code != 200:
            raise ShipError(f"store answered {response.status_code}: {response.text[:200]}")
        try:
            answer = response.json()
            ids = answer.get("ids", [])
            rejected = answer.get("rejected") or []
        except (ValueError, AttributeError) as exc:
            raise ShipError("store answered no JSON ids") from exc
        sent = {r["id"] for r in results}
        acked = [i for i in ids if isinstance(i, str) and i in sent]
        gone = self.outbox.delete(acked)
        self.delivered += gone
        refused = {
            str(item["id"]): str(item.get("error", "rejected"))
            for item in rejected
            if isinstance(item, dict) and item.get("id") in sent and item.get("id") not in acked
        }
        if refused:
            moved = self.outbox.reject(refused)
            self.rejected += moved
            first = next(iter(refused.items()))
            log.warning(
                "the store refused %d results as malformed (e.g. %s: %s); kept in the outbox's "
                "rejected table, not sent again",
                moved,
                *first,
            )
            gone += moved
        return gone

    async def run(self, stop: asyncio.Event, idle: float = 2.0) -> None:
        backoff = 1.0
        while not stop.is_set():
            try:
                shipped = await self.ship_once()
                backoff = 1.0
                if shipped:
                    self.last_error = None
                    continue
                delay = idle
            except ShipError as exc:
                self.failures += 1
                if self.last_error != str(exc):
                    log.warning(
                        "%s; results stay in the outbox (%d waiting)", exc, len(self.outbox)
                    )
                self.last_error = str(exc)
                delay = exc.retry_after if exc.retry_after is not None else backoff
                backoff = min(MAX_BACKOFF, backoff * 2)
                delay *= random.uniform(0.8, 1.2)
            self.wake.clear()
            waiters: Any = [
                asyncio.ensure_future(stop.wait()),
                asyncio.ensure_future(self.wake.wait()),
            ]
            _done, pending = await asyncio.wait(
                waiters, timeout=delay, return_when=asyncio.FIRST_COMPLETED
            )
            for task in pending:
                task.cancel()

    async def close(self) -> None:
        await self._client.aclose()


def _retry_after(value: str | None) -> float:
    try:
        return max(0.1, min(MAX_BACKOFF * 5, float(value or 5)))
    except ValueError:
        return 5.0
