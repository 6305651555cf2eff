"""The gossip state machine, driven directly: frames are delivered by hand, time is explicit."""

from __future__ import annotations

import dataclasses
from collections import deque

from memberkit import NETWORK, key
from memberkit import core as make_core

from hyphal.membership import record as rec
from hyphal.membership import wire
from hyphal.membership.gossip import MemberEvent, MembershipCore, SendFrame
from hyphal.membership.params import MembershipParams
from hyphal.membership.store import KIND_RECORD


class Pipe:
    """Cores by index; frames between them are delivered in order, instantly, on ``pump``."""

    def __init__(self, cores: dict[int, MembershipCore]) -> None:
        self.cores = cores
        self.queue: deque[tuple[int, int, bytes]] = deque()
        self.events: list[tuple[int, MemberEvent]] = []
        self.sent: list[tuple[int, int, list[wire.Message]]] = []
        self.cut: set[tuple[int, int]] = set()

    def take(self, src: int, actions: list) -> None:  # type: ignore[type-arg]
        for a in actions:
            if isinstance(a, SendFrame):
                self.sent.append((src, a.peer, wire.decode_frame(a.body, 1 << 20)))
                if (src, a.peer) not in self.cut:
                    self.queue.append((src, a.peer, a.body))
            else:
                self.events.append((src, a))

    def link(self, a: int, b: int, now: float) -> None:
        self.take(a, self.cores[a].neighbour_up(b, now))
        self.take(b, self.cores[b].neighbour_up(a, now))

    def pump(self, now: float) -> None:
        while self.queue:
            src, dst, body = self.queue.popleft()
            self.take(dst, self.cores[dst].handle_frame(src, body, now))

    def run(self, start: float, end: float) -> float:
        """Fire every core's timers up to ``end``, pumping frames after each; returns the time."""
        now = start
        self.pump(now)
        while True:
            due = min(c.next_deadline() for c in self.cores.values())
            if due > end:
                return end
            now = max(now, due)
            for i, c in self.cores.items():
                if c.next_deadline() <= now:
                    self.take(i, c.on_timer(now))
            self.pump(now)


def test_a_new_link_syncs_both_ways() -> None:
    a, b = make_core(0), make_core(1)
    a.publish(0.0, name="alpha")
    b.publish(0.0, name="beta")
    pipe = Pipe({0: a, 1: b})
    pipe.run(0.0, 15.0)  # past settle_s: the records are no longer "in flight"
    pipe.link(0, 1, 15.0)
    pipe.pump(15.0)
    assert a.lookup("beta") is not None and b.lookup("alpha") is not None
    assert a.store.exact_summary() == b.store.exact_summary()


def test_a_link_made_right_after_a_change_still_carries_it() -> None:
    # Settled summaries leave out the last settle_s of changes; the new link's HAVE covers them.
    a, b = make_core(0), make_core(1)
    a.publish(0.0, name="alpha")
    b.publish(0.0, name="beta")
    pipe = Pipe({0: a, 1: b})
    pipe.link(0, 1, 0.5)
    pipe.run(0.5, 2.0)
    assert a.lookup("beta") is not None and b.lookup("alpha") is not None


def test_an_update_is_pushed_as_have_want_item() -> None:
    a, b = make_core(0), make_core(1)
    pipe = Pipe({0: a, 1: b})
    pipe.link(0, 1, 0.0)
    pipe.pump(0.0)
    pipe.take(0, a.publish(1.0, name="alpha", region="fra"))
    pipe.sent.clear()
    pipe.run(1.0, 1.1)
    kinds = [(s, type(m).__name__) for s, _, ms in pipe.sent for m in ms]
    assert kinds == [(0, "Have"), (1, "Want"), (0, "ItemMsg")]
    got = b.lookup("alpha")
    assert got is not None and got.region == "fra"
    assert (1, MemberEvent("joined", key(0).prefix, "alpha")) in pipe.events


