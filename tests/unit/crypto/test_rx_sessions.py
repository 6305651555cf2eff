"""Receive sessions are quota'd per sender: one sender that opens session after session (any key
holder can, with authentic packets) evicts only its own sessions and floors, so another sender's
recorded packets stay replays however many it opens (issue 8, item 6)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hyphal.crypto.e2e import E2ECrypto, E2EError
from hyphal.crypto.rxsessions import ReceiveSessions
from hyphal.identity import NodeIdentity
from hyphal.wire import data as wire


def test_one_sender_opening_many_sessions_cannot_flush_another_senders_replay_state() -> None:
    receiver = E2ECrypto(NodeIdentity.generate(), max_sessions=64, max_floors=128)
    honest = E2ECrypto(NodeIdentity.generate())
    recorded = honest.seal(receiver.public_key, wire.KIND_BUS, b"pay me once")
    receiver.open(bytes(recorded))

    flooder = E2ECrypto(NodeIdentity.generate())
    for _ in range(2000):  # far more sessions than the whole table and floors hold
        flooder._new_session()
        receiver.open(flooder.seal(receiver.public_key, wire.KIND_BUS, b"x"))

    with pytest.raises(E2EError) as refused:
        receiver.open(bytes(recorded))
    assert refused.value.reason == "replay"
    assert receiver._rx.sources() == 2
    assert len(receiver._rx) <= 1 + 8  # the honest session and the flooder's quota
    assert receiver._rx.floor_count <= 64  # only the flooder's own floors, within its quota


def test_evicted_sessions_leave_floors_and_stay_replays() -> None:
    receiver = E2ECrypto(NodeIdentity.generate(), max_sessions=2)
    senders = [E2ECrypto(NodeIdentity.generate()) for _ in range(5)]
    recorded = [s.seal(receiver.public_key, wire.KIND_BUS, b"r") for s in senders]
    for packet in recorded:
        receiver.open(bytes(packet))
    assert len(receiver._rx) == 2 and receiver._rx.floor_count == 3
    for packet in recorded:  # evicted (floor) and live (window) alike are refused
        with pytest.raises(E2EError) as refused:
            receiver.open(bytes(packet))
        assert refused.value.reason == "replay"


def test_a_senders_own_oldest_session_and_floor_go_first() -> None:
    table = ReceiveSessions(
        max_sessions=100, max_floors=100, per_source_sessions=1, per_source_floors=2
    )
    aead = AESGCM(bytes(32))
    for sid in range(4):
        table.add((b"a", bytes([sid])), aead).window.update(10 + sid)
    table.add((b"b", b"\x00"), aead)
    # "a" kept one session (id 3) and the floors of ids 1 and 2; id 0's floor went first
    assert table.get((b"a", b"\x03")) is not None and table.get((b"b", b"\x00")) is not None
    assert [table.floor((b"a", bytes([i]))) for i in range(4)] == [-1, 11, 12, -1]
    assert table.floor_count == 2 and len(table) == 2 and table.sources() == 2


def test_bounds_must_be_positive() -> None:
    with pytest.raises(ValueError):
        ReceiveSessions(1, 1, 0, 1)
