"""The mapping clients' service lookup (``svc:NAME``) against an HTTP server on loopback that
answers like the daemon's ``/api/v1/services/NAME/choose``: the answer is reused for its TTL,
asked again after a failure, and every refusal is a DiscoveryError that says what to do."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from hyphal.client import Client
from hyphal.mapping.discovery import DiscoveryError, Locator


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def api() -> Iterator[tuple[Client, dict[str, object]]]:
    """A loopback server; ``state["answer"]`` is what choose returns (None: 404)."""
    state: dict[str, object] = {
        "answer": {"address": "4ab:1::1", "port": 7411},
        "asked": 0,
        "paths": [],
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state["asked"] = int(str(state["asked"])) + 1
            assert isinstance(state["paths"], list)
            state["paths"].append(self.path)
            answer = state["answer"]
            body = json.dumps(answer if answer is not None else {"error": "none"}).encode()
            self.send_response(200 if answer is not None else 404)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Client(f"127.0.0.1:{server.server_address[1]}"), state
    finally:
        server.shutdown()
        server.server_close()


def test_a_plain_url_is_used_as_it_is() -> None:
    locator = Locator("http://[4ab::1]:7411/")
    assert locator.url_now() == "http://[4ab::1]:7411"
    assert asyncio.run(locator.url()) == "http://[4ab::1]:7411"
    assert locator.service is None


def test_a_service_name_is_asked_once_per_ttl_and_again_after_a_failure(
    api: tuple[Client, dict[str, object]],
) -> None:
    base, state = api
    clock = FakeClock()
    locator = Locator("svc:map-store", base, ttl=10, clock=clock)
    assert locator.url_now() == "http://[4ab:1::1]:7411"
    assert state["paths"] == ["/api/v1/services/map-store/choose"]
    clock.now += 9
    assert locator.url_now() == "http://[4ab:1::1]:7411" and state["asked"] == 1
    state["answer"] = {"address": "192.0.2.9", "port": 80}
    locator.forget()  # a request through it failed
    assert asyncio.run(locator.url()) == "http://192.0.2.9:80" and state["asked"] == 2
    clock.now += 11
    state["answer"] = {"address": "4ab:2::1", "port": 7411}
    assert locator.url_now() == "http://[4ab:2::1]:7411" and state["asked"] == 3
    assert str(locator) == "svc:map-store (http://[4ab:2::1]:7411)"


def test_no_healthy_instance_and_bad_answers_are_clear_errors(
    api: tuple[Client, dict[str, object]],
) -> None:
    base, state = api
    state["answer"] = None
    with pytest.raises(DiscoveryError, match="no healthy instance of service map-feeder"):
        Locator("svc:map-feeder", base).url_now()
    state["answer"] = {"address": "not an address", "port": 1}
    with pytest.raises(DiscoveryError, match="answer for svc:map-feeder"):
        Locator("svc:map-feeder", base).url_now()


def test_refusals_before_any_request() -> None:
    with pytest.raises(DiscoveryError, match="needs a service name"):
        Locator("svc:")
    with pytest.raises(DiscoveryError, match="needs the local hyphal API"):
        Locator("svc:map-store")
    with pytest.raises(DiscoveryError, match="cannot ask the local hyphal daemon"):
        Locator("svc:map-store", Client("127.0.0.1:1")).url_now()
