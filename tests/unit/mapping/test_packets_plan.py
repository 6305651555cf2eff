"""Probe bytes (Paris checksums, ports, parsers) and the sans-IO trace and ping plans."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hyphal.mapping.probe import packets
from hyphal.mapping.probe.plan import PingParams, PingPlan, Reply, TraceParams, TracePlan

CONTACT = packets.contact_bytes(packets.DEFAULT_CONTACT)


@given(st.integers(0, 0xFFFF), st.integers(0, 0xFFFF), st.integers(0, packets.MAX_FLOW_ID))
def test_paris_icmp_checksum_is_constant_per_flow(ident: int, seq: int, flow: int) -> None:
    packet = packets.icmp_echo(ident, seq, CONTACT, flow)
    assert struct.unpack_from("!H", packet, 2)[0] == packets.paris_icmp_checksum(flow)
    assert packets.checksum(packet) == 0  # a valid checksum over the whole message
    assert packets.echo_seq(packet) == (packets.ICMP_ECHO_REQUEST, ident, seq)
    assert CONTACT in packet


def test_classic_icmp_checksum_moves_with_the_sequence() -> None:
    sums = {packets.icmp_echo(7, seq, CONTACT, None)[2:4] for seq in range(20)}
    assert len(sums) == 20


def test_ports_paris_fixed_classic_moving() -> None:
    assert {packets.ports_for("udp", 3, i, True, None) for i in range(10)} == {(40003, 33434)}
    classic = {packets.ports_for("udp", 3, i, False, None)[1] for i in range(10)}
    assert len(classic) == 10
    assert packets.ports_for("tcp", 3, 5, True, 443) == (40003, 443)
    with pytest.raises(ValueError):
        packets.ports_for("udp", packets.MAX_FLOW_ID + 1, 0, True, None)


def test_contact_must_be_printable() -> None:
    with pytest.raises(ValueError):
        packets.contact_bytes("evil\r\nheader")
    assert len(packets.contact_bytes("x" * 999)) == packets.MAX_CONTACT


@given(st.binary(max_size=120))
def test_parsers_raise_only_packet_error(data: bytes) -> None:
    for parse in (packets.parse_icmp4, lambda d: packets.parse_icmp6(d, "2001:db8::1", 3)):
        with contextlib.suppress(packets.PacketError):
            parse(data)
    try:
        packets.echo_seq(data)
        packets.payload_seq(data)
    except packets.PacketError:
        pass


def _hop(source: str, final: bool = False) -> Reply:
    return Reply(source, 0 if final else 11, 0, 60, None, final)


def _drive(plan: TracePlan, answers: dict[int, Reply | None]) -> float:
    """Answer by TTL (None: silent) until done; returns the final time."""
    now = 0.0
    while not plan.done:
        probe = plan.next_probe()
        assert probe is not None
        plan.sent(probe, now)
        answer = answers.get(probe.ttl)
        if answer is None:
            deadline = plan.deadline()
            assert deadline is not None
            now = deadline
            plan.expire(now)
        else:
            now += 0.01
            assert plan.reply(probe.seq, answer, 10.0, now)
    return now


def test_trace_completes_at_the_destination_with_timeouts_for_silent_hops() -> None:
    plan = TracePlan(TraceParams(attempts=2, wait=1.0), 0.0)
    answers = {1: _hop("a"), 2: None, 3: _hop("c"), 4: _hop("t", final=True)}
    _drive(plan, answers)
    assert plan.stop_reason == "completed" and plan.destination_replied
    hops = plan.hop_list()
    assert [h["ttl"] for h in hops] == [1, 2, 3, 4]
    assert hops[1]["replies"] == [{"timeout": True}, {"timeout": True}]
    assert hops[3]["replies"][0]["from"] == "t"


def test_gap_limit_and_max_ttl() -> None:
    plan = TracePlan(TraceParams(attempts=1, gap_limit=3, wait=1.0), 0.0)
    _drive(plan, {1: _hop("a")})
    assert plan.stop_reason == "gaplimit"
    assert [h["ttl"] for h in plan.hop_list()] == [1, 2, 3, 4]
    plan = TracePlan(TraceParams(max_ttl=3, attempts=1), 0.0)
    _drive(plan, {i: _hop(f"r{i}") for i in range(1, 10)})
    assert plan.stop_reason == "maxttl" and not plan.destination_replied


def test_unreachable_ends_the_trace_without_destination() -> None:
    plan = TracePlan(TraceParams(attempts=1), 0.0)
    _drive(plan, {1: _hop("a"), 2: Reply("b", 3, 1, 60, None, False, True)})
    assert plan.stop_reason == "completed" and not plan.destination_replied


def test_late_and_forged_replies_are_ignored() -> None:
    plan = TracePlan(TraceParams(attempts=2, wait=1.0), 0.0)
    probe = plan.next_probe()
    assert probe is not None
    plan.sent(probe, 0.0)
    assert not plan.reply(probe.seq + 1, _hop("x"), 1.0, 0.1)
    plan.expire(1.0)
    again = plan.next_probe()
    assert again is not None and again.seq != probe.seq and again.attempt == 2
    plan.sent(again, 1.0)
    assert not plan.reply(probe.seq, _hop("late"), 1.0, 1.1)  # the first attempt's answer
    assert plan.ignored == 2


def test_all_attempts_sends_every_attempt() -> None:
    plan = TracePlan(TraceParams(attempts=3, all_attempts=True), 0.0)
    _drive(plan, {1: _hop("a"), 2: _hop("t", final=True)})
    assert [len(h["replies"]) for h in plan.hop_list()] == [3, 3]


def test_ping_plan_paces_and_counts() -> None:
    plan = PingPlan(PingParams(count=3, interval=1.0, wait=0.5), 0.0)
    assert plan.next_probe(0.0) == 0
    plan.sent(0, 0.0)
    assert plan.next_probe(0.5) is None  # interval not over
    assert plan.reply(0, 3.0, 0.1)
    assert plan.next_probe(1.0) == 1
    plan.sent(1, 1.0)
    plan.expire(1.6)  # lost
    plan.sent(2, 2.0)
    assert plan.reply(2, 4.0, 2.1)
    assert plan.done and plan.rtts == [3.0, 4.0] and plan.sent_count == 3
