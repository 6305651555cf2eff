"""The receive side's bounded replay state, quota'd per sender.

A receive session is one (sender key, session id) pair with its replay window. Sessions live in
a global LRU of ``max_sessions``; an evicted session leaves its highest counter behind as a
*floor*, so its recorded packets stay replays. Both tables are also quota'd per sender key
(``per_source_sessions``, ``per_source_floors``): a sender that opens many session ids, which any
key holder can do with authentic packets, evicts only its own oldest sessions and floors, never
another sender's. What is left (many distinct keys, each paying for an X25519 on the receiver)
is stated in ``docs/dataplane.md``.
"""

from __future__ import annotations

from collections import OrderedDict

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from hyphal.crypto.replay import ReplayWindow

SessionKey = tuple[bytes, bytes]  # (sender public key, session id)


class RxSession:
    """One sender session: its AEAD and its replay window."""

    __slots__ = ("aead", "floor", "window")

    def __init__(self, aead: AESGCM, floor: int) -> None:
        self.aead = aead
        self.floor = floor  # counters up to here were accepted before an eviction: replays
        self.window = ReplayWindow()


class _PerSource:
    """An insertion-ordered table of (sender, session id) keys with a per-sender quota."""

    def __init__(self, quota: int) -> None:
        self.quota = quota
        self.by_source: dict[bytes, OrderedDict[bytes, None]] = {}

    def add(self, key: SessionKey) -> SessionKey | None:
        """Record ``key``; returns the sender's oldest key when it is now over its quota."""
        ids = self.by_source.setdefault(key[0], OrderedDict())
        ids[key[1]] = None
        if len(ids) > self.quota:
            return key[0], next(iter(ids))
        return None

    def remove(self, key: SessionKey) -> None:
        ids = self.by_source.get(key[0])
        if ids is None:
            return
        ids.pop(key[1], None)
        if not ids:
            del self.by_source[key[0]]


class ReceiveSessions:
    """Receive sessions and floors, bounded in total and per sender."""

    def __init__(
        self,
        max_sessions: int,
        max_floors: int,
        per_source_sessions: int,
        per_source_floors: int,
    ) -> None:
        if min(max_sessions, max_floors, per_source_sessions, per_source_floors) < 1:
            raise ValueError("session and floor bounds must be positive")
        self._max_sessions = max_sessions
        self._max_floors = max_floors
        self._sessions: OrderedDict[SessionKey, RxSession] = OrderedDict()
        self._session_owners = _PerSource(per_source_sessions)
        self._floors: OrderedDict[SessionKey, int] = OrderedDict()
        self._floor_owners = _PerSource(per_source_floors)

    def __len__(self) -> int:
        return len(self._sessions)

    @property
    def floor_count(self) -> int:
        return len(self._floors)

    def sources(self) -> int:
        """Distinct senders with a live session."""
        return len(self._session_owners.by_source)

    def get(self, key: SessionKey) -> RxSession | None:
        """The live session for ``key`` (marked recently used), or None."""
        session = self._sessions.get(key)
        if session is not None:
            self._sessions.move_to_end(key)
        return session

    def floor(self, key: SessionKey) -> int:
        """The highest counter an evicted session ``key`` accepted (-1: none remembered)."""
        return self._floors.get(key, -1)

    def add(self, key: SessionKey, aead: AESGCM) -> RxSession:
        """A new session for ``key`` (after a packet of it authenticated), evicting as needed."""
        floor = self._floors.pop(key, None)
        if floor is not None:
            self._floor_owners.remove(key)
        session = self._sessions[key] = RxSession(aead, -1 if floor is None else floor)
        over = self._session_owners.add(key)
        if over is not None:
            self._evict(over)
        if len(self._sessions) > self._max_sessions:
            self._evict(next(iter(self._sessions)))
        return session

    def _evict(self, key: SessionKey) -> None:
        """Drop session ``key``, keeping its highest counter as a floor (8 + 32 + 8 bytes)."""
        session = self._sessions.pop(key)
        self._session_owners.remove(key)
        self._floors[key] = max(session.floor, session.window.top)
        over = self._floor_owners.add(key)
        if over is not None:
            self._drop_floor(over)
        if len(self._floors) > self._max_floors:
            self._drop_floor(next(iter(self._floors)))

    def _drop_floor(self, key: SessionKey) -> None:
        del self._floors[key]
        self._floor_owners.remove(key)
