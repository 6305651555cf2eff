"""Route audit (issue 8 item 5d): end-to-end probes catch a next hop whose metric lies.

The metric is not signed, so a neighbour can advertise metric 0, attract traffic and drop it.
This sans-IO state machine decides which destinations in use to probe and when (a bounded rate),
takes the results (RTT, or None for a lost probe) and demotes the next hop the probe went
through, for that destination only, when the measured path is far worse than advertised
(RTT/2 against the advertised one-way metric, with generous slack) or drops the probes
``audit_strikes`` times in a row. The node sends the probes (cheap encrypted end-to-end
packets) and feeds :meth:`RouteAudit.note_use` with destinations it forwards to.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from hyphal.routing.router import Router
from hyphal.routing.types import Action


@dataclass(frozen=True, slots=True)
class SendProbe:
    """Send one end-to-end probe to the destination owning ``prefix64``, keyed ``public_key``."""

    prefix64: bytes
    public_key: bytes


class _Tracked:
    __slots__ = ("advertised", "next_probe", "peer", "sent_at", "strikes", "used_at")

    def __init__(self, used_at: float) -> None:
        self.used_at = used_at
        self.next_probe = used_at
        self.sent_at: float | None = None  # an outstanding probe
        self.peer = -1  # next hop the outstanding probe (and the strikes) went through
        self.advertised = 0.0  # one-way seconds the route claimed when the probe left
        self.strikes = 0


class RouteAudit:
    def __init__(self, router: Router) -> None:
        self._router = router
        self._params = router.params
        self._tracked: OrderedDict[bytes, _Tracked] = OrderedDict()
        self._next_round = 0.0

    def note_use(self, prefix64: bytes, now: float) -> None:
        """Traffic went to ``prefix64``: keep auditing its route for a while."""
        tracked = self._tracked.get(prefix64)
        if tracked is None:
            if len(self._tracked) >= self._params.audit_max_tracked:
                self._tracked.popitem(last=False)
            self._tracked[prefix64] = _Tracked(now)
        else:
            tracked.used_at = now
            self._tracked.move_to_end(prefix64)

    def next_deadline(self) -> float:
        deadline = self._next_round
        timeout = self._params.audit_timeout
        for tracked in self._tracked.values():
            if tracked.sent_at is not None:
                deadline = min(deadline, tracked.sent_at + timeout)
        return deadline

    def on_timer(self, now: float) -> list[SendProbe | Action]:
        """Time out lost probes (which may demote) and, once per interval, start new probes."""
        params = self._params
        out: list[SendProbe | Action] = []
        for prefix, tracked in list(self._tracked.items()):
            if tracked.sent_at is not None and now >= tracked.sent_at + params.audit_timeout:
                out += self.on_probe_result(prefix, None, now)
        if now < self._next_round:
            return out
        self._next_round = now + params.audit_interval
        for prefix in [
            p for p, t in self._tracked.items() if now - t.used_at > params.audit_use_window
        ]:
            del self._tracked[prefix]
        router = self._router
        budget = params.audit_probes_per_round
        for prefix, tracked in self._tracked.items():
            if budget == 0:
                break
            if tracked.sent_at is not None or now < tracked.next_probe:
                continue
            route = router.selected_route(prefix)
            key = router.route_public_key(prefix)
            if route is None or key is None:
                continue
            tracked.sent_at = now
            tracked.next_probe = now + params.audit_probe_every
            if route.next_hop != tracked.peer:
                tracked.peer, tracked.strikes = route.next_hop, 0
            tracked.advertised = route.metric * params.metric_unit
            out.append(SendProbe(prefix, key))
            budget -= 1
        return out

    def on_probe_result(self, prefix64: bytes, rtt: float | None, now: float) -> list[Action]:
        """The probe to ``prefix64`` came back after ``rtt`` seconds, or was lost (None)."""
        tracked = self._tracked.get(prefix64)
        if tracked is None or tracked.sent_at is None:
            return []  # unsolicited or late: ignored
        tracked.sent_at = None
        params = self._params
        bad = (
            rtt is None
            or rtt / 2 > params.audit_slack_rel * tracked.advertised + params.audit_slack_abs
        )
        if not bad:
            tracked.strikes = 0
            return []
        tracked.strikes += 1
        if tracked.strikes < params.audit_strikes:
            return []
        tracked.strikes = 0
        return self._router.demote(prefix64, tracked.peer, now + params.audit_demotion, now)
