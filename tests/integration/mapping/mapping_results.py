"""Result builders for the store tests (canonical JSON, as a worker sends it)."""

from __future__ import annotations

import secrets
from typing import Any


def trace(
    target: str = "198.18.3.1",
    path: tuple[str | None, ...] = ("198.18.0.1", None, "198.18.2.1"),
    worker: str = "sg1",
    started: float = 1000.0,
    flow: int = 7,
    rid: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    hops = [
        {
            "ttl": i,
            "replies": [
                {"timeout": True}
                if ip is None
                else {
                    "from": ip,
                    "rtt": 1.0 + i,
                    "replyTtl": 64 - i,
                    "icmpType": 11,
                    "icmpCode": 0,
                    "quotedTtl": 1,
                }
            ],
        }
        for i, ip in enumerate(path, 1)
    ]
    hops.append(
        {
            "ttl": len(path) + 1,
            "replies": [{"from": target, "rtt": 9.0, "icmpType": 0, "icmpCode": 0}],
        }
    )
    data = {
        "id": rid or secrets.token_hex(16),
        "type": "traceroute",
        "worker": worker,
        "workerKey": "ab" * 32,
        "region": "sg",
        "target": target,
        "af": 6 if ":" in target else 4,
        "proto": "icmp",
        "flowId": flow,
        "srcPort": None,
        "dstPort": None,
        "started": started,
        "ended": started + 1.0,
        "cycleId": "c1",
        "params": {"maxTtl": 32, "attempts": 3, "gapLimit": 5, "paris": True, "mda": False},
        "hops": hops,
        "destinationReplied": True,
        "stopReason": "completed",
    }
    data.update(extra)
    return data


def ping(
    target: str = "198.18.3.1", worker: str = "sg1", started: float = 1000.0, **extra: Any
) -> dict[str, Any]:
    data = {
        "id": secrets.token_hex(16),
        "type": "ping",
        "worker": worker,
        "region": "sg",
        "target": target,
        "af": 4,
        "proto": "icmp",
        "flowId": 0,
        "started": started,
        "ended": started + 3.0,
        "params": {},
        "ping": {"sent": 3, "received": 2, "rtts": [1.5, 2.5]},
    }
    data.update(extra)
    return data


ATLAS: dict[str, Any] = {
    "af": 4, "dst_addr": "198.18.9.1", "endtime": 1700000004, "fw": 5080, "msm_id": 5001,
    "paris_id": 9, "prb_id": 6001, "proto": "ICMP", "timestamp": 1700000000,
    "type": "traceroute",
    "result": [
        {"hop": 1, "result": [{"from": "198.18.0.1", "rtt": 0.9, "ttl": 64}, {"x": "*"}]},
        {"hop": 2, "result": [{"from": "198.18.9.1", "rtt": 9.1, "ttl": 60}]},
    ],
}  # fmt: skip
"""A RIPE Atlas traceroute result (v5000 layout)."""
