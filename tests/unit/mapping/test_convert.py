"""RIPE Atlas (v5000 layout) and Globalping traceroutes map onto our result model."""

from __future__ import annotations

from typing import Any

import pytest

from hyphal.mapping.convert import from_atlas, from_globalping
from hyphal.mapping.model import Reply, ResultError, Timeout, edges_of

ATLAS: dict[str, Any] = {
    "af": 4, "dst_addr": "198.18.9.1", "dst_name": "198.18.9.1", "endtime": 1700000004,
    "from": "198.51.100.7", "fw": 5080, "lts": 12, "msm_id": 5001, "msm_name": "Traceroute",
    "paris_id": 9, "prb_id": 6001, "proto": "UDP", "size": 48, "src_addr": "192.168.1.2",
    "timestamp": 1700000000, "type": "traceroute",
    "result": [
        {"hop": 1, "result": [{"from": "192.168.1.1", "rtt": 0.9, "size": 76, "ttl": 64},
                              {"x": "*"}, {"from": "192.168.1.1", "rtt": 0.8, "size": 76,
                                           "ttl": 64}]},
        {"hop": 2, "result": [{"from": "198.18.0.1", "rtt": 5.2, "size": 76, "ttl": 253,
                               "ittl": 2}] * 3},
        {"hop": 3, "result": [{"from": "198.18.9.1", "rtt": 9.1, "size": 76, "ttl": 60,
                               "err": "p"}]},
    ],
}  # fmt: skip

GLOBALPING: dict[str, Any] = {
    "id": "PY5f8LBgVvQ4mzLr", "type": "traceroute", "status": "finished",
    "createdAt": "2026-01-05T10:00:00.000Z", "updatedAt": "2026-01-05T10:00:03.500Z",
    "target": "example.net", "measurementOptions": {"protocol": "TCP", "port": 443},
    "results": [
        {"probe": {"continent": "AS", "country": "SG", "city": "Singapore", "asn": 64500},
         "result": {"status": "finished", "resolvedAddress": "198.18.9.1",
                    "hops": [{"resolvedAddress": "198.18.0.1", "timings": [{"rtt": 1.1},
                                                                            {"rtt": 1.3}]},
                             {"resolvedAddress": None, "timings": []},
                             {"resolvedAddress": "198.18.9.1", "timings": [{"rtt": 20.5}]}]}},
        {"probe": {"country": "DE"}, "result": {"status": "failed", "hops": []}},
    ],
}  # fmt: skip


def test_atlas() -> None:
    r = from_atlas(ATLAS)
    assert (r.worker, r.target, r.proto, r.flow_id, r.started, r.ended) == (
        "atlas-6001",
        "198.18.9.1",
        "udp",
        9,
        1700000000.0,
        1700000004.0,
    )
    assert r.hops is not None and [h.ttl for h in r.hops] == [1, 2, 3]
    assert isinstance(r.hops[0].replies[1], Timeout)
    first = r.hops[1].replies[0]
    assert isinstance(first, Reply) and (first.reply_ttl, first.quoted_ttl) == (253, 2)
    last = r.hops[2].replies[0]
    assert isinstance(last, Reply) and (last.icmp_type, last.icmp_code) == (3, 3)
    assert r.destination_replied and r.stop_reason == "completed"
    assert r.params["measurementId"] == "5001" and r.params["paris"] is True
    assert from_atlas(ATLAS).id == r.id  # importing twice is the same result
    assert [(e.a, e.b) for e in edges_of(r)] == [
        ("192.168.1.1", "198.18.0.1"),
        ("198.18.0.1", "198.18.9.1"),
    ]


def test_globalping() -> None:
    results = from_globalping(GLOBALPING)
    assert len(results) == 1  # the failed probe is skipped
    r = results[0]
    assert (r.region, r.proto, r.dst_port, r.ended - r.started) == ("SG-Singapore", "tcp", 443, 3.5)
    assert r.hops is not None and isinstance(r.hops[1].replies[0], Timeout)
    assert r.destination_replied and r.worker == "globalping-SG-Singapore-64500"


@pytest.mark.parametrize(
    ("data", "match"),
    [({**ATLAS, "dst_addr": None}, "dst_addr"), ({**ATLAS, "type": "ping"}, "not an Atlas"),
     ({**ATLAS, "proto": "GRE"}, "protocol"), ({**ATLAS, "af": 6}, "IPv6")],
)  # fmt: skip
def test_atlas_refusals(data: dict[str, Any], match: str) -> None:
    with pytest.raises(ResultError, match=match):
        from_atlas(data)
