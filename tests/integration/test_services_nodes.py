"""Services on real nodes (in-memory links, one process): every node agrees on the nearest
healthy instance once converged, a drained or failing instance gets no new choice, a node that
publishes a service without a valid grant is never chosen (public and private networks), each
node's DNS answers from its own view, and the API adds and lists."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import dns.message
import dns.rcode
import httpx
import pytest

from hyphal.api.app import create_app
from hyphal.crypto.signing import XEdDSASigner
from hyphal.dns.part import DnsPart
from hyphal.node import Node
from hyphal.node.members import PUBLIC_NETWORK
from hyphal.services.extension import Endpoint, PublishedService, with_services
from hyphal.services.grant import make_grant, parse_grant_text
from hyphal.services.select import near_equal
from hyphal.services.spec import parse_spec
from hyphal.testing.memlink import MemoryNetwork

from .conftest import start_node, until
from .test_admission_nodes import NETWORK, Mesh, _route

BASE = "http://127.0.0.1:8989"


def grant_text(owner: Node, instance: Node, service: str, network: bytes = PUBLIC_NETWORK) -> str:
    now = int(time.time())
    return make_grant(
        XEdDSASigner(owner.identity.private_bytes()),
        network,
        service=service,
        instance=instance.identity.public_key,
        owner=owner.identity.public_key,
        since=now - 3600,
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
    # link costs follow measured RTT: on a loaded machine wait for them to settle
    await until(lambda: [chosen(n) for n in four] == ["a", "a", "d", "d"])
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
    # an honest node may not claim a name another key owns
    with pytest.raises(ValueError, match="owned by key"):
        d.services.add(parse_spec({"name": "web", "port": 80, "check": "none"}))
    # C refuses a grant A made for B (it names B's key)
    with pytest.raises(ValueError, match="another node's key"):
        c.services.add(
            parse_spec(
                {"name": "web", "port": 81, "check": "none", "grant": grant_text(a, b, "web")}
            )
        )
    # D publishes anyway: its own later claim; C publishes the copied proof of B's grant
    a_since = a.services.grants["web"].since  # type: ignore[union-attr]
    d_claim = make_grant(
        XEdDSASigner(d.identity.private_bytes()),
        PUBLIC_NETWORK,
        service="web",
        instance=d.identity.public_key,
        owner=d.identity.public_key,
        since=a_since + 1,
        expires=0xFFFFFFFF,
    )
    copied = parse_grant_text(grant_text(a, b, "web"))
    for liar, proof in ((d, d_claim.proof()), (c, copied.proof())):
        ep = Endpoint(80, "tcp", True, False, 255)
        liar.members.set_extension(with_services(b"", [PublishedService("web", proof, (ep,))]))
    await until(
        lambda: all(
            sum(not r["authorised"] for row in n.services.mesh_rows() for r in row["instances"])
            == (1 if n in (c, d) else 2)
            for n in four
        )
    )
    for _ in range(20):
        assert [chosen(n) for n in four] == ["a", "a", "a", "a"]
        assert all(
            not n.services.is_instance("web", liar.identity.public_key)
            for n in four
            for liar in (c, d)
        )
        await asyncio.sleep(0.02)


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


async def test_on_a_private_network_the_admins_grant_who_serves(tmp_path: Path) -> None:
    mesh = Mesh(tmp_path)
    try:
        a = await mesh.start("a", None)
        b = await mesh.start("b", "a")
        c = await mesh.start("c", "b")
        await until(lambda: all(_route(x, y) for x in (a, b, c) for y in (a, b, c)))
        now = int(time.time())
        admin_grant = make_grant(
            XEdDSASigner(mesh.admin.private_bytes()),
            NETWORK.encode(),
            service="web",
            instance=c.identity.public_key,
            owner=mesh.admin.public_key,
            since=now,
            expires=now + 600,
        ).text()
        row = c.services.add(
            parse_spec({"name": "web", "port": 80, "check": "none", "grant": admin_grant})
        )
        assert row["owner"] == mesh.admin.public_key.hex()
        # b has no grant: a member's own key owns nothing on a private network
        assert (
            b.services.add(parse_spec({"name": "web", "port": 80, "check": "none"}))["owner"]
            is None
        )
        # a member's grant for c (signed by b's key) does not hold either
        with pytest.raises(ValueError, match="admin key"):
            c.services.add(
                parse_spec(
                    {
                        "name": "db",
                        "port": 81,
                        "check": "none",
                        "grant": grant_text(b, c, "db", NETWORK.encode()),
                    }
                )
            )
        await until(lambda: all(chosen(n) == "c" for n in (a, b, c)))
        for _ in range(20):
            assert all(not n.services.is_instance("web", b.identity.public_key) for n in (a, b, c))
            assert [chosen(n) for n in (a, b, c)] == ["c", "c", "c"]
            await asyncio.sleep(0.02)
    finally:
        for node in reversed(mesh.nodes):
            await node.stop()


def _ask(node: Node, name: str, rdtype: str) -> dns.message.Message:
    part = node.parts.get("dns")
    assert isinstance(part, DnsPart)
    query = dns.message.make_query(name, rdtype)
    wire = part.core.handle(query.to_wire(), "::1", time.monotonic())
    assert wire is not None
    return dns.message.from_wire(wire)


async def test_each_node_answers_service_names_from_its_own_view(four: list[Node]) -> None:
    a, b, c, d = four
    a.services.add(parse_spec({"name": "web", "port": 8080, "check": "none"}))
    d.services.add(
        parse_spec({"name": "web", "port": 8081, "check": "none", "grant": grant_text(a, d, "web")})
    )
    await until(lambda: all(len(n.services.instances("web")) == 2 for n in four))
    await until(lambda: [chosen(n) for n in four] == ["a", "a", "d", "d"])

    def nearest_band(node: Node) -> set[str]:
        found = node.services.instances("web")
        return {str(i.address) for i in found if near_equal(found[0].metric, i.metric)}

    def dns_agrees(node: Node) -> bool:
        (rrset,) = _ask(node, "web.svc.hyphal.internal", "AAAA").answer
        return {r.address for r in rrset} == nearest_band(node)

    for node, nearest in ((a, a), (b, a), (c, d), (d, d)):
        await until(lambda node=node: dns_agrees(node))  # type: ignore[misc]
        assert str(nearest.identity.address) in nearest_band(node)
        (srv,) = _ask(node, "_web._tcp.svc.hyphal.internal", "SRV").answer
        assert {r.port for r in srv} == {8080, 8081}
        assert {r.target.to_text() for r in srv} == {"a.hyphal.internal.", "d.hyphal.internal."}
        first = {r.target.to_text() for r in srv if r.priority == 0}
        assert f"{'a' if nearest is a else 'd'}.hyphal.internal." in first
    (vip,) = _ask(b, "web.vip.hyphal.internal", "AAAA").answer
    assert vip[0].address == str(a.services.address_of("web"))
    a.services.drain("web")
    d.services.drain("web")
    await until(lambda: not _ask(b, "web.svc.hyphal.internal", "AAAA").answer)
    assert _ask(b, "web.svc.hyphal.internal", "AAAA").rcode() == dns.rcode.NOERROR


async def test_the_api_refuses_exec_checks(four: list[Node]) -> None:
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(four[0])), base_url=BASE
    ) as api:
        answer = await api.post(
            "/api/v1/services", json={"name": "x", "port": 1, "check": "exec:/bin/true"}
        )
    assert answer.status_code == 400 and "config file" in answer.json()["error"]
    assert four[0].services.local_rows() == []
