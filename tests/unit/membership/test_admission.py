"""Admission: only admitted keys hold records; invites are single use and expire; revocation
is final. Every check runs on real signatures."""

from __future__ import annotations

import os

from memberkit import NETWORK, WALL, key

from hyphal.crypto.signing import XEdDSAVerifier
from hyphal.membership import admission as adm
from hyphal.membership import record as rec
from hyphal.membership.admission import AdmissionPolicy
from hyphal.membership.store import KIND_ADMISSION, KIND_RECORD, KIND_REVOCATION, Store

ADMIN = 20
POLICY = AdmissionPolicy(frozenset({key(ADMIN).public}))
NOW = 50.0


def invite(issuer: int = ADMIN, invite_key: int = 30, expires: float = WALL + 3600, **kw: bool):
    return adm.make_invite(
        key(issuer).signer,
        key(issuer).public,
        NETWORK,
        invite_id=os.urandom(16),
        invite_key=key(invite_key).public,
        expires=int(expires),
        **kw,
    )


def admit(member: int, inv: adm.Invite | None = None, at: float = WALL + NOW, ik: int = 30):
    inv = inv or invite(invite_key=ik)
    return adm.redeem(inv, key(ik).signer, NETWORK, key(member).public, int(at))


def record(i: int, version: int = 1) -> bytes:
    k = key(i)
    return rec.build(
        k.signer, NETWORK, origin=k.public, version=version, expires=int(WALL + 3600), name=f"m{i}"
    ).encode()


def store() -> Store:
    return Store(XEdDSAVerifier(), NETWORK, policy=POLICY)


def put(s: Store, kind: int, raw: bytes, wall: float = WALL + NOW) -> str:
    return s.ingest(kind, raw, wall, NOW)[0]


def test_records_of_never_admitted_keys_are_refused() -> None:
    s = store()
    assert put(s, KIND_RECORD, record(1)) == "not-admitted"
    assert put(s, KIND_ADMISSION, admit(1).encode()) == "accepted"
    assert put(s, KIND_RECORD, record(1)) == "accepted"


def test_admission_codec_round_trip() -> None:
    a = admit(1)
    assert adm.decode_admission(a.encode()) == a
    r = adm.make_revocation(key(ADMIN).signer, key(ADMIN).public, NETWORK, key(1).public, 7)
    assert adm.decode_revocation(r.encode()) == r


def test_invite_from_a_non_admin_without_the_inviter_flag_is_refused() -> None:
    s = store()
    assert put(s, KIND_ADMISSION, admit(2).encode()) == "accepted"
    by_member = invite(issuer=2)
    assert put(s, KIND_ADMISSION, admit(3, by_member).encode()) == "admission-unknown-issuer"


def test_an_inviter_member_may_invite() -> None:
    s = store()
    assert put(s, KIND_ADMISSION, admit(2, invite(inviter=True)).encode()) == "accepted"
    assert put(s, KIND_ADMISSION, admit(3, invite(issuer=2)).encode()) == "accepted"


def test_forged_redemption_is_refused() -> None:
    s = store()
    inv = invite(invite_key=30)
    wrong = adm.redeem(inv, key(31).signer, NETWORK, key(1).public, int(WALL + NOW))
    assert put(s, KIND_ADMISSION, wrong.encode()) == "admission-bad-signature"


def test_expired_invite_is_refused() -> None:
    s = store()
    inv = invite(expires=WALL + 10)
    late = admit(1, inv, at=WALL + 20)
    assert put(s, KIND_ADMISSION, late.encode()) == "admission-expired-invite"
    # backdated redemption, first seen well after the invite expired (beyond the grace)
    backdated = admit(1, inv, at=WALL + 5)
    assert put(s, KIND_ADMISSION, backdated.encode(), wall=WALL + 10 + 301) == (
        "admission-expired-invite"
    )
    assert put(s, KIND_ADMISSION, backdated.encode(), wall=WALL + 12) == "accepted"


def test_an_invite_admits_one_key_the_earlier_redemption_wins_in_any_order() -> None:
    inv = invite()
    first = admit(1, inv, at=WALL + 10)
    second = admit(2, inv, at=WALL + 20)
    a, b = store(), store()
    assert put(a, KIND_ADMISSION, first.encode()) == "accepted"
    assert put(a, KIND_ADMISSION, second.encode()) == "invite-reused"
    assert put(b, KIND_ADMISSION, second.encode()) == "accepted"
    assert put(b, KIND_RECORD, record(2)) == "accepted"
    assert put(b, KIND_ADMISSION, first.encode()) == "accepted"  # evicts member 2
    for s in (a, b):
        assert s.admitted(key(1).prefix, key(1).public)
        assert not s.admitted(key(2).prefix, key(2).public)
    assert b.record(key(2).prefix) is None
    assert a.exact_summary() == b.exact_summary()


def test_revocation_removes_the_member_for_good() -> None:
    s = store()
    put(s, KIND_ADMISSION, admit(1).encode())
    put(s, KIND_RECORD, record(1))
    rev = adm.make_revocation(key(ADMIN).signer, key(ADMIN).public, NETWORK, key(1).public, 9)
    assert put(s, KIND_REVOCATION, rev.encode()) == "accepted"
    assert s.record(key(1).prefix) is None
    assert put(s, KIND_RECORD, record(1, version=2)) == "revoked"
    assert put(s, KIND_ADMISSION, admit(1).encode()) == "revoked"
    assert put(s, KIND_REVOCATION, rev.encode()) == "duplicate"


def test_only_an_admin_key_revokes() -> None:
    s = store()
    put(s, KIND_ADMISSION, admit(1).encode())
    not_admin = adm.make_revocation(key(5).signer, key(5).public, NETWORK, key(1).public, 9)
    assert put(s, KIND_REVOCATION, not_admin.encode()) == "revocation-not-admin"
    forged = adm.Revocation(key(ADMIN).public, key(1).public, 9, not_admin.signature)
    assert put(s, KIND_REVOCATION, forged.encode()) == "revocation-bad-signature"
    assert s.admitted(key(1).prefix, key(1).public)


def test_open_network_refuses_admission_items() -> None:
    s = Store(XEdDSAVerifier(), NETWORK)
    assert put(s, KIND_ADMISSION, admit(1).encode()) == "not-private"
    assert put(s, KIND_RECORD, record(1)) == "accepted"
