"""The router's compact state changes nothing a neighbour or the node can see.

- Skipping the full rescan when an update cannot change the selection (``_selection_stands``)
  gives the same selections, counters and output bytes as rescanning on every update.
- The flat source table answers exactly like the dict-of-dicts it replaced.
- The hot-path update encoder writes the same bytes as ``encode_tlv``.
- Routes carrying the same announcement share one tuple.
"""

from __future__ import annotations

import time
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from hyphal.crypto.signing import XEdDSASigner
from hyphal.identity import prefix64_for_public_key
from hyphal.routing import Router, SendControl
from hyphal.routing.metric import INFINITY, seqno_newer
from hyphal.routing.source import SourceTable
from hyphal.sim.routernet import identity, make_router
from hyphal.wire.control import (
    FLAG_SUB_TLVS,
    IHU,
    Delegation,
    Hello,
    Update,
    announcement_message,
    decode_payload,
    encode_payload,
    encode_relayed_update,
    encode_retraction,
    encode_tlv,
)

PEERS = (11, 12, 13, 14)
ORIGINS = (1, 2, 3)
SEQNOS = (0, 1, 2)
ISSUED = int(time.time())


def _signed(origin: int, seqno: int) -> Update:
    ident = identity(origin)
    router_id = ident.public_key + b"\x01" * 8
    prefix = prefix64_for_public_key(ident.public_key)
    signature = XEdDSASigner(ident.private_bytes()).sign(
        announcement_message(prefix, seqno, router_id, ISSUED)
    )
    return Update(prefix, seqno, 0, 400, 0, router_id, signature, issued=ISSUED)


SIGNED = {(o, s): _signed(o, s) for o in ORIGINS for s in SEQNOS}


class _SignsOnce:
    """XEdDSA signatures are randomised: two routers compared byte for byte share this signer,
    which signs each message once, and one wall clock (what they sign carries its second)."""

    def __init__(self, index: int) -> None:
        self._inner = XEdDSASigner(identity(index).private_bytes())
        self._signed: dict[bytes, bytes] = {}

    def sign(self, message: bytes) -> bytes:
        if message not in self._signed:
            self._signed[message] = self._inner.sign(message)
        return self._signed[message]


_SIGNER = _SignsOnce(0)


def _router(rescan_always: bool) -> Router:
    router = make_router(0, 0.0, wall_clock=lambda: float(ISSUED), signer=_SIGNER)
    if rescan_always:
        router._selection_stands = lambda *args: False  # type: ignore[method-assign]
    for peer, rtt_us in zip(PEERS, (2_000, 4_000, 9_000, 30_000), strict=True):
        for action in router.neighbour_up(peer, 0.0):
            if isinstance(action, SendControl) and action.peer == peer:
                for tlv in decode_payload(action.payload):
                    if isinstance(tlv, Hello):
                        router.handle_control(
                            peer,
                            encode_payload([IHU(tlv.seqno, 25, tlv.timestamp)]),
                            rtt_us / 1e6,
                        )
    assert all(nb.alive for nb in router.neighbours())
    return router


# one step: (peer, origin, seqno, metric or None for a retraction, seconds later)
steps = st.lists(
    st.tuples(
        st.sampled_from(PEERS),
        st.sampled_from(ORIGINS),
        st.sampled_from(SEQNOS),
        st.one_of(st.none(), st.integers(1, 4000)),
        st.sampled_from((0.0, 0.01, 0.5, 3.0)),
    ),
    max_size=40,
)


def _observe(router: Router, actions: list[Any]) -> tuple[Any, ...]:
    selected = sorted((r.prefix64, r.next_hop, r.metric, r.seqno) for r in router.selected_routes())
    return (selected, router.counters.copy(), actions)


@given(steps)
def test_skipping_the_rescan_changes_nothing(script: list[Any]) -> None:
    fast, full = _router(False), _router(True)
    now = 1.0
    for peer, origin, seqno, metric, later in script:
        now += later
        update = SIGNED[(origin, seqno)]
        if metric is None:
            tlv = Update(update.prefix64, seqno, INFINITY, 400, 0, update.router_id, b"")
        else:
            tlv = Update(
                update.prefix64,
                seqno,
                metric,
                400,
                0,
                update.router_id,
                update.signature,
                issued=ISSUED,
            )
        payload = encode_payload([tlv])
        seen = []
        for router in (fast, full):
            for other in PEERS:  # heard from: every neighbour stays up
                router.handle_control(other, b"", now)
            actions = router.handle_control(peer, payload, now) + router.on_timer(now + 0.05)
            seen.append(_observe(router, actions))
        assert len(fast.neighbours()) == len(PEERS)
        assert seen[0] == seen[1]


def test_the_fast_path_is_taken_and_routes_are_selected() -> None:
    router = _router(False)
    rescans = 0
    reselect = router._reselect

    def counting(*args: Any) -> None:
        nonlocal rescans
        rescans += 1
        reselect(*args)

    router._reselect = counting  # type: ignore[method-assign, assignment]
    update = SIGNED[(1, 0)]
    for peer, metric in zip(PEERS, (100, 900, 950, 990), strict=True):  # each worse than PEERS[0]
        tlv = Update(
            update.prefix64, 0, metric, 400, 0, update.router_id, update.signature, issued=ISSUED
        )
        router.handle_control(peer, encode_payload([tlv]), 1.0)
    assert router.next_hop(update.prefix64) == PEERS[0]
    assert rescans == 1  # only the first route was selected by a rescan


