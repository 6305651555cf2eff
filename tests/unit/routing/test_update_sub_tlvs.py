"""Issue 9 part 2: unknown mandatory sub-TLVs make an update ignored; others are skipped."""

from __future__ import annotations

from test_routing_security import deliver, signed_update, usable_router

from hyphal.wire.control import FLAG_SUB_TLVS, SubTlv, Update


def with_subs(update: Update, *subs: SubTlv) -> Update:
    update.flags |= FLAG_SUB_TLVS
    update.sub_tlvs = subs
    return update


def test_unknown_mandatory_sub_tlv_makes_the_update_ignored() -> None:
    router = usable_router()
    deliver(router, with_subs(signed_update(1), SubTlv(0x7F, b"x"), SubTlv(0x80, b"")))
    assert router.route_count() == 0
    assert router.counters["updates_unknown_mandatory"] == 1
    assert router.counters["updates_accepted"] == 0


def test_unknown_optional_sub_tlvs_are_skipped() -> None:
    router = usable_router()
    update = with_subs(signed_update(1), SubTlv(0x01, b"hint"), SubTlv(0x7F, b""))
    deliver(router, update)
    assert router.next_hop(update.prefix64) is not None
    assert router.counters["updates_unknown_mandatory"] == 0


def test_retraction_with_unknown_mandatory_sub_tlv_is_ignored() -> None:
    router = usable_router()
    update = signed_update(1)
    deliver(router, update)
    retraction = Update(update.prefix64, 0, 0xFFFF, 3000, 0, update.router_id, b"")
    deliver(router, with_subs(retraction, SubTlv(0xC0, b"")), now=0.02)
    assert router.next_hop(update.prefix64) is not None
    assert router.counters["retractions_received"] == 0
