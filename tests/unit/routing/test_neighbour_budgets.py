"""Issue 8 item 3: replies to a neighbour and TLVs processed for it are bounded per neighbour."""

from __future__ import annotations

from dataclasses import replace

from test_routing_security import PEER, usable_router

from hyphal.routing import DEFAULT_PARAMS, SendControl
from hyphal.routing.types import Action
from hyphal.sim.routernet import make_router
from hyphal.wire.control import IHU, Hello, SeqnoRequest, Update, decode_payload, encode_payload

COUNT = 1000


def replies(actions: list[Action]) -> list[object]:
    return [
        t
        for a in actions
        if isinstance(a, SendControl) and a.peer == PEER
        for t in decode_payload(a.payload)
        if isinstance(t, IHU | Update)
    ]


def test_hello_flood_gets_a_bounded_number_of_ihus() -> None:
    router = usable_router()
    hellos = [Hello(seqno, 25, seqno) for seqno in range(COUNT)]
    actions = router.handle_control(PEER, encode_payload(hellos), 1.0)
    burst = DEFAULT_PARAMS.reply_burst
    assert router.counters["hellos_received"] == COUNT
    assert len(replies(actions)) == burst
    assert router.counters["replies_over_budget"] == COUNT - burst


def test_stale_router_id_requests_get_a_bounded_number_of_answers() -> None:
    router = usable_router()
    stale = router.public_key + b"\xee" * 8  # our key, not our current router id
    requests = [SeqnoRequest(router.own_prefix64, seqno, 64, stale) for seqno in range(COUNT)]
    actions = router.handle_control(PEER, encode_payload(requests), 1.0)
    burst = DEFAULT_PARAMS.reply_burst
    assert len(replies(actions)) == burst
    assert router.counters["replies_over_budget"] == COUNT - burst
    later = router.handle_control(PEER, encode_payload(requests[:1]), 2.0)
    assert len(replies(later)) == 1  # the budget refills with time


def test_tlvs_beyond_the_budget_are_dropped_not_queued() -> None:
    router = make_router(0, 0.0, replace(DEFAULT_PARAMS, tlv_burst=50, tlv_rate=10.0))
    router.neighbour_up(PEER, 0.0)
    ihus = [IHU(seqno, 25, seqno) for seqno in range(COUNT)]
    router.handle_control(PEER, encode_payload(ihus), 0.0)
    assert router.counters["ihus_received"] == 50
    assert router.counters["tlvs_over_budget"] == COUNT - 50
    router.handle_control(PEER, encode_payload(ihus[:20]), 1.0)  # 10 tokens back after 1 s
    assert router.counters["ihus_received"] == 60
    assert router.counters["tlvs_over_budget"] == COUNT - 50 + 10