def test_a_relay_forwards_nothing_it_cannot_verify() -> None:
    a, b, c = make_core(0), make_core(1), make_core(2)
    pipe = Pipe({0: a, 1: b, 2: c})
    pipe.link(0, 1, 0.0)
    pipe.link(1, 2, 0.0)
    pipe.pump(0.0)
    genuine = rec.build(
        key(3).signer, NETWORK, origin=key(3).public, version=1, expires=int(1.8e9 + 999)
    )
    forged = dataclasses.replace(genuine, origin=key(4).public)
    pipe.sent.clear()
    pipe.take(1, b.handle_frame(0, wire.encode_item(KIND_RECORD, forged.encode()), 0.1))
    pipe.run(0.1, 1.0)
    assert b.store.counters["bad-signature"] == 1
    assert not [m for s, _, ms in pipe.sent if s == 1 for m in ms if isinstance(m, wire.Have)]
    assert c.store.member_count() == 0


def test_malformed_frames_are_counted_and_dropped() -> None:
    a = make_core(0)
    a.neighbour_up(7, 0.0)
    assert a.handle_frame(7, b"\x03\xff\xff", 0.1) == []
    assert a.handle_frame(8, b"", 0.1) == []
    assert a.counters["malformed-frame"] == 1
    assert a.counters["unknown-neighbour"] == 1


def test_receive_budget_drops_frames_beyond_it() -> None:
    params = MembershipParams(recv_rate_bps=100, recv_burst=1000)
    a = make_core(0, params=params)
    a.neighbour_up(7, 0.0)
    frame = wire.encode_summary(0, 0) * 60  # 900 bytes
    a.handle_frame(7, frame, 0.0)
    a.handle_frame(7, frame, 0.0)
    assert a.counters["recv-budget"] == 1
    a.handle_frame(7, frame, 10.0)
    assert a.counters["recv-budget"] == 1


def test_send_budget_queues_items_and_drains_them_later() -> None:
    params = MembershipParams(send_rate_bps=1000, send_burst=1000)
    big = make_core(0, params=params)
    wall = big.wall(0.0)
    for i in range(10, 30):
        k = key(i)
        r = rec.build(
            k.signer, NETWORK, origin=k.public, version=1, expires=int(wall + 3600), name=f"n{i}"
        )
        big.store.ingest(KIND_RECORD, r.encode(), wall, 0.0)
    small = make_core(1, params=params)
    pipe = Pipe({0: big, 1: small})
    pipe.run(0.0, 20.0)
    pipe.link(0, 1, 20.0)
    pipe.pump(20.0)
    first = small.store.member_count()
    assert first < 20  # the budget is spent: the rest waits
    assert big.next_deadline() < 21.0  # the queue waits for the budget, not for a summary
    pipe.run(20.0, 30.0)
    assert small.store.member_count() == 20


def test_duplicate_names_the_loser_is_told_and_both_stay_visible() -> None:
    a, b = make_core(0), make_core(1)
    pipe = Pipe({0: a, 1: b})
    pipe.take(0, a.publish(0.0, name="db1"))
    pipe.take(1, b.publish(1.0, name="db1"))
    pipe.link(0, 1, 2.0)
    pipe.run(2.0, 30.0)
    for c in (a, b):
        owner = c.lookup("db1")
        assert owner is not None and owner.origin == key(0).public
        names = {(m.name, m.owns_name) for m in c.members(lambda p: True)}
        assert names == {("db1", True), ("db1", False)}
    lost = [e for i, e in pipe.events if i == 1 and e.what == "name-lost"]
    assert lost and "claimed it first" in lost[0].detail
    assert not [e for i, e in pipe.events if i == 0 and e.what == "name-lost"]


def test_a_graceful_leave_propagates_as_a_tombstone() -> None:
    a, b = make_core(0), make_core(1)
    pipe = Pipe({0: a, 1: b})
    pipe.link(0, 1, 0.0)
    pipe.take(0, a.publish(0.0, name="alpha"))
    pipe.run(0.0, 1.0)
    pipe.take(0, a.leave(1.0))
    pipe.run(1.0, 2.0)
    assert b.lookup("alpha") is None
    (info,) = [m for m in b.members(lambda p: True) if not m.is_self]
    assert info.left and not info.reachable
    assert (1, MemberEvent("left", key(0).prefix, "alpha")) in pipe.events


def test_reachability_comes_from_the_caller() -> None:
    a, b = make_core(0), make_core(1)
    pipe = Pipe({0: a, 1: b})
    pipe.link(0, 1, 0.0)
    pipe.take(0, a.publish(0.0, name="alpha"))
    pipe.run(0.0, 1.0)
    routed = {key(0).prefix}
    assert [m.reachable for m in b.members(lambda p: p in routed) if not m.is_self] == [True]
    routed.clear()
    assert [m.reachable for m in b.members(lambda p: p in routed) if not m.is_self] == [False]


