"""Routing TLV codec: round trips, garbage only ever raises DecodeError, the router survives it."""

from __future__ import annotations

import contextlib
import random
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hyphal.identity import NodeIdentity, prefix64_for_public_key
from hyphal.routing import DEFAULT_PARAMS, Router, SendControl
from hyphal.wire.control import (
    FLAG_SUB_TLVS,
    IHU,
    MAX_PAYLOAD_SIZE,
    Delegation,
    Hello,
    SeqnoRequest,
    SubTlv,
    Tlv,
    Update,
    decode_delegation,
    decode_payload,
    encode_payload,
    encode_tlv,
)
from hyphal.wire.errors import DecodeError

u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
prefixes = st.binary(min_size=8, max_size=8)
router_ids = st.binary(min_size=40, max_size=40)

hellos = st.builds(Hello, u16, u16, u32)
ihus = st.builds(IHU, u16, u16, u32)
plain_flags = st.integers(0, 255).map(lambda f: f & ~FLAG_SUB_TLVS)
signed = st.builds(
    Update,
    prefixes,
    u16,
    st.integers(0, 0xFFFE),
    u16,
    plain_flags,
    router_ids,
    st.binary(min_size=64, max_size=64),
    issued=u32,
)
retractions = st.builds(
    Update, prefixes, u16, st.just(0xFFFF), u16, plain_flags, router_ids, st.just(b"")
)
sub_tlvs = st.lists(
    st.builds(SubTlv, st.integers(0, 255), st.binary(max_size=40)), min_size=1, max_size=4
).map(tuple)


@st.composite
def _extended(draw: st.DrawFn) -> Update:
    """A signed update or retraction carrying sub-TLVs (flags bit 0x01 set)."""
    base = draw(st.one_of(signed, retractions))
    base.flags |= FLAG_SUB_TLVS
    base.sub_tlvs = draw(sub_tlvs)
    return base


extended = _extended()
requests = st.builds(SeqnoRequest, prefixes, u16, st.integers(0, 255), router_ids)
tlvs: st.SearchStrategy[Tlv] = st.one_of(hellos, ihus, signed, retractions, extended, requests)


@given(st.lists(tlvs, max_size=20))
def test_round_trip(items: list[Tlv]) -> None:
    assert decode_payload(encode_payload(items)) == items


@given(st.lists(tlvs, max_size=5), st.integers(5, 255), st.binary(max_size=40))
def test_unknown_tlvs_are_skipped(items: list[Tlv], kind: int, body: bytes) -> None:
    unknown = struct.pack(">BH", kind, len(body)) + body
    payload = unknown + encode_payload(items) + unknown
    assert decode_payload(payload) == items


@given(st.lists(tlvs, min_size=1, max_size=5), st.data())
def test_truncation_raises_decode_error(items: list[Tlv], data: st.DataObject) -> None:
    payload = encode_payload(items)
    cut = data.draw(st.integers(1, len(payload) - 1)) if len(payload) > 1 else 0
    if cut:
        try:
            decoded = decode_payload(payload[:cut])
        except DecodeError:
            return
        # a cut exactly on a TLV boundary is a shorter valid payload
        assert decoded == items[: len(decoded)]


