"""Several feeder instances on one database (a SQLite file, and PostgreSQL) never hand out the
same block twice in a cycle, and serve the same API over HTTP."""

from __future__ import annotations

import ipaddress
import threading
import time

import httpx

from hyphal.mapping.db import Database
from hyphal.mapping.feeder.app import feeder_app
from hyphal.mapping.feeder.prefixes import TargetFilter
from hyphal.mapping.feeder.space import TargetSpace, block_key
from hyphal.mapping.feeder.state import FeederState
from hyphal.mapping.service_app import Access, ServiceInfo

LAB = TargetFilter.build(optout=["198.18.9.0/24"], exceptions=["198.18.0.0/15", "2001:db8::/32"])
SOURCES = ["198.18.0.0/18", "2001:db8::/40", "203.0.113.0/24", "10.0.0.0/8"]


def block_of(ip: str) -> str:
    address = ipaddress.ip_address(ip)
    return block_key(address.version, int(address))


def test_instances_share_a_cycle_without_handing_a_block_out_twice(db_url: str) -> None:
    space = TargetSpace(SOURCES, LAB)
    assert space.blocks == 64 - 1 + 256  # the opt-out /24 and the bogons are gone
    feeders = [FeederState(Database(db_url), space, LAB) for _ in range(3)]
    got: dict[str, list[tuple[str, str]]] = {}
    lock = threading.Lock()
    start = threading.Barrier(3)

    def work(i: int) -> None:
        mine: list[tuple[str, str]] = []
        start.wait(30)  # all three claim at once, however late a busy machine starts a thread
        while True:
            claim = feeders[i].claim(f"w{i}", 7, 1.0)
            if claim.cycle_id != "c1":
                break
            mine.extend((claim.cycle_id, t.ip) for t in claim.targets)
            time.sleep(0.005)  # a worker between requests: lets the others in on a busy machine
        with lock:
            got[f"w{i}"] = mine

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    everything = [ip for rows in got.values() for _, ip in rows]
    blocks = [block_of(ip) for ip in everything]
    assert len(blocks) == space.blocks == len(set(blocks))
    assert all(LAB.verdict(ip) is None for ip in everything)
    assert sum(1 for rows in got.values() if rows) >= 2  # the instances really interleaved
    exported = feeders[0].export()
    assert sum(a["count"] for a in exported["assignments"] if a["cycle"] == 1) == space.blocks
    for f in feeders:
        f.db.close()


async def test_http_api(db_url: str) -> None:
    space = TargetSpace(["198.18.0.0/22"], LAB)
    state = FeederState(Database(db_url), space, LAB)
    app = feeder_app(state, ServiceInfo("map-feeder", "f1"), Access(token="t"))
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 1))
    auth = {"Authorization": "Bearer t"}
    async with httpx.AsyncClient(transport=transport, base_url="http://f", headers=auth) as c:
        r = await c.get("/targets", params={"worker": "sg1", "n": 3})
        assert r.status_code == 200
        body = r.json()
        assert body["cycleId"] == "c1" and len(body["targets"]) == 3
        assert body["targets"][0]["proto"] == "icmp"
        hops = {
            "hops": [
                {"ip": "198.19.0.1", "ttl": 5, "target": "198.18.0.1", "worker": "sg1"},
                {"ip": "198.19.0.1", "ttl": 5, "target": "198.18.1.1", "worker": "sg1"},
                {"ip": "127.0.0.1", "ttl": 5},
            ]
        }
        assert (await c.post("/hops", json=hops)).json() == {
            "added": 1,
            "known": 1,
            "filtered": 1,
            "nearMonitor": 0,
        }
        assert (await c.post("/hops", json={"hops": [{"ip": "x", "ttl": 0}]})).status_code == 422
        stats = (await c.get("/stats")).json()
        assert stats["targetsServed"] == 3 and stats["hopTargets"] == 1
        assert (await c.get("/ready")).json()["ready"] is True
        stop = (await c.get("/stopset", params={"worker": "sg1", "target": "198.18.0.9"})).json()
        assert stop["global"] == ["198.19.0.1"]
        exported = (await c.get("/consumers/export")).json()
        assert exported["consumers"][0]["worker"] == "sg1"
        assert (await c.post("/consumers/import", json=exported)).json()["assignments"] == 0
        openapi = (await c.get("/openapi.json")).json()
        assert "/targets" in openapi["paths"] and "/hops" in openapi["paths"]
    state.db.close()
