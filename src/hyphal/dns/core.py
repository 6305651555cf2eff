"""The DNS server core, sans-IO: one query's bytes in, the reply's bytes out (or None: drop).

dnspython parses and renders the wire format; this module only decides what to answer:

* ``NAME.<domain>`` AAAA -> the member's overlay address (TTL ``policy.ttl``); A and any other
  type for an existing name -> NOERROR with no answer (NODATA) and the zone SOA;
* services (with a :class:`~hyphal.dns.names.ServiceBook`; docs/services.md, "DNS"):
  ``NAME.svc.<domain>`` AAAA -> the nearest healthy instances (the near-equal band, weighted
  order), ``_NAME._tcp.svc.<domain>`` / ``_udp`` SRV -> every healthy instance, priority = its
  distance band, nearest first, targets' AAAA in the additional section (TTL
  ``policy.service_ttl``); ``NAME.vip.<domain>`` AAAA -> the service's stable address; a known
  service with no healthy instance -> NODATA (SOA TTL ``offline_ttl``, EDE saying so);
* a member with no route (offline) -> NODATA, SOA with TTL ``policy.offline_ttl`` and, under
  EDNS, an Extended DNS Error (RFC 8914, code 0 "Other") saying it is offline: marked, not
  served (a client fails at once instead of connecting into a black hole);
* PTR for overlay addresses (``*.4.0.ip6.arpa``, ``*.5.0.ip6.arpa``: 400::/7) -> ``NAME.<domain>``;
* a missing name under our zones -> NXDOMAIN with the SOA (negative TTL ``policy.negative_ttl``);
* anything outside our zones -> REFUSED (not an open resolver: there is no forwarding);
* ANY, AXFR, IXFR -> REFUSED (with EDE 21 "Not Supported" under EDNS); opcodes other than QUERY
  -> NOTIMP; classes other than IN -> REFUSED; EDNS version above 0 -> BADVERS;
* a datagram that is no DNS message -> FORMERR when it has a query header, else dropped;
  responses (QR set) are never answered, so two servers cannot be made to loop;
* UDP: the reply fits the client's EDNS payload size (512 without EDNS, at most
  ``policy.udp_payload`` = 1232) or goes out empty with TC set; a source over its rate limit
  gets nothing, or every other time an empty TC reply (:mod:`hyphal.dns.ratelimit`); TCP and
  this machine's own sources (loopback, ``local_sources``) are not limited.

Every outcome is counted in :attr:`DnsCore.counters` (names in :data:`COUNTERS`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from ipaddress import IPv6Address, ip_address
from typing import Final, Literal

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from hyphal.dns.names import InvalidName, NameBook, NameEntry, ServiceBook, normalise_label
from hyphal.dns.ratelimit import RateLimits, ResponseRateLimiter, Verdict
from hyphal.identity import OVERLAY_NETWORK
from hyphal.services.select import near_equal

#: 400::/7 reversed: its first nibble is 0 and its second 4 or 5.
REVERSE_ZONES: Final = ("4.0.ip6.arpa", "5.0.ip6.arpa")
MIN_UDP_PAYLOAD: Final = 512
MAX_TCP_MESSAGE: Final = 65535
_REFUSED_TYPES: Final = frozenset(
    (
        dns.rdatatype.ANY,
        dns.rdatatype.AXFR,
        dns.rdatatype.IXFR,
        dns.rdatatype.MAILA,
        dns.rdatatype.MAILB,
    )
)

COUNTERS: Final = (
    "queries",  # every message handed to the core
    "answered-udp",
    "answered-tcp",
    "rcode-noerror",
    "rcode-nxdomain",
    "rcode-refused",
    "rcode-formerr",
    "rcode-notimp",
    "rcode-servfail",
    "rcode-badvers",
    "nodata",  # NOERROR without an answer
    "offline",  # a name (or address) of a member with no route
    "truncated",  # a UDP reply too large for the client, sent empty with TC
    "rate-limited",  # UDP queries from a source over its limit, dropped
    "rate-limited-slip",  # ... answered with an empty TC reply instead
    "dropped-short",  # fewer than 12 bytes: not even a header
    "dropped-response",  # a response (QR set) sent to us
    "internal-error",  # a parsed message we failed to answer (SERVFAIL); a bug if ever > 0
    "no-healthy-instance",  # NAME.svc or its SRV asked while no instance is healthy
)
_SERVICE_KINDS: Final = frozenset((b"svc", b"vip"))


def _service_name(labels: list[str]) -> tuple[str | None, Literal["tcp", "udp"] | None]:
    """(service, proto) for ``NAME`` (proto None) or ``_NAME._tcp`` / ``_NAME._udp``."""
    if len(labels) == 1:
        try:
            return normalise_label(labels[0]), None
        except InvalidName:
            return None, None
    if len(labels) == 2 and labels[0].startswith("_") and labels[1] in ("_tcp", "_udp"):
        try:
            return normalise_label(labels[0][1:]), "tcp" if labels[1] == "_tcp" else "udp"
        except InvalidName:
            return None, None
    return None, None


def _loopback(source: str) -> bool:
    try:
        address = ip_address(source)
    except ValueError:
        return False
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


@dataclass(frozen=True)
class DnsPolicy:
    """TTLs and limits (docs/dns.md explains each choice)."""

    ttl: int = 10  # positive answers
    negative_ttl: int = 10  # NXDOMAIN / NODATA (SOA TTL and MINIMUM)
    offline_ttl: int = 1  # NODATA for an offline member: retried as soon as it is back
    service_ttl: int = 1  # NAME.svc answers: health and distance change, caches must not hold
    udp_payload: int = 1232  # the most we send over UDP (DNS flag day 2020), and advertise
    limits: RateLimits = field(default_factory=RateLimits)


class DnsCore:
    """Answers queries for one domain (and the overlay's reverse zones) from a NameBook."""

    def __init__(
        self,
        domain: str,
        book: NameBook,
        now: float,
        policy: DnsPolicy | None = None,
        local_sources: Iterable[str] = (),
        services: ServiceBook | None = None,
    ) -> None:
        self.policy = policy or DnsPolicy()
        self.services = services
        self.domain = dns.name.from_text(domain)
        self.book = book
        self.reverse_zones = tuple(dns.name.from_text(z) for z in REVERSE_ZONES)
        self.limiter = ResponseRateLimiter(self.policy.limits, now)
        # Sources no packet from outside can carry (loopback, our own addresses: the bridge
        # drops mesh packets with a forged source): this machine's resolver, e.g.
        # systemd-resolved, asks for all its programs from one of them, so none is limited.
        self._local = frozenset(str(ip_address(a)) for a in local_sources)
        self.counters: Counter[str] = Counter({name: 0 for name in COUNTERS})
        self._mname = dns.name.Name(("ns", *self.domain.labels))
        self._rname = dns.name.Name(("hostmaster", *self.domain.labels))
        self._soas: dict[tuple[dns.name.Name, int], dns.rrset.RRset] = {}  # read-only rrsets

    # entry point --------------------------------------------------------------------------

    def handle(self, wire: bytes, source: str, now: float, *, tcp: bool = False) -> bytes | None:
        """The reply to one message from ``source`` (an IP address string), or None to drop.

        Never raises for any input bytes."""
        counters = self.counters
        counters["queries"] += 1
        if len(wire) < 12:
            counters["dropped-short"] += 1
            return None
        if wire[2] & 0x80:
            counters["dropped-response"] += 1
            return None
        local = tcp or source in self._local or _loopback(source)
        verdict = Verdict.ANSWER if local else self.limiter.check(source, now)
        if verdict is Verdict.DROP:
            counters["rate-limited"] += 1
            return None
        try:
            query = dns.message.from_wire(wire)
        except Exception:  # the library's parser on hostile bytes: any failure is FORMERR
            return self._header_only(wire, dns.rcode.FORMERR, tcp)
        try:
            if verdict is Verdict.SLIP:
                counters["rate-limited-slip"] += 1
                return self._render(self._truncated(query), MAX_TCP_MESSAGE, counted=False)
            response = self._answer(query)
            limit = MAX_TCP_MESSAGE if tcp else self._udp_limit(query)
            return self._render(response, limit, tcp=tcp)
        except Exception:  # a message the library parsed but cannot answer: never crash
            counters["internal-error"] += 1
            return self._header_only(wire, dns.rcode.SERVFAIL, tcp)

    # deciding -----------------------------------------------------------------------------

    def _answer(self, query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query, our_payload=self.policy.udp_payload)
        if query.opcode() != dns.opcode.QUERY:
            response.set_rcode(dns.rcode.NOTIMP)
            return response
        if len(query.question) != 1:
            response.set_rcode(dns.rcode.FORMERR)
            return response
        if query.edns > 0:
            response.set_rcode(dns.rcode.BADVERS)
            return response
        question = query.question[0]
        qname, qtype = question.name, question.rdtype
        if question.rdclass != dns.rdataclass.IN:
            response.set_rcode(dns.rcode.REFUSED)
            return response
        zone = self._zone_of(qname)
        if zone is None:
            response.set_rcode(dns.rcode.REFUSED)
            return response
        response.flags |= dns.flags.AA
        if qtype in _REFUSED_TYPES:
            response.flags &= ~dns.flags.AA
            response.set_rcode(dns.rcode.REFUSED)
            self._ede(
                query,
                response,
                dns.edns.EDECode.NOT_SUPPORTED,
                "ANY and zone transfers are not answered (RFC 8482)",
            )
            return response
        if zone == self.domain:
            self._forward(query, response, zone, qname, qtype)
        else:
            self._reverse(query, response, zone, qname, qtype)
        return response

    def _zone_of(self, qname: dns.name.Name) -> dns.name.Name | None:
        for zone in (self.domain, *self.reverse_zones):
            if qname.is_subdomain(zone):
                return zone
        return None

    def _forward(
        self,
        query: dns.message.Message,
        response: dns.message.Message,
        zone: dns.name.Name,
        qname: dns.name.Name,
        qtype: int,
    ) -> None:
        labels = qname.relativize(zone).labels
        if not labels or labels == (b"@",):
            self._apex(response, zone, qname, qtype)
            return
        if self.services is not None and len(labels) >= 2 and labels[-1].lower() in _SERVICE_KINDS:
            self._service(query, response, zone, qname, qtype, [x.lower() for x in labels])
            return
        entry = None
        if len(labels) == 1:
            try:
                entry = self.book.lookup(labels[0].decode("ascii").lower())
            except UnicodeDecodeError:
                entry = None
        if entry is None:
            self._negative(response, zone, dns.rcode.NXDOMAIN)
            return
        if not entry.reachable:
            self._offline(query, response, zone, entry)
            return
        if qtype != dns.rdatatype.AAAA:
            self._negative(response, zone, dns.rcode.NOERROR)
            return
        rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.AAAA, str(entry.address))
        response.answer.append(self._rrset(qname, self._ttl(entry), rdata))

    def _service(
        self,
        query: dns.message.Message,
        response: dns.message.Message,
        zone: dns.name.Name,
        qname: dns.name.Name,
        qtype: int,
        labels: list[bytes],
    ) -> None:
        assert self.services is not None
        try:
            text = [x.decode("ascii") for x in labels]
        except UnicodeDecodeError:
            self._negative(response, zone, dns.rcode.NXDOMAIN)
            return
        kind, rest = text[-1], text[:-1]
        name, proto = _service_name(rest)
        if kind == "svc" and len(rest) == 2 and rest[1] == "addr":
            self._addr(response, zone, qname, qtype, rest[0])
            return
        if name is None or (kind == "vip" and proto is not None):
            self._negative(response, zone, dns.rcode.NXDOMAIN)
            return
        if not self.services.has_service(name):
            self._negative(response, zone, dns.rcode.NXDOMAIN)
            return
        if kind == "vip":
            if qtype != dns.rdatatype.AAAA:
                self._negative(response, zone, dns.rcode.NOERROR)
                return
            address = self.services.address_of(name)
            rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.AAAA, str(address))
            response.answer.append(self._rrset(qname, self.policy.ttl, rdata))
            return
        wanted = dns.rdatatype.AAAA if proto is None else dns.rdatatype.SRV
        if qtype != wanted:
            self._negative(response, zone, dns.rcode.NOERROR)
            return
        found = (
            self.services.instances(name, proto)
            if proto is not None
            else self.services.instances(name, "tcp") or self.services.instances(name, "udp")
        )
        if not found:
            self.counters["no-healthy-instance"] += 1
            response.authority.append(self._soa(zone, self.policy.offline_ttl))
            self._ede(query, response, dns.edns.EDECode.OTHER, f"no healthy instance of {name} now")
            return
        ttl = self.policy.service_ttl
        if proto is None:
            best = found[0].metric
            addresses = list(
                dict.fromkeys(str(i.address) for i in found if near_equal(best, i.metric))
            )
            rrset = dns.rrset.RRset(qname, dns.rdataclass.IN, dns.rdatatype.AAAA)
            for text_address in addresses:
                rrset.add(
                    dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.AAAA, text_address), ttl
                )
            response.answer.append(rrset)
            return
        srv = dns.rrset.RRset(qname, dns.rdataclass.IN, dns.rdatatype.SRV)
        extra: dict[dns.name.Name, str] = {}
        band, band_best = 0, found[0].metric
        for inst in found:
            if not near_equal(band_best, inst.metric):
                band, band_best = band + 1, inst.metric
            target = self._target(inst.node_name, inst.address)
            extra.setdefault(target, str(inst.address))
            srv.add(
                dns.rdata.from_text(
                    dns.rdataclass.IN,
                    dns.rdatatype.SRV,
                    f"{min(band, 65535)} {inst.weight} {inst.port} {target.to_text()}",
                ),
                ttl,
            )
        response.answer.append(srv)
        for target, target_address in extra.items():
            rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.AAAA, target_address)
            response.additional.append(self._rrset(target, ttl, rdata))

    def _target(self, node_name: str | None, address: IPv6Address) -> dns.name.Name:
        """An SRV target: the node's member name, else ``<32 hex>.addr.svc.<domain>``."""
        if node_name:
            return dns.name.Name((node_name.encode(), *self.domain.labels))
        return dns.name.Name((address.packed.hex().encode(), b"addr", b"svc", *self.domain.labels))

    def _addr(
        self,
        response: dns.message.Message,
        zone: dns.name.Name,
        qname: dns.name.Name,
        qtype: int,
        hexed: str,
    ) -> None:
        try:
            address = IPv6Address(bytes.fromhex(hexed)) if len(hexed) == 32 else None
        except ValueError:
            address = None
        if address is None or address not in OVERLAY_NETWORK:
            self._negative(response, zone, dns.rcode.NXDOMAIN)
            return
        if qtype != dns.rdatatype.AAAA:
            self._negative(response, zone, dns.rcode.NOERROR)
            return
        rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.AAAA, str(address))
        response.answer.append(self._rrset(qname, self.policy.service_ttl, rdata))

    def _reverse(
        self,
        query: dns.message.Message,
        response: dns.message.Message,
        zone: dns.name.Name,
        qname: dns.name.Name,
        qtype: int,
    ) -> None:
        if qname == zone:
            self._apex(response, zone, qname, qtype)
            return
        nibbles = [label.lower() for label in qname.labels[:-3]]  # without "ip6.arpa." and root
        valid = all(len(n) == 1 and n in b"0123456789abcdef" for n in nibbles)
        if not valid or len(nibbles) > 32:
            self._negative(response, zone, dns.rcode.NXDOMAIN)
            return
        if len(nibbles) < 32:  # an empty non-terminal above addresses: exists, holds nothing
            self._negative(response, zone, dns.rcode.NOERROR)
            return
        address = IPv6Address(bytes.fromhex(b"".join(reversed(nibbles)).decode()))
        service = None if self.services is None else self.services.service_at(address)
        if service is not None:
            if qtype != dns.rdatatype.PTR:
                self._negative(response, zone, dns.rcode.NOERROR)
                return
            target = dns.name.Name((service.encode(), b"vip", *self.domain.labels))
            rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.PTR, target.to_text())
            response.answer.append(self._rrset(qname, self.policy.ttl, rdata))
            return
        entry = self.book.reverse(address)
        if entry is None:
            self._negative(response, zone, dns.rcode.NXDOMAIN)
            return
        if not entry.reachable:
            self.counters["offline"] += 1  # still named: logs and traceroute want the name
        if qtype != dns.rdatatype.PTR:
            self._negative(response, zone, dns.rcode.NOERROR)
            return
        target = dns.name.Name((entry.name.encode(), *self.domain.labels))
        rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.PTR, target.to_text())
        response.answer.append(self._rrset(qname, self._ttl(entry), rdata))

    def _apex(
        self, response: dns.message.Message, zone: dns.name.Name, qname: dns.name.Name, qtype: int
    ) -> None:
        if qtype == dns.rdatatype.SOA:
            response.answer.append(self._soa(zone, self.policy.negative_ttl))
        else:
            self._negative(response, zone, dns.rcode.NOERROR)

    def _offline(
        self,
        query: dns.message.Message,
        response: dns.message.Message,
        zone: dns.name.Name,
        entry: NameEntry,
    ) -> None:
        self.counters["offline"] += 1
        response.authority.append(self._soa(zone, self.policy.offline_ttl))
        self._ede(
            query,
            response,
            dns.edns.EDECode.OTHER,
            f"{entry.name} ({entry.address}) is offline: no route to it",
        )

    def _negative(
        self, response: dns.message.Message, zone: dns.name.Name, rcode: dns.rcode.Rcode
    ) -> None:
        response.set_rcode(rcode)
        response.authority.append(self._soa(zone, self.policy.negative_ttl))

    # records ------------------------------------------------------------------------------

    def _ttl(self, entry: NameEntry) -> int:
        ttl = self.policy.ttl
        return ttl if entry.ttl is None else max(0, min(ttl, entry.ttl))

    def _soa(self, zone: dns.name.Name, ttl: int) -> dns.rrset.RRset:
        cached = self._soas.get((zone, ttl))
        if cached is not None:
            return cached
        # serial 1: the zone is synthesised, never transferred; MINIMUM is the negative TTL
        # (RFC 2308)
        text = f"{self._mname} {self._rname} 1 3600 600 86400 {ttl}"
        rdata = dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.SOA, text)
        soa = self._soas[(zone, ttl)] = self._rrset(zone, ttl, rdata)
        return soa

    @staticmethod
    def _rrset(name: dns.name.Name, ttl: int, rdata: dns.rdata.Rdata) -> dns.rrset.RRset:
        rrset = dns.rrset.RRset(name, rdata.rdclass, rdata.rdtype)
        rrset.add(rdata, ttl)
        return rrset

    @staticmethod
    def _ede(
        query: dns.message.Message,
        response: dns.message.Message,
        code: dns.edns.EDECode,
        text: str,
    ) -> None:
        if query.edns == 0:
            response.use_edns(
                0,
                0,
                response.payload,
                query.payload,
                options=[*response.options, dns.edns.EDEOption(code, text)],
            )

    # rendering ----------------------------------------------------------------------------

    def _udp_limit(self, query: dns.message.Message) -> int:
        if query.edns < 0:
            return min(MIN_UDP_PAYLOAD, self.policy.udp_payload)
        return min(self.policy.udp_payload, max(MIN_UDP_PAYLOAD, query.payload))

    def _truncated(self, query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query, our_payload=self.policy.udp_payload)
        response.flags |= dns.flags.TC
        return response

    def _render(
        self, response: dns.message.Message, limit: int, *, tcp: bool = False, counted: bool = True
    ) -> bytes:
        wire = response.to_wire(max_size=MAX_TCP_MESSAGE)
        if len(wire) > limit:
            self.counters["truncated"] += 1
            empty = dns.message.Message(id=response.id)
            empty.flags = response.flags | dns.flags.TC
            empty.question = list(response.question)
            empty.set_rcode(response.rcode())
            if response.edns >= 0:
                empty.use_edns(0, 0, response.payload)
            wire = empty.to_wire(max_size=MAX_TCP_MESSAGE)
            if len(wire) > limit:  # a question too long for 512 bytes: the header says it all
                empty.question = []
                wire = empty.to_wire()
        if counted:
            self._count(response)
            self.counters["answered-tcp" if tcp else "answered-udp"] += 1
        return wire

    def _count(self, response: dns.message.Message) -> None:
        rcode = response.rcode()
        self.counters[f"rcode-{dns.rcode.to_text(rcode).lower()}"] += 1
        if rcode == dns.rcode.NOERROR and not response.answer:
            self.counters["nodata"] += 1

    def _header_only(self, wire: bytes, rcode: dns.rcode.Rcode, tcp: bool) -> bytes:
        """A reply carrying only the query's id and opcode (for bytes the library refused)."""
        message = dns.message.Message(id=int.from_bytes(wire[:2], "big"))
        message.flags = dns.flags.QR | (int.from_bytes(wire[2:4], "big") & dns.flags.RD)
        opcode = (wire[2] >> 3) & 0xF
        try:
            message.set_opcode(dns.opcode.Opcode(opcode))
        except ValueError:
            message.set_opcode(dns.opcode.QUERY)
        message.set_rcode(rcode)
        self._count(message)
        self.counters["answered-tcp" if tcp else "answered-udp"] += 1
        return message.to_wire()
