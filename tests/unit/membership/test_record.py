"""Member records: signed, canonical, bounded; every refusal says what is wrong."""

from __future__ import annotations

import dataclasses

import pytest
from memberkit import NETWORK, key

from hyphal.crypto.signing import XEdDSAVerifier
from hyphal.membership import record as rec
from hyphal.wire.errors import DecodeError


def make(i: int = 0, **fields: object) -> rec.MemberRecord:
    k = key(i)
    base: dict[str, object] = {
        "origin": k.public,
        "version": 5 << 16,
        "expires": 2_000_000_000,
        "name_since": 5 << 16,
        "name": "db1",
        "region": "fra",
        "roles": ["peer", "db"],
        "tags": {"os": "linux", "rack": "r12"},
        "endpoints": ["tcp://[2001:db8::1]:9651"],
        "software": "hyphal 0.1.0",
        "extension": b"\x01\x02",
    }
    base.update(fields)
    return rec.build(k.signer, NETWORK, **base)  # type: ignore[arg-type]


def test_round_trip_and_signature() -> None:
    r = make()
    raw = r.encode()
    back = rec.decode(raw)
    assert back == r
    assert back.roles == ("db", "peer")  # canonical: sorted
    assert back.verify(XEdDSAVerifier(), NETWORK)
    assert not back.verify(XEdDSAVerifier(), b"other-network")


def test_any_flipped_byte_breaks_the_signature_or_the_decode() -> None:
    raw = make().encode()
    verifier = XEdDSAVerifier()
    for pos in range(0, len(raw), 7):
        bad = bytearray(raw)
        bad[pos] ^= 0x01
        try:
            r = rec.decode(bytes(bad))
        except DecodeError:
            continue
        assert not r.verify(verifier, NETWORK), pos


def test_signed_by_another_key_does_not_verify() -> None:
    r = make(0)
    forged = dataclasses.replace(r, origin=key(1).public)
    assert not rec.decode(forged.encode()).verify(XEdDSAVerifier(), NETWORK)


def test_oversized_record_is_refused_at_the_source_with_the_overshoot() -> None:
    with pytest.raises(rec.RecordTooLarge, match=r"over the 1024-byte limit"):
        make(tags={f"k{i:02d}": "v" * 60 for i in range(16)})


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"name": "Db1"}, "not a DNS label"),
        ({"name": "-db"}, "not a DNS label"),
        ({"region": "fra 1"}, "region"),
        ({"roles": ["a"] * 1 + [f"r{i}" for i in range(8)]}, "roles"),
        ({"tags": {"Bad": "x"}}, "tag key"),
        ({"tags": {"ok": "tab\there"}}, "printable"),
        ({"endpoints": ["has space"]}, "endpoint"),
        ({"extension": b"x" * 513}, "extension"),
    ],
)
def test_invalid_fields_are_refused_with_a_reason(fields: dict[str, object], message: str) -> None:
    with pytest.raises(rec.RecordError, match=message):
        make(**fields)


def test_tombstone_carries_no_fields() -> None:
    k = key(0)
    t = rec.build(k.signer, NETWORK, origin=k.public, version=9, expires=10, left=True)
    assert rec.decode(t.encode()) == t
    with pytest.raises(rec.RecordError, match="tombstone"):
        rec.build(k.signer, NETWORK, origin=k.public, version=9, expires=10, left=True, name="x")


def test_decoder_refuses_non_canonical_forms() -> None:
    raw = make().encode()
    with pytest.raises(DecodeError, match="trailing"):
        rec.decode(raw[:-64] + b"\x00" + raw[-64:])
    with pytest.raises(DecodeError, match="format"):
        rec.decode(b"\x02" + raw[1:])
    with pytest.raises(DecodeError, match="reserved flag"):
        rec.decode(raw[:1] + b"\x80" + raw[2:])
    with pytest.raises(DecodeError, match=r"truncated|short"):
        rec.decode(raw[:50])
    with pytest.raises(DecodeError, match="exceeds"):
        rec.decode(raw + bytes(1100))
    # roles swapped on the wire: a valid-looking but unsorted list is refused
    r = make(roles=["a", "b"])
    body = r.body().replace(b"\x01a\x01b", b"\x01b\x01a")
    with pytest.raises(DecodeError, match="sorted"):
        rec.decode(body + r.signature)
