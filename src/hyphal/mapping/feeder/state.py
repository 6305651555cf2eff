"""The feeder's shared state in a database (SQLite file or PostgreSQL), so any number of feeder
instances can serve at once and none holds coordination state in memory.

Tables: ``feeder_meta`` (the shared secret), ``feeder_cycles`` (number, key, universe, cursor:
the next position to hand out), ``feeder_assignments`` (which worker got which positions of
which cycle: the per-consumer record, exportable), ``feeder_consumers`` (totals per worker),
``feeder_hop_blocks``/``feeder_hop_hosts`` (the target pool grown from hops, deduplicated by
address), ``feeder_stop_local`` (interfaces near each worker) and ``feeder_stop_global``
((interface, destination block) pairs: Doubletree's global stop set).

A claim is one write transaction: read the current cycle with the write lock held (SQLite
``BEGIN IMMEDIATE``, PostgreSQL ``FOR UPDATE``), advance its cursor, record the assignment.
Two instances therefore never hand out the same position, hence the same block, in a cycle.
"""

from __future__ import annotations

import ipaddress
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hyphal.mapping.db import Database, Migration, Tx
from hyphal.mapping.feeder.core import (
    CycleView,
    Target,
    choose_cycle_key,
    classify_hop,
    host_key,
)
from hyphal.mapping.feeder.prefixes import TargetFilter
from hyphal.mapping.feeder.space import TargetSpace, block_key

log = logging.getLogger("hyphal.mapping.feeder")

MAX_CLAIM = 1000
MAX_HOSTS_PER_HOP_BLOCK = 256
NEAR_TTL = 2
"""Hops at TTL <= this are near the worker that saw them: they join its local stop set."""

_COMMON = """
CREATE TABLE feeder_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE feeder_cycles (
    n INTEGER PRIMARY KEY, key TEXT NOT NULL, fingerprint TEXT NOT NULL,
    static_blocks BIGINT NOT NULL, universe BIGINT NOT NULL, cursor BIGINT NOT NULL,
    started DOUBLE PRECISION NOT NULL, finished DOUBLE PRECISION);
CREATE TABLE feeder_assignments (
    worker TEXT NOT NULL, cycle INTEGER NOT NULL, start BIGINT NOT NULL, count INTEGER NOT NULL,
    at DOUBLE PRECISION NOT NULL, PRIMARY KEY (cycle, start));
CREATE INDEX feeder_assignments_worker ON feeder_assignments (worker, cycle);
CREATE TABLE feeder_consumers (
    worker TEXT PRIMARY KEY, given BIGINT NOT NULL, last_seen DOUBLE PRECISION NOT NULL,
    region TEXT);
CREATE TABLE feeder_hop_blocks (seq BIGINT PRIMARY KEY, block TEXT NOT NULL UNIQUE,
    hosts INTEGER NOT NULL);
CREATE TABLE feeder_hop_hosts (
    ip TEXT PRIMARY KEY, seq BIGINT NOT NULL, ord INTEGER NOT NULL, ttl INTEGER NOT NULL,
    worker TEXT NOT NULL, target TEXT NOT NULL, first_seen DOUBLE PRECISION NOT NULL);
CREATE INDEX feeder_hop_hosts_seq ON feeder_hop_hosts (seq, ord);
CREATE TABLE feeder_stop_local (worker TEXT NOT NULL, ip TEXT NOT NULL,
    first_seen DOUBLE PRECISION NOT NULL, PRIMARY KEY (worker, ip));
CREATE TABLE feeder_stop_global (ip TEXT NOT NULL, dest_block TEXT NOT NULL,
    first_seen DOUBLE PRECISION NOT NULL, PRIMARY KEY (dest_block, ip));
"""
MIGRATIONS = [Migration(1, _COMMON.replace("DOUBLE PRECISION", "REAL"), _COMMON)]


class SourcesChanged(RuntimeError):
    """Another feeder instance serves a cycle built from different sources or filters."""


@dataclass(frozen=True)
class Claim:
    cycle_id: str | None
    cycle: int | None
    start: int
    targets: list[Target]


@dataclass(frozen=True)
class HopReport:
    added: int = 0
    known: int = 0
    filtered: int = 0
    near: int = 0


def cycle_id(n: int) -> str:
    return f"c{n}"