class _ReferenceSources:
    """The source table as it was: prefix -> router id -> [seqno, metric, expires, issued]."""

    def __init__(self, max_prefixes: int, max_per_prefix: int) -> None:
        self.by_prefix: dict[bytes, dict[bytes, list[Any]]] = {}
        self.max_prefixes, self.max_per_prefix = max_prefixes, max_per_prefix

    def advertised(self, p: bytes, r: bytes, seqno: int, metric: int, exp: float) -> None:
        if metric >= INFINITY:
            return
        sources = self.by_prefix.get(p)
        if sources is None:
            if len(self.by_prefix) >= self.max_prefixes:
                del self.by_prefix[next(iter(self.by_prefix))]
            sources = self.by_prefix[p] = {}
        s = sources.get(r)
        if s is None:
            if len(sources) >= self.max_per_prefix:
                del sources[min(sources, key=lambda rid: sources[rid][2])]
            sources[r] = [seqno, metric, exp, 0]
            return
        if seqno_newer(seqno, s[0]):
            s[0], s[1] = seqno, metric
        elif seqno == s[0] and metric < s[1]:
            s[1] = metric
        s[2] = exp

    def sweep(self, now: float) -> None:
        for p in list(self.by_prefix):
            sources = self.by_prefix[p]
            for r in [r for r, s in sources.items() if s[2] <= now]:
                del sources[r]
            if not sources:
                del self.by_prefix[p]

    def view(self) -> dict[tuple[bytes, bytes], tuple[int, int]]:
        return {(p, r): (s[0], s[1]) for p, rs in self.by_prefix.items() for r, s in rs.items()}


source_ops = st.lists(
    st.one_of(
        st.tuples(
            st.just("adv"),
            st.sampled_from([b"p" * 8, b"q" * 8, b"r" * 8, b"s" * 8]),
            st.sampled_from([b"a" * 40, b"b" * 40, b"c" * 40]),
            st.integers(0, 5),
            st.integers(0, INFINITY),
            st.integers(0, 20),
        ),
        st.tuples(st.just("sweep"), st.integers(0, 20)),
    ),
    max_size=60,
)


@given(source_ops)
def test_flat_source_table_answers_like_the_nested_one(ops: list[Any]) -> None:
    table, ref = SourceTable(3, 2), _ReferenceSources(3, 2)
    for op in ops:
        if op[0] == "adv":
            _, p, r, seqno, metric, exp = op
            table.advertised(p, r, seqno, metric, float(exp))
            ref.advertised(p, r, seqno, metric, float(exp))
        else:
            table.sweep(float(op[1]))
            ref.sweep(float(op[1]))
        expected = ref.view()
        assert len(table) == len(ref.by_prefix)
        for p in (b"p" * 8, b"q" * 8, b"r" * 8, b"s" * 8):
            for r in (b"a" * 40, b"b" * 40, b"c" * 40):
                got = table.get(p, r)
                assert (None if got is None else (got.seqno, got.metric)) == expected.get((p, r))
                for seqno, metric in ((0, 100), (3, 1000), (5, 5)):
                    held = expected.get((p, r))
                    want = (
                        held is None
                        or (seqno == held[0] and metric < held[1])
                        or (seqno != held[0] and seqno_newer(seqno, held[0]))
                    )
                    assert table.feasible(p, r, seqno, metric) == want


@given(
    st.binary(min_size=8, max_size=8),
    st.integers(0, 0xFFFF),
    st.integers(0, INFINITY - 1),
    st.integers(0, 0xFFFF),
    st.binary(min_size=40, max_size=40),
    st.binary(min_size=64, max_size=64),
    st.integers(0, 0xFFFFFFFF),
    st.one_of(
        st.none(),
        st.builds(
            Delegation,
            st.binary(min_size=32, max_size=32),
            st.integers(0, 0xFFFFFFFF),
            st.binary(min_size=64, max_size=64),
        ),
    ),
)
def test_relayed_update_encoder_matches_encode_tlv(
    prefix: bytes,
    seqno: int,
    metric: int,
    interval: int,
    router_id: bytes,
    signature: bytes,
    issued: int,
    delegation: Delegation | None,
) -> None:
    expected = encode_tlv(
        Update(
            prefix,
            seqno,
            metric,
            interval,
            0 if delegation is None else FLAG_SUB_TLVS,
            router_id,
            signature,
            () if delegation is None else (delegation.sub_tlv(),),
            issued,
        )
    )
    got = encode_relayed_update(
        prefix, seqno, metric, interval, router_id, signature, issued, delegation
    )
    assert got == expected


@given(
    st.binary(min_size=8, max_size=8),
    st.integers(0, 0xFFFF),
    st.integers(0, 0xFFFF),
    st.binary(min_size=40, max_size=40),
)
def test_retraction_encoder_matches_encode_tlv(
    prefix: bytes, seqno: int, interval: int, router_id: bytes
) -> None:
    expected = encode_tlv(Update(prefix, seqno, INFINITY, interval, 0, router_id, b""))
    assert encode_retraction(prefix, seqno, interval, router_id) == expected


def test_routes_carrying_one_announcement_share_it() -> None:
    router = _router(False)
    update = SIGNED[(1, 0)]
    for metric, peer in zip((100, 200, 300, 400), PEERS, strict=True):
        tlv = Update(
            update.prefix64, 0, metric, 400, 0, update.router_id, update.signature, issued=ISSUED
        )
        router.handle_control(peer, encode_payload([tlv]), 1.0)
    entry = router._table[update.prefix64]
    assert len(entry.routes) == 4
    assert len({id(route.announcement) for route in entry.routes}) == 1
    assert entry.routes[0].announcement[4] is entry.prefix
