"""The service-address flow table: pinning, TCP state from flags, timeouts, bounds."""

from __future__ import annotations

import struct

import pytest

from hyphal.dataplane import ipv6
from hyphal.services.flows import (
    REFUSE_NO_FLOW,
    REFUSE_SOURCE_FULL,
    REFUSE_TABLE_FULL,
    TCP_ACK,
    TCP_FIN,
    TCP_RST,
    TCP_SYN,
    FlowLimits,
    FlowTable,
    PacketFlow,
    flow_key,
    reverse_key,
)

CLIENT = bytes.fromhex("04aa0000000000010000000000000001")
CLIENT2 = bytes.fromhex("04aa0000000000010000000000000002")
VIP = bytes.fromhex("04bb00000000000000000000000000aa")
A, B = b"A" * 32, b"B" * 32


def tcp(src: bytes, dst: bytes, sport: int, dport: int, flags: int, payload: bytes = b"") -> bytes:
    seg = struct.pack("!HHIIBBHHH", sport, dport, 1000, 2000, 5 << 4, flags, 65535, 0, 0) + payload
    return struct.pack("!IHBB16s16s", 0x60000000, len(seg), 6, 64, src, dst) + seg


def udp(src: bytes, dst: bytes, sport: int, dport: int, payload: bytes = b"q") -> bytes:
    dgram = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    return struct.pack("!IHBB16s16s", 0x60000000, len(dgram), 17, 64, src, dst) + dgram


def pf(packet: bytes) -> PacketFlow:
    parsed = flow_key(packet)
    assert parsed is not None
    return parsed


def test_flow_key_reads_tcp_udp_and_echo() -> None:
    t = pf(tcp(CLIENT, VIP, 40000, 80, TCP_SYN))
    assert (t.proto, t.src_port, t.dst_port, t.tcp_flags) == (6, 40000, 80, TCP_SYN)
    assert t.key[:32] == CLIENT + VIP
    u = pf(udp(CLIENT, VIP, 5353, 53))
    assert (u.proto, u.src_port, u.dst_port) == (17, 5353, 53)
    e = pf(ipv6.echo_request(CLIENT, VIP, ident=77, seq=1))
    assert (e.proto, e.src_port, e.dst_port) == (58, 77, 0)


def test_flow_key_refuses_what_it_cannot_key() -> None:
    assert flow_key(b"") is None
    assert flow_key(tcp(CLIENT, VIP, 1, 2, TCP_SYN)[:50]) is None  # truncated TCP header
    fragment = bytearray(udp(CLIENT, VIP, 1, 53))
    fragment[6] = 44  # a fragment header: ports may not be in this packet
    assert flow_key(bytes(fragment)) is None
    error = ipv6.destination_unreachable(udp(VIP, CLIENT, 53, 1), VIP, 4)
    assert error is not None and flow_key(error) is None


def test_reverse_key_matches_the_reply() -> None:
    request = pf(udp(CLIENT, VIP, 5353, 53))
    reply = pf(udp(VIP, CLIENT, 53, 5353))
    assert reverse_key(reply.key) == request.key
    ping = pf(ipv6.echo_request(CLIENT, VIP, ident=9, seq=1))
    pong_packet = ipv6.echo_reply(ipv6.echo_request(CLIENT, VIP, ident=9, seq=1))
    assert pong_packet is not None
    assert reverse_key(pf(pong_packet).key) == ping.key


def test_only_a_syn_opens_a_tcp_flow() -> None:
    table = FlowTable()
    ack = pf(tcp(CLIENT, VIP, 40000, 80, TCP_ACK))
    assert table.lookup(ack, 0.0) is None
    assert table.open(ack, "web", A, 0.0) == REFUSE_NO_FLOW
    assert table.open(pf(tcp(CLIENT, VIP, 40000, 80, TCP_SYN | TCP_ACK)), "web", A, 0.0) == (
        REFUSE_NO_FLOW
    )
    assert len(table) == 0


def test_a_flow_stays_pinned_through_its_life() -> None:
    table = FlowTable()
    syn = pf(tcp(CLIENT, VIP, 40000, 80, TCP_SYN))
    flow = table.open(syn, "web", A, 0.0)
    assert not isinstance(flow, str)
    ack = pf(tcp(CLIENT, VIP, 40000, 80, TCP_ACK))
    table.outbound(flow, ack, 0.01)  # the handshake's last ACK
    for step in range(1, 100):
        found = table.lookup(ack, step * 60.0)  # a packet a minute for 99 minutes
        assert found is flow and found.instance == A
        table.outbound(found, ack, step * 60.0)
    assert flow.state_name == "established"


def test_syn_retransmission_keeps_the_pin_and_opening_times_out() -> None:
    limits = FlowLimits()
    table = FlowTable(limits)
    syn = pf(tcp(CLIENT, VIP, 40000, 80, TCP_SYN))
    flow = table.open(syn, "web", A, 0.0)
    assert not isinstance(flow, str)
    assert table.lookup(syn, 1.0) is flow
    assert table.lookup(syn, limits.tcp_opening + 0.5) is None  # never answered: gone


def test_established_idle_timeout_is_long_and_refreshed() -> None:
    limits = FlowLimits()
    table = FlowTable(limits)
    syn, ack = pf(tcp(CLIENT, VIP, 1, 80, TCP_SYN)), pf(tcp(CLIENT, VIP, 1, 80, TCP_ACK))
    flow = table.open(syn, "web", A, 0.0)
    assert not isinstance(flow, str)
    table.outbound(flow, ack, 1.0)
    assert table.lookup(ack, limits.tcp_established) is flow
    table.outbound(flow, ack, limits.tcp_established)
    assert table.lookup(ack, 2 * limits.tcp_established - 1) is flow
    assert table.lookup(ack, 2 * limits.tcp_established + 1) is None


