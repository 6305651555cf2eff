"""Issue 8 item 5d: end-to-end probes demote a next hop that lies about its metric."""

from __future__ import annotations

import heapq
import random
from dataclasses import replace

from test_routing_security import signed_update

from hyphal.routing import Router, SendControl
from hyphal.routing.audit import RouteAudit, SendProbe
from hyphal.routing.params import DEFAULT_PARAMS
from hyphal.sim.routernet import make_router
from hyphal.wire.control import IHU, Hello, SeqnoRequest, decode_payload, encode_payload

LIAR, HONEST = 1, 2
DEST = 5  # identity announcing the audited destination
HONEST_ONE_WAY = 0.011  # seconds: advertised 100 units + the 1 ms link floor


def router_with_peers(*peers: int) -> Router:
    # Updates go out at once (no coalescing window): these tests rely on the feasibility
    # distance the first route's advertisement sets, in the same call.
    router = make_router(0, params=replace(DEFAULT_PARAMS, update_coalesce=0.0))
    for peer in peers:
        actions = router.neighbour_up(peer, 0.0)
        hello = next(
            t
            for a in actions
            if isinstance(a, SendControl)
            for t in decode_payload(a.payload)
            if isinstance(t, Hello)
        )
        router.handle_control(peer, encode_payload([IHU(hello.seqno, 25, hello.timestamp)]), 0.002)
    return router


def run_probes(
    router: Router, audit: RouteAudit, rounds_until: float, rng: random.Random, loss: float = 0.0
) -> int:
    """Probes through the liar vanish; through the honest hop they return with jittered RTT
    (up to 30 % over the advertised latency plus exponential queueing, mean 2 ms) or are lost
    with probability ``loss``. Returns how many probes were sent."""
    sent = 0
    prefix = signed_update(DEST).prefix64
    pending: list[tuple[float, int]] = []
    now = 0.01
    while now < rounds_until:
        now = min(audit.next_deadline(), pending[0][0] if pending else float("inf"))
        while pending and pending[0][0] <= now:
            heapq.heappop(pending)
            audit.on_probe_result(
                prefix,
                2 * HONEST_ONE_WAY * (1 + 0.3 * rng.random()) + rng.expovariate(1 / 0.002),
                now,
            )
        audit.note_use(prefix, now)
        for out in audit.on_timer(now):
            if isinstance(out, SendControl):  # the origin answers seqno requests at once
                for tlv in decode_payload(out.payload):
                    if isinstance(tlv, SeqnoRequest):
                        metric = 0 if out.peer == LIAR else 100
                        update = signed_update(DEST, seqno=tlv.seqno, metric=metric)
                        router.handle_control(out.peer, encode_payload([update]), now)
            if isinstance(out, SendProbe):
                sent += 1
                assert out.public_key == router.route_public_key(prefix)
                if router.next_hop(prefix) == HONEST and rng.random() >= loss:
                    heapq.heappush(pending, (now + 0.03, 0))
    return sent


def test_liar_is_demoted_and_the_honest_route_takes_over() -> None:
    router = router_with_peers(LIAR, HONEST)
    liar = signed_update(DEST, metric=0)
    router.handle_control(LIAR, encode_payload([liar]), 0.01)
    router.handle_control(HONEST, encode_payload([signed_update(DEST, metric=100)]), 0.01)
    assert router.next_hop(liar.prefix64) == LIAR  # metric 0 wins
    audit = RouteAudit(router)
    run_probes(router, audit, 12.0, random.Random(1))
    assert router.next_hop(liar.prefix64) == HONEST
    assert router.counters["routes_demoted"] == 1
    assert router.counters["seqno_requests_sent"] >= 1  # made the honest route feasible
    run_probes(router, audit, 60.0, random.Random(2))  # and the honest route stays
    assert router.next_hop(liar.prefix64) == HONEST
    assert router.counters["routes_demoted"] == 1


def test_honest_route_is_never_demoted_over_1000_rounds() -> None:
    router = router_with_peers(HONEST)
    update = signed_update(DEST, metric=100)
    router.handle_control(HONEST, encode_payload([update]), 0.01)
    audit = RouteAudit(router)
    sent = run_probes(
        router, audit, 1000 * router.params.audit_probe_every, random.Random(3), loss=0.01
    )
    assert sent >= 1000
    assert router.counters["routes_demoted"] == 0
    assert router.next_hop(update.prefix64) == HONEST


def test_demoted_route_stays_in_use_without_an_alternative() -> None:
    router = router_with_peers(LIAR)
    update = signed_update(DEST, metric=0)
    router.handle_control(LIAR, encode_payload([update]), 0.01)
    router.demote(update.prefix64, LIAR, 100.0, 0.02)
    assert router.counters["routes_demoted"] == 1
    assert router.next_hop(update.prefix64) == LIAR


def test_demotion_expires() -> None:
    router = router_with_peers(LIAR, HONEST)
    liar = signed_update(DEST, metric=0)
    router.handle_control(LIAR, encode_payload([liar]), 0.01)
    router.handle_control(HONEST, encode_payload([signed_update(DEST, metric=100)]), 0.01)
    router.demote(liar.prefix64, LIAR, 0.5, 0.02)
    assert router.next_hop(liar.prefix64) == LIAR  # honest one unfeasible until a new seqno
    for peer, metric in ((LIAR, 0), (HONEST, 100)):
        update = signed_update(DEST, seqno=1, metric=metric)
        router.handle_control(peer, encode_payload([update]), 0.03)
    assert router.next_hop(liar.prefix64) == HONEST
    assert router.next_deadline() <= 0.5
    router.on_timer(0.5)
    assert router.next_hop(liar.prefix64) == LIAR
