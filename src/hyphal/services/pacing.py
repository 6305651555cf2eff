"""When to republish our record after a service change, within membership's per-origin limit.

Every node accepts at most ``origin_burst`` new versions of one origin's record, refilled at
``origin_rate_per_s`` (:mod:`hyphal.membership.params`: 10, then one per 6 s). A version sent
beyond that is refused by our neighbours and only arrives later through anti-entropy, which
would break the drain target (an instance that fails stops getting new flows within its fall
interval plus propagation, <= 5 s). So the services part keeps a mirror of that allowance and:

* coalesces: every change waiting at the same time goes out in one version;
* sends a change that makes an instance *less* available (unhealthy, draining, removed) as soon
  as one token is left: it is urgent;
* holds back a change that makes one *more* available until ``RESERVE + 1`` tokens are left, so
  the reserve is always there for the next failure. A flapping backend therefore comes back at
  most once per ``RESERVE / rate`` seconds, and its failures still go out at once.

Sans-IO: time comes in as ``now``.
"""

from __future__ import annotations

RESERVE = 2


class PublishPacer:
    def __init__(self, rate_per_s: float, burst: int, now: float, spent: int = 1) -> None:
        self.rate = rate_per_s
        self.burst = float(burst)
        self._tokens = max(0.0, float(burst) - spent)  # our first record took one
        self._at = now
        self.reserve = min(RESERVE, max(0, burst - 1))

    def tokens(self, now: float) -> float:
        if now > self._at:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
        return self._tokens

    def need(self, urgent: bool) -> float:
        return 1.0 if urgent else 1.0 + self.reserve

    def ready(self, now: float, urgent: bool) -> bool:
        return self.tokens(now) >= self.need(urgent)

    def when(self, now: float, urgent: bool) -> float:
        """The earliest time a change of this kind may go out."""
        missing = self.need(urgent) - self.tokens(now)
        return now if missing <= 0 else now + missing / self.rate

    def spend(self, now: float) -> None:
        self._tokens = self.tokens(now) - 1.0
