"""The DNS core's answers, byte for byte through dnspython (no sockets)."""

from __future__ import annotations

from ipaddress import IPv6Address

import dns.edns
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.reversename
import pytest

from hyphal.dns.core import DnsCore, DnsPolicy
from hyphal.dns.names import StaticNameBook
from hyphal.dns.ratelimit import RateLimits

OWN = IPv6Address("47c:e4c9:ac5c:1322:7141:1bd9:4f7d:f27d")
WEB = IPv6Address("5bb::2")
DOWN = IPv6Address("4dd::3")
LIVE = {OWN, WEB}


def make_core(policy: DnsPolicy | None = None, domain: str = "hyphal.internal") -> DnsCore:
    book = StaticNameBook("db1", OWN, [("web", WEB), ("down", DOWN)], lambda a: a in LIVE)
    return DnsCore(domain, book, 0.0, policy)


def ask(
    core: DnsCore,
    name: str,
    rdtype: str = "AAAA",
    *,
    tcp: bool = False,
    source: str = "::1",
    **kw: object,
) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, **kw)  # type: ignore[arg-type]
    wire = core.handle(query.to_wire(), source, 1.0, tcp=tcp)
    assert wire is not None
    reply = dns.message.from_wire(wire)
    assert reply.id == query.id and reply.flags & dns.flags.QR
    return reply


def soa_ttl(reply: dns.message.Message) -> int:
    (soa,) = reply.authority
    assert soa.rdtype == dns.rdatatype.SOA
    return int(soa.ttl)


def test_aaaa_for_our_own_name_and_a_table_name() -> None:
    core = make_core()
    reply = ask(core, "db1.hyphal.internal")
    assert reply.rcode() == dns.rcode.NOERROR and reply.flags & dns.flags.AA
    assert not reply.flags & dns.flags.RA  # not a resolver
    (rrset,) = reply.answer
    assert [r.address for r in rrset] == [str(OWN)] and rrset.ttl == 10
    assert [r.address for r in ask(core, "WEB.Hyphal.Internal").answer[0]] == [str(WEB)]


def test_question_case_is_echoed() -> None:
    reply = ask(make_core(), "DB1.hYphal.internal")
    assert reply.question[0].name.to_text() == "DB1.hYphal.internal."


def test_a_for_an_existing_name_is_nodata_with_soa() -> None:
    core = make_core()
    reply = ask(core, "db1.hyphal.internal", "A")
    assert reply.rcode() == dns.rcode.NOERROR and not reply.answer and soa_ttl(reply) == 10
    assert core.counters["nodata"] == 1


def test_missing_name_is_nxdomain_with_soa_for_negative_caching() -> None:
    core = make_core()
    for name in ("nope.hyphal.internal", "x.db1.hyphal.internal"):
        reply = ask(core, name)
        assert reply.rcode() == dns.rcode.NXDOMAIN and soa_ttl(reply) == 10
        (soa,) = reply.authority
        assert soa[0].minimum == 10
    assert core.counters["rcode-nxdomain"] == 2


@pytest.mark.parametrize("name", ["example.com", "internal", "other.internal", "1.0.ip6.arpa"])
def test_outside_our_zones_is_refused(name: str) -> None:
    core = make_core()
    reply = ask(core, name, "A")
    assert reply.rcode() == dns.rcode.REFUSED and not reply.answer and not reply.authority
    assert not reply.flags & dns.flags.AA
    assert core.counters["rcode-refused"] == 1


def test_offline_member_is_marked_not_served() -> None:
    core = make_core()
    reply = ask(core, "down.hyphal.internal", use_edns=0)
    assert reply.rcode() == dns.rcode.NOERROR and not reply.answer
    assert soa_ttl(reply) == 1
    (ede,) = [o for o in reply.options if o.otype == dns.edns.OptionType.EDE]
    assert isinstance(ede, dns.edns.EDEOption) and ede.code == dns.edns.EDECode.OTHER
    assert ede.text is not None and "offline" in ede.text and str(DOWN) in ede.text
    assert core.counters["offline"] == 1
    # Without EDNS there is nowhere to put the mark but the 1 s SOA: still no address.
    plain = ask(core, "down.hyphal.internal")
    assert not plain.answer and plain.edns < 0 and soa_ttl(plain) == 1


def test_ptr_for_overlay_addresses() -> None:
    core = make_core()
    reply = ask(core, dns.reversename.from_address(str(OWN)).to_text(), "PTR")
    assert [r.target.to_text() for r in reply.answer[0]] == ["db1.hyphal.internal."]
    web = ask(core, dns.reversename.from_address(str(WEB)).to_text(), "PTR")
    assert [r.target.to_text() for r in web.answer[0]] == ["web.hyphal.internal."]
    unknown = ask(core, dns.reversename.from_address("4ee::9").to_text(), "PTR")
    assert (
        unknown.rcode() == dns.rcode.NXDOMAIN
        and unknown.authority[0].name.to_text() == "4.0.ip6.arpa."
    )
    partial = ask(core, "c.7.4.0.ip6.arpa", "PTR")  # an empty non-terminal
    assert partial.rcode() == dns.rcode.NOERROR and not partial.answer
    garbage = ask(core, "zz.4.0.ip6.arpa", "PTR")
    assert garbage.rcode() == dns.rcode.NXDOMAIN
    outside = ask(core, dns.reversename.from_address("2001:db8::1").to_text(), "PTR")
    assert outside.rcode() == dns.rcode.REFUSED


