"""Triggered updates are coalesced: first routes and retractions go at once, later changes of a
prefix within ``update_coalesce`` go out once, with the latest state, when the window closes."""

from __future__ import annotations

from test_routing_security import PEER, deliver, signed_update

from hyphal.routing import INFINITY, Router, SendControl
from hyphal.routing.types import Action
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


def updates_to(actions: list[Action], peer: int) -> list[Update]:
    return [
        tlv
        for a in actions
        if isinstance(a, SendControl) and a.peer == peer
        for tlv in decode_payload(a.payload)
        if isinstance(tlv, Update)
    ]


def test_first_route_at_once_then_changes_coalesced() -> None:
    router = two_neighbours()
    window = router.params.update_coalesce
    assert window > 0
    first = router.handle_control(PEER, encode_payload([signed_update(ORIGIN, metric=1000)]), 0.01)
    assert [u.metric < INFINITY for u in updates_to(first, OTHER)] == [True]
    # Two improvements within the window: nothing sent yet, then one update with the last.
    for at, metric in ((0.012, 500), (0.014, 300)):
        held = router.handle_control(
            PEER, encode_payload([signed_update(ORIGIN, metric=metric)]), at
        )
        assert updates_to(held, OTHER) == []
    assert router.counters["updates_coalesced"] == 1
    due = router.next_deadline()
    assert due <= 0.012 + window + 1e-9
    assert updates_to(router.on_timer(due - 0.001), OTHER) == []
    sent = updates_to(router.on_timer(due), OTHER)
    selected = router.selected_route(sent[0].prefix64) if sent else None
    assert selected is not None and [u.metric for u in sent] == [selected.metric]
    assert router.next_deadline() > due  # nothing held any more


def test_retraction_goes_at_once_and_drops_the_held_change() -> None:
    router = two_neighbours()
    router.handle_control(PEER, encode_payload([signed_update(ORIGIN, metric=1000)]), 0.01)
    router.handle_control(PEER, encode_payload([signed_update(ORIGIN, metric=500)]), 0.012)
    retract = Update(
        signed_update(ORIGIN).prefix64, 0, INFINITY, 3000, 0, signed_update(ORIGIN).router_id, b""
    )
    lost = router.handle_control(PEER, encode_payload([retract]), 0.013)
    assert [u.metric for u in updates_to(lost, OTHER)] == [INFINITY]
    later = router.on_timer(0.013 + router.params.update_coalesce)
    assert [u for u in updates_to(later, OTHER) if u.metric < INFINITY] == []


def test_window_zero_sends_every_change() -> None:
    from dataclasses import replace

    from hyphal.routing import DEFAULT_PARAMS

    router = two_neighbours()
    router.params = replace(DEFAULT_PARAMS, update_coalesce=0.0)
    deliver(router, signed_update(ORIGIN, metric=1000), now=0.01)
    again = router.handle_control(PEER, encode_payload([signed_update(ORIGIN, metric=500)]), 0.012)
    assert len(updates_to(again, OTHER)) == 1
