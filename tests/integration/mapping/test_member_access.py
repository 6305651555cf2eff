"""Member-role access on real nodes: the store asks node alpha's API (its real member list,
filled by gossip) who a caller is; beta, tagged map-role=worker, gets in; gamma (no such role)
and an overlay address that is no member are refused; a token still works."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from ipaddress import IPv6Address
from pathlib import Path
from typing import Any

import httpx

from hyphal.api.app import create_app
from hyphal.mapping.service_app import Access, MemberResolver, ServiceInfo
from hyphal.mapping.store.app import store_app
from hyphal.mapping.store.backend import Store
from hyphal.node import Node


async def until(condition: Callable[[], bool], within: float = 10.0) -> None:
    async with asyncio.timeout(within):
        while not condition():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def test_members_with_the_role_get_in(named_line: list[Node], tmp_path: Path) -> None:
    alpha, beta, gamma = named_line
    api = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(alpha)), base_url="http://127.0.0.1:8989"
    )
    beta_api = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(beta)), base_url="http://127.0.0.1:8989"
    )
    r = await beta_api.patch("/api/v1/members/self", json={"tags": {"map-role": "worker"}})
    assert r.status_code == 200, r.text

    def beta_tagged() -> bool:
        return any(
            m.name == "beta" and dict(m.tags).get("map-role") == "worker"
            for m in alpha.members.members()
        )

    await until(beta_tagged)

    async def fetch() -> list[dict[str, Any]]:
        rows = (await api.get("/api/v1/members")).json()
        assert isinstance(rows, list)
        return rows

    store = Store(str(tmp_path / "store"))
    access = Access(
        token="t", members=MemberResolver("http://unused", fetch=fetch), roles=frozenset({"worker"})
    )
    app = store_app(store, ServiceInfo("map-store", "alpha"), access)

    async def status_from(host: str, **headers: str) -> tuple[int, str]:
        transport = httpx.ASGITransport(app=app, client=(host, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://s") as c:
            r = await c.get("/stats", headers=headers)
            return r.status_code, r.text

    beta_host = str(IPv6Address(int(beta.identity.address) ^ 0xFFFF))  # another address, same /64
    assert (await status_from(beta_host))[0] == 200
    code, text = await status_from(str(gamma.identity.address))
    assert code == 403 and "gamma has none of the roles worker" in text
    code, text = await status_from("5ff::1")
    assert code == 403 and "not a member" in text
    assert (await status_from("5ff::1", Authorization="Bearer t"))[0] == 200
    await api.aclose()
    await beta_api.aclose()
    store.close()
