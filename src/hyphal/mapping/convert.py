"""RIPE Atlas and Globalping traceroute results into our result model (docs/mapping.md, "From
RIPE Atlas", "From Globalping"), so their data can be loaded into the store beside ours.

Ids are derived from the source's own identity (Atlas: probe, measurement, timestamp;
Globalping: measurement id and result index), so importing the same data twice stores it once.
Whatever does not fit the model raises :class:`~hyphal.mapping.model.ResultError`.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from hyphal.mapping.model import Result, ResultError, parse_result

# Atlas "err" letters: ICMP destination-unreachable codes (type 3).
_ATLAS_ERR = {"N": 0, "H": 1, "P": 2, "p": 3, "A": 13}
_PROTOS = {"icmp": "icmp", "udp": "udp", "tcp": "tcp"}


def _id(*parts: object) -> str:
    return hashlib.blake2b(repr(parts).encode(), digest_size=16).hexdigest()


def _proto(value: object) -> str:
    proto = _PROTOS.get(str(value or "icmp").lower())
    if proto is None:
        raise ResultError(f"protocol {str(value)[:20]!r} is not icmp, udp or tcp")
    return proto


def _stop(hops: list[dict[str, Any]], replied: bool) -> str:
    if replied:
        return "completed"
    tail = hops[-1]["replies"] if hops else []
    return "gaplimit" if tail and all("timeout" in r for r in tail) else "maxttl"


def from_atlas(data: dict[str, Any]) -> Result:
    """One RIPE Atlas traceroute result (firmware 4790 and later, the "5000" layout)."""
    if data.get("type") != "traceroute":
        raise ResultError("not an Atlas traceroute result")
    target = data.get("dst_addr")
    if not isinstance(target, str):
        raise ResultError("the Atlas result has no dst_addr (name resolution failed?)")
    hops: list[dict[str, Any]] = []
    replied = False
    for hop in data.get("result") or []:
        replies: list[dict[str, Any]] = []
        for packet in hop.get("result") or []:
            if "from" not in packet:  # {"x": "*"} or a local error
                replies.append({"timeout": True})
                continue
            reply: dict[str, Any] = {"from": packet["from"], "rtt": float(packet.get("rtt", 0.0))}
            if "ttl" in packet:
                reply["replyTtl"] = packet["ttl"]
            if "ittl" in packet:
                reply["quotedTtl"] = packet["ittl"]
            err = packet.get("err")
            if isinstance(err, str) and err in _ATLAS_ERR:
                reply["icmpType"], reply["icmpCode"] = 3, _ATLAS_ERR[err]
            replied = replied or packet["from"] == target
            replies.append(reply)
        hops.append({"ttl": hop.get("hop"), "replies": replies})
    started = float(data.get("timestamp", 0))
    params: dict[str, Any] = {
        "source": "ripe-atlas",
        "paris": bool(data.get("paris_id")),
        "measurementId": str(data.get("msm_id")),
    }
    if "size" in data:
        params["size"] = data["size"]
    return parse_result({
        "id": _id("atlas", data.get("prb_id"), data.get("msm_id"), data.get("timestamp")),
        "type": "traceroute", "worker": f"atlas-{data.get('prb_id')}", "region": None,
        "target": target, "af": data.get("af"), "proto": _proto(data.get("proto")),
        "flowId": int(data.get("paris_id") or 0), "started": started,
        "ended": float(data.get("endtime", started)), "params": params, "hops": hops,
        "destinationReplied": replied, "stopReason": _stop(hops, replied),
    })  # fmt: skip


def _when(text: object) -> float:
    if not isinstance(text, str):
        raise ResultError("a Globalping time is an ISO 8601 string")
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise ResultError(f"{text[:40]!r} is not an ISO 8601 time") from None


def from_globalping(measurement: dict[str, Any]) -> list[Result]:
    """Every probe's result of one Globalping traceroute or mtr measurement
    (``GET /v1/measurements/{id}``)."""
    if measurement.get("type") not in ("traceroute", "mtr"):
        raise ResultError("not a Globalping traceroute or mtr measurement")
    options = measurement.get("measurementOptions") or {}
    started = _when(measurement.get("createdAt"))
    ended = _when(measurement.get("updatedAt") or measurement.get("createdAt"))
    out: list[Result] = []
    for index, entry in enumerate(measurement.get("results") or []):
        probe, result = entry.get("probe") or {}, entry.get("result") or {}
        target = result.get("resolvedAddress")
        if result.get("status") != "finished" or not isinstance(target, str):
            continue
        hops: list[dict[str, Any]] = []
        replied = False
        for ttl, hop in enumerate(result.get("hops") or [], 1):
            address, timings = hop.get("resolvedAddress"), hop.get("timings") or []
            if not address or not timings:
                hops.append({"ttl": ttl, "replies": [{"timeout": True}]})
                continue
            replied = replied or address == target
            hops.append({"ttl": ttl, "replies": [
                {"from": address, "rtt": float(t["rtt"])} if t.get("rtt") is not None
                else {"timeout": True} for t in timings]})  # fmt: skip
        where = [str(probe[k]) for k in ("country", "city") if probe.get(k)]
        region = "-".join(where) or None
        port = options.get("port")
        out.append(parse_result({
            "id": _id("globalping", measurement.get("id"), index),
            "type": "traceroute", "worker": f"globalping-{region or 'probe'}-{probe.get('asn')}",
            "region": region, "target": target, "af": 6 if ":" in target else 4,
            "proto": _proto(options.get("protocol")), "flowId": 0,
            "dstPort": port if isinstance(port, int) else None, "started": started,
            "ended": max(ended, started),
            "params": {"source": "globalping", "measurementId": str(measurement.get("id"))},
            "hops": hops, "destinationReplied": replied, "stopReason": _stop(hops, replied),
        }))  # fmt: skip
    return out