def test_unanswered_want_goes_to_another_neighbour() -> None:
    a, b, c = make_core(0), make_core(1), make_core(2)
    src = make_core(3)
    pipe = Pipe({0: a, 1: b, 2: c, 3: src})
    pipe.link(3, 0, 0.0)
    pipe.link(3, 2, 0.0)
    pipe.link(0, 1, 0.0)
    pipe.link(2, 1, 0.0)
    pipe.pump(0.0)
    pipe.cut.add((0, 1))  # a announces, but its answers to b are lost
    pipe.take(3, src.publish(0.5, name="src"))
    pipe.run(0.5, 3.0)
    assert b.lookup("src") is not None


def test_a_restarted_node_moves_past_its_earlier_life() -> None:
    a, b = make_core(0), make_core(1)
    pipe = Pipe({0: a, 1: b})
    pipe.link(0, 1, 0.0)
    pipe.take(0, a.publish(0.0, name="alpha"))
    pipe.run(0.0, 1.0)
    old_version = a.own_record.version  # type: ignore[union-attr]
    reborn = make_core(0, 1.0)
    reborn.wall_offset -= 100  # its clock is behind (within the accepted skew)
    pipe.cores[0] = reborn
    pipe.take(0, reborn.publish(1.0, name="alpha"))
    pipe.take(0, reborn.neighbour_up(1, 1.0))
    b.neighbour_down(0, 1.0)
    pipe.take(1, b.neighbour_up(0, 1.0))
    pipe.run(1.0, 40.0)
    assert reborn.own_record is not None and reborn.own_record.version > old_version
    held = b.store.record(key(0).prefix)
    assert held is not None and held.version == reborn.own_record.version


def test_unsolicited_bucket_messages_cannot_make_us_list_the_store_repeatedly() -> None:
    a = make_core(0)
    wall = a.wall(0.0)
    for i in range(10, 20):
        k = key(i)
        r = rec.build(k.signer, NETWORK, origin=k.public, version=1, expires=int(wall + 3600))
        a.store.ingest(KIND_RECORD, r.encode(), wall, 0.0)
    a.neighbour_up(7, 20.0)
    bogus = wire.encode_buckets([(1, 1)] * 64)
    first = a.handle_frame(7, bogus, 20.0)
    assert any(isinstance(x, SendFrame) and len(x.body) > 100 for x in first)
    for _ in range(50):
        assert a.handle_frame(7, bogus, 20.1) == []
    assert a.counters["listing-limited"] == 50


def test_our_record_is_refreshed_before_it_expires_and_after_a_clock_jump() -> None:
    params = MembershipParams(record_ttl_s=60)
    a = make_core(0, params=params)
    a.publish(0.0, name="alpha")
    first = a.own_record
    assert first is not None
    assert a.next_deadline() <= 0.4 * 60
    a.on_timer(a.next_deadline())
    assert a.own_record is not None and a.own_record.version > first.version
    now = 25.0
    a.wall_offset += 1000  # the wall clock jumps past the record's expiry
    assert a.next_deadline() <= now
    a.on_timer(now)
    again = a.own_record
    assert again is not None and again.expires > a.wall(now)
    assert a.lookup("alpha") is not None
    assert a.next_deadline() > now


def test_a_new_member_pulls_each_item_once_from_several_neighbours() -> None:
    records = []
    for i in range(10, 40):
        k = key(i)
        records.append(
            rec.build(
                k.signer, NETWORK, origin=k.public, version=1, expires=int(1.8e9 + 3600)
            ).encode()
        )
    full = {}
    for n in (0, 1, 2):
        c = make_core(n)
        for raw in records:
            c.store.ingest(KIND_RECORD, raw, c.wall(0.0), 0.0)
        full[n] = c
    fresh = make_core(3)
    pipe = Pipe({**full, 3: fresh})
    pipe.run(0.0, 15.0)
    for n in full:
        pipe.link(n, 3, 15.0)
    pipe.run(15.0, 20.0)
    assert fresh.store.member_count() == len(records)
    assert fresh.store.counters["duplicate"] == 0
    items_sent = sum(
        1 for src, _, ms in pipe.sent if src in full for m in ms if isinstance(m, wire.ItemMsg)
    )
    assert items_sent == len(records)
