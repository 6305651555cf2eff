"""Forged or malformed announcements are rejected and counted, never installed."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest

from hyphal.crypto.signing import XEdDSASigner
from hyphal.identity import prefix64_for_public_key
from hyphal.routing import Router, SendControl
from hyphal.routing.auth import AnnouncementPool
from hyphal.sim.routernet import identity, make_router
from hyphal.wire.control import (
    IHU,
    Hello,
    Update,
    announcement_message,
    decode_payload,
    encode_payload,
)
from hyphal.wire.errors import DecodeError

PEER = 7


def usable_router(now: float = 0.0, pool: AnnouncementPool | None = None) -> Router:
    """A router with neighbour PEER up and measured (so routes via it are selectable)."""
    router = make_router(0, now, announcement_pool=pool)
    actions = router.neighbour_up(PEER, now)
    hello = next(
        t
        for a in actions
        if isinstance(a, SendControl)
        for t in decode_payload(a.payload)
        if isinstance(t, Hello)
    )
    router.handle_control(
        PEER, encode_payload([IHU(hello.seqno, 25, hello.timestamp)]), now + 0.002
    )
    assert router.neighbours()[0].alive
    return router


def signed_update(
    index: int,
    seqno: int = 0,
    metric: int = 10,
    suffix: bytes = b"\x01" * 8,
    issued: int | None = None,
) -> Update:
    """An announcement signed by identity ``index``; ``issued`` defaults to the wall clock."""
    ident = identity(index)
    router_id = ident.public_key + suffix
    prefix = prefix64_for_public_key(ident.public_key)
    issued = int(time.time()) if issued is None else issued
    signature = XEdDSASigner(ident.private_bytes()).sign(
        announcement_message(prefix, seqno, router_id, issued)
    )
    return Update(prefix, seqno, metric, 3000, 0, router_id, signature, issued=issued)


def deliver(router: Router, *tlvs: Update, now: float = 0.01) -> None:
    router.handle_control(PEER, encode_payload(list(tlvs)), now)


def test_valid_update_is_installed() -> None:
    router = usable_router()
    update = signed_update(1)
    deliver(router, update)
    assert router.next_hop(update.prefix64) == PEER
    assert router.counters["updates_accepted"] == 1


def test_prefix_of_another_key_is_rejected() -> None:
    router = usable_router()
    honest = signed_update(1)
    forged = replace(signed_update(2), prefix64=honest.prefix64)  # key 2 claims key 1's /64
    deliver(router, forged)
    assert router.next_hop(honest.prefix64) is None
    assert router.counters["updates_rejected_key"] == 1


def test_bad_signature_is_rejected() -> None:
    router = usable_router()
    update = signed_update(1)
    broken = replace(update, signature=bytes([update.signature[0] ^ 1]) + update.signature[1:])
    deliver(router, broken)
    assert router.next_hop(update.prefix64) is None
    assert router.counters["updates_rejected_signature"] == 1


def test_copied_router_id_with_bumped_seqno_is_rejected() -> None:
    router = usable_router()
    genuine = signed_update(1, seqno=5, metric=50)
    deliver(router, genuine)
    assert router.next_hop(genuine.prefix64) == PEER
    # An attacker replays the victim's router id and signature with a newer seqno and metric 0.
    forged = replace(genuine, seqno=6, metric=0)
    deliver(router, forged)
    assert router.counters["updates_rejected_signature"] == 1
    (route,) = router.selected_routes()
    assert route.seqno == 5 and route.advertised_metric == 50


def test_invented_router_id_for_victim_prefix_is_rejected() -> None:
    router = usable_router()
    genuine = signed_update(1)
    forged = replace(genuine, router_id=genuine.router_id[:32] + b"\x09" * 8)
    deliver(router, forged)
    assert router.next_hop(genuine.prefix64) is None
    assert router.counters["updates_rejected_signature"] == 1


def test_prefix_outside_overlay_is_rejected() -> None:
    router = usable_router()
    update = signed_update(1)
    outside = replace(update, prefix64=b"\x20\x01" + update.prefix64[2:])
    deliver(router, outside)
    assert router.next_hop(outside.prefix64) is None
    assert router.counters["updates_rejected_prefix"] == 1


def test_updates_for_own_prefix_are_ignored() -> None:
    router = usable_router()
    mine = signed_update(0)
    deliver(router, mine)
    assert router.next_hop(router.own_prefix64) is None
    assert router.counters["updates_own_prefix"] == 1


def test_retraction_only_affects_the_sender_route() -> None:
    router = usable_router()
    update = signed_update(1)
    deliver(router, update)
    retraction = Update(update.prefix64, update.seqno, 0xFFFF, 3000, 0, update.router_id, b"")
    router.handle_control(PEER + 1, encode_payload([retraction]), 0.02)  # unknown peer: ignored
    assert router.next_hop(update.prefix64) == PEER
    deliver(router, retraction, now=0.03)
    assert router.next_hop(update.prefix64) is None


def test_signature_verified_once_per_announcement() -> None:
    router = usable_router()
    update = signed_update(1)
    for i in range(5):
        deliver(router, replace(update, metric=10 + i), now=0.01 * (i + 1))
    assert router.counters["signature_verifications"] == 1


def test_the_routes_are_the_cache_for_what_they_carry() -> None:
    """Each new seqno is verified once; the cache does not keep the versions the route replaced
    (before, a long-running router kept every version it ever saw)."""
    router = usable_router()
    for seqno in range(5):
        update = signed_update(1, seqno=seqno)
        deliver(router, update, now=0.01 * (seqno + 1))
        deliver(router, replace(update, metric=20), now=0.01 * (seqno + 1) + 0.005)
    assert router.counters["signature_verifications"] == 5
    assert router.selected_routes()[0].seqno == 4
    assert len(router._checker._cache) == 0


def test_routers_sharing_a_pool_hold_one_copy_of_each_announcement() -> None:
    """The simulator's pool: the same announcement reaching two routers (each decodes its own
    copy) is held once, and only verified ones are pooled."""
    pool = AnnouncementPool()
    first, second = usable_router(pool=pool), usable_router(pool=pool)
    update = signed_update(1)
    deliver(first, update)
    deliver(second, update)
    held = [r._table[update.prefix64].routes[0].announcement for r in (first, second)]
    signed = (update.router_id, update.seqno, update.issued, update.signature, update.prefix64)
    assert held[0] == signed
    assert held[0] is held[1]
    assert held[0][0] is held[1][0] and held[0][3] is held[1][3]
    alone = usable_router()  # without a pool, nothing is shared
    deliver(alone, update)
    assert alone._table[update.prefix64].routes[0].announcement is not held[0]
    forged = replace(signed_update(2), signature=bytes(64))
    deliver(first, forged)
    assert forged.prefix64 not in first._table or not first._table[forged.prefix64].routes
    assert (forged.router_id, 0, forged.issued, forged.signature, forged.prefix64) not in pool._held
    assert len(pool._held) == 1


def test_table_is_bounded() -> None:
    from hyphal.routing import DEFAULT_PARAMS

    params = replace(DEFAULT_PARAMS, max_routes=2)
    router = make_router(0, 0.0, params)
    actions = router.neighbour_up(PEER, 0.0)
    hello = next(
        t
        for a in actions
        if isinstance(a, SendControl)
        for t in decode_payload(a.payload)
        if isinstance(t, Hello)
    )
    router.handle_control(PEER, encode_payload([IHU(hello.seqno, 25, hello.timestamp)]), 0.001)
    deliver(router, signed_update(1), signed_update(2), signed_update(3))
    assert len(router.selected_routes()) == 2
    assert router.counters["updates_rejected_table_full"] == 1


def test_malformed_payload_raises_decode_error_and_router_keeps_serving() -> None:
    router = usable_router()
    update = signed_update(1)
    deliver(router, update)
    with pytest.raises(DecodeError):
        router.handle_control(PEER, b"\x03\x00\x50abc", 0.05)
    assert router.next_hop(update.prefix64) == PEER
    router.on_timer(0.3)


def test_forged_ihu_cannot_fake_a_low_rtt() -> None:
    router = make_router(0, 0.0)
    router.neighbour_up(PEER, 0.0)
    # An IHU that echoes no hello we sent is ignored.
    router.handle_control(PEER, encode_payload([IHU(1, 25, 123456)]), 0.5)
    assert not router.neighbours()[0].alive
    assert router.counters["rtt_samples_discarded"] == 1
