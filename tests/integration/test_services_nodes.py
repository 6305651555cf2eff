"""Services on real nodes (in-memory links, one process): every node agrees on the nearest
healthy instance once converged, a drained or failing instance gets no new choice, a node that
publishes a service without a valid grant is never chosen, and the API adds and lists."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from hyphal.api.app import create_app
from hyphal.crypto.signing import XEdDSASigner
from hyphal.node import Node
from hyphal.node.members import PUBLIC_NETWORK
from hyphal.services.grant import make_grant
from hyphal.services.spec import parse_spec
from hyphal.testing.memlink import MemoryNetwork

from .conftest import start_node, until

BASE = "http://127.0.0.1:8989"


def grant_text(owner: Node, instance: Node, service: str, since: int | None = None) -> str:
    now = int(time.time())
    return make_grant(
        XEdDSASigner(owner.identity.private_bytes()),
        PUBLIC_NETWORK,
        service=service,
        instance=instance.identity.public_key,
        owner=owner.identity.public_key,
        since=now - 3600 if since is None else since,
        expires=now + 3600,
    ).text()


@pytest.fixture
async def four() -> AsyncIterator[list[Node]]:
    """A - B - C - D named a..d, once every node routes to every other."""
    net = MemoryNetwork()
    nodes: list[Node] = []
    try:
        for host, peer in (("a", None), ("b", "a"), ("c", "b"), ("d", "c")):
            nodes.append(await start_node(net, host, peer, member_name=host, dns_port=0))
        await until(
            lambda: all(
                n.public_key_for_prefix(m.identity.address_bytes[:8]) is not None
                for n in nodes
                for m in nodes
            )
        )
        yield nodes
    finally:
        for node in reversed(nodes):
            await node.stop()


def chosen(node: Node, service: str = "web") -> str | None:
    found = node.services.choose(service)
    return None if found is None else found.node_name


async def test_every_node_agrees_on_the_nearest_healthy_instance(four: list[Node]) -> None:
    a, b, _c, d = four
    a.services.add(parse_spec({"name": "web", "port": 8080, "check": "none"}))
    d.services.add(
        parse_spec({"name": "web", "port": 8081, "check": "none", "grant": grant_text(a, d, "web")})
    )
    await until(lambda: all(len(n.services.instances("web")) == 2 for n in four))
    assert [chosen(n) for n in four] == ["a", "a", "d", "d"]
    for n in four:
        assert n.services.is_instance("web", a.identity.public_key)
        assert n.services.is_instance("web", d.identity.public_key)
        assert n.services.address_of("web") == a.services.address_of("web")
        assert n.services.service_at(a.services.address_of("web")) == "web"
    assert a.services.local_services() == ["web"] and b.services.local_services() == []
    # the instance on D fails: B and C and D move to A within fall interval + propagation
    d.services.remove("web")
    await until(lambda: all(chosen(n) == "a" for n in four))


async def test_drained_and_failing_instances_get_no_new_choice(four: list[Node]) -> None:
    a, _b, c, d = four
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        a.services.add(parse_spec({"name": "api", "port": port, "interval": 0.2, "fall": 2}))
        d.services.add(
            parse_spec(
                {"name": "api", "port": port, "interval": 0.2, "grant": grant_text(a, d, "api")}
            )
        )
        await until(lambda: [chosen(n, "api") for n in four] == ["a", "a", "d", "d"])
        d.services.drain("api")
        await until(lambda: all(chosen(n, "api") == "a" for n in four))
        assert c.services.is_instance("api", d.identity.public_key)  # pinned flows may finish
        d.services.drain("api", False)
        await until(lambda: chosen(c, "api") == "d")
        server.close()
        await server.wait_closed()  # every check fails now: nobody is healthy
        await until(lambda: all(chosen(n, "api") is None for n in four))
    finally:
        server.close()


async def test_a_node_without_a_valid_grant_is_never_chosen(four: list[Node]) -> None:
    a, b, c, d = four
    a.services.add(parse_spec({"name": "web", "port": 8080, "check": "none"}))
    await until(lambda: all(chosen(n) == "a" for n in four))
    # D claims "web" itself, later than A's claim: A's first claim owns the name
    d.services.add(parse_spec({"name": "web", "port": 80, "check": "none"}))
    # C publishes a grant A made for B (a copied proof names B's key, not C's)
    with pytest.raises(ValueError, match="another node's key"):
        c.services.add(
            parse_spec(
                {"name": "web", "port": 81, "check": "none", "grant": grant_text(a, b, "web")}
            )
        )
    await until(
        lambda: any(
            not r["authorised"]
            for row in c.services.mesh_rows()
            for r in row["instances"]
            if row["name"] == "web"
        )
    )
    for _ in range(20):
        assert [chosen(n) for n in four] == ["a", "a", "a", "a"]
        assert all(not n.services.is_instance("web", d.identity.public_key) for n in four)
        await asyncio.sleep(0.02)
    assert d.services.local_services() == []


async def test_the_api_adds_lists_drains_and_removes(four: list[Node]) -> None:
    a, _, _, d = four
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(a)), base_url=BASE
    ) as api:
        added = await api.post(
            "/api/v1/services", json={"name": "dns", "port": 5353, "proto": "udp"}
        )
        assert added.status_code == 201, added.text
        assert added.json()["check"] == "none" and added.json()["owner"] is not None
        again = await api.post(
            "/api/v1/services", json={"name": "dns", "port": 5353, "proto": "udp"}
        )
        assert again.status_code == 409
        bad = await api.post("/api/v1/services", json={"name": "Bad Name", "port": 1})
        assert bad.status_code == 400 and "DNS label" in bad.json()["error"]
        await until(lambda: d.services.choose("dns", "udp") is not None)
        body = (await api.get("/api/v1/services")).json()
        assert body["local"][0]["name"] == "dns" and body["services"][0]["name"] == "dns"
        drained = await api.post("/api/v1/services/dns/drain")
        assert drained.json() == {"name": "dns", "draining": True}
        await until(lambda: d.services.choose("dns", "udp") is None)
        assert (await api.delete("/api/v1/services/dns")).json()["removed"] == 1
        assert (await api.delete("/api/v1/services/dns")).status_code == 404
