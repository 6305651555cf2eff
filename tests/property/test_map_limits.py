"""Property tests: no sequence of targets and times makes the mapping limiter exceed its caps.

A greedy sender asks to send to whatever target hypothesis picks, as often as it likes; every
packet the limiter lets through is logged. Then, for every window of the log: the worker's
total stays within ``pps * window + burst``, every /24 (/48) within ``prefix_pps * window +
prefix_burst``; no two measurements of one prefix overlap; at most ``max_concurrent`` run;
no target is measured again inside its cooldown; the tables never grow past ``max_tracked``.
"""

from __future__ import annotations

from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from hyphal.mapping.limits import Limiter, Limits, prefix_key

EPS = 1e-6
# few prefixes so collisions are common: three /24s, two /48s, addresses inside them
TARGETS = st.sampled_from(
    [f"198.51.100.{i}" for i in (1, 2, 77)]
    + [f"203.0.113.{i}" for i in (5, 9)]
    + ["192.0.2.1"]
    + ["2001:db8:1::1", "2001:db8:1:ffff::9", "2001:db8:2::1", "::ffff:198.51.100.3"]
)
LIMITS = st.builds(
    Limits,
    pps=st.floats(1, 200),
    burst=st.floats(1, 20),
    prefix_pps=st.floats(0.01, 1),
    prefix_burst=st.floats(1, 5),
    cooldown=st.floats(0, 50),
    max_concurrent=st.integers(1, 4),
    max_tracked=st.integers(2, 8),
)
STEP = st.tuples(
    st.sampled_from(["start", "send", "send", "send", "finish"]),
    TARGETS,
    st.floats(0, 3),  # time advance
)


def _window_ok(times: list[float], rate: float, burst: float) -> bool:
    times = sorted(times)
    for i in range(len(times)):
        for j in range(i, len(times)):
            if j - i + 1 > rate * (times[j] - times[i]) + burst + EPS:
                return False
    return True


@settings(max_examples=300)
@given(LIMITS, st.lists(STEP, max_size=120))
def test_caps_hold_under_any_sequence(limits: Limits, steps: list[tuple[str, str, float]]) -> None:
    limiter = Limiter(limits, 0.0)
    now = 0.0
    sent: list[float] = []
    per_prefix: dict[tuple[int, int], list[float]] = defaultdict(list)
    running: dict[str, float] = {}
    last_end: dict[str, float] = {}
    for action, target, advance in steps:
        now += advance
        if action == "start":
            if limiter.start(target, now) is None:
                key = prefix_key(target, limits)
                assert all(prefix_key(t, limits) != key for t in running)
                assert len(running) < limits.max_concurrent
                assert now >= last_end.get(target, -1e9) + limits.cooldown - EPS
                running[target] = now
        elif action == "finish":
            if target in running:
                limiter.finish(target, now)
                del running[target]
                last_end[target] = now
        else:
            # greedy: keep sending while allowed, at this instant and at ready_at
            for _ in range(3):
                if limiter.try_send(target, now):
                    assert target in running
                    sent.append(now)
                    per_prefix[prefix_key(target, limits)].append(now)
                else:
                    ready = limiter.ready_at(target, now)
                    assert ready >= now
        assert limiter.tracked() <= limits.max_tracked
    assert _window_ok(sent, limits.pps, limits.burst)
    for times in per_prefix.values():
        assert _window_ok(times, limits.prefix_pps, limits.prefix_burst)
    assert limiter.sent == len(sent)


@settings(max_examples=100)
@given(st.lists(TARGETS, min_size=1, max_size=40), st.floats(0.01, 2))
def test_a_sender_that_waits_for_ready_at_always_gets_through(
    targets: list[str], gap: float
) -> None:
    """ready_at is honest: at the time it names, the packet is allowed."""
    limits = Limits(pps=5, burst=2, prefix_pps=0.5, prefix_burst=1, cooldown=0, max_concurrent=16)
    limiter = Limiter(limits, 0.0)
    now = 0.0
    for target in targets:
        if limiter.start(target, now) is not None:
            continue
        now = limiter.ready_at(target, now)
        assert limiter.try_send(target, now)
        limiter.finish(target, now)
        now += gap
