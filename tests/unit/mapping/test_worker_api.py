"""The worker's API admits callers through service_app's Access, like the feeder and store:
token holders, members (any member without --allow-role, else those with a listed role), and
nobody else. /health stays open. No probe leaves: the one /measure asked for is a refused target.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx

from hyphal.mapping.limits import Limiter, Limits
from hyphal.mapping.probe.engine import Identity
from hyphal.mapping.service_app import Access, MemberResolver
from hyphal.mapping.worker.api import create_app
from hyphal.mapping.worker.guard import TargetGuard
from hyphal.mapping.worker.outbox import Outbox
from hyphal.mapping.worker.service import Worker, WorkerConfig

MEMBER = "47c:e4c9:ac5c:1322:7141:1bd9:4f7d:f27d"
ROWS = [
    {"name": "fra", "address": MEMBER, "roles": ["peer"], "tags": {}, "left": False},
    {"name": "gone", "address": "5bb::1", "roles": ["peer"], "tags": {}, "left": True},
]


def worker(tmp_path: Path) -> Worker:
    ident = Identity("w1", "00" * 32, "eu")
    limiter = Limiter(Limits(), time.monotonic())
    return Worker(ident, limiter, TargetGuard(), Outbox(tmp_path), WorkerConfig())


def access(roles: frozenset[str], token: str | None = None) -> Access:
    async def fetch() -> list[dict[str, Any]]:
        return ROWS

    return Access(token=token, members=MemberResolver("http://unused", fetch=fetch), roles=roles)


def client(app: Any, host: str) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(host, 4000))
    return httpx.AsyncClient(transport=transport, base_url="http://worker")


async def test_members_and_token_holders_only(tmp_path: Path) -> None:
    app = create_app(worker(tmp_path), access(frozenset(), token="t" * 32))
    async with client(app, MEMBER) as c:
        status = await c.get("/status")
        assert status.status_code == 200 and status.json()["worker"] == "w1"
        refused = await c.post("/measure", json={"target": "10.0.0.1"})
        assert refused.status_code == 400  # admitted, then the guard said no: nothing sent
    async with client(app, "198.51.100.7") as c:
        assert (await c.get("/health")).status_code == 200
        denied = await c.get("/status")
        assert denied.status_code == 403 and "not a member" in denied.json()["detail"]
        ok = await c.get("/status", headers={"Authorization": "Bearer " + "t" * 32})
        assert ok.status_code == 200
    async with client(app, "5bb::1") as c:
        assert (await c.post("/measure", json={"target": "10.0.0.1"})).status_code == 403


async def test_allow_role_limits_members(tmp_path: Path) -> None:
    app = create_app(worker(tmp_path), access(frozenset({"operator"})))
    async with client(app, MEMBER) as c:
        denied = await c.get("/status")
        assert denied.status_code == 403 and "none of the roles operator" in denied.json()["detail"]
