"""Pinned static peers: tcp://host:port?key=HEX parses, prints, and is the same peer unpinned."""

from __future__ import annotations

import pytest

from hyphal.links.endpoint import Endpoint, EndpointError

KEY = bytes(range(32))


def test_pinned_uri_parses_and_round_trips() -> None:
    text = f"tcp://[2001:db8::1]:9651?key={KEY.hex()}"
    endpoint = Endpoint.parse(text)
    assert (endpoint.host, endpoint.port, endpoint.key) == ("2001:db8::1", 9651, KEY)
    assert str(endpoint) == text
    assert endpoint.socket_addr == "[2001:db8::1]:9651"
    upper = Endpoint.parse(f"tcp://example.org:1?key={KEY.hex().upper()}")
    assert upper.key == KEY and upper.host == "example.org"


def test_pin_is_not_part_of_the_peer_identity() -> None:
    pinned = Endpoint.parse(f"tcp://127.0.0.1:9651?key={KEY.hex()}")
    plain = Endpoint.parse("tcp://127.0.0.1:9651")
    assert pinned == plain and hash(pinned) == hash(plain)
    assert {pinned: 1}[plain] == 1
    assert plain.key is None and str(plain) == "tcp://127.0.0.1:9651"


@pytest.mark.parametrize(
    ("uri", "needle"),
    [
        ("tcp://h:1?key=abc", "64 hex characters"),
        (f"tcp://h:1?key={'g' * 64}", "64 hex characters"),
        (f"tcp://h:1?key={KEY.hex()}&key={KEY.hex()}", "once"),
        (f"tcp://h:1?pin={KEY.hex()}", "unknown parameter 'pin'"),
        ("tcp://h:1?key", "key="),
        ("tcp://h:1?", "key= once"),
        ("tcp://h?key=" + KEY.hex(), "missing port"),
        ("tcp://h:1?key=" + "a" * 2000, "at most"),
    ],
)
def test_bad_pins_say_what_is_wrong(uri: str, needle: str) -> None:
    with pytest.raises(EndpointError, match=needle):
        Endpoint.parse(uri)
