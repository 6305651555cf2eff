"""Admission control on real nodes over the in-memory transport: admitted keys become full
neighbours, a never-admitted key gets a membership-only link that is closed after the grace,
and a revoked key loses its links and is refused when it dials again."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from hyphal.api.app import create_app
from hyphal.config import NodeConfig
from hyphal.crypto.signing import XEdDSASigner
from hyphal.identity import NodeIdentity
from hyphal.links.endpoint import Endpoint
from hyphal.membership import admission, invites
from hyphal.node import Node
from hyphal.testing.memlink import MemoryNetwork

WITHIN = 10.0  # generous bound for a shared machine; not a performance assertion
PORT = 9651
NETWORK = "fleet"


class Mesh:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.net = MemoryNetwork()
        self.admin = NodeIdentity.generate()
        self.key_file = tmp / "network.key"
        self.key_file.write_bytes(os.urandom(32))
        self.key_file.chmod(0o600)
        self.nodes: list[Node] = []

    def admission_for(self, identity: NodeIdentity, expires: int | None = None) -> Path:
        token = invites.new_token(
            self.admin,
            network_name=NETWORK,
            network_key=self.key_file.read_bytes(),
            admin_keys=(self.admin.public_key,),
            peers=(),
            expires=int(time.time()) + 3600 if expires is None else expires,
        )
        path = self.tmp / f"{identity.public_key.hex()[:8]}.admission"
        path.write_bytes(invites.redeem_token(token, identity.public_key, int(time.time())))
        return path

    async def start(
        self,
        host: str,
        peer: str | None,
        *,
        admitted: bool = True,
        grace_s: float = 20.0,
        invite_expires: int | None = None,
    ) -> Node:
        identity = NodeIdentity.generate()
        config = NodeConfig(
            no_tun=True,
            listen_address="::",
            tcp_listen_port=PORT,
            peers=() if peer is None else (Endpoint("tcp", peer, PORT),),
            network_name=NETWORK,
            network_key_file=self.key_file,
            admin_keys=(self.admin.public_key,),
            admission_file=self.admission_for(identity, invite_expires) if admitted else None,
            member_name=host,
        )
        node = Node(config, identity, transport=self.net.transport(host))
        node.gate.grace_s = grace_s
        await node.start()
        self.nodes.append(node)
        return node

    def revocation(self, member: Node) -> bytes:
        return admission.make_revocation(
            XEdDSASigner(self.admin.private_bytes()),
            self.admin.public_key,
            NETWORK.encode(),
            member.identity.public_key,
            int(time.time()),
        ).encode()


@pytest.fixture
async def mesh(tmp_path: Path) -> AsyncIterator[Mesh]:
    m = Mesh(tmp_path)
    try:
        yield m
    finally:
        for node in reversed(m.nodes):
            await node.stop()


async def _until(cond: object) -> None:
    async with asyncio.timeout(WITHIN):
        while not cond():  # type: ignore[operator]  # noqa: ASYNC110
            await asyncio.sleep(0.02)


def _route(a: Node, b: Node) -> bool:
    return a.public_key_for_prefix(b.identity.address_bytes[:8]) is not None


def _names(n: Node) -> set[str]:
    return {m.name for m in n.members.members()}


async def test_admitted_nodes_become_full_neighbours(mesh: Mesh) -> None:
    a = await mesh.start("a", None)
    b = await mesh.start("b", "a")
    c = await mesh.start("c", "b")
    await _until(lambda: _route(a, c) and _route(c, a))
    await _until(lambda: all(_names(n) == {"a", "b", "c"} for n in (a, b, c)))
    assert all(n.members.own_admission_problem() is None for n in (a, b, c))
    assert a.gate.on_probation() == []


async def test_never_admitted_key_gets_no_routes_and_is_closed(
    mesh: Mesh, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="hyphal.admission")
    a = await mesh.start("a", None, grace_s=1.0)
    intruder = await mesh.start("x", "a", admitted=False)
    await _until(lambda: a.gate.on_probation() != [])
    await _until(lambda: a.forwarder.stats.drops["not-admitted-frame"] > 0)
    assert not _route(a, intruder) and not _route(intruder, a)
    assert "x" not in _names(a) and a.members.counters()["not-admitted"] > 0
    problem = intruder.members.own_admission_problem()
    assert problem is not None and "no admission" in problem
    await _until(lambda: "delivered no valid admission" in caplog.text)
    assert not _route(a, intruder) and "x" not in _names(a)


async def test_revoked_member_loses_its_links_everywhere(mesh: Mesh) -> None:
    a = await mesh.start("a", None)
    b = await mesh.start("b", "a")
    c = await mesh.start("c", "a")
    await _until(lambda: _route(b, c) and _route(c, b))
    assert a.members.submit_revocation(mesh.revocation(c)) == "accepted"
    await _until(lambda: b.members.revoked(c.identity.public_key))
    await _until(lambda: not _route(a, c) and not _route(b, c))
    await _until(lambda: "c" not in _names(a) and "c" not in _names(b))
    # c keeps redialling a; every new link is refused right after the handshake.
    await asyncio.sleep(1.5)
    assert not any(
        link.remote_public_key == c.identity.public_key and a.gate.is_full(link.id)
        for link in a.peers.links.values()
    )
    assert not _route(c, a) and not _route(c, b)


async def test_members_whose_invites_expired_long_ago_still_start_and_admit_each_other(
    mesh: Mesh,
) -> None:
    """Nodes restart (or join) long after the members' invites expired: a store that started
    after an invite's deadline judges its admission on the signed redemption time alone."""
    long_ago = int(time.time()) - 86400  # redeemed at the deadline, a day ago
    a = await mesh.start("a", None, invite_expires=long_ago)
    b = await mesh.start("b", "a", invite_expires=long_ago)
    await _until(lambda: _route(a, b) and _route(b, a))
    assert a.members.own_admission_problem() is None
    assert b.members.own_admission_problem() is None


async def test_admission_api_states_and_takes_revocations(mesh: Mesh) -> None:
    a = await mesh.start("a", None)
    b = await mesh.start("b", "a")
    await _until(lambda: _route(a, b))
    transport = httpx.ASGITransport(app=create_app(a))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1:8989") as api:
        state = (await api.get("/api/v1/admission")).json()
        assert state == {"private": True, "admitted": True, "problem": None, "probationLinks": []}
        bad = await api.post("/api/v1/admission/revocations", json={"revocation": "zz"})
        assert bad.status_code == 400 and "hex" in bad.json()["error"]
        short = await api.post("/api/v1/admission/revocations", json={"revocation": "00" * 10})
        assert short.status_code == 400 and "malformed" in short.json()["error"]
        body = {"revocation": mesh.revocation(b).hex()}
        ok = await api.post("/api/v1/admission/revocations", json=body)
        assert ok.status_code == 200 and ok.json() == {"result": "accepted"}
        again = await api.post("/api/v1/admission/revocations", json=body)
        assert again.json() == {"result": "already revoked"}
    await _until(lambda: not _route(a, b))
