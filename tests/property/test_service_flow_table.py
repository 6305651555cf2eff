"""Property tests: the service flow table under random packet sequences, and its parsers on
arbitrary bytes. A live flow is never re-pinned; the table never exceeds its bounds."""

from __future__ import annotations

import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from hyphal.dataplane import ipv6
from hyphal.services.flows import (
    TCP_ACK,
    TCP_FIN,
    TCP_RST,
    TCP_SYN,
    Flow,
    FlowLimits,
    FlowTable,
    flow_key,
    reverse_key,
)

SOURCES = [bytes.fromhex("04aa00000000000100000000000000") + bytes((i,)) for i in range(3)]
VIP = bytes.fromhex("04bb00000000000000000000000000aa")
INSTANCES = [bytes((i,)) * 32 for i in range(1, 4)]
FLAGS = st.sampled_from(
    [TCP_SYN, TCP_ACK, TCP_SYN | TCP_ACK, TCP_FIN | TCP_ACK, TCP_RST, TCP_RST | TCP_ACK, 0]
)


def packet(proto: int, src: bytes, sport: int, dport: int, flags: int) -> bytes:
    if proto == 6:
        body = struct.pack("!HHIIBBHHH", sport, dport, 1, 2, 5 << 4, flags, 1024, 0, 0)
    elif proto == 17:
        body = struct.pack("!HHHH", sport, dport, 8, 0)
    else:
        body = struct.pack("!BBHHH", 128, 0, 0, sport, 1)
    return struct.pack("!IHBB16s16s", 0x60000000, len(body), proto, 64, src, VIP) + body


EVENT = st.tuples(
    st.sampled_from(["out", "out", "out", "in", "fail", "tick"]),
    st.sampled_from([6, 6, 17, 58]),
    st.integers(0, len(SOURCES) - 1),
    st.integers(1, 4),  # source port: few, so flows repeat
    FLAGS,
    st.integers(0, len(INSTANCES) - 1),  # the instance a new flow would get now
    st.floats(0.0, 200.0),  # time passing before the event
)


@settings(max_examples=300)
@given(
    st.lists(EVENT, max_size=120),
    st.integers(1, 6),
    st.integers(1, 4),
)
def test_random_sequences_never_repin_a_live_flow(
    events: list[tuple[str, int, int, int, int, int, float]], max_flows: int, per_source: int
) -> None:
    limits = FlowLimits(
        max_flows=max_flows,
        max_per_source=per_source,
        tcp_opening=30,
        tcp_established=500,
        tcp_closing=60,
        tcp_closed=10,
        udp_idle=120,
        echo_idle=30,
    )
    table = FlowTable(limits)
    now = 0.0
    latest: dict[bytes, Flow] = {}  # the last flow object each key was pinned by
    pinned_to: dict[int, bytes] = {}  # id(flow) -> the instance it was opened with
    ended: set[int] = set()  # flows we failed on purpose
    for kind, proto, src_i, sport, flags, inst_i, dt in events:
        now += dt
        pf = flow_key(packet(proto, SOURCES[src_i], sport, 53, flags))
        assert pf is not None
        if kind == "tick":
            table.expire(now)
        elif kind == "out":
            flow = table.lookup(pf, now)
            if flow is not None:
                assert flow.instance == pinned_to[id(flow)]  # a live flow keeps its instance
                table.outbound(flow, pf, now)
            else:
                before = latest.get(pf.key)
                opened = table.open(pf, "svc", INSTANCES[inst_i], now)
                if isinstance(opened, str):
                    assert before is None or table.get(pf.key) is not before or before.closed
                    continue
                if before is not None and before is not opened:
                    # Re-pinning a key is allowed only once its old flow ended: expired, closed
                    # (RST or FINs both ways), or failed because its instance went away.
                    assert before.closed or before.expires <= now or id(before) in ended
                latest[pf.key] = opened
                pinned_to[id(opened)] = opened.instance
                table.outbound(opened, pf, now)
        elif kind == "in":
            flow = table.get(pf.key)
            if flow is not None:
                table.inbound(flow, flags, now)
        else:
            flow = table.get(pf.key)
            if flow is not None:
                ended.add(id(flow))
                table.fail(flow)
        # Bounds and bookkeeping hold after every step.
        assert len(table) <= max_flows
        assert all(table.per_source(s) <= per_source for s in SOURCES)
        assert sum(table.per_source(s) for s in SOURCES) == len(table)
        assert len(table._timers) <= 4 * len(table) + 64 + 3


@given(
    st.binary(max_size=120)
    | st.builds(
        packet,
        st.sampled_from([6, 17, 58]),
        st.sampled_from(SOURCES),
        st.integers(0, 65535),
        st.integers(0, 65535),
        FLAGS,
    )
)
def test_parsers_never_raise(data: bytes) -> None:
    parsed = flow_key(data)
    if parsed is not None:
        assert len(parsed.key) == 37
        assert parsed.key[:33] == data[8:40] + bytes((data[6],))  # addresses and protocol
        if parsed.proto != 58:
            assert parsed.key[33:] == data[40:44]
            assert (parsed.src_port, parsed.dst_port) == struct.unpack_from("!HH", data, 40)
        assert reverse_key(reverse_key(parsed.key)) == parsed.key or parsed.proto == 58
    reset = ipv6.tcp_reset(data)
    if reset is not None:
        assert reset[6] == 6 and len(reset) == 60


@given(
    st.integers(0, 65535),
    st.integers(0, 65535),
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**32 - 1),
    FLAGS,
    st.binary(max_size=64),
)
def test_tcp_reset_is_a_valid_answer(
    sport: int, dport: int, seq: int, ack: int, flags: int, payload: bytes
) -> None:
    seg = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 1024, 0, 0) + payload
    original = struct.pack("!IHBB16s16s", 0x60000000, len(seg), 6, 64, SOURCES[0], VIP) + seg
    reset = ipv6.tcp_reset(original)
    if flags & TCP_RST:
        assert reset is None
        return
    assert reset is not None
    assert reset[8:24] == VIP and reset[24:40] == SOURCES[0]
    r_sport, r_dport, r_seq, r_ack, _, r_flags = struct.unpack_from("!HHIIBB", reset, 40)
    assert (r_sport, r_dport) == (dport, sport)
    assert r_flags & TCP_RST
    if flags & TCP_ACK:
        assert r_seq == ack and not r_flags & TCP_ACK
    else:
        length = len(payload) + bool(flags & TCP_SYN) + bool(flags & TCP_FIN)
        assert r_flags & TCP_ACK and r_ack == (seq + length) % 2**32
    pseudo = int.from_bytes(reset[8:24], "big") + int.from_bytes(reset[24:40], "big")
    assert ipv6.checksum(reset[40:], pseudo + 20 + 6) in (0, 0xFFFF)
