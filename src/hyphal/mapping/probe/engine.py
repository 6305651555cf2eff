"""Runs one traceroute or ping: a plan, the rate limiter and a socket channel, on asyncio.

This is the only place where probing meets a clock: ``time.monotonic()`` for the plan's and
the limiter's ``now`` and for RTTs, ``time.time()`` for the result's timestamps. The limiter
is shared by every measurement of a worker; the caller has already ``start()``-ed the
measurement there and ``finish()``-es it afterwards (:func:`measure` does both).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass
from typing import Any

from hyphal.mapping.limits import Limiter
from hyphal.mapping.probe import packets
from hyphal.mapping.probe.plan import PingParams, PingPlan, TraceParams, TracePlan
from hyphal.mapping.probe.sockets import (
    TCP_MAX_WAIT,
    Channel,
    TcpChannel,
    family_of,
    open_channel,
)


@dataclass(frozen=True)
class Identity:
    """Who probes: copied into every result."""

    worker: str
    worker_key: str
    region: str
    contact: str = packets.DEFAULT_CONTACT


class LimitRefused(RuntimeError):
    """The limiter did not let the measurement start (cooldown, concurrency, busy prefix)."""


def new_id() -> str:
    return secrets.token_hex(16)


async def _wait_reply(channel: Channel, wait: float) -> tuple[int, Any, float] | None:
    if wait <= 0:
        if channel.replies.empty():
            return None
        return channel.replies.get_nowait()
    try:
        return await asyncio.wait_for(channel.replies.get(), wait)
    except TimeoutError:
        return None


async def _may_send(limiter: Limiter, target: str, now: float) -> bool:
    """Whether one probe to ``target`` may go now (then the limiter has counted it); when not,
    waits until it might (or a moment, when a cap other than the target's holds it back)."""
    ready = limiter.ready_at(target, now)
    if ready > now:
        await asyncio.sleep(ready - now)
        return False
    if not limiter.try_send(target, now):
        await asyncio.sleep(0.01)
        return False
    return True


def _base(
    ident: Identity, kind: str, target: str, proto: str, flow_id: int, channel: Channel | None
) -> dict[str, Any]:
    return {
        "id": new_id(),
        "type": kind,
        "worker": ident.worker,
        "workerKey": ident.worker_key or None,
        "region": ident.region,
        "target": target,
        "af": 6 if ":" in target else 4,
        "proto": proto,
        "flowId": flow_id,
        "srcPort": channel.src_port if channel else None,
        "dstPort": channel.dst_port if channel else None,
        "cycleId": None,
    }


async def run_trace(
    target: str,
    proto: str,
    params: TraceParams,
    limiter: Limiter,
    ident: Identity,
    *,
    flow_id: int = 1,
    raw: bool = False,
    dst_port: int | None = None,
) -> dict[str, Any]:
    """A Paris (or classic) traceroute to ``target``; the measurement must be started."""
    family_of(target)
    if proto == "tcp" and params.wait > TCP_MAX_WAIT:
        params = TraceParams(**{**params.__dict__, "wait": TCP_MAX_WAIT})
    started_wall = time.time()
    plan = TracePlan(params, time.monotonic())
    contact = packets.contact_bytes(ident.contact)
    channel = open_channel(proto, target, contact, flow_id, params.paris, raw, dst_port)
    sent_at: dict[int, float] = {}
    error: str | None = None
    try:
        while not plan.done:
            now = time.monotonic()
            probe = plan.next_probe()
            if probe is not None:
                if not await _may_send(limiter, target, now):
                    continue
                try:
                    channel.send(probe.seq, probe.ttl, probe.index)
                except OSError as exc:
                    error = f"send failed: {exc.strerror or exc}"
                    plan.send_failed(probe, now, error)
                    break
                sent_at[probe.seq] = now
                plan.sent(probe, now)
            deadline = plan.deadline()
            if deadline is None:
                continue
            item = await _wait_reply(channel, deadline - time.monotonic())
            now = time.monotonic()
            if item is not None:
                seq, reply, received = item
                start = sent_at.get(seq)
                if start is not None:
                    plan.reply(seq, reply, (received - start) * 1000.0, now)
            else:
                out = plan.outstanding()
                plan.expire(now)
                if (
                    out is not None
                    and plan.outstanding() is None
                    and isinstance(channel, TcpChannel)
                ):
                    channel.expire(out.seq)
    finally:
        channel.close()
        if not plan.done:
            plan.abort(time.monotonic())
    result = _base(ident, "traceroute", target, proto, flow_id, channel)
    elapsed = (plan.ended or plan.started) - plan.started
    result.update(
        {
            "started": started_wall,
            "ended": started_wall + elapsed,
            "params": {**params.as_dict(), "raw": raw, "contact": ident.contact},
            "hops": plan.hop_list(),
            "destinationReplied": plan.destination_replied,
            "stopReason": plan.stop_reason or "error",
        }
    )
    if error:
        result["error"] = error
    return result


async def run_ping(
    target: str,
    proto: str,
    params: PingParams,
    limiter: Limiter,
    ident: Identity,
    *,
    raw: bool = False,
    dst_port: int | None = None,
) -> dict[str, Any]:
    """ICMP echo or TCP-SYN ping; the measurement must be started."""
    if proto not in ("icmp", "tcp"):
        raise ValueError("ping is icmp or tcp")
    if proto == "tcp" and params.wait > TCP_MAX_WAIT:
        params = PingParams(params.count, params.interval, TCP_MAX_WAIT)
    started_wall = time.time()
    plan = PingPlan(params, time.monotonic())
    channel = open_channel(
        proto, target, packets.contact_bytes(ident.contact), 0, True, raw, dst_port
    )
    sent_at: dict[int, float] = {}
    try:
        while not plan.done:
            now = time.monotonic()
            seq = plan.next_probe(now)
            if seq is not None:
                if not await _may_send(limiter, target, now):
                    continue
                try:
                    channel.send(seq, 64, seq)
                except OSError as exc:
                    plan.send_failed(now, f"send failed: {exc.strerror or exc}")
                    break
                sent_at[seq] = now
                plan.sent(seq, now)
            deadline = plan.deadline()
            if deadline is None:
                break
            item = await _wait_reply(channel, deadline - time.monotonic())
            now = time.monotonic()
            if item is not None:
                rseq, reply, received = item
                if reply.final and rseq in sent_at:
                    plan.reply(rseq, (received - sent_at[rseq]) * 1000.0, now)
            plan.expire(now)
    finally:
        channel.close()
    result = _base(ident, "ping", target, proto, 0, channel)
    elapsed = (plan.ended or time.monotonic()) - plan.started
    result.update(
        {
            "started": started_wall,
            "ended": started_wall + elapsed,
            "params": {**params.as_dict(), "raw": raw, "contact": ident.contact},
            "ping": {"sent": plan.sent_count, "received": len(plan.rtts), "rtts": plan.rtts},
        }
    )
    if plan.error:
        result["error"] = plan.error
    return result


async def measure(
    kind: str,
    target: str,
    proto: str,
    limiter: Limiter,
    ident: Identity,
    *,
    trace: TraceParams | None = None,
    ping: PingParams | None = None,
    flow_id: int = 1,
    raw: bool = False,
    dst_port: int | None = None,
) -> dict[str, Any]:
    """Start the measurement in the limiter (or raise LimitRefused), run it, finish it."""
    why = limiter.start(target, time.monotonic())
    if why is not None:
        raise LimitRefused(f"{target}: {why}")
    try:
        if kind == "traceroute":
            return await run_trace(
                target,
                proto,
                trace or TraceParams(),
                limiter,
                ident,
                flow_id=flow_id,
                raw=raw,
                dst_port=dst_port,
            )
        if kind == "ping":
            return await run_ping(
                target, proto, ping or PingParams(), limiter, ident, raw=raw, dst_port=dst_port
            )
        raise ValueError(f"unknown measurement type {kind!r}")
    finally:
        limiter.finish(target, time.monotonic())
