"""The services extension codec and the grant codec: round trips, canonical form, garbage
rejected with DecodeError only, and the 512-byte bound."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hyphal.crypto.signing import XEdDSASigner
from hyphal.identity import NodeIdentity
from hyphal.membership.record import MAX_EXTENSION
from hyphal.services.extension import (
    Endpoint,
    ExtensionTooLarge,
    PublishedService,
    decode_services,
    encode_services,
    join_sections,
    services_of,
    split_sections,
    with_services,
)
from hyphal.services.grant import PROOF_SIZE, decode_grant, make_grant, parse_grant_text
from hyphal.wire.errors import DecodeError

labels = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)
endpoints = st.builds(
    Endpoint,
    port=st.integers(1, 65535),
    proto=st.sampled_from(["tcp", "udp"]),
    healthy=st.booleans(),
    draining=st.booleans(),
    weight=st.integers(1, 255),
)


@st.composite
def services(draw: st.DrawFn) -> list[PublishedService]:
    names = draw(st.lists(labels, min_size=1, max_size=16, unique=True))
    out = []
    for name in names:
        eps = draw(st.lists(endpoints, min_size=1, max_size=8, unique_by=lambda e: e.order))
        proof = draw(st.none() | st.binary(min_size=PROOF_SIZE, max_size=PROOF_SIZE))
        out.append(PublishedService(name, proof, tuple(sorted(eps, key=lambda e: e.order))))
    return sorted(out, key=lambda s: s.name)


@given(services())
def test_round_trip(svcs: list[PublishedService]) -> None:
    raw = encode_services(svcs)
    assert list(decode_services(raw)) == svcs
    assert encode_services(list(decode_services(raw))) == raw


@given(st.binary(max_size=600))
def test_garbage_is_rejected_or_canonical(data: bytes) -> None:
    try:
        svcs = decode_services(data)
    except DecodeError:
        return
    assert encode_services(list(svcs)) == data


@given(services(), st.data())
def test_mutations_are_rejected_or_canonical(
    svcs: list[PublishedService], data: st.DataObject
) -> None:
    raw = bytearray(encode_services(svcs))
    i = data.draw(st.integers(0, len(raw) - 1))
    raw[i] ^= data.draw(st.integers(1, 255))
    try:
        got = decode_services(bytes(raw))
    except DecodeError:
        return
    assert encode_services(list(got)) == bytes(raw)


@given(st.binary(max_size=600))
def test_sections_garbage(data: bytes) -> None:
    try:
        sections = split_sections(data)
    except DecodeError:
        return
    assert join_sections(sections) == data
    with contextlib.suppress(DecodeError):
        services_of(data)


@given(services(), st.binary(min_size=1, max_size=40))
def test_other_sections_are_kept_and_size_is_bounded(
    svcs: list[PublishedService], other: bytes
) -> None:
    base = join_sections({7: other})
    try:
        ext = with_services(base, svcs)
    except ExtensionTooLarge:
        assert len(join_sections({1: encode_services(svcs), 7: other})) > MAX_EXTENSION
        return
    assert len(ext) <= MAX_EXTENSION
    assert split_sections(ext)[7] == other
    assert list(services_of(ext)) == svcs
    assert split_sections(with_services(ext, [])) == {7: other}


def test_two_services_with_grants_fit_and_many_do_not() -> None:
    proof = bytes(PROOF_SIZE)
    ep = (Endpoint(6667, "tcp", True, False, 100), Endpoint(6697, "tcp", True, False, 100))
    two = [PublishedService("a" * 63, proof, ep), PublishedService("b" * 63, proof, ep)]
    assert len(with_services(b"", two)) <= MAX_EXTENSION
    with pytest.raises(ExtensionTooLarge, match="over"):
        with_services(b"", [PublishedService(f"s{n}" + "x" * 60, proof, ep) for n in range(4)])


KEY = NodeIdentity.generate()


@given(
    labels, st.binary(min_size=32, max_size=32), st.integers(0, 2**31), st.integers(0, 2**31 - 1)
)
def test_grant_round_trip(name: str, instance: bytes, since: int, extra: int) -> None:
    g = make_grant(
        XEdDSASigner(KEY.private_bytes()),
        b"net",
        service=name,
        instance=instance,
        owner=KEY.public_key,
        since=since,
        expires=since + extra,
    )
    assert decode_grant(g.encode()) == g
    assert parse_grant_text(g.text()) == g
    assert len(g.proof()) == PROOF_SIZE


@given(st.binary(max_size=300))
def test_grant_garbage(data: bytes) -> None:
    try:
        g = decode_grant(data)
    except DecodeError:
        return
    assert g.encode() == data


@given(st.text(max_size=300))
def test_grant_text_garbage(text: str) -> None:
    try:
        g = parse_grant_text(text)
    except DecodeError:
        return
    assert g.text() == text.strip()
