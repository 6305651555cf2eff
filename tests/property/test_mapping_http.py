"""Property tests: hostile bodies at the store's POST /results and the feeder's POST /hops get
a clear 4xx (or a 200 that stored only valid results), never a server error."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hyphal.mapping.db import Database
from hyphal.mapping.feeder.app import feeder_app
from hyphal.mapping.feeder.prefixes import TargetFilter
from hyphal.mapping.feeder.space import TargetSpace
from hyphal.mapping.feeder.state import FeederState
from hyphal.mapping.service_app import Access, ServiceInfo
from hyphal.mapping.store.app import store_app
from hyphal.mapping.store.backend import Store

LAB = TargetFilter.build(exceptions=["198.18.0.0/15"])
AUTH = {"Authorization": "Bearer t"}
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=25,
)
hop_like = st.fixed_dictionaries(
    {"ip": st.one_of(st.ip_addresses().map(str), st.text(max_size=70)), "ttl": json_values},
    optional={"target": json_values, "worker": json_values},
)
result_like = st.dictionaries(
    st.sampled_from(
        [
            "id",
            "type",
            "worker",
            "target",
            "af",
            "proto",
            "started",
            "ended",
            "hops",
            "ping",
            "params",
            "flowId",
        ]
    ),
    json_values,
    max_size=12,
)


class Client:
    """A synchronous face over an ASGI app (one event loop per call: examples are independent)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def go() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app, client=("127.0.0.1", 1))
            async with httpx.AsyncClient(
                transport=transport, base_url="http://x", headers=AUTH
            ) as c:
                return await c.request(method, path, **kwargs)

        return asyncio.run(go())

    def post(self, path: str, json: Any) -> httpx.Response:
        return self._call("POST", path, json=json)

    def get(self, path: str, params: dict[str, Any]) -> httpx.Response:
        return self._call("GET", path, params=params)


@pytest.fixture(scope="module")
def clients() -> Iterator[tuple[Client, Client]]:
    with tempfile.TemporaryDirectory() as tmp:
        store = Store(str(Path(tmp) / "store"))
        feeder = FeederState(
            Database(str(Path(tmp) / "f.db")), TargetSpace(["198.18.0.0/24"], LAB), LAB
        )
        yield (
            Client(store_app(store, ServiceInfo("map-store", "s"), Access(token="t"))),
            Client(feeder_app(feeder, ServiceInfo("map-feeder", "f"), Access(token="t"))),
        )
        store.close()
        feeder.db.close()


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.one_of(
        json_values,
        st.fixed_dictionaries(
            {"worker": json_values, "results": st.lists(result_like, max_size=5)}
        ),
    )
)
def test_store_ingest_never_fails_on_hostile_bodies(
    clients: tuple[Client, Client], body: Any
) -> None:
    r = clients[0].post("/results", json=body)
    assert r.status_code in (200, 400, 413), r.text
    if r.status_code == 200:
        reply = r.json()
        assert reply["accepted"] + reply["duplicates"] + len(reply["rejected"]) == len(
            body["results"]
        )


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.one_of(json_values, st.fixed_dictionaries({"hops": st.lists(hop_like, max_size=8)})))
def test_feeder_hops_never_fail_on_hostile_bodies(
    clients: tuple[Client, Client], body: Any
) -> None:
    r = clients[1].post("/hops", json=body)
    assert r.status_code in (200, 422), r.text
    if r.status_code == 200:
        reply = r.json()
        assert sum(reply.values()) == len(body["hops"])
    for ip in clients[1].get("/targets", params={"worker": "w", "n": 5}).json()["targets"]:
        assert LAB.verdict(ip["ip"]) is None
