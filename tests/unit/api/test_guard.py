"""The request guard: the local API and the metrics endpoint serve the operator, not web pages."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from hyphal.api.app import create_app
from hyphal.api.guard import RequestGuard
from hyphal.api.metrics import metrics_app
from hyphal.identity import NodeIdentity
from hyphal.node import Node

BASE = "http://127.0.0.1:8989"


@pytest.fixture
async def client(node: Node) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=create_app(node))
    async with httpx.AsyncClient(transport=transport, base_url=BASE) as http:
        yield http


# Another node's key: with no peers the message is queued (201) until its deadline.
OTHER = NodeIdentity.generate().public_key


def _message() -> dict[str, object]:
    return {
        "dst": {"pk": OTHER.hex()},
        "topic": base64.b64encode(b"t").decode(),
        "payload": base64.b64encode(b"hello").decode(),
    }


async def test_text_plain_post_is_415(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/v1/messages",
        content=json.dumps(_message()),
        headers={"content-type": "text/plain"},
    )
    assert r.status_code == 415
    assert "content type" in r.json()["error"]
    # No content type at all (a fetch() of a Blob) is refused just the same.
    r = await client.post("/api/v1/messages", content=json.dumps(_message()))
    assert r.status_code == 415


async def test_foreign_host_is_403(client: httpx.AsyncClient) -> None:
    r = await client.get("/api/v1/admin", headers={"host": "rebind.evil.example:8989"})
    assert r.status_code == 403
    assert "rebind.evil.example" in r.json()["error"]


@pytest.mark.parametrize(
    "host", ["127.0.0.1:8989", "localhost:8989", "[::1]:8989", "127.0.0.2", "LOCALHOST"]
)
async def test_loopback_hosts_pass(client: httpx.AsyncClient, host: str) -> None:
    r = await client.get("/api/v1/admin", headers={"host": host})
    assert r.status_code == 200


@pytest.mark.parametrize("origin", ["https://evil.example", "null", "http://127.0.0.1:1"])
async def test_foreign_origin_is_403(client: httpx.AsyncClient, origin: str) -> None:
    r = await client.get("/api/v1/messages", headers={"origin": origin})
    assert r.status_code == 403
    assert "web pages" in r.json()["error"]


async def test_own_origin_passes(client: httpx.AsyncClient) -> None:
    # The API's own docs page (/api/v1/docs) calls the API with its own origin.
    r = await client.get("/api/v1/admin", headers={"origin": BASE})
    assert r.status_code == 200


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
async def test_sec_fetch_site_cross_site_is_403(client: httpx.AsyncClient, site: str) -> None:
    # An <img src=".../api/v1/messages"> on any page: a GET that would pop the inbox.
    r = await client.get("/api/v1/messages", headers={"sec-fetch-site": site})
    assert r.status_code == 403
    assert site in r.json()["error"]


async def test_cli_requests_still_work(client: httpx.AsyncClient) -> None:
    # What hyphal.client sends: httpx, JSON bodies, no Origin, Host 127.0.0.1:8989.
    r = await client.post("/api/v1/messages", json=_message())
    assert r.status_code == 201, r.text
    r = await client.get(f"/api/v1/messages/status/{r.json()['id']}")
    assert r.status_code == 200
    # A user typing the URL into the browser is "none", and gets the (empty) inbox.
    r = await client.get("/api/v1/messages", headers={"sec-fetch-site": "none"})
    assert r.status_code == 204


async def test_octet_stream_path_keeps_working(client: httpx.AsyncClient) -> None:
    r = await client.post(
        "/api/v1/messages",
        params={"dst_pk": OTHER.hex(), "topic": "dA=="},
        content=b"\x00raw\xff",
        headers={"content-type": "application/octet-stream"},
    )
    assert r.status_code == 201, r.text
    r = await client.get("/api/v1/messages", headers={"accept": "application/octet-stream"})
    assert r.status_code == 204


async def test_bearer_token_required_when_given(node: Node) -> None:
    transport = httpx.ASGITransport(app=create_app(node, "s3cret", "0.0.0.0"))
    async with httpx.AsyncClient(transport=transport, base_url="http://192.0.2.7:8989") as http:
        r = await http.get("/api/v1/admin")
        assert r.status_code == 401
        assert r.headers["www-authenticate"] == "Bearer"
        r = await http.get("/api/v1/admin", headers={"authorization": "Bearer s3cret"})
        assert r.status_code == 200
        # Bound to a wildcard address, an IP literal passes but a DNS name still does not.
        r = await http.get(
            "/api/v1/admin",
            headers={"authorization": "Bearer s3cret", "host": "rebind.evil.example"},
        )
        assert r.status_code == 403


async def test_metrics_endpoint_is_guarded(node: Node) -> None:
    guarded = RequestGuard(metrics_app(node), "192.0.2.7", "s3cret")
    transport = httpx.ASGITransport(app=guarded)
    async with httpx.AsyncClient(transport=transport, base_url="http://192.0.2.7:9090") as http:
        assert (await http.get("/metrics")).status_code == 401
        ok = await http.get("/metrics", headers={"authorization": "Bearer s3cret"})
        assert ok.status_code == 200
        assert "hyphal_" in ok.text
        foreign = await http.get(
            "/metrics",
            headers={"authorization": "Bearer s3cret", "origin": "https://evil.example"},
        )
        assert foreign.status_code == 403
        rebound = await http.get(
            "/metrics", headers={"authorization": "Bearer s3cret", "host": "evil.example"}
        )
        assert rebound.status_code == 403


async def test_configured_bind_address_passes_in_any_spelling(node: Node) -> None:
    transport = httpx.ASGITransport(app=create_app(node, "s3cret", "2001:db8::7"))
    auth = {"authorization": "Bearer s3cret"}
    async with httpx.AsyncClient(transport=transport, base_url="http://[2001:db8::7]:8990") as http:
        assert (await http.get("/api/v1/admin", headers=auth)).status_code == 200
        spelled = {**auth, "host": "[2001:DB8:0::7]:8990"}
        assert (await http.get("/api/v1/admin", headers=spelled)).status_code == 200
        other = {**auth, "host": "[2001:db8::8]:8990"}
        assert (await http.get("/api/v1/admin", headers=other)).status_code == 403
