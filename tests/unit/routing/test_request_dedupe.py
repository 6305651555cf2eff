"""A relay drops a copy of a seqno request it forwarded within ``seqno_request_dedupe`` only if
the copy would go the same way: once its route has moved, the copy follows the new route.

Issue 14: after the busiest node's silent death, the first copy of a request often goes into a
neighbour that is about to notice the death (or is starved itself) and is lost there. Deduping
every later copy by (prefix, router id, seqno) alone held the request back until the asker's
retry a second later, well after the relay had found a working route to the origin.
"""

from __future__ import annotations

from test_routing_core import add_measured_neighbour, sent_to
from test_routing_security import PEER, signed_update, usable_router

from hyphal.routing import INFINITY, Router
from hyphal.wire.control import SeqnoRequest, Update, encode_payload

OTHER = 8
ASKER = 9
ORIGIN = 5


def relay() -> tuple[Router, Update]:
    """Routes to ORIGIN via PEER (selected) and OTHER (worse, so unfeasible once PEER's goes)."""
    router = usable_router()
    for peer in (OTHER, ASKER):
        add_measured_neighbour(router, peer)
    update = signed_update(ORIGIN, metric=100)
    router.handle_control(PEER, encode_payload([update]), 0.3)
    router.handle_control(OTHER, encode_payload([signed_update(ORIGIN, metric=900)]), 0.3)
    assert router.next_hop(update.prefix64) == PEER
    return router, update


def test_a_copy_along_the_same_route_is_dropped() -> None:
    router, update = relay()
    request = encode_payload([SeqnoRequest(update.prefix64, 1, 64, update.router_id)])
    assert len(sent_to(router.handle_control(ASKER, request, 0.4), PEER, SeqnoRequest)) == 1
    assert sent_to(router.handle_control(ASKER, request, 0.5), PEER, SeqnoRequest) == []
    assert router.counters["seqno_requests_deduped"] == 1


def test_a_copy_follows_the_route_once_it_moved() -> None:
    router, update = relay()
    request = encode_payload([SeqnoRequest(update.prefix64, 1, 64, update.router_id)])
    assert len(sent_to(router.handle_control(ASKER, request, 0.4), PEER, SeqnoRequest)) == 1
    # PEER's route is gone (it was forwarding into a node that died): only OTHER's is left.
    retract = Update(update.prefix64, 0, INFINITY, 3000, 0, update.router_id, b"")
    router.handle_control(PEER, encode_payload([retract]), 0.45)
    assert router.next_hop(update.prefix64) is None
    forwarded = router.counters["seqno_requests_forwarded"]
    again = router.handle_control(ASKER, request, 0.5)  # within the dedupe time
    assert router.counters["seqno_requests_forwarded"] == forwarded + 1
    assert [r.hop_count for r in sent_to(again, OTHER, SeqnoRequest)] == [63]
    assert router.counters["seqno_requests_deduped"] == 0
