"""Message API against two real MessageServices wired back to back in one event loop, each
served by the app the daemon serves (request guard, JSON errors)."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from hyphal.api.app import build_app
from hyphal.api.messages import messages_router
from hyphal.api.topics import topics_router
from hyphal.bus.core import Limits
from hyphal.bus.service import MessageService
from hyphal.identity import NodeIdentity, address_for_public_key, subnet_for_public_key
from hyphal.testing.buswire import BusWire

BASE = "http://127.0.0.1:8989"


def _app(service: MessageService) -> FastAPI:
    return build_app(
        messages_router(lambda: service),
        topics_router(lambda: service),
        token=None,
        bind_host="127.0.0.1",
    )


async def until(condition: Callable[[], bool]) -> None:
    """Let the loop run until ``condition()`` holds (a bounded number of turns)."""
    for _ in range(10_000):
        if condition():
            return
        await asyncio.sleep(0)
    raise AssertionError("condition never became true")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def wait_state(client: httpx.AsyncClient, msg_id: str, state: str) -> dict[str, object]:
    for _ in range(300):
        r = await client.get(f"/api/v1/messages/status/{msg_id}")
        assert r.status_code == 200
        body: dict[str, object] = r.json()
        if body["state"] == state:
            return body
        await asyncio.sleep(0.01)
    raise AssertionError(f"{msg_id} never reached {state}: {body}")


@dataclass
class Node:
    service: MessageService
    client: httpx.AsyncClient

    @property
    def pk(self) -> bytes:
        return self.service.public_key


@pytest.fixture
async def nodes(tmp_path: Path) -> AsyncIterator[tuple[Node, Node]]:
    wire = BusWire(forward_dir=tmp_path)
    services = wire.add(), wire.add()
    async with wire:
        out = [
            Node(
                service,
                httpx.AsyncClient(transport=httpx.ASGITransport(app=_app(service)), base_url=BASE),
            )
            for service in services
        ]
        yield out[0], out[1]
        for node in out:
            await node.client.aclose()


async def test_send_receive_status_and_read(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    payload = os.urandom(100_000)
    r = await a.client.post(
        "/api/v1/messages",
        json={"dst": {"pk": b.pk.hex()}, "topic": b64(b"chat"), "payload": b64(payload)},
    )
    assert r.status_code == 201, r.text
    msg_id = r.json()["id"]
    assert len(msg_id) == 16
    r = await b.client.get("/api/v1/messages", params={"timeout": 5, "peek": True})
    assert r.status_code == 200
    got = r.json()
    assert got["id"] == msg_id and base64.b64decode(got["payload"]) == payload
    assert got["topic"] == b64(b"chat") and got["srcPk"] == a.pk.hex()
    assert got["srcIp"] == str(address_for_public_key(a.pk))
    assert got["dstPk"] == b.pk.hex()
    st = await wait_state(a.client, msg_id, "received")
    assert st["msgLen"] == 100_000 and st["dst"] == str(address_for_public_key(b.pk))
    assert isinstance(st["created"], int) and isinstance(st["deadline"], int)
    r = await b.client.get("/api/v1/messages", params={"topic": b64(b"chat")})
    assert r.status_code == 200
    await wait_state(a.client, msg_id, "read")
    r = await b.client.get("/api/v1/messages")
    assert r.status_code == 204


async def test_send_by_ip_unknown_ip_and_non_overlay_ip(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    ip = str(address_for_public_key(b.pk))
    r = await a.client.post("/api/v1/messages", json={"dst": {"ip": ip}, "payload": b64(b"hi")})
    assert r.status_code == 201
    # An overlay address nobody owns now is accepted and waits for a route (as in Mycelium).
    r = await a.client.post(
        "/api/v1/messages", json={"dst": {"ip": "5ff::1"}, "payload": b64(b"hi")}
    )
    assert r.status_code == 201
    st = (await a.client.get(f"/api/v1/messages/status/{r.json()['id']}")).json()
    assert (st["state"], st["dst"], st["dstPk"]) == ("pending", "5ff::1", None)
    assert st["reason"].startswith("no node owning 5ff::1 is reachable yet")
    # Outside 400::/7 it can never be reached: refused at once.
    r = await a.client.post(
        "/api/v1/messages", json={"dst": {"ip": "2001:db8::1"}, "payload": b64(b"hi")}
    )
    assert r.status_code == 400 and "not an overlay address" in r.json()["error"]


async def test_reply_round_trip(nodes: tuple[Node, Node]) -> None:
    a, b = nodes

    async def responder() -> None:
        r = await b.client.get("/api/v1/messages", params={"timeout": 5})
        assert r.status_code == 200
        mid = r.json()["id"]
        r = await b.client.post(f"/api/v1/messages/reply/{mid}", json={"payload": b64(b"pong")})
        assert r.status_code == 204, r.text

    task = asyncio.create_task(responder())
    r = await a.client.post(
        "/api/v1/messages",
        params={"reply_timeout": 5},
        json={"dst": {"pk": b.pk.hex()}, "payload": b64(b"ping")},
    )
    await task
    assert r.status_code == 200, r.text
    assert base64.b64decode(r.json()["payload"]) == b"pong"
    assert r.json()["srcPk"] == b.pk.hex()


async def test_reply_timeout_408(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    r = await a.client.post(
        "/api/v1/messages",
        params={"reply_timeout": 1},
        json={"dst": {"pk": b.pk.hex()}, "payload": b64(b"anyone?")},
    )
    assert r.status_code == 408 and len(r.json()["id"]) == 16


async def test_long_poll_does_not_block_other_requests(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    order: list[str] = []

    async def poll() -> None:
        r = await b.client.get("/api/v1/messages", params={"timeout": 3})
        order.append(f"poll {r.status_code}")

    task = asyncio.create_task(poll())
    await until(lambda: bool(b.service._inbox_waiters))  # the poll is parked on the inbox
    r = await b.client.get("/api/v1/messages/topics/default")
    order.append(f"default {r.status_code}")
    r = await a.client.post(
        "/api/v1/messages", json={"dst": {"pk": b.pk.hex()}, "payload": b64(b"wake")}
    )
    order.append(f"send {r.status_code}")
    await task
    assert order == ["default 200", "send 201", "poll 200"]


async def test_bad_input_is_4xx(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    dst = {"pk": b.pk.hex()}
    cases = [
        {"dst": dst, "payload": "not base64!!"},
        {"dst": dst, "payload": b64(b"x"), "topic": b64(bytes(256))},
        {"dst": dst, "payload": b64(b"x"), "topic": "%%%"},
        {"dst": {"pk": "zz"}, "payload": b64(b"x")},
        {"dst": {"pk": "ab" * 31}, "payload": b64(b"x")},
        {"dst": {"ip": "not-an-ip"}, "payload": b64(b"x")},
        {"dst": {}, "payload": b64(b"x")},
        {"dst": {"pk": a.pk.hex()}, "payload": b64(b"to self")},
    ]
    for body in cases:
        r = await a.client.post("/api/v1/messages", json=body)
        assert r.status_code == 400, (body, r.status_code, r.text)
        assert "error" in r.json()
    r = await a.client.post("/api/v1/messages", json={"dst": dst})
    assert r.status_code == 400
    assert r.json()["error"].startswith("invalid request: body.payload")
    r = await a.client.post(
        "/api/v1/messages", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and r.json()["error"].startswith("invalid request")
    r = await a.client.get("/api/v1/messages/status/nothex0000000000")
    assert r.status_code == 400
    r = await a.client.get("/api/v1/messages/status/0011223344556677")
    assert r.status_code == 404
    r = await a.client.get("/api/v1/messages", params={"topic": "***"})
    assert r.status_code == 400
    r = await a.client.get("/api/v1/messages", params={"timeout": -1})
    assert r.status_code == 400 and "query.timeout" in r.json()["error"]
    r = await a.client.post("/api/v1/messages/reply/0011223344556677", json={"payload": b64(b"x")})
    assert r.status_code == 404
    r = await a.client.post(
        "/api/v1/messages", params={"deadline": 0}, json={"dst": dst, "payload": b64(b"x")}
    )
    assert r.status_code == 400 and "query.deadline" in r.json()["error"]


async def test_topic_configuration_and_acl(nodes: tuple[Node, Node], tmp_path: Path) -> None:
    a, b = nodes
    t = b64(b"jobs")
    assert (await b.client.get("/api/v1/messages/topics/default")).json() == {"accept": True}
    r = await b.client.put("/api/v1/messages/topics/default", json={"accept": False})
    assert r.status_code == 204
    assert (await b.client.post("/api/v1/messages/topics", json=t)).status_code == 201
    assert (await b.client.post("/api/v1/messages/topics", json=list(b"raw"))).status_code == 201
    topics = (await b.client.get("/api/v1/messages/topics")).json()
    assert set(topics) == {t, b64(b"raw")}
    # configured topic without sources rejects A
    r = await a.client.post(
        "/api/v1/messages", json={"dst": {"pk": b.pk.hex()}, "topic": t, "payload": b64(b"1")}
    )
    st = await wait_state(a.client, r.json()["id"], "aborted")
    assert "ACL" in str(st["reason"])
    subnet = str(subnet_for_public_key(a.pk))
    r = await b.client.post(f"/api/v1/messages/topics/{t}/sources", json={"subnet": subnet})
    assert r.status_code == 204
    r = await b.client.post(f"/api/v1/messages/topics/{t}/sources", json={"subnet": "bogus"})
    assert r.status_code == 400
    assert (await b.client.get(f"/api/v1/messages/topics/{t}/sources")).json() == [subnet]
    r = await a.client.post(
        "/api/v1/messages", json={"dst": {"pk": b.pk.hex()}, "topic": t, "payload": b64(b"2")}
    )
    r = await b.client.get("/api/v1/messages", params={"timeout": 5, "topic": t})
    assert r.status_code == 200 and base64.b64decode(r.json()["payload"]) == b"2"
    r = await b.client.delete(f"/api/v1/messages/topics/{t}/sources/{subnet}")
    assert r.status_code == 204
    assert (await b.client.get(f"/api/v1/messages/topics/{t}/sources")).json() == []
    r = await b.client.put(f"/api/v1/messages/topics/{t}/forward", json={"socket_path": "/x"})
    assert r.status_code == 403 and "forward directory" in r.text
    sock = str(tmp_path / "x.sock")
    server = await asyncio.start_unix_server(lambda r, w: None, sock)
    server.close()
    r = await b.client.put(f"/api/v1/messages/topics/{t}/forward", json={"socket_path": sock})
    assert r.status_code == 204
    assert (await b.client.get(f"/api/v1/messages/topics/{t}/forward")).json() == sock
    assert (await b.client.delete(f"/api/v1/messages/topics/{t}/forward")).status_code == 204
    assert (await b.client.get(f"/api/v1/messages/topics/{t}/forward")).json() is None
    assert (await b.client.delete(f"/api/v1/messages/topics/{t}")).status_code == 204
    r = await b.client.get(f"/api/v1/messages/topics/{t}/sources")
    assert r.status_code == 404
    r = await b.client.get(f"/api/v1/messages/topics/{b64(bytes(300))}/sources")
    assert r.status_code == 400


async def test_forward_socket_answers_as_reply(nodes: tuple[Node, Node], tmp_path: Path) -> None:
    a, b = nodes
    path = str(tmp_path / "fwd.sock")

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = await reader.read()
        writer.write(data.upper())
        await writer.drain()
        writer.close()

    server = await asyncio.start_unix_server(handle, path)
    try:
        t = b64(b"svc")
        await b.client.post("/api/v1/messages/topics", json=t)
        subnet = str(subnet_for_public_key(a.pk))
        await b.client.post(f"/api/v1/messages/topics/{t}/sources", json={"subnet": subnet})
        await b.client.put(f"/api/v1/messages/topics/{t}/forward", json={"socket_path": path})
        r = await a.client.post(
            "/api/v1/messages",
            params={"reply_timeout": 5},
            json={"dst": {"pk": b.pk.hex()}, "topic": t, "payload": b64(b"shout")},
        )
        assert r.status_code == 200, r.text
        assert base64.b64decode(r.json()["payload"]) == b"SHOUT"
    finally:
        server.close()
        os.unlink(path)


async def test_raw_octet_stream_send_and_receive(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    payload = os.urandom(300_000)
    r = await a.client.post(
        "/api/v1/messages",
        params={"dst_pk": b.pk.hex(), "topic": b64(b"raw")},
        content=payload,
        headers={"content-type": "application/octet-stream"},
    )
    assert r.status_code == 201, r.text
    msg_id = r.json()["id"]
    r = await b.client.get(
        "/api/v1/messages", params={"timeout": 5}, headers={"accept": "application/octet-stream"}
    )
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/octet-stream"
    assert r.content == payload
    assert r.headers["x-hyphal-message-id"] == msg_id
    assert r.headers["x-hyphal-src-pk"] == a.pk.hex()
    assert r.headers["x-hyphal-src-ip"] == str(address_for_public_key(a.pk))
    assert base64.b64decode(r.headers["x-hyphal-topic"]) == b"raw"
    # by IP, streamed (chunked) body, no topic
    ip = str(address_for_public_key(b.pk))

    async def parts() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b"abc"

    r = await a.client.post(
        "/api/v1/messages",
        params={"dst_ip": ip},
        content=parts(),
        headers={"content-type": "application/octet-stream"},
    )
    assert r.status_code == 201, r.text
    r = await b.client.get(
        "/api/v1/messages", params={"timeout": 5}, headers={"accept": "application/octet-stream"}
    )
    assert r.content == b"abc" * 3 and "x-hyphal-topic" not in r.headers
    # raw path errors: no destination, both, bad topic
    for params in ({}, {"dst_pk": b.pk.hex(), "dst_ip": ip}, {"dst_pk": b.pk.hex(), "topic": "%"}):
        r = await a.client.post(
            "/api/v1/messages",
            params=params,
            content=b"x",
            headers={"content-type": "application/octet-stream"},
        )
        assert r.status_code == 400, (params, r.text)


async def test_strict_base64_and_unusable_keys_rejected(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    dst = {"pk": b.pk.hex()}
    for payload in ("QUJD====", "QUJD=", "QUI", "QU JD", "QUJD\n"):
        r = await a.client.post("/api/v1/messages", json={"dst": dst, "payload": payload})
        assert r.status_code == 400, (payload, r.text)
    r = await a.client.post("/api/v1/messages", json={"dst": dst, "payload": "QUI="})
    assert r.status_code == 201
    for key in (
        "00" * 32,
        "01" + "00" * 31,
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
    ):
        for url in ("/api/v1/messages", f"/api/v1/messages/reply/{'00' * 8}"):
            r = await a.client.post(url, json={"dst": {"pk": key}, "payload": "aGk="})
            assert r.status_code == 400, (key, url, r.text)
        r = await a.client.post(
            "/api/v1/messages",
            params={"dst_pk": key},
            content=b"x",
            headers={"content-type": "application/octet-stream"},
        )
        assert r.status_code == 400


async def test_long_poll_caps(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    r = await b.client.get("/api/v1/messages", params={"timeout": 3601})
    assert r.status_code == 400 and "query.timeout" in r.json()["error"]
    r = await a.client.post(
        "/api/v1/messages",
        params={"reply_timeout": 3601},
        json={"dst": {"pk": b.pk.hex()}, "payload": b64(b"x")},
    )
    assert r.status_code == 400 and "query.reply_timeout" in r.json()["error"]


async def test_body_limit_refuses_before_reading() -> None:
    service = MessageService(
        NodeIdentity.generate().public_key,
        lambda dst, body: True,
        lambda ip: None,
        limits=Limits(max_message_size=1000),
    )
    await service.start()
    app = _app(service)
    pk = NodeIdentity.generate().public_key.hex()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
        # within the limit: fine
        r = await client.post(
            "/api/v1/messages", json={"dst": {"pk": pk}, "payload": b64(bytes(1000))}
        )
        assert r.status_code == 201
        # the message is too large but the body within the JSON allowance: the bus says 413
        r = await client.post(
            "/api/v1/messages", json={"dst": {"pk": pk}, "payload": b64(bytes(1001))}
        )
        assert r.status_code == 413 and "error" in r.json()
        read = 0

        async def huge() -> AsyncIterator[bytes]:
            nonlocal read
            for _ in range(10_000):
                read += 1
                yield b"A" * 1000

        # chunked body (no Content-Length): refused once the count passes the limit
        r = await client.post(
            "/api/v1/messages",
            content=huge(),
            headers={"content-type": "application/octet-stream"},
            params={"dst_pk": pk},
        )
        assert r.status_code == 413 and "error" in r.json()
        assert read < 10
        r = await client.post(
            "/api/v1/messages/reply/0011223344556677",
            content=b"[" + b" " * 100_000 + b"]",
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 413
        r = await client.post(
            "/api/v1/messages",
            content=b'{"dst": {"pk": "' + pk.encode() + b'"}}',
            headers={"content-type": "application/json"},
        )
        assert r.status_code == 400 and "body.payload" in r.json()["error"]
    await service.close()
