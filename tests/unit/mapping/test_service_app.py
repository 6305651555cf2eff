"""The common service frame: the four endpoints, token and member access, 429 shedding, the
bind rule."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from hyphal.mapping.service_app import (
    Access,
    BindError,
    MemberResolver,
    ServiceInfo,
    check_bind,
    make_service_app,
)

MEMBER = "47c:e4c9:ac5c:1322:7141:1bd9:4f7d:f27d"


def client(app: Any, host: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=(host, 4000))
    return httpx.AsyncClient(transport=transport, base_url="http://svc")


async def test_endpoints_and_token() -> None:
    failing = {"db": 0}

    async def db() -> None:
        if failing["db"]:
            raise RuntimeError("database is locked")

    app = make_service_app(
        ServiceInfo("map-store", "s1", capabilities=("sqlite",)),
        Access(token="sekrit"),
        checks={"database": db},
    )
    async with client(app) as c:
        assert (await c.get("/health")).status_code == 200
        refused = await c.get("/service-info")
        assert refused.status_code == 403 and "token" in refused.json()["error"]
        auth = {"Authorization": "Bearer sekrit"}
        assert (
            await c.get("/service-info", headers={"Authorization": "Bearer nope"})
        ).status_code == 403
        info = (await c.get("/service-info", headers=auth)).json()
        assert info["serviceType"] == "map-store" and info["capabilities"] == ["sqlite"]
        assert info["service_type"] == "map-store" and len(info["instanceId"]) == 32
        assert (await c.get("/ready", headers=auth)).json() == {
            "ready": True,
            "checks": {"database": "ok"},
        }
        failing["db"] = 1
        bad = await c.get("/ready", headers=auth)
        assert bad.status_code == 503 and "locked" in bad.json()["checks"]["database"]
        metrics = (await c.get("/metrics", headers=auth)).text
        assert "hyphal_map_store_refused_total 2.0" in metrics


async def test_members_with_the_right_role_pass() -> None:
    rows = [
        {
            "name": "sg1",
            "address": MEMBER,
            "roles": ["client"],
            "tags": {"map-role": "worker"},
            "publicKey": "ab" * 32,
            "left": False,
        },
        {"name": "peer2", "address": "5bb::1", "roles": ["peer"], "tags": {}, "left": False},
    ]
    calls = {"n": 0}

    async def fetch() -> list[dict[str, Any]]:
        calls["n"] += 1
        return rows

    access = Access(
        members=MemberResolver("http://unused", fetch=fetch), roles=frozenset({"worker"})
    )
    app = make_service_app(ServiceInfo("map-feeder", "f1"), access)
    # Any address of the member's /64 is the member.
    async with client(app, host="47c:e4c9:ac5c:1322::99") as c:
        assert (await c.get("/service-info")).status_code == 200
    async with client(app, host="5bb::1") as c:
        r = await c.get("/service-info")
        assert r.status_code == 403 and "none of the roles worker" in r.json()["error"]
    async with client(app, host="5cc::1") as c:
        assert "not a member" in (await c.get("/service-info")).json()["error"]
    async with client(app, host="198.51.100.1") as c:
        assert (await c.get("/service-info")).status_code == 403
    assert calls["n"] == 1  # cached


async def test_no_roles_means_every_member() -> None:
    """The map worker's default (no --allow-role): any member, whatever its roles; strangers and
    departed members are still refused."""
    rows = [
        {"name": "relay1", "address": MEMBER, "roles": ["relay"], "tags": {}, "left": False},
        {"name": "gone", "address": "5bb::1", "roles": ["peer"], "tags": {}, "left": True},
    ]

    async def fetch() -> list[dict[str, Any]]:
        return rows

    access = Access(members=MemberResolver("http://unused", fetch=fetch), roles=frozenset())
    app = make_service_app(ServiceInfo("map-worker", "w1"), access)
    async with client(app, host=MEMBER) as c:
        assert (await c.get("/service-info")).status_code == 200
    for stranger in ("5bb::1", "5cc::1", "198.51.100.1"):
        async with client(app, host=stranger) as c:
            assert (await c.get("/service-info")).status_code == 403


async def test_unreachable_api_fails_closed() -> None:
    async def fetch() -> list[dict[str, Any]]:
        raise httpx.ConnectError("refused")

    app = make_service_app(
        ServiceInfo("map-feeder", "f1"), Access(members=MemberResolver("http://x", fetch=fetch))
    )
    async with client(app, host=MEMBER) as c:
        r = await c.get("/service-info")
        assert r.status_code == 403 and "hyphal API" in r.json()["error"]


async def test_overload_answers_429_with_retry_after() -> None:
    app = make_service_app(
        ServiceInfo("map-store", "s1"), Access(allow_loopback=True), max_inflight=1, retry_after=3
    )
    gate = asyncio.Event()

    @app.get("/slow")
    async def slow() -> dict[str, bool]:
        await gate.wait()
        return {"ok": True}

    async with client(app) as c:
        first = asyncio.create_task(c.get("/slow"))
        await asyncio.sleep(0.05)
        second = await c.get("/service-info")
        assert second.status_code == 429 and second.headers["retry-after"] == "3"
        gate.set()
        assert (await first).status_code == 200


def test_bind_rule() -> None:
    check_bind(MEMBER, allow_public=False)
    check_bind("127.0.0.1", allow_public=False)
    with pytest.raises(BindError, match="public"):
        check_bind("8.8.8.8", allow_public=False)
    with pytest.raises(BindError, match="every address"):
        check_bind("::", allow_public=False)
    check_bind("8.8.8.8", allow_public=True)
