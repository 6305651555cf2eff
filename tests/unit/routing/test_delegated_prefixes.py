"""Issue 9 part 1: a router originates more than one prefix, each delegated by its owner's key."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
from test_routing_security import PEER, deliver, signed_update, usable_router

from hyphal.crypto.signing import XEdDSASigner
from hyphal.identity import prefix64_for_public_key
from hyphal.sim.routernet import RouterNet, identity
from hyphal.wire.control import (
    FLAG_SUB_TLVS,
    Delegation,
    SubTlv,
    Update,
    announcement_message,
    delegation_message,
)

OWNER = 20  # an identity outside every test net: it owns the delegated /64


def delegation_for(
    delegate_key: bytes,
    expiry: float | None = None,
    owner: int = OWNER,
    prefix: bytes | None = None,
) -> Delegation:
    ident = identity(owner)
    prefix = prefix64_for_public_key(ident.public_key) if prefix is None else prefix
    expiry_s = int(time.time() + 3600 if expiry is None else expiry)
    signature = XEdDSASigner(ident.private_bytes()).sign(
        delegation_message(prefix, delegate_key, expiry_s)
    )
    return Delegation(ident.public_key, expiry_s, signature)


def owned() -> bytes:
    return prefix64_for_public_key(identity(OWNER).public_key)


def delegated_update(announcer: int, delegation: Delegation | None, seqno: int = 0) -> Update:
    """Identity ``announcer`` announcing the owner's /64, signed by the announcer."""
    ident = identity(announcer)
    router_id = ident.public_key + b"\x01" * 8
    issued = int(time.time())
    signature = XEdDSASigner(ident.private_bytes()).sign(
        announcement_message(owned(), seqno, router_id, issued)
    )
    subs = () if delegation is None else (delegation.sub_tlv(),)
    return Update(
        owned(), seqno, 10, 3000, FLAG_SUB_TLVS if subs else 0, router_id, signature, subs, issued
    )


def chain(length: int) -> RouterNet:
    net = RouterNet()
    for index in range(length):
        net.add_node(index)
    for index in range(length - 1):
        net.link(index, index + 1, 0.005)
    net.run_for(3.0)
    return net


def test_delegated_prefix_is_installed_mesh_wide_and_withdrawn() -> None:
    net = chain(4)
    origin = net.node(0)
    net._apply(0, origin.originate(owned(), delegation_for(origin.public_key), net.now))
    net.run_for(1.0)
    assert origin.originated() == [origin.own_prefix64, owned()]
    for index in (1, 2, 3):
        assert net.node(index).next_hop(owned()) == index - 1
        assert net.node(index).route_public_key(owned()) == origin.public_key
        assert net.node(index).counters["updates_rejected_delegation"] == 0
    assert net.path(3, 0) is not None  # the node's own /64 is still routed
    net._apply(0, origin.withdraw(owned(), net.now))
    net.run_for(1.0)
    for index in (1, 2, 3):
        assert net.node(index).next_hop(owned()) is None
        assert net.node(index).next_hop(origin.own_prefix64) == index - 1


def test_delegated_prefix_survives_refreshes() -> None:
    net = chain(3)
    origin = net.node(0)
    net._apply(0, origin.originate(owned(), delegation_for(origin.public_key), net.now))
    net.run_for(2 * net.params.announcement_refresh + 10)
    assert net.node(2).next_hop(owned()) == 1
    seqnos = {r.prefix64: r.seqno for r in net.node(2).selected_routes()}
    assert seqnos[owned()] >= 2  # refreshed seqnos flowed through the relay


def test_undelegated_prefix_is_refused() -> None:
    router = usable_router()
    deliver(router, delegated_update(1, None))
    assert router.route_count() == 0
    assert router.counters["updates_rejected_key"] == 1


@pytest.mark.parametrize(
    "bad", ["expired", "other-delegate", "not-the-owner", "bad-signature", "short-body"]
)
def test_bad_delegation_is_refused(bad: str) -> None:
    announcer = identity(1).public_key
    delegation = {
        "expired": lambda: delegation_for(announcer, expiry=time.time() - 400),
        "other-delegate": lambda: delegation_for(identity(2).public_key),
        "not-the-owner": lambda: delegation_for(announcer, owner=3, prefix=owned()),
        "bad-signature": lambda: replace(delegation_for(announcer), signature=bytes(64)),
        "short-body": lambda: delegation_for(announcer),
    }[bad]()
    update = delegated_update(1, delegation)
    if bad == "short-body":
        update.sub_tlvs = (SubTlv(0x81, update.sub_tlvs[0].body[:-1]),)
    router = usable_router()
    deliver(router, update)
    assert router.route_count() == 0
    assert router.counters["updates_rejected_delegation"] == 1
    assert router.counters["updates_accepted"] == 0


def test_valid_delegation_is_accepted_and_relayed_with_it() -> None:
    router = usable_router()
    delegation = delegation_for(identity(1).public_key)
    deliver(router, delegated_update(1, delegation))
    assert router.route_count() == 1
    assert router.next_hop(owned()) == PEER


def test_originate_refuses_a_delegation_for_another_key() -> None:
    router = usable_router()
    with pytest.raises(ValueError):
        router.originate(owned(), delegation_for(identity(5).public_key), 0.1)
    with pytest.raises(ValueError):
        router.withdraw(router.own_prefix64, 0.1)
    assert router.originated() == [router.own_prefix64]
    assert signed_update(1).prefix64 != owned()
