"""Issue 2 in real namespaces: multi-hop routes and ping, latency-aware selection, failover."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from hyphal.testing.netlab import Topology, next_hop, route_to

pytestmark = pytest.mark.netns


def measure(predicate: Callable[[], bool], timeout: float, interval: float = 0.02) -> float:
    """Seconds until predicate() is true (pytest.fail after timeout)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(interval)
    pytest.fail(f"condition not reached within {timeout} s")


def test_line_learns_routes_via_relay_and_pings(topology: Callable[..., Topology]) -> None:
    topo = topology("A-B B-C", start=True)
    a, b, c = topo.node("A"), topo.node("B"), topo.node("C")
    # Each end learns the other's route on its own schedule: wait for both, not just A's.
    topo.wait_until(
        lambda: next_hop(a, c) == b.public_key and next_hop(c, a) == b.public_key, timeout=20
    )
    assert next_hop(a, b) == b.public_key

    result = a.cli("ping", str(c.address), "-c", "3", "-i", "0.2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("hops=2") == 3
    assert "3 received" in result.stdout

    as_json = a.cli("routes", "selected", "--json")
    assert str(c.subnet) in as_json.stdout


def test_square_prefers_fast_path_and_fails_over_on_sigkill(
    topology: Callable[..., Topology], record_property: Callable[[str, object], None]
) -> None:
    topo = topology("A-B B-D A-D:delay=40", start=True)
    a, b, d = topo.node("A"), topo.node("B"), topo.node("D")
    # The slow direct link costs ~40 ms one way; A-B-D costs a few ms: A must route via B.
    topo.wait_until(lambda: next_hop(a, d) == b.public_key, timeout=20)
    topo.wait_until(
        lambda: (
            any(r["subnet"] == str(d.subnet) for r in a.get("/api/v1/admin/routes/fallback"))
            or route_to(a, d) is not None
        ),
        timeout=10,
    )
    b.kill()  # SIGKILL
    took = measure(lambda: next_hop(a, d) == d.public_key, timeout=10)
    record_property("failover_sigkill_s", round(took, 3))
    print(f"failover after SIGKILL of the relay: {took * 1000:.0f} ms")
    assert took < 3.0
    result = a.cli("ping", str(d.address), "-c", "2", "-i", "0.2")
    assert result.returncode == 0 and "hops=1" in result.stdout, result.stdout


def test_square_fails_over_when_relay_goes_silent(
    topology: Callable[..., Topology], record_property: Callable[[str, object], None]
) -> None:
    topo = topology("A-B B-D A-D:delay=40", start=True)
    a, b, d = topo.node("A"), topo.node("B"), topo.node("D")
    topo.wait_until(lambda: next_hop(a, d) == b.public_key, timeout=20)
    b.stop()  # SIGSTOP: sockets stay open, nothing is sent — only missed hellos reveal it
    try:
        took = measure(lambda: next_hop(a, d) == d.public_key, timeout=10)
    finally:
        b.cont()
    record_property("failover_silent_s", round(took, 3))
    print(f"failover after the relay went silent: {took * 1000:.0f} ms")
    assert took < 3.0


def test_link_cut_is_detected_and_healed(topology: Callable[..., Topology]) -> None:
    topo = topology("A-B B-C A-C:delay=30", start=True)
    a, b, c = topo.node("A"), topo.node("B"), topo.node("C")
    topo.wait_until(lambda: next_hop(a, c) == b.public_key, timeout=20)
    topo.link("B", "C").down()  # a silent cut: no FIN, no RST
    measure(lambda: next_hop(a, c) == c.public_key, timeout=10)
    topo.link("B", "C").up()
    # B redials C with backoff; the fast path comes back by itself.
    topo.wait_until(lambda: next_hop(a, c) == b.public_key, timeout=40)