class FeederState:
    def __init__(self, db: Database, space: TargetSpace, target_filter: TargetFilter) -> None:
        self.db = db
        self.space = space
        self.filter = target_filter
        if db.url != ":memory:":
            db.pragma("journal_mode=WAL")
        db.migrate(MIGRATIONS, table="feeder_migrations")
        with db.tx() as t:
            t.execute(
                "INSERT INTO feeder_meta (key, value) VALUES ('secret', ?) ON CONFLICT DO NOTHING",
                (secrets.token_hex(32),),
            )
            t.execute(
                "INSERT INTO feeder_meta (key, value) VALUES ('lock', '') ON CONFLICT DO NOTHING"
            )
            row = t.execute("SELECT value FROM feeder_meta WHERE key = 'secret'").fetchone()
        assert row is not None
        self.secret = bytes.fromhex(str(row[0]))
        self.host_key = host_key(self.secret, space)

    # -- cycles -----------------------------------------------------------------------------

    def _current(self, t: Tx) -> tuple[Any, ...] | None:
        """The current cycle, with the feeder's write lock held (on PostgreSQL the lock row:
        an empty cycle table has no row to lock, and two instances would both begin cycle 1)."""
        if self.db.pg:
            t.execute("SELECT value FROM feeder_meta WHERE key = 'lock' FOR UPDATE")
        return t.execute(
            "SELECT n, key, fingerprint, static_blocks, universe, cursor FROM feeder_cycles "
            "ORDER BY n DESC LIMIT 1"
        ).fetchone()

    def _new_cycle(self, t: Tx, previous: tuple[Any, ...] | None, now: float) -> tuple[Any, ...]:
        hop_blocks = t.execute("SELECT COUNT(*) FROM feeder_hop_blocks").fetchone()
        universe = self.space.blocks + int(hop_blocks[0] if hop_blocks else 0)
        n = 1 if previous is None else int(previous[0]) + 1
        last = None
        if previous is not None and int(previous[4]) > 0 and previous[2] == self.space.fingerprint:
            view = self._view(previous)
            last = view.block_at(int(previous[4]) - 1)
        key = choose_cycle_key(self.secret, n, universe, last)
        if previous is not None:
            t.execute("UPDATE feeder_cycles SET finished = ? WHERE n = ?", (now, previous[0]))
        row = (n, key.hex(), self.space.fingerprint, self.space.blocks, universe, 0)
        t.execute(
            "INSERT INTO feeder_cycles (n, key, fingerprint, static_blocks, universe, cursor, "
            "started) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (*row, now),
        )
        log.info(
            "feeder: cycle %s began: %d blocks (%d from hops)",
            cycle_id(n),
            universe,
            universe - self.space.blocks,
        )
        return row

    def _view(self, row: tuple[Any, ...]) -> CycleView:
        return CycleView(
            self.space,
            int(row[0]),
            bytes.fromhex(str(row[1])),
            int(row[4]),
            self.hop_hosts,
            self.host_key,
        )

    def hop_hosts(self, seq: int) -> list[str]:
        with self.db.tx(write=False) as t:
            rows = t.execute(
                "SELECT ip FROM feeder_hop_hosts WHERE seq = ? ORDER BY ord", (seq,)
            ).fetchall()
        return [str(r[0]) for r in rows]

    def adopt_sources(self, now: float) -> None:
        """Start a new cycle when the current one was built from other sources (a restart
        with new lists); other instances still on the old lists then refuse to serve."""
        with self.db.tx() as t:
            current = self._current(t)
            if current is not None and current[2] != self.space.fingerprint:
                log.warning(
                    "feeder: the sources or filters changed; cycle %s ends early",
                    cycle_id(int(current[0])),
                )
                self._new_cycle(t, current, now)

    def claim(self, worker: str, n: int, now: float, region: str | None = None) -> Claim:
        """Hand ``worker`` up to ``n`` targets: the next positions of the current cycle (a new
        cycle begins when it is used up). Fewer at the end of a cycle; ask again."""
        n = max(0, min(n, MAX_CLAIM))
        with self.db.tx() as t:
            current = self._current(t)
            if current is not None and current[2] != self.space.fingerprint:
                raise SourcesChanged(
                    f"cycle {cycle_id(int(current[0]))} was built from other source lists or "
                    "filters by another feeder instance; restart this one with the same lists"
                )
            if current is None or int(current[5]) >= int(current[4]):
                current = self._new_cycle(t, current, now)
            number, universe, cursor = int(current[0]), int(current[4]), int(current[5])
            take = min(n, universe - cursor)
            if take > 0:
                t.execute(
                    "UPDATE feeder_cycles SET cursor = ? WHERE n = ?", (cursor + take, number)
                )
                t.execute(
                    "INSERT INTO feeder_assignments (worker, cycle, start, count, at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (worker, number, cursor, take, now),
                )
                t.execute(
                    "INSERT INTO feeder_consumers (worker, given, last_seen, region) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (worker) DO UPDATE SET "
                    "given = feeder_consumers.given + excluded.given, last_seen = excluded.last_seen, "
                    "region = COALESCE(excluded.region, feeder_consumers.region)",
                    (worker, take, now, region),
                )
        if universe == 0:
            return Claim(None, None, 0, [])
        view = self._view(current)
        targets = [tg for p in range(cursor, cursor + take) if (tg := self._target(view, p))]
        return Claim(cycle_id(number), number, cursor, targets)

    def _target(self, view: CycleView, position: int) -> Target | None:
        target = view.target(position)
        # Defence in depth: the space was built without filtered space, hops were filtered on
        # the way in; an opt-out list edited since is still honoured here.
        if target is None or self.filter.verdict(target.ip) is not None:
            return None
        return target

    def assignment_targets(self, cycle: int, start: int, count: int) -> list[Target]:
        """The targets of a recorded assignment, recomputed from the cycle's key."""
        with self.db.tx(write=False) as t:
            row = t.execute(
                "SELECT n, key, fingerprint, static_blocks, universe, cursor FROM feeder_cycles "
                "WHERE n = ?",
                (cycle,),
            ).fetchone()
        if row is None or row[2] != self.space.fingerprint:
            return []
        view = self._view(row)
        end = min(start + count, int(row[4]))
        return [tg for p in range(start, end) if (tg := self._target(view, p))]

    # -- hops -------------------------------------------------------------------------------

    def add_hops(self, hops: Sequence[dict[str, Any]], now: float) -> HopReport:
        """Take reported hops: filter, stop sets, dedupe; new ones join the pool."""
        added = known = filtered = near = 0
        with self.db.tx() as t:
            t.execute("SELECT value FROM feeder_meta WHERE key = 'lock'" + self.db.lock_clause)
            for hop in hops:
                ip, ttl = str(hop["ip"]), int(hop["ttl"])
                worker, target = str(hop.get("worker") or ""), str(hop.get("target") or "")
                verdict = classify_hop(ip, ttl, self.space, self.filter, NEAR_TTL)
                if verdict.kind == "filtered":
                    filtered += 1
                    continue
                if target:
                    dest = _dest_block(target)
                    if dest is not None:
                        t.execute(
                            "INSERT INTO feeder_stop_global (ip, dest_block, first_seen) "
                            "VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                            (ip, dest, now),
                        )
                if verdict.kind == "near":
                    near += 1
                    if worker:
                        t.execute(
                            "INSERT INTO feeder_stop_local (worker, ip, first_seen) VALUES (?, ?, ?) "
                            "ON CONFLICT DO NOTHING",
                            (worker, ip, now),
                        )
                    continue
                if verdict.kind == "static":
                    known += 1
                    continue
                if t.execute("SELECT 1 FROM feeder_hop_hosts WHERE ip = ?", (ip,)).fetchone():
                    known += 1
                    continue
                block = t.execute(
                    "SELECT seq, hosts FROM feeder_hop_blocks WHERE block = ?", (verdict.block,)
                ).fetchone()
                if block is None:
                    top = t.execute(
                        "SELECT COALESCE(MAX(seq), 0) FROM feeder_hop_blocks"
                    ).fetchone()
                    seq, count = int(top[0] if top else 0) + 1, 0
                    t.execute(
                        "INSERT INTO feeder_hop_blocks (seq, block, hosts) VALUES (?, ?, 0)",
                        (seq, verdict.block),
                    )
                else:
                    seq, count = int(block[0]), int(block[1])
                if count >= MAX_HOSTS_PER_HOP_BLOCK:
                    known += 1
                    continue
                t.execute(
                    "INSERT INTO feeder_hop_hosts (ip, seq, ord, ttl, worker, target, first_seen) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (ip, seq, count, ttl, worker, target, now),
                )
                t.execute("UPDATE feeder_hop_blocks SET hosts = ? WHERE seq = ?", (count + 1, seq))
                added += 1
        return HopReport(added, known, filtered, near)

    def stop_set(self, worker: str, target: str | None, limit: int = 1000) -> dict[str, Any]:
        """Doubletree's stop sets for a worker: interfaces near it (local), and interfaces
        already seen on the way to ``target``'s block (global)."""
        with self.db.tx(write=False) as t:
            local = [
                str(r[0])
                for r in t.execute(
                    "SELECT ip FROM feeder_stop_local WHERE worker = ? ORDER BY ip LIMIT ?",
                    (worker, limit),
                ).fetchall()
            ]
            global_: list[str] = []
            dest = _dest_block(target) if target else None
            if dest is not None:
                global_ = [
                    str(r[0])
                    for r in t.execute(
                        "SELECT ip FROM feeder_stop_global WHERE dest_block = ? ORDER BY ip LIMIT ?",
                        (dest, limit),
                    ).fetchall()
                ]
        return {"worker": worker, "local": local, "global": global_, "destinationBlock": dest}

    # -- consumers --------------------------------------------------------------------------

    def export(self, worker: str | None = None) -> dict[str, Any]:
        where, params = (" WHERE worker = ?", (worker,)) if worker else ("", ())
        with self.db.tx(write=False) as t:
            consumers = t.execute(
                "SELECT worker, given, last_seen, region FROM feeder_consumers"
                + where
                + " ORDER BY worker",
                params,
            ).fetchall()
            assignments = t.execute(
                "SELECT worker, cycle, start, count, at FROM feeder_assignments"
                + where
                + " ORDER BY cycle, start",
                params,
            ).fetchall()
        return {
            "consumers": [
                {"worker": w, "given": int(g), "lastSeen": float(s), "region": r}
                for w, g, s, r in consumers
            ],
            "assignments": [
                {"worker": w, "cycle": int(c), "start": int(s), "count": int(n), "at": float(a)}
                for w, c, s, n, a in assignments
            ],
        }

    def import_(self, data: dict[str, Any]) -> dict[str, int]:
        consumers = data.get("consumers") or []
        assignments = data.get("assignments") or []
        with self.db.tx() as t:
            for c in consumers:
                t.execute(
                    "INSERT INTO feeder_consumers (worker, given, last_seen, region) VALUES "
                    "(?, ?, ?, ?) ON CONFLICT (worker) DO UPDATE SET given = "
                    "MAX(feeder_consumers.given, excluded.given)".replace(
                        "MAX(", "GREATEST(" if self.db.pg else "MAX("
                    )
                    + ", last_seen = excluded.last_seen",
                    (str(c["worker"]), int(c["given"]), float(c["lastSeen"]), c.get("region")),
                )
            before = t.execute("SELECT COUNT(*) FROM feeder_assignments").fetchone()
            t.executemany(
                "INSERT INTO feeder_assignments (worker, cycle, start, count, at) VALUES "
                "(?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [
                    (
                        str(a["worker"]),
                        int(a["cycle"]),
                        int(a["start"]),
                        int(a["count"]),
                        float(a["at"]),
                    )
                    for a in assignments
                ],
            )
            after = t.execute("SELECT COUNT(*) FROM feeder_assignments").fetchone()
        return {
            "consumers": len(consumers),
            "assignments": int(after[0] if after else 0) - int(before[0] if before else 0),
        }

    def stats(self) -> dict[str, Any]:
        with self.db.tx(write=False) as t:
            cur = t.execute(
                "SELECT n, universe, cursor, started FROM feeder_cycles ORDER BY n DESC LIMIT 1"
            ).fetchone()
            given = t.execute(
                "SELECT COALESCE(SUM(given), 0), COUNT(*) FROM feeder_consumers"
            ).fetchone()
            hop_hosts = t.execute("SELECT COUNT(*) FROM feeder_hop_hosts").fetchone()
            hop_blocks = t.execute("SELECT COUNT(*) FROM feeder_hop_blocks").fetchone()
            workers = t.execute(
                "SELECT worker, given, last_seen, region FROM feeder_consumers ORDER BY worker"
            ).fetchall()
        return {
            "cycle": None
            if cur is None
            else {
                "id": cycle_id(int(cur[0])),
                "blocks": int(cur[1]),
                "handedOut": int(cur[2]),
                "started": float(cur[3]),
            },
            "staticBlocks": self.space.blocks,
            "hopBlocks": int(hop_blocks[0]) if hop_blocks else 0,
            "hopTargets": int(hop_hosts[0]) if hop_hosts else 0,
            "targetsServed": int(given[0]) if given else 0,
            "consumers": [
                {"worker": w, "given": int(g), "lastSeen": float(s), "region": r}
                for w, g, s, r in workers
            ],
        }


def _dest_block(target: str) -> str | None:
    try:
        address = ipaddress.ip_address(target)
    except ValueError:
        return None
    return block_key(address.version, int(address))
