"""Member record codec: decode(encode(x)) == x; random or mutated bytes raise only DecodeError,
and whatever decodes re-encodes to the very same bytes (one canonical form)."""

from __future__ import annotations

import string

from hypothesis import given
from hypothesis import strategies as st

from hyphal.membership import admission as adm
from hyphal.membership import record as rec
from hyphal.wire.errors import DecodeError

label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)
tag_key = st.from_regex(r"[a-z0-9][a-z0-9_.-]{0,10}", fullmatch=True)
tag_value = st.text(string.printable.strip() + "äé€", max_size=20).filter(str.isprintable)
endpoint = st.text(string.ascii_letters + string.digits + ":/[].-", min_size=1, max_size=40)
u64 = st.integers(0, (1 << 64) - 1)
u32 = st.integers(0, (1 << 32) - 1)


@st.composite
def records(draw: st.DrawFn) -> rec.MemberRecord:
    origin = draw(st.binary(min_size=32, max_size=32))
    signature = draw(st.binary(min_size=64, max_size=64))
    if draw(st.booleans()) and draw(st.booleans()):
        return rec.MemberRecord(origin, draw(u64), draw(u32), left=True, signature=signature)
    tags = draw(st.dictionaries(tag_key, tag_value, max_size=4))
    return rec.MemberRecord(
        origin,
        draw(u64),
        draw(u32),
        False,
        draw(u64),
        draw(st.one_of(st.just(""), label)),
        draw(st.one_of(st.just(""), label)),
        tuple(sorted(draw(st.sets(label, max_size=3)))),
        tuple(sorted(tags.items())),
        tuple(draw(st.lists(endpoint, max_size=3, unique=True))),
        draw(st.text(string.ascii_letters + " .", max_size=20)),
        draw(st.binary(max_size=100)),
        signature,
    )


@given(records())
def test_round_trip(r: rec.MemberRecord) -> None:
    raw = r.encode()
    assert rec.decode(raw) == r
    assert len(raw) <= rec.MAX_RECORD_SIZE


def _total(data: bytes) -> None:
    try:
        r = rec.decode(data)
    except DecodeError:
        return
    assert r.encode() == data


@given(st.binary(max_size=1200))
def test_random_bytes_raise_only_decode_error(data: bytes) -> None:
    _total(data)


@given(records(), st.data())
def test_mutated_records_raise_only_decode_error(r: rec.MemberRecord, data: st.DataObject) -> None:
    raw = bytearray(r.encode())
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "cut", "insert"]))
        pos = data.draw(st.integers(0, max(0, len(raw) - 1)))
        if op == "flip" and raw:
            raw[pos] ^= data.draw(st.integers(1, 255))
        elif op == "cut":
            del raw[pos : pos + data.draw(st.integers(1, 8))]
        else:
            raw[pos:pos] = data.draw(st.binary(min_size=1, max_size=8))
    _total(bytes(raw))


@given(st.binary(max_size=400))
def test_admission_and_revocation_decoders_are_total(data: bytes) -> None:
    for decoder in (adm.decode_admission, adm.decode_revocation, adm.decode_invite):
        try:
            obj = decoder(data)
        except DecodeError:
            continue
        assert obj.encode() == data


@given(st.binary(min_size=adm.ADMISSION_SIZE, max_size=adm.ADMISSION_SIZE))
def test_admission_of_the_right_size_decodes_or_raises_decode_error(data: bytes) -> None:
    try:
        a = adm.decode_admission(data)
    except DecodeError:
        return
    assert a.encode() == data
