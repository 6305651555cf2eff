"""Repeated link failures, logged once and then summarised (sans-IO: the clock is injected).

A peer with the wrong network key fails on every retry, on both ends, forever. The first failure
of a kind for a subject (an endpoint we dial, or a host that dials us) is worth a WARNING that
says what to do; after that the same failure is worth one "still failing, N attempts since ..."
line at most every ``interval`` seconds. A success clears the subject, and says how many
attempts failed before it. Subjects are bounded (least recently failed evicted first).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from enum import Enum

SUMMARY_INTERVAL = 300.0
MAX_SUBJECTS = 1024


class Verdict(Enum):
    """What to log for one failure."""

    FIRST = "first"  # log in full, with what to do
    SUMMARY = "summary"  # log "still failing: N attempts since ..."
    QUIET = "quiet"  # already said recently: debug at most


@dataclass
class _Streak:
    first: float  # clock reading of the first failure
    first_wall: float  # wall time of the first failure, for the summary's "since"
    count: int = 0
    since_summary: int = 0  # failures since the last line logged
    last_logged: float = 0.0


@dataclass(frozen=True)
class Report:
    """One failure's verdict and the streak it belongs to."""

    verdict: Verdict
    count: int  # failures of this kind for this subject, this one included
    since_last_line: int  # failures since the last line logged about the streak
    first_wall: float  # wall time of the first failure of the streak

    @property
    def since_text(self) -> str:
        """``2026-12-02 00:31:35+0000``: when the streak began."""
        return time.strftime("%Y-%m-%d %H:%M:%S%z", time.localtime(self.first_wall))


class FailureLog:
    """Decides, per (subject, kind), whether a failure is logged in full, summarised or quiet."""

    def __init__(
        self,
        clock: Callable[[], float],
        *,
        interval: float = SUMMARY_INTERVAL,
        max_subjects: int = MAX_SUBJECTS,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self._wall = wall_clock
        self.interval = interval
        self.max_subjects = max_subjects
        self._subjects: OrderedDict[Hashable, dict[str, _Streak]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._subjects)

    def failed(self, subject: Hashable, kind: str) -> Report:
        """Note one failure of ``kind`` for ``subject``; say how to log it."""
        now = self._clock()
        streaks = self._subjects.get(subject)
        if streaks is None:
            streaks = self._subjects[subject] = {}
            while len(self._subjects) > self.max_subjects:
                self._subjects.popitem(last=False)
        else:
            self._subjects.move_to_end(subject)
        streak = streaks.get(kind)
        if streak is None:
            if len(streaks) >= 16:  # kinds are a short fixed list; never let one subject grow
                streaks.pop(next(iter(streaks)))
            streak = streaks[kind] = _Streak(now, self._wall())
            streak.count = 1
            streak.last_logged = now
            return Report(Verdict.FIRST, 1, 1, streak.first_wall)
        streak.count += 1
        streak.since_summary += 1
        if now - streak.last_logged >= self.interval:
            since, streak.since_summary = streak.since_summary, 0
            streak.last_logged = now
            return Report(Verdict.SUMMARY, streak.count, since, streak.first_wall)
        return Report(Verdict.QUIET, streak.count, streak.since_summary, streak.first_wall)

    def succeeded(self, subject: Hashable) -> int:
        """Forget ``subject``'s failures; return how many there were (0: nothing to say)."""
        streaks = self._subjects.pop(subject, None)
        if not streaks:
            return 0
        return sum(s.count for s in streaks.values())

    def failures(self, subject: Hashable) -> int:
        """Failures of every kind noted for ``subject`` since its last success."""
        streaks = self._subjects.get(subject)
        return sum(s.count for s in streaks.values()) if streaks else 0
