"""Property tests of MessageCore under hostile input: never raises, memory stays bounded."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hyphal.bus.core import Limits, MessageCore, SendPacket
from hyphal.wire import bus as wire

ME = b"\x01" * 32
LIMITS = Limits(
    max_message_size=64 * 1024,
    max_inbox_bytes=256 * 1024,
    max_inbox_count=8,
    max_incoming_per_source=3,
    max_incoming_total=5,
    max_completed_memory=16,
    max_read_notices=4,
    max_reply_routes=8,
    max_inbox_per_source=3,
    max_reserved_per_source=100 * 1024,
    inbox_ttl=300.0,
    lease_time=30.0,
)
SOURCES = [bytes([i]) * 32 for i in range(2, 6)]
ids = st.sampled_from([bytes([i]) * 8 for i in range(6)]) | st.binary(min_size=8, max_size=8)
sources = st.sampled_from(SOURCES)
chunk_sizes = st.sampled_from([1024, 2048, 65536]) | st.integers(1, 2**32 - 1)
totals = st.sampled_from([0, 1, 1024, 5000, 64 * 1024, 10**9]) | st.integers(0, 2**64 - 1)

structured = st.one_of(
    st.builds(
        wire.Init,
        ids,
        st.booleans(),
        totals,
        chunk_sizes,
        st.integers(0, 2**32 - 1),
        st.binary(min_size=32, max_size=32),
        st.binary(max_size=20),
        st.binary(max_size=3000),
    ),
    st.builds(
        wire.Chunk, ids, st.booleans(), st.integers(0, 70), st.binary(min_size=1, max_size=3000)
    ),
    st.builds(
        wire.Ack,
        ids,
        st.booleans(),
        st.integers(0, 100),
        st.integers(0, 2**32 - 1),
        st.just(((200, 300),)) | st.just(()),
    ),
    st.builds(wire.Received, ids, st.booleans()),
    st.builds(wire.Read, ids, st.booleans()),
    st.builds(wire.ReadAck, ids, st.booleans()),
    st.builds(wire.Abort, ids, st.booleans(), st.sampled_from(wire.AbortReason)),
).map(wire.encode)

events = st.lists(
    st.tuples(
        sources,
        structured | st.binary(max_size=100),
        st.floats(0, 500, allow_nan=False),
        st.sampled_from(
            ["packet", "packet", "packet", "timer", "pop", "send", "take", "ack", "release"]
        ),
    ),
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(events)
def test_hostile_packets_never_raise_and_memory_bounded(
    evs: list[tuple[bytes, bytes, float, str]],
) -> None:
    now = 0.0
    core = MessageCore(ME, now, limits=LIMITS)
    taken: list[bytes] = []
    for src, body, dt, what in evs:
        now += dt
        if what == "packet":
            actions = core.handle_packet(src, body, now)
        elif what == "timer":
            actions = core.on_timer(now)
        elif what == "pop":
            actions = core.pop(now)[1]
        elif what == "take":
            message = core.take(now)
            taken += [] if message is None else [message.msg_id]
            actions = []
        elif what == "ack":
            actions = core.ack(taken.pop(0), now)[1] if taken else []
        elif what == "release":
            actions = core.release(taken.pop()) if taken else []
        else:
            actions = core.send(src, body[:100], now)[1]
        for action in actions:
            if isinstance(action, SendPacket):
                wire.decode(action.body)  # everything we emit is well formed
        mem = core.memory_usage()
        assert mem["inbox_bytes"] <= LIMITS.max_inbox_bytes
        assert mem["inbox_count"] <= LIMITS.max_inbox_count
        assert mem["incoming_transfers"] <= LIMITS.max_incoming_total
        assert mem["inbox_bytes"] + mem["incoming_reserved"] <= LIMITS.max_inbox_bytes
        assert mem["incoming_allocated"] <= 2 * LIMITS.max_inbox_bytes
        assert mem["completed_ids"] <= LIMITS.max_completed_memory
        assert mem["read_notices"] <= LIMITS.max_read_notices
        assert mem["reply_routes"] <= LIMITS.max_reply_routes
        assert mem["inbox_leased"] <= mem["inbox_count"]
        assert all(core.inbox.from_source(s) <= LIMITS.max_inbox_per_source for s in SOURCES)
        # Memory follows what arrived: each transfer holds at most what was sent to it.
        assert mem["incoming_allocated"] <= mem["incoming_transfers"] * (
            LIMITS.max_message_size + 8192
        )
        assert core.next_deadline() >= 0
