"""Whatever sequence of sessions arrives, the receive-session tables stay within every bound."""

from __future__ import annotations

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given
from hypothesis import strategies as st

from hyphal.crypto.rxsessions import ReceiveSessions

AEAD = AESGCM(bytes(32))
keys = st.tuples(st.sampled_from([b"a", b"b", b"c", b"d"]), st.binary(min_size=1, max_size=1))


@given(st.lists(st.tuples(keys, st.integers(0, 100)), max_size=200))
def test_tables_stay_bounded(arrivals: list[tuple[tuple[bytes, bytes], int]]) -> None:
    table = ReceiveSessions(
        max_sessions=6, max_floors=9, per_source_sessions=2, per_source_floors=3
    )
    for key, counter in arrivals:
        session = table.get(key)
        if session is None:
            if counter <= table.floor(key):
                continue  # a replay: refused before any state
            session = table.add(key, AEAD)
        if session.window.check(counter):
            session.window.update(counter)
        assert len(table) <= 6 and table.floor_count <= 9
        owners = table._session_owners.by_source
        assert all(len(ids) <= 2 for ids in owners.values())
        assert sum(len(ids) for ids in owners.values()) == len(table)
        floors = table._floor_owners.by_source
        assert all(len(ids) <= 3 for ids in floors.values())
        assert sum(len(ids) for ids in floors.values()) == table.floor_count
