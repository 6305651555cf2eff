"""Property tests of the invite token codec: every token round-trips, and any other text or
any change to a token is refused with TokenError (never another exception)."""

from __future__ import annotations

import base64

from hypothesis import given
from hypothesis import strategies as st

from hyphal.membership import admission
from hyphal.membership import token as token_mod
from hyphal.membership.admission import Invite
from hyphal.membership.token import InviteToken, TokenError

keys = st.binary(min_size=32, max_size=32)
short = st.text(max_size=40)
invites = st.builds(
    Invite,
    issuer=keys,
    invite_id=st.binary(min_size=16, max_size=16),
    invite_key=keys,
    expires=st.integers(0, 2**32 - 1),
    flags=st.sampled_from([0, admission.FLAG_INVITER]),
    signature=st.binary(min_size=64, max_size=64),
)
tokens = st.builds(
    InviteToken,
    network_name=st.text(min_size=2, max_size=30),
    network_key=keys,
    admin_keys=st.lists(keys, max_size=token_mod.MAX_ADMIN_KEYS).map(tuple),
    peers=st.lists(short, max_size=token_mod.MAX_PEERS).map(tuple),
    name=short,
    region=short,
    role=short,
    invite=invites,
    invite_private_key=keys,
)


@given(tokens)
def test_round_trip(t: InviteToken) -> None:
    text = token_mod.encode(t)
    assert text.startswith(token_mod.PREFIX) and text.isascii() and " " not in text
    assert token_mod.decode(text) == t
    assert token_mod.decode(f"  {text}\n") == t  # pasted with whitespace


@given(st.text(max_size=300))
def test_random_text_is_refused_clearly(text: str) -> None:
    try:
        token_mod.decode(text)
    except TokenError as exc:
        assert str(exc)
    else:  # pragma: no cover - astronomically unlikely (4-byte checksum)
        raise AssertionError("random text decoded")


@given(st.binary(max_size=600))
def test_random_bytes_after_the_prefix_are_refused(raw: bytes) -> None:
    text = token_mod.PREFIX + base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    try:
        token_mod.decode(text)
    except TokenError as exc:
        assert str(exc)


@given(tokens, st.data())
def test_any_changed_character_is_refused(t: InviteToken, data: st.DataObject) -> None:
    text = token_mod.encode(t)
    i = data.draw(st.integers(len(token_mod.PREFIX), len(text) - 1))
    ch = data.draw(
        st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=+/.")
    )
    changed = text[:i] + ch + text[i + 1 :]
    if changed == text:
        return
    try:
        token_mod.decode(changed)
    except TokenError:
        return
    raise AssertionError("a changed token decoded")


@given(tokens, st.data())
def test_a_token_cut_short_is_refused(t: InviteToken, data: st.DataObject) -> None:
    text = token_mod.encode(t)
    cut = data.draw(st.integers(0, len(text) - 1))
    try:
        token_mod.decode(text[:cut])
    except TokenError:
        return
    raise AssertionError("a truncated token decoded")