def test_zone_apex_soa() -> None:
    reply = ask(make_core(), "hyphal.internal", "SOA")
    assert reply.answer[0].rdtype == dns.rdatatype.SOA
    assert ask(make_core(), "5.0.ip6.arpa", "SOA").answer[0].rdtype == dns.rdatatype.SOA


@pytest.mark.parametrize("rdtype", ["ANY", "AXFR", "IXFR"])
def test_any_and_transfers_are_refused_with_ede(rdtype: str) -> None:
    reply = ask(make_core(), "db1.hyphal.internal", rdtype, use_edns=0)
    assert reply.rcode() == dns.rcode.REFUSED and not reply.answer
    (ede,) = reply.options
    assert isinstance(ede, dns.edns.EDEOption) and ede.code == dns.edns.EDECode.NOT_SUPPORTED


def test_edns_payload_is_echoed_and_capped() -> None:
    core = make_core()
    assert ask(core, "db1.hyphal.internal", use_edns=0, payload=4096).payload == 1232
    assert ask(core, "db1.hyphal.internal").edns < 0  # no OPT asked, none sent


def test_edns_version_above_zero_is_badvers() -> None:
    reply = ask(make_core(), "db1.hyphal.internal", use_edns=1)
    assert reply.rcode() == dns.rcode.BADVERS and reply.edns == 0


def test_other_class_and_opcode() -> None:
    core = make_core()
    chaos = dns.message.make_query("version.bind", "TXT", rdclass=dns.rdataclass.CH)
    reply = dns.message.from_wire(core.handle(chaos.to_wire(), "::1", 1.0) or b"")
    assert reply.rcode() == dns.rcode.REFUSED
    notify = dns.message.make_query("hyphal.internal", "SOA")
    notify.set_opcode(dns.opcode.NOTIFY)
    reply = dns.message.from_wire(core.handle(notify.to_wire(), "::1", 1.0) or b"")
    assert reply.rcode() == dns.rcode.NOTIMP


def test_udp_reply_larger_than_the_client_takes_is_truncated() -> None:
    core = make_core(DnsPolicy(udp_payload=60))
    reply = ask(core, "db1.hyphal.internal", use_edns=0)
    assert reply.flags & dns.flags.TC and not reply.answer
    assert core.counters["truncated"] == 1
    full = ask(core, "db1.hyphal.internal", tcp=True)  # TCP carries it whole
    assert full.answer and not full.flags & dns.flags.TC


def test_garbage_gets_formerr_or_nothing() -> None:
    core = make_core()
    assert core.handle(b"\x01\x02", "::1", 1.0) is None  # no header
    reply = core.handle(b"\xab\xcd\x01\x00" + b"\xff" * 30, "::1", 1.0)
    assert reply is not None and reply[:2] == b"\xab\xcd"
    assert dns.message.from_wire(reply).rcode() == dns.rcode.FORMERR
    response = dns.message.make_response(dns.message.make_query("db1.hyphal.internal", "AAAA"))
    assert core.handle(response.to_wire(), "::1", 1.0) is None  # never answer a response
    assert core.counters["dropped-short"] == 1 and core.counters["dropped-response"] == 1
    assert core.counters["rcode-formerr"] == 1


def test_rate_limit_drops_one_source_and_slips_every_other() -> None:
    core = make_core(DnsPolicy(limits=RateLimits(rate=1, burst=3, slip=2)))
    query = dns.message.make_query("db1.hyphal.internal", "AAAA").to_wire()
    replies = [core.handle(query, "5aa::1", 1.0) for _ in range(9)]
    full = [r for r in replies if r is not None and dns.message.from_wire(r).answer]
    slipped = [
        r for r in replies if r is not None and dns.message.from_wire(r).flags & dns.flags.TC
    ]
    assert len(full) == 3 and len(slipped) == 3 and replies.count(None) == 3
    assert core.counters["rate-limited"] == 3 and core.counters["rate-limited-slip"] == 3
    assert core.handle(query, "5ab::1", 1.0) is not None  # another /64 is not held back
    assert core.handle(query, "5aa::1", 1.0, tcp=True) is not None  # TCP is not limited
    assert dns.message.from_wire(core.handle(query, "5aa::1", 2.0) or b"").answer  # refilled


def test_this_machines_own_sources_are_not_limited() -> None:
    book = StaticNameBook("db1", OWN, [], lambda a: True)
    policy = DnsPolicy(limits=RateLimits(rate=1, burst=1, slip=0))
    core = DnsCore("hyphal.internal", book, 0.0, policy, [str(OWN)])
    query = dns.message.make_query("db1.hyphal.internal", "AAAA").to_wire()
    for source in ("127.0.0.1", "127.0.0.53", "::1", str(OWN)):
        assert all(core.handle(query, source, 1.0) for _ in range(20)), source
    assert core.handle(query, "5aa::1", 1.0) and core.handle(query, "5aa::1", 1.0) is None


def test_private_network_domain() -> None:
    core = make_core(domain="fleet.internal")
    assert ask(core, "db1.fleet.internal").answer
    assert ask(core, "db1.hyphal.internal").rcode() == dns.rcode.REFUSED
    ptr = ask(core, dns.reversename.from_address(str(OWN)).to_text(), "PTR")
    assert ptr.answer[0][0].target.to_text() == "db1.fleet.internal."
