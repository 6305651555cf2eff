"""Triggered updates are coalesced: retractions go at once, and so does what ends a starvation (a
newer seqno, a route found again after a loss) unless another such flush went out within
``urgent_update_pace``; other changes of a prefix (its first route included) within
``update_coalesce`` go out once, with the latest state, when the window closes."""

from __future__ import annotations

from test_routing_core import sent_to
from test_routing_security import PEER, deliver, signed_update

from hyphal.routing import INFINITY, Router, SendControl
from hyphal.sim.routernet import make_router
from hyphal.wire.control import IHU, Hello, Update, decode_payload, encode_payload

OTHER = 8
ORIGIN = 5


def two_neighbours() -> Router:
    router = make_router(0, 0.0)
    for peer in (PEER, OTHER):
        for action in router.neighbour_up(peer, 0.0):
            assert isinstance(action, SendControl)
            for tlv in decode_payload(action.payload):
                if isinstance(tlv, Hello):
                    answer = encode_payload([IHU(tlv.seqno, 25, tlv.timestamp)])
                    router.handle_control(peer, answer, 0.002)
    assert all(n.alive for n in router.neighbours())
    return router


def test_changes_within_the_window_go_out_once() -> None:
    router = two_neighbours()
    window = router.params.update_coalesce
    assert window > 0
    # A first route and two improvements within the window: nothing sent yet.
    for at, metric in ((0.01, 1000), (0.012, 500), (0.014, 300)):
        held = router.handle_control(
            PEER, encode_payload([signed_update(ORIGIN, metric=metric)]), at
        )
        assert sent_to(held, OTHER, Update) == []
    assert router.counters["updates_coalesced"] == 2
    due = router.next_deadline()
    assert due <= 0.01 + window + 1e-9
    assert sent_to(router.on_timer(due - 0.001), OTHER, Update) == []
    sent = sent_to(router.on_timer(due), OTHER, Update)
    selected = router.selected_route(sent[0].prefix64) if sent else None
    assert selected is not None and [u.metric for u in sent] == [selected.metric]
    assert router.next_deadline() > due  # nothing held any more


def test_retraction_goes_at_once_and_drops_the_held_change() -> None:
    router = two_neighbours()
    window = router.params.update_coalesce
    router.handle_control(PEER, encode_payload([signed_update(ORIGIN, metric=1000)]), 0.01)
    assert len(sent_to(router.on_timer(0.01 + window), OTHER, Update)) == 1  # advertised
    router.handle_control(PEER, encode_payload([signed_update(ORIGIN, metric=500)]), 0.05)
    retract = Update(
        signed_update(ORIGIN).prefix64, 0, INFINITY, 3000, 0, signed_update(ORIGIN).router_id, b""
    )
    lost = router.handle_control(PEER, encode_payload([retract]), 0.06)
    assert [u.metric for u in sent_to(lost, OTHER, Update)] == [INFINITY]
    later = router.on_timer(0.05 + window)
    assert [u for u in sent_to(later, OTHER, Update) if u.metric < INFINITY] == []


def test_a_newer_seqno_goes_at_once() -> None:
    router = two_neighbours()
    window = router.params.update_coalesce
    router.handle_control(PEER, encode_payload([signed_update(ORIGIN, metric=1000)]), 0.01)
    assert len(sent_to(router.on_timer(0.01 + window), OTHER, Update)) == 1  # advertised
    # The origin answered a seqno request somewhere: its flood is not held at this hop.
    bumped = router.handle_control(
        PEER, encode_payload([signed_update(ORIGIN, seqno=1, metric=1000)]), 0.1
    )
    assert [u.seqno for u in sent_to(bumped, OTHER, Update)] == [1]
    # A metric change under the same seqno is held again.
    held = router.handle_control(
        PEER, encode_payload([signed_update(ORIGIN, seqno=1, metric=500)]), 0.11
    )
    assert sent_to(held, OTHER, Update) == []
    later = sent_to(router.on_timer(0.11 + window), OTHER, Update)
    assert [u.metric for u in later] == [500 + 10]  # plus the link's cost


