"""Service names in the DNS core: NAME.svc AAAA (nearest band), _NAME._tcp.svc SRV (every
healthy instance, nearest first), NAME.vip AAAA and its PTR, and what "none healthy" answers."""

from __future__ import annotations

from ipaddress import IPv6Address
from typing import Literal

import dns.edns
import dns.message
import dns.rcode
import dns.rdatatype
import dns.reversename

from hyphal.dns.core import DnsCore
from hyphal.dns.names import StaticNameBook
from hyphal.services.directory import Instance

OWN = IPv6Address("47c:e4c9:ac5c:1322:7141:1bd9:4f7d:f27d")
NEAR = IPv6Address("5bb::2")
ALSO_NEAR = IPv6Address("5bb::3")
FAR = IPv6Address("4dd::3")
VIP = IPv6Address("4f9:593:9602:ceac::1")


class Book:
    """A fixed directory: web has three healthy instances, down has none healthy."""

    def __init__(self) -> None:
        self.web = [
            Instance("web", b"\x01" * 32, NEAR, 8080, "tcp", 100, 20, "near"),
            Instance("web", b"\x02" * 32, ALSO_NEAR, 8081, "tcp", 50, 22, None),
            Instance("web", b"\x03" * 32, FAR, 8082, "tcp", 100, 90, "far"),
        ]

    def instances(self, service: str, proto: Literal["tcp", "udp"] = "tcp") -> list[Instance]:
        return list(self.web) if service == "web" and proto == "tcp" else []

    def has_service(self, service: str) -> bool:
        return service in ("web", "down")

    def address_of(self, service: str) -> IPv6Address:
        return VIP

    def service_at(self, address: IPv6Address) -> str | None:
        return "web" if address == VIP else None


def core() -> DnsCore:
    book = StaticNameBook("db1", OWN, [], lambda a: True)
    return DnsCore("hyphal.internal", book, 0.0, services=Book())


def ask(name: str, rdtype: str = "AAAA", **kw: object) -> dns.message.Message:
    query = dns.message.make_query(name, rdtype, **kw)  # type: ignore[arg-type]
    wire = core().handle(query.to_wire(), "::1", 1.0)
    assert wire is not None
    return dns.message.from_wire(wire)


def test_aaaa_is_the_nearest_band() -> None:
    reply = ask("web.svc.hyphal.internal")
    assert reply.rcode() == dns.rcode.NOERROR
    (rrset,) = reply.answer
    assert {r.address for r in rrset} == {str(NEAR), str(ALSO_NEAR)}  # 20 and 22: near-equal
    assert rrset.ttl == 1


def test_srv_lists_every_healthy_instance_by_band() -> None:
    reply = ask("_web._tcp.svc.hyphal.internal", "SRV")
    (rrset,) = reply.answer
    got = sorted((r.priority, r.weight, r.port, r.target.to_text()) for r in rrset)
    assert got == [
        (0, 50, 8081, f"{ALSO_NEAR.packed.hex()}.addr.svc.hyphal.internal."),
        (0, 100, 8080, "near.hyphal.internal."),
        (1, 100, 8082, "far.hyphal.internal."),
    ]
    extra = {r.name.to_text(): r[0].address for r in reply.additional if r.rdtype == 28}
    assert extra["near.hyphal.internal."] == str(NEAR)
    addr = ask(f"{ALSO_NEAR.packed.hex()}.addr.svc.hyphal.internal")
    assert addr.answer[0][0].address == str(ALSO_NEAR)


def test_none_healthy_is_nodata_with_a_short_ttl_and_a_reason() -> None:
    reply = ask("down.svc.hyphal.internal", use_edns=0)
    assert reply.rcode() == dns.rcode.NOERROR and not reply.answer
    assert reply.authority[0].ttl == 1
    (ede,) = [o for o in reply.options if isinstance(o, dns.edns.EDEOption)]
    assert "no healthy instance of down" in (ede.text or "")
    assert ask("_down._udp.svc.hyphal.internal", "SRV").answer == []


def test_unknown_services_and_bad_forms_are_nxdomain() -> None:
    for name in (
        "nope.svc.hyphal.internal",
        "_nope._tcp.svc.hyphal.internal",
        "_web._sctp.svc.hyphal.internal",
        "a.b.svc.hyphal.internal",
        "zz.addr.svc.hyphal.internal",
        "_web._tcp.vip.hyphal.internal",
    ):
        assert ask(name).rcode() == dns.rcode.NXDOMAIN, name


def test_other_types_are_nodata() -> None:
    assert ask("web.svc.hyphal.internal", "A").answer == []
    assert ask("_web._tcp.svc.hyphal.internal", "AAAA").answer == []
    assert ask("web.svc.hyphal.internal", "A").rcode() == dns.rcode.NOERROR


def test_the_service_address_and_its_ptr() -> None:
    (rrset,) = ask("web.vip.hyphal.internal").answer
    assert rrset[0].address == str(VIP) and rrset.ttl == 10
    ptr = ask(dns.reversename.from_address(str(VIP)).to_text(), "PTR")
    assert ptr.answer[0][0].target.to_text() == "web.vip.hyphal.internal."
    assert ask("down.vip.hyphal.internal").answer[0][0].address == str(VIP)
