"""Invites made from keys: a token's redemption is accepted by a private store, a second key
redeeming the same invite loses, and an expired invite is refused by the network's rule."""

from __future__ import annotations

import os
import time

import pytest

from hyphal.crypto.signing import XEdDSAVerifier
from hyphal.identity import NodeIdentity
from hyphal.membership import invites
from hyphal.membership import token as token_mod
from hyphal.membership.admission import AdmissionPolicy
from hyphal.membership.store import KIND_ADMISSION, Store
from hyphal.membership.token import TokenError

NET = "fleet"


def _token(admin: NodeIdentity, expires: int) -> token_mod.InviteToken:
    return invites.new_token(
        admin,
        network_name=NET,
        network_key=os.urandom(32),
        admin_keys=(admin.public_key,),
        peers=("tcp://[fd00::1]:9651",),
        expires=expires,
        name="db1",
        region="fra",
    )


def _store(admin: NodeIdentity) -> Store:
    return Store(
        XEdDSAVerifier(), NET.encode(), policy=AdmissionPolicy(frozenset({admin.public_key}))
    )


def test_a_redeemed_token_admits_its_key_once() -> None:
    admin, first, second = (NodeIdentity.generate() for _ in range(3))
    now = int(time.time())
    t = token_mod.decode(token_mod.encode(_token(admin, now + 3600)))
    store = _store(admin)
    a1 = invites.redeem_token(t, first.public_key, now)
    a2 = invites.redeem_token(t, second.public_key, now + 5)
    assert store.ingest(KIND_ADMISSION, a1, now, 0.0)[0] == "accepted"
    assert store.ingest(KIND_ADMISSION, a2, now + 5, 1.0)[0] == "invite-reused"
    assert store.admitted(first.address_bytes[:8], first.public_key)
    assert not store.admitted(second.address_bytes[:8], second.public_key)


def test_an_expired_invite_is_refused_by_the_store_and_flagged_locally() -> None:
    admin, member = NodeIdentity.generate(), NodeIdentity.generate()
    now = int(time.time())
    t = _token(admin, now - 3600)
    assert invites.expired(t, now)
    assert not invites.expired(_token(admin, now + 60), now)
    adm = invites.redeem_token(t, member.public_key, now)
    assert _store(admin).ingest(KIND_ADMISSION, adm, now, 0.0)[0] == "admission-expired-invite"


def test_the_creators_self_admission_is_an_inviter() -> None:
    admin, node = NodeIdentity.generate(), NodeIdentity.generate()
    now = int(time.time())
    store = _store(admin)
    assert (
        store.ingest(
            KIND_ADMISSION, invites.self_admission(admin, NET, node.public_key, now), now, 0.0
        )[0]
        == "accepted"
    )
    assert store.may_invite(node.public_key)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("", "not a hyphal invite token"),
        ("hello", "not a hyphal invite token"),
        ("hyphal1-", "cut short"),
        ("hyphal1-!!!!", "malformed"),
        ("hyphal1-AgAAAAAA", "version 2"),
    ],
)
def test_bad_tokens_say_what_is_wrong(text: str, words: str) -> None:
    with pytest.raises(TokenError, match=words):
        token_mod.decode(text)


def test_late_redemption_rule_applies_only_to_stores_running_at_the_deadline() -> None:
    admin, member = NodeIdentity.generate(), NodeIdentity.generate()
    now = int(time.time())
    t = _token(admin, now - 3600)
    adm = invites.redeem_token(t, member.public_key, now)  # redeemed_at = the deadline
    policy = AdmissionPolicy(frozenset({admin.public_key}))
    running = Store(XEdDSAVerifier(), NET.encode(), policy=policy, started_wall=now - 7200)
    assert running.ingest(KIND_ADMISSION, adm, now, 0.0)[0] == "admission-expired-invite"
    fresh = Store(XEdDSAVerifier(), NET.encode(), policy=policy, started_wall=now - 10)
    assert fresh.ingest(KIND_ADMISSION, adm, now, 0.0)[0] == "accepted"