def test_a_burst_of_newer_seqnos_is_paced_into_one_packet_per_neighbour() -> None:
    router = two_neighbours()
    window, pace = router.params.update_coalesce, router.params.urgent_update_pace
    assert 0 < pace < window
    for origin in (ORIGIN, ORIGIN + 1):
        router.handle_control(PEER, encode_payload([signed_update(origin, metric=1000)]), 0.01)
    assert len(sent_to(router.on_timer(0.01 + window), OTHER, Update)) == 2  # advertised
    first = router.handle_control(
        PEER, encode_payload([signed_update(ORIGIN, seqno=1, metric=1000)]), 0.1
    )
    assert [u.seqno for u in sent_to(first, OTHER, Update)] == [1]  # the first goes at once
    # Two more within the pace wait for it, and then go to each neighbour together.
    for at, origin, seqno in ((0.102, ORIGIN + 1, 1), (0.104, ORIGIN, 2)):
        held = router.handle_control(
            PEER, encode_payload([signed_update(origin, seqno=seqno, metric=1000)]), at
        )
        assert sent_to(held, OTHER, Update) == []
    assert router.next_deadline() <= 0.1 + pace + 1e-9
    due = router.on_timer(0.1 + pace)
    packets = [a for a in due if isinstance(a, SendControl) and a.peer == OTHER]
    assert len(packets) == 1
    assert sorted(u.seqno for u in sent_to(due, OTHER, Update)) == [1, 2]
    assert router.next_deadline() > 0.1 + window


def test_a_route_found_again_after_a_loss_goes_at_once() -> None:
    router = two_neighbours()
    window = router.params.update_coalesce
    update = signed_update(ORIGIN, metric=1000)
    router.handle_control(PEER, encode_payload([update]), 0.01)
    assert len(sent_to(router.on_timer(0.01 + window), OTHER, Update)) == 1
    retract = Update(update.prefix64, 0, INFINITY, 3000, 0, update.router_id, b"")
    router.handle_control(PEER, encode_payload([retract]), 0.1)
    found = router.handle_control(PEER, encode_payload([signed_update(ORIGIN, metric=800)]), 0.2)
    assert [u.metric for u in sent_to(found, OTHER, Update)] == [800 + 10]


def test_lost_before_advertised_sends_nothing() -> None:
    router = two_neighbours()
    update = signed_update(ORIGIN, metric=1000)
    router.handle_control(PEER, encode_payload([update]), 0.01)
    retract = Update(update.prefix64, 0, INFINITY, 3000, 0, update.router_id, b"")
    assert (
        sent_to(router.handle_control(PEER, encode_payload([retract]), 0.012), OTHER, Update) == []
    )
    assert sent_to(router.on_timer(0.01 + router.params.update_coalesce), OTHER, Update) == []


def test_window_zero_sends_every_change() -> None:
    from dataclasses import replace

    from hyphal.routing import DEFAULT_PARAMS

    router = two_neighbours()
    router.params = replace(DEFAULT_PARAMS, update_coalesce=0.0)
    deliver(router, signed_update(ORIGIN, metric=1000), now=0.01)
    again = router.handle_control(PEER, encode_payload([signed_update(ORIGIN, metric=500)]), 0.012)
    assert len(sent_to(again, OTHER, Update)) == 1


def test_first_update_hold_delays_only_a_prefix_never_advertised() -> None:
    from dataclasses import replace

    from hyphal.routing import DEFAULT_PARAMS

    router = two_neighbours()
    hold = 0.1
    router.params = replace(DEFAULT_PARAMS, first_update_hold=hold)
    # A new prefix and an improvement: nothing goes out when the coalescing window closes...
    deliver(router, signed_update(ORIGIN, metric=1000), now=0.01)
    router.handle_control(PEER, encode_payload([signed_update(ORIGIN, metric=300)]), 0.05)
    assert (
        sent_to(router.on_timer(0.01 + router.params.update_coalesce + 0.001), OTHER, Update) == []
    )
    assert router.next_deadline() <= 0.01 + hold + 1e-9
    # ... but one update, with the settled metric, when the hold ends.
    sent = sent_to(router.on_timer(0.01 + hold), OTHER, Update)
    selected = router.selected_route(sent[0].prefix64) if sent else None
    assert selected is not None and [u.metric for u in sent] == [selected.metric]
    # Once advertised, a change waits only for the coalescing window.
    router.handle_control(PEER, encode_payload([signed_update(ORIGIN, metric=100)]), 0.2)
    assert len(sent_to(router.on_timer(0.2 + router.params.update_coalesce), OTHER, Update)) == 1
