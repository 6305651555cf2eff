"""Issue 8 item 5c: announcements carry signed freshness; replays and wrapped seqnos are refused."""

from __future__ import annotations

import random

import pytest
from test_routing_security import PEER, signed_update

from hyphal.crypto.signing import XEdDSASigner
from hyphal.routing import DEFAULT_PARAMS, Router, RoutingParams, SendControl
from hyphal.sim.routernet import identity
from hyphal.wire.control import IHU, Hello, SeqnoRequest, decode_payload, encode_payload

EPOCH = 1_800_000_000  # wall clock (Unix s) at monotonic 0 in these tests
WINDOW = DEFAULT_PARAMS.announcement_lifetime + DEFAULT_PARAMS.max_clock_skew


class Clock:
    def __init__(self, offset: float = 0.0) -> None:
        self.now = 0.0
        self.offset = offset

    def wall(self) -> float:
        return EPOCH + self.offset + self.now


def router_with(clock: Clock, index: int = 0) -> Router:
    ident = identity(index)
    return Router(
        ident.public_key,
        XEdDSASigner(ident.private_bytes()),
        DEFAULT_PARAMS,
        clock.now,
        random.Random(index),
        wall_clock=clock.wall,
    )


def measured(router: Router, clock: Clock, peer: int = PEER) -> Router:
    """Bring ``peer`` up and give it an RTT sample so routes through it are selectable."""
    actions = router.neighbour_up(peer, clock.now)
    hello = next(
        t
        for a in actions
        if isinstance(a, SendControl)
        for t in decode_payload(a.payload)
        if isinstance(t, Hello)
    )
    router.handle_control(
        peer, encode_payload([IHU(hello.seqno, 25, hello.timestamp)]), clock.now + 0.002
    )
    return router


def test_replay_after_the_freshness_window_is_refused() -> None:
    recorded = signed_update(1, seqno=3, issued=EPOCH)
    clock = Clock()
    router = measured(router_with(clock), clock)
    router.handle_control(PEER, encode_payload([recorded]), 0.01)
    assert router.route_count() == 1  # fresh: accepted
    late = Clock(offset=WINDOW + 1)
    replayed_to = measured(router_with(late), late)
    replayed_to.handle_control(PEER, encode_payload([recorded]), 0.01)
    assert replayed_to.route_count() == 0
    assert replayed_to.counters["updates_rejected_expired"] == 1
    assert replayed_to.counters["updates_accepted"] == 0


def test_route_lapses_with_its_announcement_despite_refreshes() -> None:
    """A neighbour repeating a recorded announcement keeps the route only until it expires."""
    recorded = signed_update(1, seqno=3, issued=EPOCH)
    clock = Clock(offset=WINDOW - 100)  # 100 s of freshness left
    router = measured(router_with(clock), clock)
    while clock.now < 300:
        clock.now += 0.2
        router.handle_control(PEER, encode_payload([recorded]), clock.now)  # also a keepalive
        router.on_timer(clock.now)
        if clock.now < 99:
            assert router.next_hop(recorded.prefix64) == PEER
    assert router.next_hop(recorded.prefix64) is None
    assert router.counters["routes_expired"] == 1
    assert router.counters["updates_rejected_expired"] > 0


def test_announcement_from_the_future_is_refused() -> None:
    clock = Clock()
    router = measured(router_with(clock), clock)
    ahead = signed_update(1, issued=EPOCH + int(DEFAULT_PARAMS.max_clock_skew) + 5)
    router.handle_control(PEER, encode_payload([ahead]), 0.01)
    assert router.route_count() == 0
    assert router.counters["updates_rejected_future"] == 1
    within = signed_update(1, issued=EPOCH + int(DEFAULT_PARAMS.max_clock_skew) - 5)
    router.handle_control(PEER, encode_payload([within]), 0.02)
    assert router.route_count() == 1


@pytest.mark.parametrize(
    ("old", "new"),
    [(40_000, 5), (40_000, (40_000 + 0x8000) & 0xFFFF)],
    ids=["newer-mod-2^16-but-signed-earlier", "exactly-2^15-away"],
)
def test_wrapped_seqno_is_refused(old: int, new: int) -> None:
    clock = Clock(offset=600)
    router = measured(router_with(clock), clock)
    router.handle_control(
        PEER, encode_payload([signed_update(1, seqno=old, issued=EPOCH + 500)]), 0.01
    )
    assert router.route_count() == 1
    # Both signatures are fresh; the older one only compares newer because the seqno wrapped.
    replay = signed_update(1, seqno=new, issued=EPOCH + 100)
    router.handle_control(PEER, encode_payload([replay]), 0.02)
    assert router.counters["updates_rejected_wrapped"] == 1
    assert [r.seqno for r in router.selected_routes()] == [old]


def test_honest_updates_keep_being_accepted_over_a_long_run() -> None:
    """Origin and relay with skewed clocks, 5 simulated hours (over four freshness windows), the
    first 1.5 under a seqno-request flood forcing a bump a second (more seqnos than one window
    holds): the route never drops and nothing is refused."""
    origin_clock, relay_clock = Clock(), Clock(offset=-200.0)  # within max_clock_skew
    origin = router_with(origin_clock, 1)
    relay = router_with(relay_clock, 2)
    routers = {1: origin, 2: relay}
    clocks = [origin_clock, relay_clock]
    inbox: list[tuple[int, int, bytes]] = []  # (to, from, payload)

    def run(router_index: int, actions: list[object]) -> None:
        for action in actions:
            if isinstance(action, SendControl):
                inbox.append((action.peer, router_index, action.payload))

    now = 0.0
    run(1, origin.neighbour_up(2, now))
    run(2, relay.neighbour_up(1, now))
    seqnos = set()
    next_flood = 1.0
    while now < 5 * 3600:
        while inbox:
            to, frm, payload = inbox.pop(0)
            run(to, routers[to].handle_control(frm, payload, now))
        now = min(
            origin.next_deadline(),
            relay.next_deadline(),
            next_flood if now < 1.5 * 3600 else float("inf"),
        )
        for clock in clocks:
            clock.now = now
        if now >= next_flood:
            next_flood = now + 1.0
            request = SeqnoRequest(
                origin.own_prefix64, (origin.seqno + 1) & 0xFFFF, 64, origin.router_id
            )
            run(1, origin.handle_control(2, encode_payload([request]), now))
        run(1, origin.on_timer(now))
        run(2, relay.on_timer(now))
        if now > 5:
            assert relay.next_hop(origin.own_prefix64) == 1, now
            seqnos.add(relay.selected_routes()[0].seqno)
    assert origin.counters["seqno_bumps"] > 5000  # the flood did force bumps
    assert len(seqnos) > 5000
    rejected = {k: v for k, v in relay.counters.items() if k.startswith("updates_rejected")}
    assert not any(rejected.values()), rejected
    assert relay.counters["routes_expired"] == 0


def test_params_refuse_a_window_spanning_2_15_seqnos() -> None:
    with pytest.raises(ValueError, match="2\\^15"):
        RoutingParams(seqno_bump_min_interval=0.1)
