"""Peer URIs: every string either parses to a round-tripping endpoint or raises EndpointError."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from hyphal.links.endpoint import Endpoint, EndpointError


@given(st.text(max_size=80))
def test_arbitrary_text_parses_or_raises_endpoint_error(text: str) -> None:
    try:
        endpoint = Endpoint.parse(text)
    except EndpointError:
        return
    again = Endpoint.parse(str(endpoint))
    assert again == endpoint and again.key == endpoint.key


@given(st.ip_addresses(), st.integers(1, 65535))
def test_ip_endpoints_round_trip(ip: object, port: int) -> None:
    text = f"tcp://[{ip}]:{port}" if ":" in str(ip) else f"tcp://{ip}:{port}"
    endpoint = Endpoint.parse(text)
    assert endpoint.port == port and str(endpoint) == text


@given(st.ip_addresses(), st.integers(1, 65535), st.binary(min_size=32, max_size=32))
def test_pinned_endpoints_round_trip(ip: object, port: int, key: bytes) -> None:
    host = f"[{ip}]" if ":" in str(ip) else str(ip)
    text = f"tcp://{host}:{port}?key={key.hex()}"
    endpoint = Endpoint.parse(text)
    assert endpoint.key == key and str(endpoint) == text
    again = Endpoint.parse(str(endpoint))
    assert again == endpoint and again.key == key


@given(st.text(max_size=120))
def test_arbitrary_query_parses_or_raises_endpoint_error(query: str) -> None:
    try:
        endpoint = Endpoint.parse(f"tcp://127.0.0.1:9651?{query}")
    except EndpointError:
        return
    assert endpoint.key is not None and len(endpoint.key) == 32
    assert Endpoint.parse(str(endpoint)).key == endpoint.key
