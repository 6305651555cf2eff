"""Issue 8 item 4: a flood of distinct seqno requests costs O(1) per request and is not relayed
without bound toward the origin."""

from __future__ import annotations

from test_routing_core import add_measured_neighbour
from test_routing_security import PEER, deliver, signed_update, usable_router

from hyphal.routing import DEFAULT_PARAMS, Router, SendControl
from hyphal.routing.requests import ExpiringSet
from hyphal.routing.types import Action
from hyphal.wire.control import SeqnoRequest, Update, decode_payload, encode_payload

FLOODER = 9
REQUESTS = 20_000
PER_PAYLOAD = 1000  # 52 bytes each: within one CONTROL payload's 64 KiB


def flood_router(router: Router, flood: list[SeqnoRequest], now: float) -> list[Action]:
    """Deliver ``flood`` from FLOODER in as many CONTROL payloads as it takes, all at ``now``."""
    actions: list[Action] = []
    for start in range(0, len(flood), PER_PAYLOAD):
        payload = encode_payload(flood[start : start + PER_PAYLOAD])
        actions += router.handle_control(FLOODER, payload, now)
    return actions


def test_distinct_request_flood_is_bounded() -> None:
    router = usable_router()
    update = signed_update(1)
    deliver(router, update)  # the prefix's route goes via PEER, toward the origin
    add_measured_neighbour(router, FLOODER)
    assert router.next_hop(update.prefix64) == PEER
    flood = [
        SeqnoRequest(update.prefix64, seqno, 64, update.router_id)
        for seqno in range(1, REQUESTS + 1)
    ]  # all newer than the installed seqno 0
    actions = flood_router(router, flood, 1.0)
    relayed = [
        t
        for a in actions
        if isinstance(a, SendControl) and a.peer == PEER
        for t in decode_payload(a.payload)
        if isinstance(t, SeqnoRequest)
    ]
    burst = DEFAULT_PARAMS.seqno_forward_burst
    assert router.counters["seqno_requests_received"] == REQUESTS
    assert router.counters["seqno_requests_forwarded"] == len(relayed) == burst
    assert router.counters["seqno_requests_over_budget"] == REQUESTS - burst
    sent, seen, retrying = router.requests.sizes()
    assert seen == burst and sent == 0 and retrying == 0


def test_forwarding_budget_refills_with_time() -> None:
    router = usable_router()
    update = signed_update(1)
    deliver(router, update)
    add_measured_neighbour(router, FLOODER)
    burst = DEFAULT_PARAMS.seqno_forward_burst

    def flood(first: int, now: float) -> None:
        requests = [
            SeqnoRequest(update.prefix64, seqno, 64, update.router_id)
            for seqno in range(first, first + burst)
        ]
        router.handle_control(FLOODER, encode_payload(requests), now)

    flood(1, 1.0)
    flood(1 + burst, 1.0)
    assert router.counters["seqno_requests_forwarded"] == burst
    flood(1 + 2 * burst, 1.0 + burst / DEFAULT_PARAMS.seqno_forward_rate)
    assert router.counters["seqno_requests_forwarded"] == 2 * burst


def test_expiring_set_evicts_oldest_and_expired_in_constant_work() -> None:
    keys: ExpiringSet[int] = ExpiringSet(lifetime=1.0, size=3)
    for key in range(5):
        keys.add(key, 0.0)
    assert len(keys) == 3
    assert not keys.recent(0, 0.1) and keys.recent(4, 0.1)
    keys.add(99, 2.0)  # everything older than the lifetime leaves from the front
    assert len(keys) == 1 and keys.recent(99, 2.5) and not keys.recent(99, 3.0)


def test_requests_our_route_satisfies_get_a_bounded_number_of_updates() -> None:
    # Each such request is answered with an update (RFC 8966 3.8.1.2), so without a budget a
    # 52-byte request buys a 123-byte update, as often as the neighbour likes.
    router = usable_router()
    update = signed_update(1, seqno=5)
    deliver(router, update)
    add_measured_neighbour(router, FLOODER)
    flood = [SeqnoRequest(update.prefix64, 5, 64, update.router_id)] * REQUESTS
    actions = flood_router(router, flood, 1.0)
    answers = [
        t
        for a in actions
        if isinstance(a, SendControl) and a.peer == FLOODER
        for t in decode_payload(a.payload)
        if isinstance(t, Update) and t.prefix64 == update.prefix64
    ]
    burst = DEFAULT_PARAMS.answer_burst
    assert len(answers) == burst
    assert router.counters["seqno_answers_over_budget"] == REQUESTS - burst
    router.handle_control(FLOODER, encode_payload(flood[:10]), 1.01)
    assert router.counters["seqno_answers_over_budget"] == REQUESTS - burst + 5  # 512/s refill
