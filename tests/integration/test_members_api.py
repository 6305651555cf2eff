"""Names through the API on real nodes (in-memory links): a live rename with PATCH
/api/v1/members/self spreads and the old name stops resolving, tags are set and removed, a bad
change is refused and changes nothing, destinations may be member names (ping, messages), and
status, peers, routes and metrics show names and member counts."""

from __future__ import annotations

import base64

import httpx

from hyphal.api.app import create_app
from hyphal.api.metrics import metrics_app
from hyphal.node import Node

from .conftest import until

BASE = "http://127.0.0.1:8989"


def _api(node: Node) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(node)), base_url=BASE)


async def test_rename_spreads_and_the_old_name_stops_resolving(named_line: list[Node]) -> None:
    a, b, c = named_line
    async with _api(c) as api:
        answer = await api.patch("/api/v1/members/self", json={"name": "gamma2"})
        assert answer.status_code == 200, answer.text
        row = answer.json()
        assert row["name"] == "gamma2" and row["self"] and row["ownsName"]
    await until(lambda: a.key_for_name("gamma2") == c.identity.public_key)
    assert a.key_for_name("gamma") is None and b.key_for_name("gamma") is None
    async with _api(a) as api:
        assert (await api.get("/api/v1/members/gamma")).status_code == 404
        found = (await api.get("/api/v1/members/gamma2")).json()
        assert found["publicKey"] == c.identity.public_key.hex() and found["region"] == "fra"
        assert found["metric"] is not None and found["metric"] > 0


async def test_tags_are_set_and_removed_and_bad_changes_refused(named_line: list[Node]) -> None:
    a, _, c = named_line
    async with _api(c) as api:
        one = await api.patch("/api/v1/members/self", json={"tags": {"env": "prod", "rack": "7"}})
        assert one.json()["tags"] == {"env": "prod", "rack": "7"}
        two = await api.patch("/api/v1/members/self", json={"tags": {"rack": None}})
        assert two.json()["tags"] == {"env": "prod"} and two.json()["name"] == "gamma"
        for body, says in (
            ({"name": "Not A Label"}, "DNS label"),
            ({"region": "-x"}, "DNS label"),
            ({"tags": {"BAD KEY": "v"}}, "tag key"),
            ({"tags": {f"k{i}": "v" for i in range(17)}}, "tags"),
            ({}, "nothing to change"),
        ):
            refused = await api.patch("/api/v1/members/self", json=body)
            assert refused.status_code == 400, body
            assert says in refused.json()["error"], refused.json()
        unknown_field = await api.patch("/api/v1/members/self", json={"roles": ["x"]})
        assert unknown_field.status_code == 400
        wrong_type = await api.patch(
            "/api/v1/members/self", content=b"name=x", headers={"content-type": "text/plain"}
        )
        assert wrong_type.status_code == 415
    own = c.members.core.own_record
    assert own is not None and own.name == "gamma" and own.tags == (("env", "prod"),)
    await until(lambda: any(m.tags == (("env", "prod"),) for m in a.members.members()))


async def test_destinations_by_name(named_line: list[Node]) -> None:
    a, _, c = named_line
    async with _api(a) as api:
        ping = await api.post("/api/v1/admin/ping", json={"dst": {"name": "gamma"}})
        assert ping.status_code == 200, ping.text
        assert ping.json()["hops"] >= 1
        nobody = await api.post("/api/v1/admin/ping", json={"dst": {"name": "nobody"}})
        assert nobody.status_code == 404 and "nobody" in nobody.json()["error"]
        bad = await api.post("/api/v1/admin/ping", json={"dst": {"name": "x" * 70}})
        assert bad.status_code == 400
        both = await api.post(
            "/api/v1/admin/ping", json={"dst": {"name": "gamma", "ip": str(c.identity.address)}}
        )
        assert both.status_code == 400 and "exactly one" in both.json()["error"]
        payload = base64.b64encode(b"by name").decode()
        sent = await api.post(
            "/api/v1/messages", json={"dst": {"name": "gamma"}, "payload": payload}
        )
        assert sent.status_code == 201, sent.text
        raw = await api.post(
            "/api/v1/messages",
            params={"dst_name": "gamma"},
            content=b"raw by name",
            headers={"content-type": "application/octet-stream"},
        )
        assert raw.status_code == 201, raw.text
        lost = await api.post(
            "/api/v1/messages", json={"dst": {"name": "nobody"}, "payload": payload}
        )
        assert lost.status_code == 404
    async with _api(c) as api:
        got = sorted(
            [
                base64.b64decode(
                    (await api.get("/api/v1/messages", params={"timeout": 5})).json()["payload"]
                )
                for _ in range(2)
            ]
        )
    assert got == [b"by name", b"raw by name"]


async def test_status_peers_routes_and_metrics_show_names(named_line: list[Node]) -> None:
    a, b, _ = named_line
    async with _api(a) as api:
        status = (await api.get("/api/v1/admin/status")).json()
        assert status["self"]["name"] == "alpha"
        assert status["counts"]["members"] == 3 and status["counts"]["membersReachable"] == 3
        peers = (await api.get("/api/v1/admin/peers")).json()
        assert [p["name"] for p in peers] == ["beta"]
        routes = (await api.get("/api/v1/admin/routes/selected")).json()
        assert {r["name"] for r in routes} >= {"beta", "gamma"}
        assert {r["nextHopName"] for r in routes if r["name"] == "gamma"} == {"beta"}
    metrics = httpx.AsyncClient(transport=httpx.ASGITransport(app=metrics_app(a)), base_url=BASE)
    async with metrics:
        text = (await metrics.get("/metrics")).text
    assert 'hyphal_members{state="reachable"} 3.0' in text
    assert 'hyphal_members{state="unreachable"} 0.0' in text
    assert 'hyphal_membership_events_total{event="accepted"}' in text
    await b.stop()
    named_line.remove(b)
    await until(lambda: a.view.member_counts() == (1, 2))
