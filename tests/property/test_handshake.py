"""Property tests: the handshake raises only HandshakeError on any received bytes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hyphal.crypto.handshake import PREAMBLE_SIZE, HandshakeError, LinkHandshake
from hyphal.identity import NodeIdentity

ME = NodeIdentity.generate()
PEER = NodeIdentity.generate()


def fresh(initiator: bool) -> LinkHandshake:
    return LinkHandshake(ME, initiator=initiator, network_name=None, network_key=None)


PREAMBLE = fresh(False).initial_bytes()


@settings(max_examples=300)
@given(st.booleans(), st.lists(st.binary(max_size=150), max_size=5), st.booleans())
def test_receive_only_handshake_error(initiator: bool, chunks: list[bytes], valid: bool) -> None:
    hs = fresh(initiator)
    hs.initial_bytes()
    if valid:  # get past the preamble so the Noise messages themselves are fuzzed
        chunks = [PREAMBLE, *chunks]
    try:
        for c in chunks:
            hs.receive(c)
    except HandshakeError as exc:
        assert exc.reason in {
            "bad-magic",
            "version",
            "network-mismatch",
            "wrong-network-key",
            "decrypt",
            "bad-key",
            "self-connection",
            "rejected-by-peer",
            "malformed",
        }
    assert len(hs._buffer) <= PREAMBLE_SIZE + 2 + 65535


@settings(max_examples=100, deadline=None)
@given(st.integers(0, 400), st.integers(0, 7), st.sampled_from(["msg1", "msg2", "msg3"]))
def test_any_bit_flip_in_handshake_fails_cleanly(where: int, bit: int, which: str) -> None:
    init = LinkHandshake(ME, initiator=True, network_name="n", network_key=bytes(32))
    resp = LinkHandshake(PEER, initiator=False, network_name="n", network_key=bytes(32))
    first = bytearray(init.initial_bytes())
    r_pre = resp.initial_bytes()
    try:
        if which == "msg1":
            first[where % len(first)] ^= 1 << bit
            out = resp.receive(bytes(first))
            assert out == b"", "tampered msg1 answered"  # grown length: waits for more bytes
            return
        msg2 = bytearray(resp.receive(bytes(first)))
        if which == "msg2":
            blob = bytearray(r_pre) + msg2
            blob[where % len(blob)] ^= 1 << bit
            out = init.receive(bytes(blob))
            assert out == b"" and not init.complete, "tampered msg2 accepted"
            return
        msg3 = bytearray(init.receive(r_pre + bytes(msg2)))
        msg3[where % len(msg3)] ^= 1 << bit
        out = resp.receive(bytes(msg3))
        # A length grown beyond the message makes the responder wait, never complete.
        assert not resp.complete and out == b""
    except HandshakeError:
        pass
