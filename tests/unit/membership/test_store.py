"""The store refuses rollbacks, forgeries, floods and stale records, and counts each refusal."""

from __future__ import annotations

import dataclasses

from memberkit import NETWORK, WALL, key

from hyphal.crypto.signing import XEdDSAVerifier
from hyphal.membership import record as rec
from hyphal.membership.params import MembershipParams
from hyphal.membership.store import KIND_RECORD, Store

NOW = 100.0


def signed(i: int, version: int, *, name: str = "", expires: float = WALL + 3600, **kw: object):
    k = key(i)
    return rec.build(
        k.signer,
        NETWORK,
        origin=k.public,
        version=version,
        expires=int(expires),
        name=name,
        name_since=version,
        **kw,  # type: ignore[arg-type]
    )


def put(store: Store, r: rec.MemberRecord, now: float = NOW) -> str:
    reason, _, _ = store.ingest(KIND_RECORD, r.encode(), WALL + now, now)
    return reason


def test_newer_replaces_older_and_older_is_refused_as_rollback() -> None:
    store = Store(XEdDSAVerifier(), NETWORK)
    assert put(store, signed(0, 10, name="a")) == "accepted"
    assert put(store, signed(0, 20, name="b")) == "accepted"
    assert put(store, signed(0, 10, name="a")) == "rollback"
    assert store.record(key(0).prefix).name == "b"  # type: ignore[union-attr]
    assert store.lookup("a") is None
    assert store.counters["rollback"] == 1


def test_same_version_different_content_is_equivocation_same_bytes_duplicate() -> None:
    store = Store(XEdDSAVerifier(), NETWORK)
    r = signed(0, 10, name="a")
    assert put(store, r) == "accepted"
    assert put(store, r) == "duplicate"
    assert put(store, signed(0, 10, name="z")) == "equivocation"


def test_forged_record_is_refused() -> None:
    store = Store(XEdDSAVerifier(), NETWORK)
    forged = dataclasses.replace(signed(1, 10), origin=key(0).public)
    assert put(store, rec.decode(forged.encode())) == "bad-signature"
    assert store.member_count() == 0
    other_net = rec.build(
        key(0).signer, b"elsewhere", origin=key(0).public, version=1, expires=int(WALL + 999)
    )
    assert put(store, other_net) == "bad-signature"


def test_expired_and_too_far_expiry_refused() -> None:
    store = Store(XEdDSAVerifier(), NETWORK)
    assert put(store, signed(0, 10, expires=WALL + NOW - 1)) == "expired"
    assert put(store, signed(0, 11, expires=WALL + NOW + 10 * 86400)) == "expiry-too-far"


def test_garbage_is_counted_as_malformed() -> None:
    store = Store(XEdDSAVerifier(), NETWORK)
    assert store.ingest(KIND_RECORD, b"\x01" * 40, WALL, 0.0)[0] == "malformed"
    assert store.ingest(99, b"", WALL, 0.0)[0] == "unknown-kind"
    assert store.counters["malformed"] == 1


def test_origin_update_rate_is_capped() -> None:
    params = MembershipParams(origin_burst=3, origin_rate_per_s=0.1)
    store = Store(XEdDSAVerifier(), NETWORK, params=params)
    results = [put(store, signed(0, v)) for v in range(1, 6)]
    assert results == ["accepted"] * 3 + ["origin-rate"] * 2
    assert put(store, signed(0, 7), now=NOW + 10.0) == "accepted"


def test_member_cap_refuses_new_origins_but_not_updates() -> None:
    store = Store(XEdDSAVerifier(), NETWORK, params=MembershipParams(max_members=2))
    assert put(store, signed(0, 1)) == "accepted"
    assert put(store, signed(1, 1)) == "accepted"
    assert put(store, signed(2, 1)) == "store-full"
    assert put(store, signed(1, 2)) == "accepted"


def test_records_expire_and_leave_the_summary() -> None:
    store = Store(XEdDSAVerifier(), NETWORK)
    put(store, signed(0, 1, name="a", expires=WALL + 200))
    put(store, signed(1, 1, name="b", expires=WALL + 300))
    assert store.next_expiry() == WALL + 200
    assert store.expire(WALL + 150, 150.0) == []
    gone = store.expire(WALL + 250, 250.0)
    assert [c.prefix for c in gone] == [key(0).prefix]
    assert store.lookup("a") is None and store.lookup("b") is not None
    assert store.exact_summary()[0] == 1
    assert store.next_expiry() == WALL + 300


def test_summaries_match_for_the_same_items_in_any_order() -> None:
    recs = [signed(i, 5, name=f"n{i}") for i in range(6)]
    a, b = Store(XEdDSAVerifier(), NETWORK), Store(XEdDSAVerifier(), NETWORK)
    for r in recs:
        put(a, r)
    for r in reversed(recs):
        put(b, r)
    assert a.exact_summary() == b.exact_summary()
    assert a.bucket_summaries(1e9) == b.bucket_summaries(1e9)


def test_settled_summary_leaves_out_recent_changes() -> None:
    store = Store(XEdDSAVerifier(), NETWORK)
    put(store, signed(0, 1), now=0.0)
    empty = Store(XEdDSAVerifier(), NETWORK).summary(0.0)
    assert store.summary(5.0) == empty  # within settle_s: in flight
    assert store.summary(20.0) == store.exact_summary()


def test_name_claims_first_claim_wins_on_every_store() -> None:
    early, late = signed(3, 10, name="db1"), signed(4, 20, name="db1")
    for order in ((early, late), (late, early)):
        store = Store(XEdDSAVerifier(), NETWORK)
        for r in order:
            put(store, r)
        winner = store.lookup("db1")
        assert winner is not None and winner.origin == key(3).public
        assert store.names.claimants("db1") == [key(3).prefix, key(4).prefix]
        assert not store.name_winner(rec.decode(late.encode()))
