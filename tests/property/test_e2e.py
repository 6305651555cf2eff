"""Property tests: E2E round trip, tamper detection, open() and decrypt_quote() raising only
E2EError, and a relay notice of any content being handled without an exception."""

from __future__ import annotations

import contextlib

from hypothesis import given, settings
from hypothesis import strategies as st

from hyphal.crypto.e2e import E2ECrypto, E2EError, OpenedPacket
from hyphal.dataplane.bridge import IPv6Bridge
from hyphal.dataplane.forwarder import Forwarder
from hyphal.identity import NodeIdentity, address_bytes_for_public_key
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


@given(st.binary(max_size=32), st.binary(max_size=300))
def test_decrypt_quote_only_e2e_error(key: bytes, quoted: bytes) -> None:
    with contextlib.suppress(E2EError):
        A.decrypt_quote(key, quoted)


class _OneRoute:
    """Routes every prefix to B's key, so notices reach quote decryption."""

    def next_hop(self, prefix64: bytes) -> int | None:
        return None

    def route_public_key(self, prefix64: bytes) -> bytes | None:
        return B.public_key


_FORWARDER = Forwarder(
    A.address[:8], A, _OneRoute(), lambda peer, packet: True, lambda opened: None, lambda p: None
)
_BRIDGE = IPv6Bridge(
    A.identity,
    _FORWARDER,
    lambda packet: True,
    _FORWARDER.routes.route_public_key,
    1280,
    lambda: 0.0,
)


@given(st.integers(0, 255), st.sampled_from([wire.VERSION, 0, 0x99]), st.binary(max_size=1500))
def test_any_notice_is_handled_without_an_exception(code: int, version: int, rest: bytes) -> None:
    """Notices quoting our own key and B's address with arbitrary bytes everywhere else."""
    header = bytes((version, 64)) + address_bytes_for_public_key(B.public_key) + A.public_key
    body = bytes((code,)) + header + rest
    _BRIDGE.from_notice(OpenedPacket(B.public_key, wire.KIND_ICMP_RELAY, memoryview(body), 9))
    _BRIDGE.from_notice(OpenedPacket(B.public_key, wire.KIND_ICMP_RELAY, memoryview(rest), 9))
