"""Property tests: the DNS core never raises, and always answers with a valid DNS response to
the same id (or drops), for random bytes, mutated queries and random well-formed queries."""

from __future__ import annotations

from ipaddress import IPv6Address

import dns.flags
import dns.message
import dns.rdataclass
import dns.rdatatype
from hypothesis import given, settings
from hypothesis import strategies as st

from hyphal.dns.core import DnsCore, DnsPolicy
from hyphal.dns.names import StaticNameBook
from hyphal.dns.ratelimit import RateLimits

OWN = IPv6Address("47c:e4c9:ac5c:1322:7141:1bd9:4f7d:f27d")
BOOK = StaticNameBook("db1", OWN, [("web", IPv6Address("5bb::2"))], lambda a: a == OWN)
NO_LIMIT = DnsPolicy(limits=RateLimits(rate=1e9, burst=1e9, total_rate=1e9, total_burst=1e9))


def core() -> DnsCore:
    return DnsCore("hyphal.internal", BOOK, 0.0, NO_LIMIT)


def check_reply(query: bytes, reply: bytes | None, limit: int) -> None:
    if reply is None:
        assert len(query) < 12 or query[2] & 0x80  # only headerless bytes and responses drop
        return
    assert len(reply) <= limit
    parsed = dns.message.from_wire(reply)
    assert parsed.id == int.from_bytes(query[:2], "big")
    assert parsed.flags & dns.flags.QR


@settings(max_examples=400)
@given(st.binary(max_size=600))
def test_random_bytes(blob: bytes) -> None:
    c = core()
    for tcp in (False, True):
        check_reply(blob, c.handle(blob, "5aa::1", 1.0, tcp=tcp), 65535 if tcp else 1232)
    assert c.counters["internal-error"] == 0


LABEL = st.from_regex(r"\A[a-zA-Z0-9-]{1,20}\Z")
NAMES = st.one_of(
    st.lists(LABEL, min_size=0, max_size=3).map(lambda ls: ".".join([*ls, "hyphal.internal"])),
    st.sampled_from(
        [
            "db1.hyphal.internal",
            "web.hyphal.internal",
            "hyphal.internal",
            "example.com",
            "4.0.ip6.arpa",
            "internal",
        ]
    ),
    st.lists(st.sampled_from("0123456789abcdefg"), min_size=1, max_size=34).map(
        lambda ns: ".".join([*ns, "4.0.ip6.arpa"])
    ),
)


@settings(max_examples=400)
@given(
    NAMES,
    st.integers(0, 65535),
    st.sampled_from([dns.rdataclass.IN, dns.rdataclass.CH, dns.rdataclass.ANY, 1234]),
    st.sampled_from([None, 0, 1]),
    st.integers(0, 65535),
    st.integers(0, 15),
    st.booleans(),
)
def test_well_formed_queries(
    name: str, rdtype: int, rdclass: int, edns: int | None, payload: int, opcode: int, tcp: bool
) -> None:
    try:
        query = dns.message.make_query(name, rdtype, rdclass, use_edns=edns, payload=payload)
    except Exception:  # a type dnspython will not build a question for
        return
    query.set_opcode(opcode)  # type: ignore[arg-type]
    wire = query.to_wire()
    c = core()
    limit = 65535 if tcp else (512 if edns is None else min(1232, max(512, payload)))
    check_reply(wire, c.handle(wire, "::1", 1.0, tcp=tcp), limit)
    assert c.counters["internal-error"] == 0


@settings(max_examples=300)
@given(st.data())
def test_mutated_queries(data: st.DataObject) -> None:
    wire = bytearray(dns.message.make_query("db1.hyphal.internal", "AAAA", use_edns=0).to_wire())
    for _ in range(data.draw(st.integers(1, 6))):
        i = data.draw(st.integers(0, len(wire) - 1))
        wire[i] = data.draw(st.integers(0, 255))
    cut = bytes(wire[: data.draw(st.integers(0, len(wire)))])
    c = core()
    check_reply(cut, c.handle(cut, "::1", 1.0), 1232)
    assert c.counters["internal-error"] == 0
