"""The store on both backends (a SQLite directory, and a real PostgreSQL this session starts):
idempotent ingest, the normalised tables, queries, rotation (SQLite) and retention (PostgreSQL),
the measurement API, and hops flowing to a feeder that grows its pool."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
from mapping_results import ping, trace

from hyphal.mapping.db import Database
from hyphal.mapping.feeder.app import feeder_app
from hyphal.mapping.feeder.prefixes import TargetFilter
from hyphal.mapping.feeder.space import TargetSpace
from hyphal.mapping.feeder.state import FeederState
from hyphal.mapping.model import parse_result
from hyphal.mapping.service_app import Access, ServiceInfo
from hyphal.mapping.store.app import store_app
from hyphal.mapping.store.backend import PARTITION_SECONDS, Rotation, Store
from hyphal.mapping.store.hops import HopShipper

AUTH = {"Authorization": "Bearer t"}
LAB = TargetFilter.build(exceptions=["198.18.0.0/15", "2001:db8::/32"])


def parsed(*items: dict[str, Any]) -> list[Any]:
    return [parse_result(i) for i in items]


def test_ingest_is_idempotent_and_normalised(db_url: str) -> None:
    store = Store(db_url)
    a, b = trace(), trace(started=1010.0)
    first = store.ingest(parsed(a, b, a), now=2000.0)
    assert (first.accepted, first.duplicates, first.ids) == (2, 1, [a["id"], b["id"]])
    again = store.ingest(parsed(a, b, ping()), now=2001.0)
    assert (again.accepted, again.duplicates) == (1, 2)
    stats = store.stats(now=2001.0)
    assert (stats["results"], stats["traceroutes"], stats["pings"]) == (3, 2, 1)
    assert stats["hops"] == 8 and stats["duplicates"] == 3
    # Edges: only between consecutive responding TTLs (not across the silent TTL 2), counted.
    edges, nxt = store.edges()
    assert nxt is None
    assert [(e["a"], e["b"], e["flowId"], e["count"]) for e in edges] == [
        ("198.18.2.1", "198.18.3.1", 7, 2)
    ]
    # The canonical JSON comes back as it went in (absent fields as null).
    got = store.recent(None, 10)
    assert {r["id"] for r in got} == {a["id"], b["id"], again.new[0].id}
    assert parse_result(next(r for r in got if r["id"] == a["id"])) == parse_result(a)
    # Through a hop, or towards a target.
    assert {r["id"] for r in store.recent("198.18.0.1", 10)} == {a["id"], b["id"]}
    assert store.recent("198.51.100.9", 10) == []
    assert stats["workers"][0]["worker"] == "sg1" and stats["workers"][0]["results"] == 3
    store.close()


def test_pagination_by_time_worker_and_target(db_url: str) -> None:
    store = Store(db_url)
    items = [
        trace(started=1000.0 + i, worker=f"w{i % 2}", target=f"198.18.3.{i % 3 + 1}")
        for i in range(25)
    ]
    store.ingest(parsed(*items), now=5000.0)
    seen: list[str] = []
    cursor = None
    while True:
        page, cursor = store.query(limit=7, cursor=cursor)
        seen += [r["id"] for r in page]
        if cursor is None:
            break
    assert seen == [i["id"] for i in sorted(items, key=lambda r: -r["started"])]
    page, _ = store.query(since=1010.0, until=1020.0, worker="w0", limit=100)
    assert [r["started"] for r in page] == [1018.0, 1016.0, 1014.0, 1012.0, 1010.0]
    page, _ = store.query(target="198.18.3.1", limit=100)
    assert len(page) == 9
    store.close()


def test_sqlite_rotation_at_a_small_size_keeps_ids_and_queries(tmp_path: Path) -> None:
    store = Store(str(tmp_path / "store"), Rotation(max_bytes=64 * 1024, keep=2))
    batches = [[trace(started=1000.0 + 50 * b + i) for i in range(50)] for b in range(12)]
    for n, batch in enumerate(batches):
        store.ingest(parsed(*batch), now=2000.0 + n)
    rotated = store.rotated_files()
    assert len(rotated) == 2  # rotated several times, only the newest two kept
    assert store.live_path.stat().st_size < 64 * 1024 + 200_000
    # A result still held in a rotated file is a duplicate, and queries read rotated files.
    in_rotated = sqlite3.connect(rotated[0]).execute("SELECT id FROM results LIMIT 1").fetchone()[0]
    resent = next(r for b in batches for r in b if r["id"] == in_rotated)
    assert store.ingest(parsed(resent), now=3000.0).duplicates == 1
    total = sum(
        sqlite3.connect(p).execute("SELECT COUNT(*) FROM results").fetchone()[0]
        for p in [*rotated, store.live_path]
    )
    page, cursor = store.query(limit=1000)
    assert len(page) == total and cursor is None
    assert store.stats(now=3000.0)["files"]["rotated"] == [p.name for p in rotated]
    store.close()


def test_postgresql_partitions_and_retention(fresh_pg: str) -> None:
    url = fresh_pg
    old_week = 100 * PARTITION_SECONDS
    store = Store(url, retention_days=30, now=old_week)
    old = trace()
    store.ingest(parsed(old), now=old_week + 5)
    store.ingest(parsed(trace()), now=old_week + 40 * 86400)
    with store.db.tx(write=False) as t:
        names = [r[0] for r in t.execute("SELECT name FROM partitions ORDER BY lo").fetchall()]
    assert len(names) == 2
    dropped = store.expire(now=old_week + 40 * 86400)
    assert dropped == [names[0]]
    assert len(store.query(limit=100)[0]) == 1
    # Its id went with it: the same result would be stored again (it is past retention).
    assert store.ingest(parsed(old), now=old_week + 40 * 86400).accepted == 1
    store.close()


def client(app: Any) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 1))
    return httpx.AsyncClient(transport=transport, base_url="http://store", headers=AUTH)


async def test_http_ingest_contract_and_overload(db_url: str) -> None:
    store = Store(db_url)
    app = store_app(store, ServiceInfo("map-store", "s1"), Access(token="t"))
    async with client(app) as c:
        good, bad = trace(), trace(target="not-an-ip")
        r = await c.post("/results", json={"worker": "sg1", "results": [good, bad, good]})
        assert r.status_code == 200
        body = r.json()
        assert (body["accepted"], body["duplicates"], body["ids"]) == (1, 1, [good["id"]])
        assert body["rejected"][0]["id"] == bad["id"] and "target" in body["rejected"][0]["error"]
        assert (await c.post("/results", content=b"{nope")).status_code == 400
        too_many = {"worker": "x", "results": [ping() for _ in range(1001)]}
        assert (await c.post("/results", json=too_many)).status_code == 413
        big = b'{"worker":"x","results":[' + b" " * (5 * 1024 * 1024) + b"]}"
        assert (await c.post("/results", content=big)).status_code == 413
        recent = (await c.get("/recent", params={"ip": "198.18.3.1", "limit": 5})).json()
        assert [x["id"] for x in recent] == [good["id"]]
        page = (await c.get("/results", params={"worker": "sg1"})).json()
        assert page["nextCursor"] is None and len(page["results"]) == 1
        assert (await c.get("/stats")).json()["results"] == 1
        assert (await c.get("/edges")).json()["edges"][0]["a"] == "198.18.2.1"
        lines = (await c.get("/dump")).text.splitlines()
        assert [json.loads(x)["id"] for x in lines] == [good["id"]]
        if not store.pg:
            snap = await c.get("/dump", params={"format": "sqlite"})
            assert snap.content[:15] == b"SQLite format 3"
        schema = (await c.get("/openapi.json")).json()
        for path in ("/results", "/recent", "/stats", "/measurements", "/measurements/pending"):
            assert path in schema["paths"]
    busy = store_app(
        store, ServiceInfo("map-store", "s1"), Access(token="t"), max_pending_ingests=0
    )
    async with client(busy) as c:
        r = await c.post("/results", json={"worker": "sg1", "results": [trace()]})
        assert r.status_code == 429 and r.headers["retry-after"] == "1"
    store.close()


async def test_measurement_api_create_poll_claim_stream(db_url: str) -> None:
    store = Store(db_url)
    app = store_app(store, ServiceInfo("map-store", "s1"), Access(token="t"))
    async with client(app) as c:
        r = await c.post(
            "/measurements",
            json={
                "type": "traceroute",
                "target": "198.18.3.1",
                "proto": "udp",
                "region": "sg",
                "params": {"maxTtl": 16},
            },
        )
        assert r.status_code == 202
        mid = r.json()["id"]
        assert (await c.get(f"/measurements/{mid}")).json()["status"] == "pending"
        assert (
            await c.post("/measurements", json={"type": "ping", "target": "bogus"})
        ).status_code == 422
        # A worker of another region does not get it; one in the region does, once.
        other = await c.get("/measurements/pending", params={"worker": "fra1", "region": "eu"})
        assert other.json()["measurements"] == []
        got = (
            await c.get("/measurements/pending", params={"worker": "sg1", "region": "sg"})
        ).json()["measurements"]
        assert [(m["id"], m["proto"], m["params"]) for m in got] == [
            (mid, "udp", {"maxTtl": 16, "measurementId": mid})
        ]
        assert (
            await c.get("/measurements/pending", params={"worker": "sg2", "region": "sg"})
        ).json()["measurements"] == []
        status = (await c.get(f"/measurements/{mid}")).json()
        assert (status["status"], status["claimedBy"]) == ("running", "sg1")
        result = trace(params={"maxTtl": 16, "measurementId": mid})
        await c.post("/results", json={"worker": "sg1", "results": [result]})
        done = (await c.get(f"/measurements/{mid}")).json()
        assert done["status"] == "finished" and [x["id"] for x in done["results"]] == [result["id"]]
        stream = await c.get(f"/measurements/{mid}/stream")
        events = [
            line.removeprefix("event: ")
            for line in stream.text.splitlines()
            if line.startswith("event: ")
        ]
        assert events == ["status", "result", "end"]
        assert (await c.get("/measurements/nope")).status_code == 404
    store.close()


async def test_hops_reach_the_feeder_and_grow_its_pool_with_dedupe(db_url: str) -> None:
    feeder = FeederState(
        Database(db_url.replace("map.db", "feeder.db")), TargetSpace(["198.18.3.0/24"], LAB), LAB
    )
    fapp = feeder_app(feeder, ServiceInfo("map-feeder", "f1"), Access(token="t"))
    fclient = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=fapp, client=("::1", 1)), base_url="http://feeder"
    )
    shipper = HopShipper("http://feeder", token="t", client=fclient)
    store = Store(db_url)
    app = store_app(store, ServiceInfo("map-store", "s1"), Access(token="t"), shipper=shipper)
    async with client(app) as c:
        batch = [
            trace(path=("198.18.0.1", "198.18.0.2", "198.19.1.1", "198.19.2.1")),
            trace(path=("198.18.0.1", "198.18.0.2", "198.19.1.1", "198.19.2.7")),  # again
            trace(path=("198.18.0.1", "198.18.0.2", "10.1.1.1", "198.19.2.1")),  # a private hop
        ]
        await c.post("/results", json={"worker": "sg1", "results": batch})
        assert len(shipper.queue) == 12  # four distinct hops per trace
        assert await shipper.ship_once(fclient)
        stats = feeder.stats()
        # TTLs 1 and 2 are near the worker (its stop set), 10.1.1.1 is filtered; the rest are new
        # and deduplicated: 198.19.1.1, 198.19.2.1, 198.19.2.7.
        assert stats["hopTargets"] == 3
        await c.post(
            "/results",
            json={
                "worker": "sg1",
                "results": [trace(path=("198.18.0.1", "198.18.0.2", "198.19.1.1", "198.19.2.1"))],
            },
        )
        assert await shipper.ship_once(fclient)
        assert feeder.stats()["hopTargets"] == 3
        assert shipper.added == 3
        assert feeder.stop_set("sg1", None)["local"] == ["198.18.0.1", "198.18.0.2"]
        # The next cycle serves them: the pool grew.
        served: set[str] = set()
        while True:
            claim = feeder.claim("sg1", 50, 10.0)
            if claim.cycle_id != "c1":
                break
            served |= {t.ip for t in claim.targets}
        assert {"198.19.1.1"} <= served and len(served) == 1 + 2  # 1 static, 2 hop blocks
    await fclient.aclose()
    store.close()


@pytest.mark.parametrize("bad", [[], "x", {"worker": "w"}])
async def test_bad_bodies_are_400(bad: Any, tmp_path: Path) -> None:
    store = Store(str(tmp_path / "s"))
    async with client(store_app(store, ServiceInfo("map-store", "s1"), Access(token="t"))) as c:
        assert (await c.post("/results", json=bad)).status_code == 400
    store.close()
