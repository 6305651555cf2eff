"""Noise XXpsk0 primitives against a published known-answer vector."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from hyphal.crypto.noise import HandshakeState, NoiseError, rekey


def inc_key(start: int) -> bytes:
    return bytes(start + i for i in range(32))


def pair(
    psk_i: bytes = inc_key(4), psk_r: bytes = inc_key(4)
) -> tuple[HandshakeState, HandshakeState]:
    i = HandshakeState(
        initiator=True,
        static=X25519PrivateKey.from_private_bytes(inc_key(0)),
        psk=psk_i,
        prologue=bytes([1, 2, 3]),
        ephemeral=X25519PrivateKey.from_private_bytes(inc_key(32)),
    )
    r = HandshakeState(
        initiator=False,
        static=X25519PrivateKey.from_private_bytes(inc_key(1)),
        psk=psk_r,
        prologue=bytes([1, 2, 3]),
        ephemeral=X25519PrivateKey.from_private_bytes(inc_key(33)),
    )
    return i, r


def test_xxpsk0_known_answer_vector() -> None:
    # Vector from the snow crate's test_XXpsk0_expected_value (Noise_XXpsk0_25519_AESGCM_SHA256).
    i, r = pair()
    m1 = i.write_message(b"abc")
    assert len(m1) == 51
    assert r.read_message(m1) == b"abc"
    m2 = r.write_message(b"defg")
    assert len(m2) == 100
    assert i.read_message(m2) == b"defg"
    m3 = i.write_message(b"")
    assert len(m3) == 64
    assert r.read_message(m3) == b""
    assert m3.hex() == (
        "1b6d7cc3b13bd02217f9cdb98c50870db96281193dca4df570bf6230a603b686"
        "fd90d2914c7e797d9276ef8fb34b0c9d87faa048ce4bc7e7af21b6a450352275"
    )
    assert i.split() == r.split()[::-1]
    assert i.handshake_hash == r.handshake_hash
    assert i.rs == r.s_pub and r.rs == i.s_pub


def test_wrong_psk_fails_at_message_one() -> None:
    i, r = pair(psk_r=inc_key(5))
    with pytest.raises(NoiseError) as info:
        r.read_message(i.write_message(b""))
    assert info.value.reason == "decrypt"


def test_out_of_turn() -> None:
    i, r = pair()
    with pytest.raises(NoiseError):
        r.write_message(b"")
    with pytest.raises(NoiseError):
        i.read_message(b"x" * 64)


def test_rekey_changes_key_deterministically() -> None:
    k = inc_key(9)
    assert rekey(k) == rekey(k) != k
    assert len(rekey(k)) == 32
