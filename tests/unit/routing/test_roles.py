"""Issue 10, roles: a client neighbour gives us only its own prefixes; a client router passes on
nothing it learned; even a lying client is never a transit hop."""

from __future__ import annotations

from collections.abc import Iterable

import pytest
from test_delegated_prefixes import delegated_update, delegation_for, owned
from test_routing_security import PEER, deliver, signed_update

from hyphal.identity import prefix64_for_public_key
from hyphal.routing import Router, SendControl
from hyphal.routing.types import Action
from hyphal.sim.routernet import RouterNet, identity, make_router
from hyphal.wire.control import IHU, Hello, SeqnoRequest, Update, decode_payload, encode_payload

CLIENT = 1  # identity of the client neighbour PEER


def router_with_client(client: int = CLIENT) -> Router:
    """Router 0 with neighbour PEER up and measured, PEER having declared the client role."""
    router = make_router(0)
    actions = router.neighbour_up(PEER, 0.0, identity(client).public_key)
    hello = next(
        t
        for a in actions
        if isinstance(a, SendControl)
        for t in decode_payload(a.payload)
        if isinstance(t, Hello)
    )
    router.handle_control(PEER, encode_payload([IHU(hello.seqno, 25, hello.timestamp)]), 0.002)
    return router


def test_client_neighbours_own_prefix_is_accepted() -> None:
    router = router_with_client()
    own = signed_update(CLIENT)
    deliver(router, own)
    assert router.next_hop(own.prefix64) == PEER
    assert router.counters["updates_refused_client"] == 0


def test_client_neighbour_relaying_others_routes_is_refused() -> None:
    router = router_with_client()
    relayed = [signed_update(index, metric=0) for index in (2, 3, 4)]  # genuine, signed by others
    deliver(router, signed_update(CLIENT), *relayed)
    assert router.counters["updates_refused_client"] == 3
    assert [r.prefix64 for r in router.selected_routes()] == [
        prefix64_for_public_key(identity(CLIENT).public_key)
    ]
    for update in relayed:
        assert router.next_hop(update.prefix64) is None


def test_prefix_delegated_to_the_client_is_accepted_one_delegated_to_another_is_not() -> None:
    router = router_with_client()
    deliver(router, delegated_update(CLIENT, delegation_for(identity(CLIENT).public_key)))
    assert router.next_hop(owned()) == PEER
    other = router_with_client()
    deliver(other, delegated_update(5, delegation_for(identity(5).public_key)))  # relayed by PEER
    assert other.next_hop(owned()) is None
    assert other.counters["updates_refused_client"] == 1


def test_peer_neighbour_may_relay_others_routes() -> None:
    """Control: the same updates from a neighbour without the client bit are taken."""
    router = make_router(0)
    actions = router.neighbour_up(PEER, 0.0)
    hello = next(
        t
        for a in actions
        if isinstance(a, SendControl)
        for t in decode_payload(a.payload)
        if isinstance(t, Hello)
    )
    router.handle_control(PEER, encode_payload([IHU(hello.seqno, 25, hello.timestamp)]), 0.002)
    deliver(router, signed_update(2), signed_update(3))
    assert len(router.selected_routes()) == 2
    assert router.counters["updates_refused_client"] == 0


def test_client_key_must_be_a_key() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        make_router(0).neighbour_up(PEER, 0.0, b"short")


def sent_prefixes(actions: Iterable[Action]) -> set[bytes]:
    return {
        tlv.prefix64
        for a in actions
        if isinstance(a, SendControl)
        for tlv in decode_payload(a.payload)
        if isinstance(tlv, Update | SeqnoRequest)
    }


class Recording(RouterNet):
    """Records the prefix of every Update and SeqnoRequest each node sends."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: dict[int, set[bytes]] = {}

    def _apply(self, src: int, actions: Iterable[Action]) -> None:
        actions = list(actions)
        self.sent.setdefault(src, set()).update(
            tlv.prefix64
            for a in actions
            if isinstance(a, SendControl)
            for tlv in decode_payload(a.payload)
            if isinstance(tlv, Update)
        )
        super()._apply(src, actions)


def test_client_router_never_readvertises_and_is_no_transit() -> None:
    net = Recording()
    net.add_node(1, client=True)
    net.link(0, 1, 0.002)
    net.link(1, 2, 0.002)
    net.link(2, 3, 0.002)
    net.run_for(5.0)
    client = net.node(1)
    assert net.sent[1] == {client.own_prefix64}
    assert client.counters["updates_sent"] > 0
    # the client reaches everyone and everyone reaches the client ...
    for other in (0, 2, 3):
        assert net.path(1, other) is not None and net.path(other, 1) is not None
    # ... but 0 and the far side cannot reach each other: the only path crosses the client
    assert net.path(0, 2) is None and net.path(3, 0) is None
    assert net.node(0).counters["updates_refused_client"] == 0  # an honest client sends none


def test_client_router_sends_no_seqno_answers_or_forwards_for_others() -> None:
    net = RouterNet()
    net.add_node(1, client=True)
    net.link(0, 1, 0.002)
    net.link(1, 2, 0.002)
    net.run_for(3.0)
    client = net.node(1)
    target = net.prefix(2)
    router_id = net.node(2).router_id
    # 0 asks the client for 2's prefix: a peer would answer (or forward towards 2)
    for seqno in (0, 50):
        actions = client.handle_control(
            0, encode_payload([SeqnoRequest(target, seqno, 16, router_id)]), net.now
        )
        assert target not in sent_prefixes(actions)


def test_lying_client_is_still_no_transit_and_is_counted() -> None:
    """Node 1 declares the client bit but runs a relaying router that re-advertises others."""
    net = RouterNet()
    net.clients.add(1)
    net.routers[1] = make_router(1, net.now, net.params, net.verifier, net.seed)  # not a client
    net.link(0, 1, 0.001)
    net.link(1, 2, 0.001)
    net.link(0, 2, 0.040)  # the honest path is 40 times slower than the lie
    net.run_for(5.0)
    assert net.path(0, 2) == [0, 2] and net.path(2, 0) == [2, 0]
    assert net.path(0, 1) == [0, 1] and net.path(2, 1) == [2, 1]
    assert net.node(0).counters["updates_refused_client"] > 0
    assert net.node(2).counters["updates_refused_client"] > 0
