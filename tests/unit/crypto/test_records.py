"""Link record cipher: sealing, stream reassembly, limits, rekey."""

from __future__ import annotations

import struct

import pytest

from hyphal.crypto import session
from hyphal.crypto.session import MAX_RECORD_CIPHERTEXT, RecordReceiver, RecordSender
from hyphal.wire.errors import DecodeError

KEY = bytes(range(32))


def test_round_trip_and_stream_reassembly() -> None:
    s, r = RecordSender(KEY), RecordReceiver(KEY)
    msgs = [b"", b"a", b"x" * 1400, b"y" * 70000]
    stream = b"".join(bytes(s.seal(m)) for m in msgs)
    assert RecordReceiver(KEY).feed(stream) == msgs
    out: list[bytes] = []
    for k in range(0, len(stream), 333):
        out += r.feed(memoryview(stream)[k : k + 333])
    assert out == msgs
    assert r.buffered == 0


def test_record_layout() -> None:
    rec = RecordSender(KEY).seal(b"abc")
    assert struct.unpack(">I", rec[:4])[0] == 3 + 16
    assert len(rec) == 4 + 3 + 16


def test_tamper_length_body_or_tag_fails() -> None:
    rec = bytes(RecordSender(KEY).seal(b"hello world"))
    for i in range(len(rec)):
        bad = bytearray(rec)
        bad[i] ^= 0x01
        r = RecordReceiver(KEY)
        try:
            out = r.feed(bytes(bad))
        except DecodeError:
            continue
        # Only a length change that leaves the record incomplete may go undetected for now.
        assert i < 4 and out == []


def test_replayed_or_reordered_record_fails() -> None:
    s = RecordSender(KEY)
    a, b = bytes(s.seal(b"one")), bytes(s.seal(b"two"))
    r = RecordReceiver(KEY)
    assert r.feed(a) == [b"one"]
    with pytest.raises(DecodeError):
        r.feed(a)
    with pytest.raises(DecodeError):
        RecordReceiver(KEY).feed(b)
    with pytest.raises(DecodeError):  # poisoned after failure
        r.feed(b)


def test_oversize_length_rejected_before_body_arrives() -> None:
    r = RecordReceiver(KEY)
    with pytest.raises(DecodeError):
        r.feed(struct.pack(">I", MAX_RECORD_CIPHERTEXT + 1))
    with pytest.raises(DecodeError):
        RecordReceiver(KEY).feed(struct.pack(">I", 15) + bytes(15))
    with pytest.raises(ValueError):
        RecordSender(KEY).seal(bytes(session.MAX_RECORD_PLAINTEXT + 1))


def test_max_size_record_accepted() -> None:
    body = bytes(session.MAX_RECORD_PLAINTEXT)
    assert RecordReceiver(KEY).feed(RecordSender(KEY).seal(body)) == [body]


def test_rekey_interval_keeps_both_sides_in_step(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session, "REKEY_INTERVAL", 4)
    s, r = RecordSender(KEY), RecordReceiver(KEY)
    for i in range(20):
        assert r.feed(s.seal(b"%d" % i)) == [b"%d" % i]
    assert s.counter == r.counter == 20
    # A receiver that did not rekey cannot read record 4 onward.
    s2 = RecordSender(KEY)
    recs = [bytes(s2.seal(b"z")) for _ in range(5)]
    stale = RecordReceiver(KEY)
    monkeypatch.setattr(session, "REKEY_INTERVAL", 1 << 16)
    assert stale.feed(b"".join(recs[:4])) == [b"z"] * 4
    with pytest.raises(DecodeError):
        stale.feed(recs[4])


def test_trim_gives_a_grown_buffer_back_and_keeps_pending_bytes() -> None:
    s, r = RecordSender(KEY), RecordReceiver(KEY)
    big = b"z" * (1 << 20)
    assert r.feed(bytes(s.seal(big))) == [big]
    assert r.capacity > 2 * session.INITIAL_BUFFER
    tail = bytes(s.seal(b"after"))
    assert r.feed(tail[:7]) == []  # an incomplete record is held across the trim
    r.trim()
    assert r.capacity == session.INITIAL_BUFFER
    assert r.feed(tail[7:]) == [b"after"]
