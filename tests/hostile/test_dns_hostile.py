"""A DNS query flood from one mesh member against a real daemon ("A-B A-C", TUN on): B floods
A's server over the overlay; A answers B no faster than its per-source rate limit, counts the
rest, and keeps answering C."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from hyphal.testing.netlab import Topology, has_route

pytestmark = pytest.mark.netns

FLOOD = Path(__file__).resolve().parent / "tools" / "dns_flood.py"
SECONDS = 3.0
RATE, BURST = 20, 40  # hyphal.dns.ratelimit.RateLimits defaults


def test_query_flood_is_rate_limited_and_others_are_served(
    topology: Callable[..., Topology],
) -> None:
    topo = topology("A-B A-C", tun=True)
    a, b, c = topo.node("A"), topo.node("B"), topo.node("C")
    a.extra_args = [*a.extra_args, "--name", "a"]
    topo.start()
    topo.wait_until(lambda: has_route(b, a) and has_route(c, a), timeout=30)

    flood = b.popen(
        [
            sys.executable,
            str(FLOOD),
            str(a.address),
            "53",
            str(SECONDS),
            "3000",
            "a.hyphal.internal",
        ],
        "dns-flood",
    )
    time.sleep(0.5)
    answered = 0
    for _ in range(5):
        out = c.exec(["dig", "+time=1", "+tries=1", f"@{a.address}", "a.hyphal.internal", "AAAA"])
        answered += str(a.address) in out.stdout and "status: NOERROR" in out.stdout
        time.sleep(0.2)
    flood.wait(SECONDS + 20)
    summary = json.loads((b.dir / "dns-flood").read_text().strip().splitlines()[-1])
    print(f"dns flood from one source: {summary}")

    assert answered == 5  # C is served throughout
    assert summary["sent"] > 1000, summary  # it really was a flood
    assert summary["full"] <= BURST + RATE * (summary["seconds"] + 1), summary
    assert summary["slipped"] > 0  # some of the rest got a TC nudge towards TCP
    counters = a.get("/api/v1/dns")["counters"]
    print(f"A's DNS counters: {counters}")
    # Many flood packets die on the way (B's TUN and link queues drop under the flood); of
    # those that reach A, all beyond the bucket are refused and counted.
    limited = counters["rate-limited"] + counters["rate-limited-slip"]
    assert limited > 0 and limited + summary["full"] >= counters["queries"] - 10, counters
    assert a.running and a.get("/api/v1/admin")["nodeIp"] == str(a.address)
