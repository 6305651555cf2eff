"""The store's hop queue to the feeder: bounded (oldest dropped, counted), kept while the feeder
is down (a real refused connection), retried with backoff, emptied once it answers."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from hyphal.mapping.model import HopAddress
from hyphal.mapping.service_app import Access, ServiceInfo, make_service_app
from hyphal.mapping.store import hops as hops_mod
from hyphal.mapping.store.hops import HopShipper
from hyphal.testing.loopback import free_port


def closed_port() -> int:
    return free_port()  # closed again when it returns: connections are refused


def hop(i: int) -> HopAddress:
    return HopAddress(f"198.19.{i // 256 % 256}.{i % 256}", 5, "198.18.0.1", "w")


def test_the_queue_is_bounded() -> None:
    shipper = HopShipper("http://127.0.0.1:1", max_queue=10)
    shipper.put(hop(i) for i in range(25))
    assert len(shipper.queue) == 10 and shipper.dropped == 15
    assert shipper.queue[0] == hop(15)  # the oldest went first


async def test_kept_and_retried_while_the_feeder_is_down(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hops_mod, "BACKOFF_MIN", 0.01)
    port = closed_port()
    shipper = HopShipper(f"http://127.0.0.1:{port}")
    shipper.put(hop(i) for i in range(3))
    task = asyncio.create_task(shipper.run())
    try:
        async with asyncio.timeout(10):
            while shipper.failures < 3:  # noqa: ASYNC110 (polling a counter the task bumps)
                await asyncio.sleep(0.01)
        assert len(shipper.queue) == 3 and shipper.shipped == 0
        assert shipper.last_error is not None
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_429_keeps_the_batch() -> None:
    # The service frame itself sheds: a feeder with no room answers 429 + Retry-After.
    app = make_service_app(
        ServiceInfo("map-feeder", "f"), Access(allow_loopback=True), max_inflight=0
    )
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 1))
    client = httpx.AsyncClient(transport=transport, base_url="http://feeder")
    shipper = HopShipper("http://feeder", client=client)
    shipper.put([hop(1)])
    with pytest.raises(httpx.HTTPStatusError, match="429"):
        await shipper.ship_once(client)
    assert len(shipper.queue) == 1 and shipper.shipped == 0
    await client.aclose()
