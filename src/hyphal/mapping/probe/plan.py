"""What to send next in a traceroute or a ping, and when to give up (sans-IO).

A :class:`TracePlan` is a hop-by-hop Paris traceroute with one probe outstanding (scamper's
default): TTL 1 first, up to ``attempts`` probes per hop (the next one only after the previous
timed out, unless ``all_attempts``), then the next TTL. It stops when

* the destination answered (echo reply, port unreachable from the target, a TCP answer):
  ``completed``;
* a router said the destination is unreachable (ICMP unreachable from elsewhere): ``completed``
  with ``destinationReplied`` false;
* ``gap_limit`` hops in a row were silent: ``gaplimit``;
* the hop past ``max_ttl`` would be next: ``maxttl``.

The adapter calls :meth:`next_probe` (a probe to send, or None), :meth:`sent` once it went out
(the timeout runs from then), :meth:`reply` for an answer, and :meth:`expire` at
:meth:`deadline`. Replies that match no outstanding probe (late, duplicated, forged) are
counted and ignored. A :class:`PingPlan` does the same for ``count`` echo probes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

STOP_REASONS = ("completed", "gaplimit", "maxttl", "error")


@dataclass(frozen=True)
class TraceParams:
    max_ttl: int = 32
    first_ttl: int = 1
    attempts: int = 2
    gap_limit: int = 5
    wait: float = 2.0  # seconds to wait for one probe's answer
    paris: bool = True
    all_attempts: bool = False  # send every attempt even when a hop answered (mtr-style loss)

    def __post_init__(self) -> None:
        if not 1 <= self.first_ttl <= self.max_ttl <= 64:
            raise ValueError("need 1 <= first_ttl <= max_ttl <= 64")
        if not 1 <= self.attempts <= 10:
            raise ValueError("attempts in 1..10")
        if not 1 <= self.gap_limit <= 64:
            raise ValueError("gap_limit in 1..64")
        if not 0.05 <= self.wait <= 30:
            raise ValueError("wait in 0.05..30 s")

    def as_dict(self) -> dict[str, Any]:
        return {
            "maxTtl": self.max_ttl,
            "firstTtl": self.first_ttl,
            "attempts": self.attempts,
            "gapLimit": self.gap_limit,
            "wait": self.wait,
            "paris": self.paris,
            "mda": False,
            "allAttempts": self.all_attempts,
        }


@dataclass(frozen=True)
class Probe:
    seq: int  # unique within the plan, 0..65535
    ttl: int
    attempt: int
    index: int  # probes sent before this one (classic mode moves the flow with it)


@dataclass(frozen=True)
class Reply:
    """What came back for a probe. ``final``: the destination itself answered."""

    source: str
    icmp_type: int | None
    icmp_code: int | None
    reply_ttl: int | None = None
    quoted_ttl: int | None = None
    final: bool = False
    unreachable: bool = False  # a router (or the host) said "can't get there": stop here
    flow_id: int | None = None


@dataclass
class _Hop:
    ttl: int
    replies: list[dict[str, Any]] = field(default_factory=list)
    answered: bool = False


class TracePlan:
    def __init__(self, params: TraceParams, now: float) -> None:
        self.params = params
        self.started = now
        self.ended: float | None = None
        self.stop_reason: str | None = None
        self.destination_replied = False
        self.hops: list[_Hop] = [_Hop(params.first_ttl)]
        self._attempt = 1
        self._index = 0
        self._outstanding: tuple[Probe, float] | None = None  # probe, deadline
        self._pending: Probe | None = None  # handed out, not yet sent
        self._gap = 0
        self._stop_after_hop = False
        self.ignored = 0
        self.error: str | None = None

    @property
    def done(self) -> bool:
        return self.stop_reason is not None

    def next_probe(self) -> Probe | None:
        """The probe to send now, or None (one is outstanding, or the trace is over)."""
        if self.done or self._outstanding is not None:
            return None
        if self._pending is None:
            hop = self.hops[-1]
            self._pending = Probe(self._index & 0xFFFF, hop.ttl, self._attempt, self._index)
        return self._pending

    def sent(self, probe: Probe, now: float) -> None:
        if self._pending is None or probe != self._pending:
            raise ValueError("sent() for a probe that next_probe() did not hand out")
        self._pending = None
        self._index += 1
        self._outstanding = (probe, now + self.params.wait)

    def send_failed(self, probe: Probe, now: float, error: str) -> None:
        """The socket refused the probe: the trace ends with ``error``."""
        self._pending = None
        self._finish("error", now)
        self.error = error

    def deadline(self) -> float | None:
        return None if self._outstanding is None else self._outstanding[1]

    def outstanding(self) -> Probe | None:
        return None if self._outstanding is None else self._outstanding[0]

    def reply(self, seq: int, answer: Reply, rtt_ms: float, now: float) -> bool:
        """An answer to probe ``seq``; False (and counted) when no such probe is waiting."""
        if self._outstanding is None or self._outstanding[0].seq != seq:
            self.ignored += 1
            return False
        probe = self._outstanding[0]
        self._outstanding = None
        hop = self.hops[-1]
        hop.replies.append(
            {
                "from": answer.source,
                "rtt": round(rtt_ms, 3),
                "replyTtl": answer.reply_ttl,
                "icmpType": answer.icmp_type,
                "icmpCode": answer.icmp_code,
                "quotedTtl": answer.quoted_ttl,
                "flowId": answer.flow_id,
            }
        )
        hop.answered = True
        if answer.final:
            self.destination_replied = True
        if answer.final or answer.unreachable:
            self._stop_after_hop = True
        self._gap = 0
        if self.params.all_attempts and probe.attempt < self.params.attempts:
            self._attempt = probe.attempt + 1
            return True
        self._advance(now)
        return True

    def expire(self, now: float) -> None:
        """Time out the outstanding probe if its deadline has passed."""
        if self._outstanding is None or now < self._outstanding[1]:
            return
        probe = self._outstanding[0]
        self._outstanding = None
        hop = self.hops[-1]
        hop.replies.append({"timeout": True})
        if probe.attempt < self.params.attempts:
            self._attempt = probe.attempt + 1
            return
        if not hop.answered:
            self._gap += 1
        self._advance(now)

    def _advance(self, now: float) -> None:
        if self._stop_after_hop:
            self._finish("completed", now)
            return
        if self._gap >= self.params.gap_limit:
            self._finish("gaplimit", now)
            return
        ttl = self.hops[-1].ttl
        if ttl >= self.params.max_ttl:
            self._finish("maxttl", now)
            return
        self.hops.append(_Hop(ttl + 1))
        self._attempt = 1

    def _finish(self, reason: str, now: float) -> None:
        self.stop_reason = reason
        self.ended = now
        self._outstanding = None

    def abort(self, now: float, reason: str = "error") -> None:
        if not self.done:
            self._finish(reason, now)

    def hop_list(self) -> list[dict[str, Any]]:
        return [{"ttl": h.ttl, "replies": list(h.replies)} for h in self.hops if h.replies]


@dataclass(frozen=True)
class PingParams:
    count: int = 4
    interval: float = 1.0
    wait: float = 2.0

    def __post_init__(self) -> None:
        if not 1 <= self.count <= 100:
            raise ValueError("count in 1..100")
        if not 0.01 <= self.interval <= 60 or not 0.05 <= self.wait <= 30:
            raise ValueError("interval in 0.01..60 s, wait in 0.05..30 s")

    def as_dict(self) -> dict[str, Any]:
        return {"count": self.count, "interval": self.interval, "wait": self.wait}


class PingPlan:
    """``count`` probes ``interval`` apart; each waits ``wait`` for its answer."""

    def __init__(self, params: PingParams, now: float) -> None:
        self.params = params
        self.started = now
        self.ended: float | None = None
        self.sent_count = 0
        self.rtts: list[float] = []
        self._waiting: dict[int, float] = {}  # seq -> deadline
        self._next_at = now
        self.ignored = 0
        self.error: str | None = None

    @property
    def done(self) -> bool:
        return self.ended is not None

    def next_probe(self, now: float) -> int | None:
        if self.done or self.sent_count >= self.params.count or now < self._next_at:
            return None
        return self.sent_count

    def sent(self, seq: int, now: float) -> None:
        self.sent_count += 1
        self._waiting[seq] = now + self.params.wait
        self._next_at = now + self.params.interval

    def send_failed(self, now: float, error: str) -> None:
        self.error = error
        self.ended = now

    def reply(self, seq: int, rtt_ms: float, now: float) -> bool:
        if self._waiting.pop(seq, None) is None:
            self.ignored += 1
            return False
        self.rtts.append(round(rtt_ms, 3))
        self._check_done(now)
        return True

    def deadline(self) -> float | None:
        if self.done:
            return None
        times = list(self._waiting.values())
        if self.sent_count < self.params.count:
            times.append(self._next_at)
        return min(times) if times else None

    def expire(self, now: float) -> None:
        for seq in [s for s, d in self._waiting.items() if d <= now]:
            del self._waiting[seq]
        self._check_done(now)

    def _check_done(self, now: float) -> None:
        if self.sent_count >= self.params.count and not self._waiting:
            self.ended = now
