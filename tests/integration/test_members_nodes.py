"""Membership on real nodes over the in-memory transport: records spread over real links,
reachability follows the router, and the API serves the members."""

from __future__ import annotations

import httpx

from hyphal.api.app import create_app
from hyphal.node import Node

from .conftest import until

BASE = "http://127.0.0.1:8989"


async def test_records_spread_and_reachability_follows_routing(named_line: list[Node]) -> None:
    a, _, c = named_line

    def everyone_known() -> bool:
        return all(
            {m.name for m in n.members.members() if m.reachable} == {"alpha", "beta", "gamma"}
            for n in named_line
        )

    await until(everyone_known)
    (alpha,) = [m for m in c.members.members() if m.name == "alpha"]
    assert alpha.address == str(a.identity.address) and alpha.region == "fra"
    assert alpha.software.startswith("hyphal ")
    assert alpha.roles == ("peer",)  # every record says what the node does for the mesh

    await c.stop()  # c's route goes away: unreachable at once, record kept until it expires
    named_line.remove(c)

    def gamma_unreachable() -> bool:
        rows = [m for m in a.members.members() if m.name == "gamma"]
        return len(rows) == 1 and not rows[0].reachable

    await until(gamma_unreachable)


async def test_api_lists_members_and_finds_one_by_name(named_line: list[Node]) -> None:
    a, _, c = named_line
    await until(lambda: len(a.members.members()) == 3)
    transport = httpx.ASGITransport(app=create_app(a))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
        rows = (await client.get("/api/v1/members")).json()
        assert sorted(r["name"] for r in rows) == ["alpha", "beta", "gamma"]
        assert [r["self"] for r in rows if r["name"] == "alpha"] == [True]
        one = await client.get("/api/v1/members/gamma")
        assert one.status_code == 200
        assert one.json()["publicKey"] == c.identity.public_key.hex()
        missing = await client.get("/api/v1/members/nobody")
        assert missing.status_code == 404 and "nobody" in missing.json()["error"]