@given(st.binary(max_size=600))
def test_arbitrary_bytes_only_raise_decode_error(payload: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_payload(payload)


@given(st.integers(1, 4), st.binary(max_size=200))
def test_wrong_body_sizes_raise(kind: int, body: bytes) -> None:
    if kind == 3 and len(body) > 14 and body[14] & FLAG_SUB_TLVS:
        body = body[:14] + bytes([body[14] & ~FLAG_SUB_TLVS]) + body[15:]  # sizes fixed below
    valid = {1: {8}, 2: {8}, 3: {55, 123}, 4: {52}}[kind]
    payload = struct.pack(">BH", kind, len(body)) + body
    if len(body) in valid:
        if kind == 3:
            metric = int.from_bytes(body[10:12], "big")
            if (metric == 0xFFFF) != (len(body) == 55):
                try:
                    decode_payload(payload)
                except DecodeError:
                    return
                raise AssertionError("inconsistent signature presence accepted")
        decode_payload(payload)
    else:
        try:
            decode_payload(payload)
        except DecodeError:
            return
        raise AssertionError(f"body of {len(body)} bytes accepted for TLV {kind}")


@given(st.one_of(signed, retractions), st.binary(max_size=120))
def test_sub_tlv_area_only_raises_decode_error(update: Update, tail: bytes) -> None:
    """Any bytes after the signature of an update flagged with sub-TLVs: DecodeError or a
    decoding that re-encodes to the same bytes."""
    update.flags |= FLAG_SUB_TLVS
    fixed = encode_tlv(
        Update(
            update.prefix64,
            update.seqno,
            update.metric,
            update.interval,
            update.flags & ~FLAG_SUB_TLVS,
            update.router_id,
            update.signature,
            issued=update.issued,
        )
    )[3:]
    body = fixed[:14] + bytes([update.flags]) + fixed[15:] + tail
    payload = struct.pack(">BH", 3, len(body)) + body
    try:
        decoded = decode_payload(payload)
    except DecodeError:
        return
    assert encode_payload(decoded) == payload
    assert isinstance(decoded[0], Update) and decoded[0].sub_tlvs


def test_encoder_rejects_out_of_range() -> None:
    import pytest

    with pytest.raises(ValueError):
        encode_tlv(Hello(70000, 0, 0))
    with pytest.raises(ValueError):
        encode_tlv(Update(b"\x04" * 8, 0, 10, 0, 0, b"r" * 40, b""))  # unsigned non-retraction
    with pytest.raises(ValueError):  # sub-TLVs without the flag
        encode_tlv(Update(b"\x04" * 8, 0, 0xFFFF, 0, 0, b"r" * 40, b"", (SubTlv(1, b""),)))
    with pytest.raises(ValueError):  # the flag without sub-TLVs
        encode_tlv(Update(b"\x04" * 8, 0, 0xFFFF, 0, FLAG_SUB_TLVS, b"r" * 40, b""))
    with pytest.raises(ValueError):  # a retraction carries no freshness
        encode_tlv(Update(b"\x04" * 8, 0, 0xFFFF, 0, 0, b"r" * 40, b"", issued=1))


_IDENT = NodeIdentity.generate()
_POOL = [NodeIdentity.generate().public_key for _ in range(3)]


class _NoSigner:
    def sign(self, message: bytes) -> bytes:
        return bytes(64)


class _TrustingVerifier:
    """Accepts every signature so fuzzed updates reach selection, requests, retractions."""

    def verify(self, public_key: bytes, message: bytes, signature: bytes) -> bool:
        return signature[0] != 0xFF


_WALL = 10_000  # the fuzzed router's wall clock; issued values cluster around it


def _fresh_router() -> Router:
    router = Router(
        _IDENT.public_key,
        _NoSigner(),
        DEFAULT_PARAMS,
        0.0,
        random.Random(1),
        verifier=_TrustingVerifier(),
        router_id_suffix=bytes(8),
        wall_clock=lambda: float(_WALL),
    )
    for peer in (1, 2):
        actions = router.neighbour_up(peer, 0.0)
        hello = next(
            t
            for a in actions
            if isinstance(a, SendControl)
            for t in decode_payload(a.payload)
            if isinstance(t, Hello)
        )
        router.handle_control(
            peer, encode_payload([IHU(hello.seqno, 25, hello.timestamp)]), 0.001 * peer
        )
    return router


@st.composite
def _origin(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """(prefix, router id) pairs that pass the key binding, plus our own and random ones."""
    choice = draw(st.integers(0, 4))
    if choice < 3:
        key = _POOL[choice]
        return prefix64_for_public_key(key), key + draw(st.sampled_from([bytes(8), b"\x01" * 8]))
    if choice == 3:
        return prefix64_for_public_key(_IDENT.public_key), _IDENT.public_key + bytes(8)
    return draw(prefixes), draw(router_ids)


small_seqnos = st.one_of(st.integers(0, 3), u16)
structured = st.lists(
    st.one_of(
        hellos,
        ihus,
        st.builds(
            lambda o, s, h: SeqnoRequest(o[0], s, h, o[1]),
            _origin(),
            small_seqnos,
            st.integers(0, 255),
        ),
        st.builds(
            lambda o, s, m, i, sig, t: Update(o[0], s, m, i, 0, o[1], sig, issued=t),
            _origin(),
            small_seqnos,
            st.integers(0, 0xFFFE),
            u16,
            st.binary(min_size=64, max_size=64),
            st.one_of(st.integers(_WALL - 4000, _WALL + 400), u32),
        ),
        st.builds(
            lambda o, s: Update(o[0], s, 0xFFFF, 3000, 0, o[1], b""), _origin(), small_seqnos
        ),
    ),
    max_size=8,
)


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=200)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([1, 2, 3]),
            st.one_of(st.binary(max_size=300), structured.map(encode_payload)),
            st.floats(0.0, 2.0),
        ),
        max_size=10,
    )
)
def test_router_survives_arbitrary_control(inputs: list[tuple[int, bytes, float]]) -> None:
    router = _fresh_router()
    now = 0.01
    for peer, payload, step in inputs:
        now += step
        with contextlib.suppress(DecodeError):
            router.handle_control(peer, payload, now)
        router.on_timer(now)
        # invariants: the FIB matches the selected routes, none of them infinite
        selected = router.selected_routes()
        assert all(r.metric < 0xFFFF for r in selected)
        assert all(router.next_hop(r.prefix64) == r.next_hop for r in selected)
    # still serving: timers run, queries answer
    assert router.next_deadline() >= now - 1
    router.on_timer(now + 0.3)
    router.neighbours()
    router.fallback_routes()


delegations = st.builds(
    Delegation, st.binary(min_size=32, max_size=32), u32, st.binary(min_size=64, max_size=64)
)


@given(delegations)
def test_delegation_round_trip(delegation: Delegation) -> None:
    assert decode_delegation(delegation.sub_tlv().body) == delegation


@given(st.binary(max_size=200))
def test_delegation_decoder_only_raises_decode_error(body: bytes) -> None:
    try:
        delegation = decode_delegation(body)
    except DecodeError:
        assert len(body) != 100
        return
    assert delegation.sub_tlv().body == body


@given(st.integers(1, 4096))
def test_a_payload_over_the_cap_is_malformed_whatever_it_holds(extra: int) -> None:
    hello = encode_payload([Hello(1, 100, 2)])
    payload = hello * ((MAX_PAYLOAD_SIZE + extra) // len(hello) + 1)
    with pytest.raises(DecodeError, match="over"):
        decode_payload(payload)
    assert decode_payload(hello * (MAX_PAYLOAD_SIZE // len(hello)))  # at the cap: fine
