"""RouteLog: route changes named (node address and key, next hops), one INFO line each, fanned
out to subscribers; nothing while muted (shutdown)."""

from __future__ import annotations

import logging

import pytest

from hyphal.identity import NodeIdentity, prefix64_for_public_key
from hyphal.node.routelog import MAX_SUBSCRIBERS, RouteEvent, RouteLog
from hyphal.routing.metric import INFINITY
from hyphal.routing.types import RouteChange

DEST = NodeIdentity.generate().public_key
OLD = NodeIdentity.generate().public_key
NEW = NodeIdentity.generate().public_key


def change(kind: str, old: int | None, new: int | None, metric: int = 42) -> RouteChange:
    return RouteChange(kind, prefix64_for_public_key(DEST), DEST, old, new, metric, "why")


def test_failover_line_names_node_and_both_next_hops(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="hyphal.routing")
    rlog = RouteLog(wall_clock=lambda: 1234.0)
    rlog.peer_up(1, OLD, "[fe80::1]:9651")
    rlog.peer_up(2, NEW, "10.0.0.2:9651")
    got: list[RouteEvent] = []
    rlog.subscribe(got.append)
    event = rlog.apply(change("failover", 1, 2))
    assert event is not None and got == [event] and event.at == 1234.0
    (record,) = caplog.records
    line = record.getMessage()
    assert line.startswith("failover for node ")
    assert f"{OLD.hex()[:16]}… at [fe80::1]:9651 -> {NEW.hex()[:16]}… at 10.0.0.2:9651" in line
    assert DEST.hex()[:16] in line and line.endswith("metric 42: why")
    fields = record.fields  # type: ignore[attr-defined]
    assert fields["event"] == "route-failover" and fields["node"] == DEST.hex()


def test_lost_and_reachable_lines(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="hyphal.routing")
    rlog = RouteLog()
    rlog.peer_up(3, OLD, "")
    rlog.apply(change("reachable", None, 3))
    rlog.peer_gone(3)
    rlog.apply(change("lost", 3, None, INFINITY))  # reported after the link closed
    rlog.apply(change("lost", 9, None, INFINITY))  # a link never named
    reachable, lost, unknown = (r.getMessage() for r in caplog.records)
    assert "reachable via " + OLD.hex()[:16] + "…, metric 42" in reachable
    assert f"unreachable: was via {OLD.hex()[:16]}…; why" in lost  # still named
    assert "unreachable: was via link 9; why" in unknown


def test_names_of_closed_links_are_bounded() -> None:
    rlog = RouteLog()
    for peer in range(1000):
        rlog.peer_up(peer, OLD, f"h{peer}")
        rlog.peer_gone(peer)
    assert rlog.name(999) == f"{OLD.hex()[:16]}… at h999"
    assert rlog.name(0) == "link 0"


def test_muted_logs_nothing_and_a_bad_subscriber_does_not_stop_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="hyphal.routing")
    rlog = RouteLog()

    def broken(event: RouteEvent) -> None:
        raise RuntimeError("listener bug")

    rlog.subscribe(broken)
    assert rlog.apply(change("reachable", None, 1)) is not None
    assert any("subscriber failed" in r.getMessage() for r in caplog.records)
    rlog.muted = True
    caplog.clear()
    assert rlog.apply(change("lost", 1, None)) is None
    assert caplog.records == []
    for _ in range(MAX_SUBSCRIBERS - 1):
        rlog.subscribe(lambda e: None)
    with pytest.raises(ValueError):
        rlog.subscribe(lambda e: None)
