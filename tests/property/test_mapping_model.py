"""Property tests: the result parser never raises anything but ResultError on hostile JSON,
and what it accepts round-trips through the canonical form."""

from __future__ import annotations

import contextlib
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hyphal.mapping.model import ResultError, edges_of, hop_addresses, parse_result

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
keys = st.sampled_from(
    [
        "id",
        "type",
        "worker",
        "target",
        "af",
        "proto",
        "flowId",
        "started",
        "ended",
        "hops",
        "ping",
        "params",
        "stopReason",
        "destinationReplied",
        "from",
        "ttl",
        "replies",
    ]
)
ip4 = st.ip_addresses(v=4).map(str)


def base() -> dict[str, Any]:
    return {
        "id": "a" * 32,
        "type": "traceroute",
        "worker": "w",
        "target": "198.18.0.9",
        "af": 4,
        "proto": "icmp",
        "started": 1.0,
        "ended": 2.0,
        "hops": [],
    }


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(keys, json_values, max_size=10) | json_values)
def test_garbage_is_refused_cleanly(data: Any) -> None:
    with contextlib.suppress(ResultError):
        parse_result(data)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(1, 40), st.lists(st.one_of(ip4, st.none()), max_size=4)),
        max_size=12,
        unique_by=lambda t: t[0],
    ),
    st.dictionaries(keys, json_values, max_size=3),
)
def test_accepted_results_round_trip(
    hops: list[tuple[int, list[str | None]]], extra: dict[str, Any]
) -> None:
    data = base()
    data["hops"] = [
        {
            "ttl": ttl,
            "replies": [
                {"timeout": True} if ip is None else {"from": ip, "rtt": 1.0} for ip in replies
            ],
        }
        for ttl, replies in hops
    ]
    data.update(extra)
    try:
        result = parse_result(data)
    except ResultError:
        return
    assert parse_result(result.to_json()) == result
    for edge in edges_of(result):
        assert edge.a != edge.b
    assert len({h.ip for h in hop_addresses(result)}) == len(hop_addresses(result))
