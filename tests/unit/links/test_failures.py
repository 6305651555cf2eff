"""FailureLog: the first failure in full, then a summary at most every interval; bounded."""

from __future__ import annotations

from hyphal.links.failures import FailureLog, Verdict


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_first_then_quiet_then_summary_every_interval() -> None:
    clock = Clock()
    flog = FailureLog(clock, interval=300.0, wall_clock=lambda: 1_765_000_000.0)
    assert flog.failed("peer", "wrong-network-key").verdict is Verdict.FIRST
    verdicts = []
    for _ in range(40):  # every 10 s for 400 s
        clock.now += 10
        verdicts.append(flog.failed("peer", "wrong-network-key"))
    summaries = [r for r in verdicts if r.verdict is Verdict.SUMMARY]
    assert len(summaries) == 1  # at 300 s; the next is due at 600 s
    assert summaries[0].count == 31 and summaries[0].since_last_line == 30
    assert all(r.verdict is Verdict.QUIET for r in verdicts if r not in summaries)
    assert summaries[0].since_text.startswith("2025-12-")
    assert flog.failures("peer") == 41


def test_kinds_and_subjects_are_separate() -> None:
    clock = Clock()
    flog = FailureLog(clock)
    assert flog.failed("a", "connect").verdict is Verdict.FIRST
    assert flog.failed("a", "wrong-network-key").verdict is Verdict.FIRST
    assert flog.failed("b", "connect").verdict is Verdict.FIRST
    assert flog.failed("a", "connect").verdict is Verdict.QUIET


def test_success_clears_and_counts() -> None:
    clock = Clock()
    flog = FailureLog(clock)
    for _ in range(3):
        flog.failed("a", "connect")
    flog.failed("a", "timeout")
    assert flog.succeeded("a") == 4
    assert flog.succeeded("a") == 0
    assert flog.failed("a", "connect").verdict is Verdict.FIRST  # a new streak is news again


def test_subjects_are_bounded_least_recent_first() -> None:
    clock = Clock()
    flog = FailureLog(clock, max_subjects=8)
    for i in range(100):
        flog.failed(("host", i), "bad-magic")
    assert len(flog) == 8
    assert flog.failures(("host", 99)) == 1 and flog.failures(("host", 0)) == 0
    flog.failed(("host", 92), "bad-magic")  # touched: now the most recent
    flog.failed(("host", 100), "bad-magic")
    assert flog.failures(("host", 92)) == 2 and flog.failures(("host", 93)) == 0


def test_kinds_per_subject_are_bounded() -> None:
    flog = FailureLog(Clock())
    for i in range(100):
        flog.failed("a", f"kind-{i}")
    assert flog.failures("a") <= 16
