"""Service declarations: checks parse, bad fields are refused with the field named."""

from __future__ import annotations

import pytest

from hyphal.services.spec import Check, SpecError, parse_check, parse_spec


@pytest.mark.parametrize(
    ("text", "check"),
    [
        ("tcp", Check("tcp")),
        ("none", Check("none")),
        ("http://health", Check("http", "/health")),
        ("http:/healthz?x=1", Check("http", "/healthz?x=1")),
        ("exec:/bin/true --x", Check("exec", "/bin/true --x")),
    ],
)
def test_checks_parse_and_print_back(text: str, check: Check) -> None:
    assert parse_check(text) == check
    assert parse_check(check.text()) == check


@pytest.mark.parametrize("text", ["udp", "http://a b", "exec:", "exec:'unclosed", "ftp://x"])
def test_bad_checks(text: str) -> None:
    with pytest.raises(SpecError):
        parse_check(text)


def test_defaults_and_udp() -> None:
    spec = parse_spec({"name": "dns", "port": 53, "proto": "udp"})
    assert spec.check == Check("none") and spec.rise == 2 and spec.fall == 2
    with pytest.raises(SpecError, match="udp service cannot take a tcp check"):
        parse_spec({"name": "dns", "port": 53, "proto": "udp", "check": "tcp"})


@pytest.mark.parametrize(
    ("data", "says"),
    [
        ({"name": "Web", "port": 1}, "DNS label"),
        ({"name": "web", "port": 0}, "port"),
        ({"name": "web", "port": True}, "port"),
        ({"name": "web", "port": 1, "proto": "sctp"}, "proto"),
        ({"name": "web", "port": 1, "rise": 0}, "rise"),
        ({"name": "web", "port": 1, "weight": 256}, "weight"),
        ({"name": "web", "port": 1, "interval": "1"}, "interval"),
        ({"name": "web", "port": 1, "colour": "red"}, "unknown keys"),
    ],
)
def test_bad_fields_are_named(data: dict[str, object], says: str) -> None:
    with pytest.raises(SpecError, match=says):
        parse_spec(data)


def test_round_trip_through_json() -> None:
    spec = parse_spec({"name": "web", "port": 80, "check": "http://h", "weight": 7})
    assert parse_spec(spec.to_json()) == spec