def test_fin_shortens_and_rst_closes() -> None:
    limits = FlowLimits()
    table = FlowTable(limits)
    syn, ack = pf(tcp(CLIENT, VIP, 1, 80, TCP_SYN)), pf(tcp(CLIENT, VIP, 1, 80, TCP_ACK))
    fin = pf(tcp(CLIENT, VIP, 1, 80, TCP_FIN | TCP_ACK))
    flow = table.open(syn, "web", A, 0.0)
    assert not isinstance(flow, str)
    table.outbound(flow, ack, 1.0)
    table.outbound(flow, fin, 2.0)
    assert flow.state_name == "closing"
    assert table.lookup(ack, 2.0 + limits.tcp_closing - 1) is flow
    assert table.lookup(ack, 2.0 + limits.tcp_closing + 1) is None

    flow = table.open(syn, "web", A, 1000.0)
    assert not isinstance(flow, str)
    table.inbound(flow, TCP_RST, 1001.0)
    assert flow.closed
    assert table.lookup(ack, 1001.0 + limits.tcp_closed + 1) is None


def test_fins_both_ways_close_and_a_new_syn_may_repin() -> None:
    table = FlowTable()
    syn = pf(tcp(CLIENT, VIP, 1, 80, TCP_SYN))
    fin = pf(tcp(CLIENT, VIP, 1, 80, TCP_FIN | TCP_ACK))
    flow = table.open(syn, "web", A, 0.0)
    assert not isinstance(flow, str)
    table.outbound(flow, fin, 1.0)
    table.inbound(flow, TCP_FIN | TCP_ACK, 1.1)
    assert flow.closed
    assert table.lookup(syn, 2.0) is None  # the port is reused: a new connection
    again = table.open(syn, "web", B, 2.0)
    assert not isinstance(again, str) and again.instance == B


def test_a_syn_on_a_live_flow_is_a_retransmission() -> None:
    table = FlowTable()
    syn = pf(tcp(CLIENT, VIP, 1, 80, TCP_SYN))
    flow = table.open(syn, "web", A, 0.0)
    assert not isinstance(flow, str)
    table.outbound(flow, pf(tcp(CLIENT, VIP, 1, 80, TCP_FIN | TCP_ACK)), 1.0)  # half closed
    assert table.lookup(syn, 2.0) is flow
    with pytest.raises(ValueError, match="live flow"):
        table.open(syn, "web", B, 2.0)


def test_udp_flow_idles_out_and_replies_refresh_it() -> None:
    limits = FlowLimits(udp_idle=120.0)
    table = FlowTable(limits)
    query = pf(udp(CLIENT, VIP, 5353, 53))
    flow = table.open(query, "dns", A, 0.0)
    assert not isinstance(flow, str)
    table.inbound(flow, 0, 100.0)
    assert table.lookup(query, 219.0) is flow
    assert table.lookup(query, 221.0) is None
    assert table.counters["expired"] == 1


def test_table_bound_refuses_rather_than_evicting_live_flows() -> None:
    table = FlowTable(FlowLimits(max_flows=3, max_per_source=10))
    flows = []
    for port in range(3):
        flow = table.open(pf(tcp(CLIENT, VIP, port, 80, TCP_SYN)), "web", A, 0.0)
        assert not isinstance(flow, str)
        flows.append(flow)
    fourth = pf(tcp(CLIENT2, VIP, 9, 80, TCP_SYN))
    assert table.open(fourth, "web", A, 1.0) == REFUSE_TABLE_FULL
    assert len(table) == 3 and all(table.get(f.key) is f for f in flows)
    table.inbound(flows[1], TCP_RST, 2.0)  # one closes: it may make room
    new = table.open(fourth, "web", B, 3.0)
    assert not isinstance(new, str)
    assert table.get(flows[1].key) is None and table.get(flows[0].key) is flows[0]
    assert table.counters["evicted-closed"] == 1


def test_per_source_bound() -> None:
    table = FlowTable(FlowLimits(max_flows=100, max_per_source=2))
    for port in range(2):
        assert not isinstance(table.open(pf(udp(CLIENT, VIP, port, 53)), "dns", A, 0.0), str)
    assert table.open(pf(udp(CLIENT, VIP, 7, 53)), "dns", A, 0.0) == REFUSE_SOURCE_FULL
    assert not isinstance(table.open(pf(udp(CLIENT2, VIP, 7, 53)), "dns", A, 0.0), str)
    assert table.per_source(CLIENT) == 2 and table.per_source(CLIENT2) == 1
    table.expire(1000.0)
    assert len(table) == 0 and table.per_source(CLIENT) == 0


def test_fail_forgets_the_flow() -> None:
    table = FlowTable()
    query = pf(udp(CLIENT, VIP, 5353, 53))
    flow = table.open(query, "dns", A, 0.0)
    assert not isinstance(flow, str)
    table.fail(flow)
    assert table.lookup(query, 1.0) is None and table.counters["failed"] == 1
    again = table.open(query, "dns", B, 1.0)
    assert not isinstance(again, str) and again.instance == B


def test_limits_validate() -> None:
    with pytest.raises(ValueError):
        FlowLimits(max_flows=0)
