"""Reconnect delays: exponential backoff with full jitter, reset after a link that held."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delay before the next dial attempt: random in [base/2, min(cap, base * 2**failures)]."""

    base: float = 0.25
    cap: float = 30.0
    failures: int = 0
    rng: random.Random = field(default_factory=random.Random)
    # A larger cap while the failure is one no retry fixes (wrong network key, pinned key...)
    slow_cap: float | None = None

    def next_delay(self) -> float:
        cap = max(self.cap, self.slow_cap) if self.slow_cap is not None else self.cap
        ceiling = min(cap, self.base * (2**self.failures))
        self.failures = min(self.failures + 1, 32)
        return self.rng.uniform(self.base / 2, max(self.base / 2, ceiling))

    def reset(self) -> None:
        self.failures = 0
