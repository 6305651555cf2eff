"""`hyphal service` as a user runs it (subprocesses) against real in-process nodes serving the
real API on a loopback port: add, list, show, drain, resume, remove and grant, human and
--json output, the documented exit codes and errors, no traceback."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hyphal.api.app import create_app
from hyphal.api.server import ApiServer
from hyphal.identity import NodeIdentity
from hyphal.node import Node
from hyphal.services.grant import parse_grant_text
from hyphal.testing.memlink import MemoryNetwork

from .conftest import start_node, until
from .test_cli_against_nodes import hyphal


@pytest.fixture
async def pair() -> AsyncIterator[tuple[Node, Node, str, str]]:
    net = MemoryNetwork()
    a = await start_node(net, "a", None, member_name="a")
    b = await start_node(net, "b", "a", member_name="b")
    apis = [ApiServer(create_app(n), "127.0.0.1", 0) for n in (a, b)]
    for api in apis:
        api.start()
    try:
        await until(lambda: a.key_for_name("b") is not None and b.key_for_name("a") is not None)
        yield a, b, f"127.0.0.1:{apis[0].port}", f"127.0.0.1:{apis[1].port}"
    finally:
        for api in apis:
            await api.stop()
        for node in (b, a):
            await node.stop()


async def test_service_commands_end_to_end(
    pair: tuple[Node, Node, str, str], tmp_path: Path
) -> None:
    a, b, api_a, api_b = pair
    code, out, _ = await hyphal("service", "list", "--api-addr", api_a)
    assert code == 0 and "no services" in out
    code, out, _ = await hyphal(
        "service", "add", "web", "--port", "8080", "--check", "none", "--api-addr", api_a
    )
    assert code == 0 and "serving web on tcp/8080" in out, out
    code, _, err = await hyphal(
        "service", "add", "web", "--port", "8080", "--check", "none", "--api-addr", api_a
    )
    assert code == 1 and "already served" in err
    code, _, err = await hyphal(
        "service", "add", "web", "--port", "1", "--check", "exec:/bin/true", "--api-addr", api_a
    )
    assert code == 1 and "config file" in err
    # the owner's key file signs a grant for B, by member name
    key = tmp_path / "owner.key"
    NodeIdentity.from_private_bytes(a.identity.private_bytes()).save(key)
    code, out, _ = await hyphal(
        "service", "grant", "web", "--to", "b", "-k", str(key), "--api-addr", api_a, "--json"
    )
    assert code == 0, out
    grant = json.loads(out)["grant"]
    assert parse_grant_text(grant).instance == b.identity.public_key
    code, out, err = await hyphal(
        "service", "add", "web", "--port", "8081", "--check", "none", "--grant", grant,
        "--api-addr", api_b, "--json",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out)["owner"] == a.identity.public_key.hex()
    await until(lambda: len(a.services.instances("web")) == 2)
    code, out, _ = await hyphal("service", "list", "--api-addr", api_a, "--json")
    body = json.loads(out)
    assert [r["node"] for r in body["services"][0]["instances"]] == ["a", "b"]
    code, out, _ = await hyphal("service", "show", "web", "--api-addr", api_a)
    assert code == 0 and "healthy" in out and "b" in out
    code, out, _ = await hyphal("service", "drain", "web", "--api-addr", api_b)
    assert code == 0 and "draining" in out
    await until(lambda: [i.node_name for i in a.services.instances("web")] == ["a"])
    code, out, _ = await hyphal("service", "list", "--api-addr", api_a)
    assert "draining" in out
    code, out, _ = await hyphal("service", "resume", "web", "--api-addr", api_b, "--json")
    assert json.loads(out) == {"name": "web", "draining": False}
    code, out, _ = await hyphal("service", "remove", "web", "--api-addr", api_b)
    assert code == 0 and "removed 1" in out
    code, _, err = await hyphal("service", "remove", "web", "--api-addr", api_b, "--json")
    assert code == 1 and json.loads(err)["kind"] == "runtime"
    code, _, err = await hyphal("service", "show", "nope", "--api-addr", api_a)
    assert code == 1 and "no node publishes" in err
    code, _, err = await hyphal("service", "grant", "Bad Name", "--to", "b")
    assert code == 2
