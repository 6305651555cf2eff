"""Gossip frames and the membership core under hostile input: the frame decoder raises only
DecodeError, the core never raises on any bytes, and stores converge whatever the order of the
signed items they receive (the CRDT property)."""

from __future__ import annotations

import contextlib
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from hyphal.crypto.signing import XEdDSASigner, XEdDSAVerifier
from hyphal.identity import NodeIdentity
from hyphal.membership import record as rec
from hyphal.membership import wire
from hyphal.membership.gossip import MembershipCore
from hyphal.membership.store import KIND_RECORD, Store
from hyphal.wire.errors import DecodeError

NETWORK = b"prop"
WALL = 1.8e9
IDS = [NodeIdentity.from_private_bytes(random.Random(i).randbytes(32)) for i in range(4)]
SIGNERS = [XEdDSASigner(i.private_bytes()) for i in IDS]


def _record(i: int, version: int, name: str, left: bool = False) -> bytes:
    fields: dict[str, object] = {} if left else {"name": name, "name_since": version}
    return rec.build(
        SIGNERS[i],
        NETWORK,
        origin=IDS[i].public_key,
        version=version,
        expires=int(WALL + 1000 + version),
        left=left,
        **fields,  # type: ignore[arg-type]
    ).encode()


# A pool of genuinely signed records: several versions per origin, names that collide,
# tombstones; signed once per process.
POOL = [
    _record(i, v, name, left)
    for i in range(4)
    for v, name, left in ((1, "db1", False), (2, f"n{i}", False), (3, "db1", False), (4, "", True))
]


@given(st.binary(max_size=2000))
def test_frame_decoder_raises_only_decode_error(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        wire.decode_frame(data, 4000)


messages = st.one_of(
    st.builds(wire.encode_summary, st.integers(0, 2**32 - 1), st.integers(0, 2**64 - 1)),
    st.lists(
        st.tuples(st.integers(0, 65535), st.integers(0, 2**64 - 1)), min_size=64, max_size=64
    ).map(wire.encode_buckets),
    st.builds(
        wire.encode_have,
        st.booleans(),
        st.integers(0, 2**64 - 1),
        st.lists(
            st.tuples(
                st.integers(0, 255), st.binary(min_size=8, max_size=8), st.integers(0, 2**64 - 1)
            ),
            max_size=5,
        ),
    ),
    st.builds(
        wire.encode_want,
        st.lists(st.tuples(st.integers(0, 255), st.binary(min_size=8, max_size=8)), max_size=5),
    ),
    st.builds(
        wire.encode_item,
        st.integers(0, 255),
        st.one_of(st.sampled_from(POOL), st.binary(max_size=300)),
    ),
    st.binary(max_size=50),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.lists(messages, max_size=4)), max_size=8))
def test_core_survives_any_frames(frames: list[tuple[int, list[bytes]]]) -> None:
    core = MembershipCore(
        IDS[0].public_key,
        SIGNERS[0],
        XEdDSAVerifier(),
        NETWORK,
        0.0,
        wall_offset=WALL,
        rng=random.Random(0),
    )
    core.publish(0.0, name="self")
    core.neighbour_up(1, 0.0)
    now = 0.0
    for peer, parts in frames:
        now += 0.5
        core.handle_frame(peer, b"".join(parts), now)
        core.on_timer(max(now, core.next_deadline()))
    assert core.next_deadline() > now - 1.0
    assert core.store.member_count() <= 4


@settings(max_examples=40, deadline=None)
@given(st.permutations(POOL), st.permutations(POOL))
def test_stores_converge_in_any_order(a: list[bytes], b: list[bytes]) -> None:
    stores = []
    for order in (a, b):
        store = Store(XEdDSAVerifier(), NETWORK)
        for raw in order:
            store.ingest(KIND_RECORD, raw, WALL, 0.0)
        stores.append(store)
    x, y = stores
    assert x.exact_summary() == y.exact_summary()
    assert x.lookup("db1") == y.lookup("db1")
    assert {r.prefix: r.version for r in x.records()} == {r.prefix: r.version for r in y.records()}
