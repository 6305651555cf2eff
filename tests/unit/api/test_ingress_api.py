"""/api/v1/ingress on a real in-process node (its services part is the directory): add, list,
conflicts, bad definitions and removal, through the app the daemon serves."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from hyphal.api.app import create_app
from hyphal.node import Node
from hyphal.testing.loopback import free_port

BASE = "http://127.0.0.1:8989"


async def test_add_list_conflict_remove(node: Node) -> None:
    app = create_app(node)
    port, uport = free_port(), free_port()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as api:
        assert (await api.get("/api/v1/ingress")).json()["listeners"] == []
        bad = await api.post("/api/v1/ingress", json={"listen": "nowhere", "service": "web"})
        assert bad.status_code == 400 and "ADDR:PORT" in bad.json()["error"]
        body = {
            "listen": f"127.0.0.1:{port}",
            "service": "web",
            "proxyProtocol": "v1",
            "limits": {"maxPerClient": 8, "idleTimeout": 30},
        }
        added = await api.post("/api/v1/ingress", json=body)
        assert added.status_code == 201, added.text
        row = added.json()
        assert row["state"] == "listening" and row["proxyProtocol"] == "v1"
        assert row["limits"]["maxPerClient"] == 8 and row["instances"] == 0
        again = await api.post("/api/v1/ingress", json=body)
        assert again.status_code == 409
        unwrap = await api.post(
            "/api/v1/ingress/unwrap",
            json={
                "listen": f"127.0.0.1:{uport}",
                "backend": "127.0.0.1:6668",
                "transparent": False,
            },
        )
        assert unwrap.status_code == 201, unwrap.text
        assert unwrap.json()["transparentActive"] is False
        listed = (await api.get("/api/v1/ingress")).json()["listeners"]
        assert [r["kind"] for r in listed] == ["ingress", "unwrap"]
        gone = await api.delete("/api/v1/ingress", params={"listen": f"127.0.0.1:{port}"})
        assert gone.status_code == 204
        missing = await api.delete("/api/v1/ingress", params={"listen": f"127.0.0.1:{port}"})
        assert missing.status_code == 404
        with pytest.raises(ConnectionRefusedError):  # the removed listener is closed
            await asyncio.open_connection("127.0.0.1", port)
