"""The result model: canonical shape, bounds, derived hops and edges."""

from __future__ import annotations

from typing import Any

import pytest

from hyphal.mapping.model import ResultError, edges_of, hop_addresses, parse_result


def trace(**over: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "0" * 31 + "1",
        "type": "traceroute",
        "worker": "sg1",
        "workerKey": "ab" * 32,
        "region": "sg",
        "target": "198.18.3.1",
        "af": 4,
        "proto": "udp",
        "flowId": 7,
        "srcPort": 40000,
        "dstPort": 33435,
        "started": 1000.0,
        "ended": 1001.5,
        "cycleId": "c1",
        "params": {"maxTtl": 32, "attempts": 3, "gapLimit": 5, "paris": True, "mda": False},
        "hops": [
            {
                "ttl": 1,
                "replies": [
                    {
                        "from": "198.18.0.1",
                        "rtt": 0.5,
                        "replyTtl": 64,
                        "icmpType": 11,
                        "icmpCode": 0,
                        "quotedTtl": 1,
                    }
                ],
            },
            {"ttl": 2, "replies": [{"timeout": True}]},
            {"ttl": 3, "replies": [{"from": "198.18.2.1", "rtt": 1.5}]},
            {
                "ttl": 4,
                "replies": [{"from": "198.18.3.1", "rtt": 2.0, "icmpType": 3, "icmpCode": 3}],
            },
        ],
        "destinationReplied": True,
        "stopReason": "completed",
    }
    data.update(over)
    return data


def test_round_trip_keeps_the_canonical_shape() -> None:
    data = trace()
    result = parse_result(data)
    out = result.to_json()
    assert parse_result(out) == result
    assert out["hops"][1] == {"ttl": 2, "replies": [{"timeout": True}]}
    assert out["hops"][2]["replies"][0]["replyTtl"] is None  # absent fields come back as null
    assert {k: v for k, v in out.items() if k != "hops"} == {
        k: v for k, v in data.items() if k != "hops"
    }


def test_ping_shape() -> None:
    data = trace(type="ping", hops=None, ping={"sent": 3, "received": 2, "rtts": [1.0, 2.0]})
    del data["hops"]
    assert parse_result(data).to_json()["ping"]["received"] == 2


@pytest.mark.parametrize(
    ("over", "field"),
    [
        ({"id": "XYZ"}, "id"),
        ({"target": "2001:db8::1"}, "IPv4"),
        ({"af": 5}, "af"),
        ({"ended": 10.0}, "ended"),
        ({"hops": None}, "hops"),
        ({"proto": "sctp"}, "proto"),
        ({"params": {"x": {"nested": 1}}}, "params"),
        ({"unknown": 1}, "unknown"),
        ({"hops": [{"ttl": 1, "replies": [{"from": "2001:db8::1", "rtt": 1.0}]}]}, "IPv4"),
        ({"hops": [{"ttl": 1, "replies": []}, {"ttl": 1, "replies": []}]}, "repeat"),
        ({"hops": [{"ttl": 0, "replies": []}]}, "ttl"),
    ],
)
def test_bad_results_name_the_field(over: dict[str, Any], field: str) -> None:
    with pytest.raises(ResultError, match=field):
        parse_result(trace(**over))


def test_hops_and_edges() -> None:
    result = parse_result(trace())
    assert [h.ip for h in hop_addresses(result)] == ["198.18.0.1", "198.18.2.1"]
    edges = edges_of(result)
    # No edge across the silent TTL 2; 3 -> 4 is a link to the target.
    assert [(e.a, e.b, e.flow_id) for e in edges] == [("198.18.2.1", "198.18.3.1", 7)]
