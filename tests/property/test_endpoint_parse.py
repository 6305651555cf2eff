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
    assert Endpoint.parse(str(endpoint)) == endpoint


@given(st.ip_addresses(), st.integers(1, 65535))
def test_ip_endpoints_round_trip(ip: object, port: int) -> None:
    text = f"tcp://[{ip}]:{port}" if ":" in str(ip) else f"tcp://{ip}:{port}"
    endpoint = Endpoint.parse(text)
    assert endpoint.port == port and str(endpoint) == text
