"""Property tests: E2E round trip, tamper detection, and open() raising only E2EError."""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from hyphal.crypto.e2e import E2ECrypto, E2EError
from hyphal.identity import NodeIdentity
from hyphal.wire import data as wire

A = E2ECrypto(NodeIdentity.generate())
B = E2ECrypto(NodeIdentity.generate())


@given(st.integers(0, 255), st.binary(max_size=2000), st.integers(0, 255))
def test_round_trip(kind: int, body: bytes, hop: int) -> None:
    opened = B.open(A.seal(B.public_key, kind, body, hop_limit=hop))
    assert (opened.kind, bytes(opened.body), opened.hop_limit) == (kind, body, hop)
    assert opened.src_public_key == A.public_key


@given(st.binary(max_size=300))
def test_open_garbage_only_e2e_error(blob: bytes) -> None:
    with contextlib.suppress(E2EError):
        B.open(blob)


@settings(max_examples=200)
@given(st.binary(max_size=200), st.integers(0, 10_000), st.integers(0, 7))
def test_bit_flip_outside_hop_limit_fails(body: bytes, where: int, bit: int) -> None:
    pkt = A.seal(B.public_key, 0, body)
    i = where % len(pkt)
    pkt[i] ^= 1 << bit
    if i == wire.OFF_HOP_LIMIT:
        assert bytes(B.open(pkt).body) == body
        return
    try:
        B.open(pkt)
    except E2EError:
        return
    raise AssertionError(f"tampered byte {i} accepted")


@given(st.binary(min_size=wire.HEADER_SIZE + 17, max_size=200))
def test_open_with_our_address_only_e2e_error(blob: bytes) -> None:
    pkt = bytearray(blob)
    pkt[0] = wire.VERSION
    pkt[wire.OFF_DESTINATION : wire.OFF_DESTINATION + 16] = B.address
    try:
        B.open(pkt)
    except E2EError as exc:
        assert exc.reason in {"bad-tag", "bad-key", "replay"}
        return
    raise AssertionError("random bytes authenticated")
