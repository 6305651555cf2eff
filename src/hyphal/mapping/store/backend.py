"""The result store over SQLite (default, rotated files) or PostgreSQL (partitioned, retention).

:meth:`Store.ingest` takes validated results and stores each one exactly once (its id is the
idempotency key, kept in ``result_ids`` across rotation and partitions): the result row, its hop
rows, the edges between consecutive TTLs, the worker's totals and the measurement it answers,
all in one transaction. The query methods read the live file and the rotated ones (SQLite), or
the partitioned tables (PostgreSQL), with the same answers.

SQLite rotation: the results file (``results.db``, attached as ``r``) is renamed to
``results-<UTC time>.db`` when it passes ``max_bytes`` or ``max_age`` seconds, and only the
newest ``keep`` rotated files are kept. SQLite's rollback journal (not WAL) keeps a transaction
atomic across the main and the attached file. One store process per SQLite directory; run
several stores on PostgreSQL.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hyphal.mapping.db import Database, Tx
from hyphal.mapping.model import Reply, Result, edges_of
from hyphal.mapping.store.schema import MIGRATIONS, RESULTS_FILE_SQLITE

log = logging.getLogger("hyphal.mapping.store")

WEEK = 7 * 86400.0
PARTITION_SECONDS = WEEK
MAX_QUERY_LIMIT = 1000
CLAIM_TIMEOUT = 60.0
"""A measurement claimed by a worker that sent nothing for this long is offered again."""
_RESULT_FIELDS = (
    "id, received, started, ended, type, worker, worker_key, region, target, af, proto, flow_id, "
    "src_port, dst_port, cycle_id, measurement_id, destination_replied, stop_reason, ping_sent, "
    "ping_received, hop_count, probes, raw"
)
_HOP_FIELDS = (
    "result_id, received, ttl, idx, from_ip, rtt, reply_ttl, icmp_type, icmp_code, quoted_ttl, "
    "flow_id, timeout"
)


@dataclass(frozen=True)
class Rotation:
    max_bytes: int = 100 * 1024 * 1024
    max_age: float = WEEK
    keep: int = 5


@dataclass(frozen=True)
class IngestReport:
    accepted: int
    duplicates: int
    ids: list[str]
    new: list[Result]


class Store:
    def __init__(
        self,
        db_url: str,
        rotation: Rotation | None = None,
        retention_days: float = 180.0,
        now: float | None = None,
    ) -> None:
        self.pg = db_url.startswith(("postgresql://", "postgres://"))
        self.rotation = rotation or Rotation()
        self.retention = retention_days * 86400.0
        now = time.time() if now is None else now
        if self.pg:
            self.db = Database(db_url)
            self.dir: Path | None = None
            self.db.migrate(MIGRATIONS)
            self._partitions: set[str] = set()
            self.expire(now)
        else:
            path = Path(db_url.removeprefix("sqlite://"))
            # A directory, or a file name whose directory holds the store's files.
            self.dir = path if path.suffix == "" else path.parent
            self.dir.mkdir(parents=True, exist_ok=True)
            self.db = Database(str(self.dir / "map.db"))
            self.db.pragma("journal_mode=DELETE")
            self.db.pragma("synchronous=NORMAL")
            self.db.migrate(MIGRATIONS)
            self._attach(now)

    @property
    def kind(self) -> str:
        return self.db.kind

    # -- SQLite files -----------------------------------------------------------------------

    @property
    def live_path(self) -> Path:
        assert self.dir is not None
        return self.dir / "results.db"

    def rotated_files(self) -> list[Path]:
        """Rotated results files, newest first."""
        assert self.dir is not None
        return sorted(self.dir.glob("results-*.db"), reverse=True)

    def _attach(self, now: float) -> None:
        self.db.raw("ATTACH DATABASE ? AS r", (str(self.live_path),))
        self.db.pragma("r.journal_mode=DELETE")
        self.db.execute_script(RESULTS_FILE_SQLITE)
        with self.db.tx() as t:
            t.execute(
                "INSERT INTO r.file_meta (key, value) VALUES ('created', ?) ON CONFLICT DO NOTHING",
                (repr(now),),
            )
            row = t.execute("SELECT value FROM r.file_meta WHERE key = 'created'").fetchone()
        self.live_created = float(row[0]) if row else now

    def maybe_rotate(self, now: float) -> Path | None:
        """Rotate the live results file when it is too big or too old; returns the new name."""
        if self.pg:
            return None
        size = self.live_path.stat().st_size
        if size < self.rotation.max_bytes and now - self.live_created < self.rotation.max_age:
            return None
        stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%S%fZ")
        target = self.live_path.with_name(f"results-{stamp}.db")
        self.db.raw("DETACH DATABASE r")
        self.live_path.rename(target)
        rotated = self.rotated_files()
        for old in rotated[self.rotation.keep :]:
            old.unlink(missing_ok=True)
            log.info(
                "store: deleted the oldest results file %s (keep %d)", old.name, self.rotation.keep
            )
        self._attach(now)
        kept = self.rotated_files()
        if kept:  # ids older than every kept file can go: their results are gone
            oldest = _file_created(kept[-1])
            if oldest is not None:
                with self.db.tx() as t:
                    t.execute("DELETE FROM result_ids WHERE received < ?", (oldest,))
        log.info("store: rotated the results file to %s (%d bytes)", target.name, size)
        return target

    # -- PostgreSQL partitions --------------------------------------------------------------

    def _ensure_partition(self, t: Tx, received: float) -> str:
        """Create the week's partitions if needed; returns the name (cached after commit)."""
        lo = (received // PARTITION_SECONDS) * PARTITION_SECONDS
        name = datetime.fromtimestamp(lo, UTC).strftime("p%Y%m%d")
        if name in self._partitions:
            return name
        for table in ("results", "hops"):
            t.execute(
                f"CREATE TABLE IF NOT EXISTS {table}_{name} PARTITION OF {table} "
                f"FOR VALUES FROM ({lo!r}) TO ({lo + PARTITION_SECONDS!r})"
            )
        t.execute(
            "INSERT INTO partitions (name, lo, hi) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            (name, lo, lo + PARTITION_SECONDS),
        )
        return name

    def expire(self, now: float) -> list[str]:
        """PostgreSQL retention: drop partitions wholly older than the retention period."""
        if not self.pg:
            return []
        cutoff = now - self.retention
        dropped: list[str] = []
        with self.db.tx() as t:
            rows = t.execute("SELECT name FROM partitions WHERE hi <= ?", (cutoff,)).fetchall()
            for (name,) in rows:
                t.execute(f"DROP TABLE IF EXISTS results_{name}")
                t.execute(f"DROP TABLE IF EXISTS hops_{name}")
                t.execute("DELETE FROM partitions WHERE name = ?", (name,))
                self._partitions.discard(str(name))
                dropped.append(str(name))
            t.execute("DELETE FROM result_ids WHERE received < ?", (cutoff,))
        if dropped:
            log.info("store: retention dropped partitions %s", ", ".join(dropped))
        return dropped

    # -- ingest -----------------------------------------------------------------------------

    def _tables(self) -> tuple[str, str]:
        return ("results", "hops") if self.pg else ("r.results", "r.hops")

    def ingest(self, results: Sequence[Result], now: float) -> IngestReport:
        """Store each result once; duplicates (same id) are acknowledged, not stored again."""
        results_table, hops_table = self._tables()
        new: list[Result] = []
        partition = None
        with self.db.tx() as t:
            if self.pg:
                partition = self._ensure_partition(t, now)
            first: dict[str, Result] = {}
            for r in results:
                first.setdefault(r.id, r)
            unique = list(first.values())
            if self.pg:  # one round trip: the ids that were not there yet come back
                stored = {
                    str(row[0])
                    for row in t.execute(
                        "INSERT INTO result_ids (id, received) SELECT unnest(?::text[]), ? "
                        "ON CONFLICT DO NOTHING RETURNING id",
                        ([r.id for r in unique], now),
                    ).fetchall()
                }
                new = [r for r in unique if r.id in stored]
            else:
                for result in unique:
                    t.execute(
                        "INSERT INTO result_ids (id, received) VALUES (?, ?) "
                        "ON CONFLICT DO NOTHING",
                        (result.id, now),
                    )
                    if t.rowcount == 1:
                        new.append(result)
            t.insert_many(results_table, _RESULT_FIELDS, [self._result_row(r, now) for r in new])
            t.insert_many(
                hops_table, _HOP_FIELDS, [row for r in new for row in self._hop_rows(r, now)]
            )
            edges: dict[tuple[str, str, int], int] = {}
            for r in new:
                for e in edges_of(r):
                    edges[(e.a, e.b, e.flow_id)] = edges.get((e.a, e.b, e.flow_id), 0) + 1
            upsert = (
                " ON CONFLICT (a, b, flow_id) DO UPDATE SET "
                "last_seen = excluded.last_seen, count = edges.count + excluded.count"
            )
            rows = [(a, b, f, n) for (a, b, f), n in sorted(edges.items())]
            if self.pg and rows:  # one statement for the batch (the keys are unique in it)
                t.execute(
                    "INSERT INTO edges (a, b, flow_id, first_seen, last_seen, count) "
                    "SELECT a, b, f, ?, ?, n FROM unnest(?::text[], ?::text[], ?::bigint[], "
                    "?::bigint[]) AS u(a, b, f, n)" + upsert,
                    (now, now, *(list(col) for col in zip(*rows, strict=True))),
                )
            elif rows:
                t.executemany(
                    "INSERT INTO edges (a, b, flow_id, first_seen, last_seen, count) "
                    "VALUES (?, ?, ?, ?, ?, ?)" + upsert,
                    [(a, b, f, now, now, n) for a, b, f, n in rows],
                )
            per_worker: dict[str, tuple[str | None, str | None, int, float]] = {}
            for r in new:
                _, _, count, last = per_worker.get(r.worker, (None, None, 0, 0.0))
                per_worker[r.worker] = (r.region, r.worker_key, count + 1, max(last, r.ended))
            t.executemany(
                "INSERT INTO workers (worker, region, worker_key, last_result, results) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (worker) DO UPDATE SET "
                "region = COALESCE(excluded.region, workers.region), "
                "worker_key = COALESCE(excluded.worker_key, workers.worker_key), "
                "last_result = excluded.last_result, results = workers.results + excluded.results",
                [(w, reg, key, last, n) for w, (reg, key, n, last) in sorted(per_worker.items())],
            )
            for r in new:
                if r.measurement_id:
                    t.execute(
                        "UPDATE measurements SET status = 'finished', finished = ?, "
                        "results = results + 1 WHERE id = ?",
                        (now, r.measurement_id),
                    )
            traces = sum(1 for r in new if r.type == "traceroute")
            hops = sum(len(r.hops or []) for r in new)
            self._count(
                t,
                {
                    "results": len(new),
                    "traceroutes": traces,
                    "pings": len(new) - traces,
                    "hops": hops,
                    "duplicates": len(results) - len(new),
                },
            )
        if partition is not None:
            self._partitions.add(partition)
        self.maybe_rotate(now)
        ids = list(dict.fromkeys(r.id for r in results))
        return IngestReport(len(new), len(results) - len(new), ids, new)

    def _count(self, t: Tx, deltas: dict[str, int]) -> None:
        t.executemany(
            "INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET "
            "value = counters.value + excluded.value",
            [(k, v) for k, v in sorted(deltas.items()) if v],
        )

    def _result_row(self, r: Result, now: float) -> tuple[Any, ...]:
        ping = r.ping
        return (
            r.id, now, r.started, r.ended, r.type, r.worker, r.worker_key, r.region, r.target,
            r.af, r.proto, r.flow_id, r.src_port, r.dst_port, r.cycle_id, r.measurement_id,
            r.destination_replied, r.stop_reason, ping.sent if ping else None,
            ping.received if ping else None, len(r.hops) if r.hops is not None else None,
            probes_of(r), json.dumps(r.to_json(), separators=(",", ":")),
        )  # fmt: skip

    def _hop_rows(self, r: Result, now: float) -> Iterator[tuple[Any, ...]]:
        for hop in r.hops or []:
            for idx, reply in enumerate(hop.replies):
                if isinstance(reply, Reply):
                    yield (r.id, now, hop.ttl, idx, reply.from_, reply.rtt, reply.reply_ttl,
                           reply.icmp_type, reply.icmp_code, reply.quoted_ttl,
                           reply.flow_id, False)  # fmt: skip
                else:
                    yield (r.id, now, hop.ttl, idx, None, None, None, None, None, None, None, True)

    # -- reading ----------------------------------------------------------------------------

    @contextmanager
    def _sources(self) -> Iterator[list[Any]]:
        """Query targets: (tx-like, results table, hops table) for the live data and, on
        SQLite, each rotated file (newest first)."""
        if self.pg:
            with self.db.tx(write=False) as t:
                yield [(t, "results", "hops")]
            return
        opened: list[sqlite3.Connection] = []
        try:
            with self.db.tx(write=False) as t:
                sources: list[Any] = [(t, "r.results", "r.hops")]
                for path in self.rotated_files():
                    try:
                        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
                    except sqlite3.Error:
                        continue
                    opened.append(conn)
                    sources.append((Tx(conn.cursor(), False), "results", "hops"))
                yield sources
        finally:
            for conn in opened:
                conn.close()

    def _select(
        self, where: str, params: Sequence[Any], order: str, limit: int, hop_ip: str | None = None
    ) -> list[dict[str, Any]]:
        rows: list[tuple[Any, ...]] = []
        with self._sources() as sources:
            for t, results, hops in sources:
                clause = where
                args = list(params)
                if hop_ip is not None:
                    clause = f"({clause}) AND (target = ? OR id IN (SELECT result_id FROM {hops} WHERE from_ip = ?))"
                    args += [hop_ip, hop_ip]
                try:
                    rows += t.execute(
                        f"SELECT received, started, id, raw FROM {results} WHERE {clause} "
                        f"ORDER BY {order} LIMIT ?",
                        (*args, limit),
                    ).fetchall()
                except sqlite3.DatabaseError as exc:
                    log.warning("store: cannot read a rotated file: %s", exc)
        key = 0 if order.startswith("received") else 1
        rows.sort(key=lambda r: (r[key], r[2]), reverse=True)
        return [json.loads(r[3]) for r in rows[:limit]]

    def recent(self, ip: str | None, limit: int) -> list[dict[str, Any]]:
        """The newest results (by arrival) towards or through ``ip``."""
        limit = max(1, min(limit, MAX_QUERY_LIMIT))
        return self._select("1 = 1", (), "received DESC, id DESC", limit, hop_ip=ip)

    def query(
        self,
        since: float | None = None,
        until: float | None = None,
        worker: str | None = None,
        target: str | None = None,
        kind: str | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Results by start time, newest first, filtered; returns (page, next cursor)."""
        limit = max(1, min(limit, MAX_QUERY_LIMIT))
        clauses, args = ["1 = 1"], []
        for column, op, value in (
            ("started", ">=", since),
            ("started", "<", until),
            ("worker", "=", worker),
            ("target", "=", target),
            ("type", "=", kind),
        ):
            if value is not None:
                clauses.append(f"{column} {op} ?")
                args.append(value)
        if cursor:
            started, _, rid = cursor.partition(":")
            clauses.append("(started < ? OR (started = ? AND id < ?))")
            args += [float(started), float(started), rid]
        page = self._select(" AND ".join(clauses), args, "started DESC, id DESC", limit + 1)
        more = len(page) > limit
        page = page[:limit]
        nxt = f"{page[-1]['started']!r}:{page[-1]['id']}" if more and page else None
        return page, nxt

    def edges(
        self, limit: int = 1000, after: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None]:
        limit = max(1, min(limit, 10_000))
        where, args = "", []
        if after:
            a, b, f = after.split("|", 2)
            where = " WHERE (a > ?) OR (a = ? AND b > ?) OR (a = ? AND b = ? AND flow_id > ?)"
            args = [a, a, b, a, b, int(f)]
        with self.db.tx(write=False) as t:
            rows = t.execute(
                "SELECT a, b, flow_id, first_seen, last_seen, count FROM edges"
                + where
                + " ORDER BY a, b, flow_id LIMIT ?",
                (*args, limit + 1),
            ).fetchall()
        out = [
            {
                "a": a,
                "b": b,
                "flowId": int(f),
                "firstSeen": float(fs),
                "lastSeen": float(ls),
                "count": int(n),
            }
            for a, b, f, fs, ls, n in rows[:limit]
        ]
        nxt = (
            f"{rows[limit - 1][0]}|{rows[limit - 1][1]}|{rows[limit - 1][2]}"
            if len(rows) > limit
            else None
        )
        return out, nxt

    def stats(self, now: float, window: float = 60.0) -> dict[str, Any]:
        results_table, _ = self._tables()
        with self.db.tx(write=False) as t:
            counters: dict[str, int] = {
                str(k): int(v) for k, v in t.execute("SELECT name, value FROM counters").fetchall()
            }
            edges = t.execute("SELECT COUNT(*) FROM edges").fetchone()
            recent = t.execute(
                f"SELECT worker, COUNT(*), SUM(probes) FROM {results_table} WHERE received >= ? "
                "GROUP BY worker",
                (now - window,),
            ).fetchall()
            workers = t.execute(
                "SELECT worker, region, worker_key, last_result, results FROM workers ORDER BY worker"
            ).fetchall()
            pending = t.execute(
                "SELECT COUNT(*) FROM measurements WHERE status IN ('pending', 'running')"
            ).fetchone()
        per_worker = {str(w): int(n) for w, n, _ in recent}
        probes = {str(w): int(p or 0) for w, _, p in recent}
        total_recent = sum(per_worker.values())
        out: dict[str, Any] = {
            "backend": self.kind,
            "results": int(counters.get("results", 0)),
            "traceroutes": int(counters.get("traceroutes", 0)),
            "pings": int(counters.get("pings", 0)),
            "hops": int(counters.get("hops", 0)),
            "duplicates": int(counters.get("duplicates", 0)),
            "edges": int(edges[0]) if edges else 0,
            "resultsPerSecond": round(total_recent / window, 3),
            "openMeasurements": int(pending[0]) if pending else 0,
            "workers": [
                {
                    "worker": w,
                    "region": reg,
                    "workerKey": key,
                    "lastResult": float(last),
                    "results": int(n),
                    "resultsPerSecond": round(per_worker.get(str(w), 0) / window, 3),
                    "probesPerSecond": round(probes.get(str(w), 0) / window, 3),
                }
                for w, reg, key, last, n in workers
            ],
        }
        if not self.pg:
            out["files"] = {
                "live": self.live_path.name,
                "liveBytes": self.live_path.stat().st_size,
                "rotated": [p.name for p in self.rotated_files()],
            }
        return out

    def dump(self, since: float | None, until: float | None, batch: int = 500) -> Iterator[str]:
        """Every stored result (canonical JSON, one per line), oldest rotated file first."""
        cursor: str | None = None
        pages: list[list[dict[str, Any]]] = []
        while True:
            page, cursor = self.query(since=since, until=until, limit=batch, cursor=cursor)
            pages.append(page)
            if cursor is None:
                break
        for page in reversed(pages):
            for result in reversed(page):
                yield json.dumps(result, separators=(",", ":")) + "\n"

    def snapshot(self, path: Path) -> None:
        """A consistent copy of the live SQLite results file (``/dump?format=sqlite``)."""
        assert not self.pg
        src = sqlite3.connect(f"file:{self.live_path}?mode=ro", uri=True, timeout=30)
        dst = sqlite3.connect(path)
        try:
            src.backup(dst)
        finally:
            dst.close()
            src.close()

    # -- measurements -----------------------------------------------------------------------

    def create_measurement(self, spec: dict[str, Any], now: float) -> str:
        mid = uuid.uuid4().hex
        with self.db.tx() as t:
            t.execute(
                "INSERT INTO measurements (id, created, status, type, target, proto, worker, "
                "region, params) VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?)",
                (
                    mid,
                    now,
                    spec["type"],
                    spec["target"],
                    spec.get("proto", "icmp"),
                    spec.get("worker"),
                    spec.get("region"),
                    json.dumps(spec.get("params") or {}),
                ),
            )
        return mid

    def claim_measurements(
        self, worker: str, region: str | None, now: float, limit: int = 10
    ) -> list[dict[str, Any]]:
        """Pending requests this worker may run (addressed to it, to its region, or to any
        worker), marked running; a claim with no result after CLAIM_TIMEOUT is offered again."""
        with self.db.tx() as t:
            rows = t.execute(
                "SELECT id, type, target, proto, params FROM measurements WHERE "
                "(status = 'pending' OR (status = 'running' AND claimed_at < ?)) "
                "AND (worker IS NULL OR worker = ?) AND (region IS NULL OR region = ?) "
                "ORDER BY created LIMIT ?" + (" FOR UPDATE SKIP LOCKED" if self.pg else ""),
                (now - CLAIM_TIMEOUT, worker, region or "", limit),
            ).fetchall()
            t.executemany(
                "UPDATE measurements SET status = 'running', claimed_by = ?, claimed_at = ? "
                "WHERE id = ?",
                [(worker, now, r[0]) for r in rows],
            )
        return [
            {
                "id": mid,
                "type": kind,
                "target": target,
                "proto": proto,
                "params": {**json.loads(params), "measurementId": mid},
            }
            for mid, kind, target, proto, params in rows
        ]

    def measurement(self, mid: str) -> dict[str, Any] | None:
        with self.db.tx(write=False) as t:
            row = t.execute(
                "SELECT id, created, status, type, target, proto, worker, region, params, "
                "claimed_by, claimed_at, finished FROM measurements WHERE id = ?",
                (mid,),
            ).fetchone()
        if row is None:
            return None
        results = self._select(
            "measurement_id = ?", (mid,), "received DESC, id DESC", MAX_QUERY_LIMIT
        )
        (mid, created, status, kind, target, proto, worker, region, params, claimed_by,
         claimed_at, finished) = row  # fmt: skip
        return {
            "id": mid,
            "status": status,
            "created": float(created),
            "type": kind,
            "target": target,
            "proto": proto,
            "worker": worker,
            "region": region,
            "params": json.loads(params),
            "claimedBy": claimed_by,
            "claimedAt": claimed_at,
            "finished": finished,
            "results": results[::-1],
        }

    def close(self) -> None:
        self.db.close()


def probes_of(r: Result) -> int:
    """Probes a result took: one per reply or timeout of a trace, ``sent`` of a ping."""
    if r.ping is not None:
        return r.ping.sent
    return sum(len(h.replies) for h in r.hops or [])


def _file_created(path: Path) -> float | None:
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            row = conn.execute("SELECT value FROM file_meta WHERE key = 'created'").fetchone()
        finally:
            conn.close()
    except sqlite3.Error:
        return None
    return float(row[0]) if row else None
