"""One small database seam for the feeder and the store: SQLite (stdlib ``sqlite3``) or
PostgreSQL (``psycopg`` 3), same SQL text with ``?`` placeholders, transactions that take the
write lock up front, and versioned migrations.

- SQLite: ``BEGIN IMMEDIATE`` takes the write lock at the start of every write transaction, so
  several processes (multi-instance feeders) serialise on the file instead of failing half-way;
  a busy timeout waits for the lock. One connection per :class:`Database`, guarded by a lock
  (FastAPI runs sync handlers in threads).
- PostgreSQL: one connection per :class:`Database`, guarded the same way; callers that need
  a row lock say ``FOR UPDATE`` (``lock_clause``), which SQLite does not need.

Migrations are (version, sqlite SQL, postgresql SQL) triples applied in order and recorded in
``schema_migrations``; the two dialects keep the same tables and columns.
"""

from __future__ import annotations

import re
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Row = tuple[Any, ...]
_PLACEHOLDER = re.compile(r"\?")


@dataclass(frozen=True)
class Migration:
    version: int
    sqlite: str
    postgresql: str


class Tx:
    """A transaction's cursor: ``execute``/``executemany`` with ``?`` placeholders."""

    def __init__(self, cursor: Any, pg: bool) -> None:
        self._cur = cursor
        self._pg = pg

    def _sql(self, sql: str) -> str:
        return _PLACEHOLDER.sub("%s", sql) if self._pg else sql

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Tx:
        self._cur.execute(self._sql(sql), tuple(params))
        return self

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Tx:
        if rows:
            self._cur.executemany(self._sql(sql), [tuple(r) for r in rows])
        return self

    def insert_many(self, table: str, columns: str, rows: Sequence[Sequence[Any]]) -> None:
        """Bulk insert: PostgreSQL's COPY (one round trip), else executemany."""
        if not rows:
            return
        if self._pg:
            with self._cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        marks = ", ".join("?" * len(rows[0]))
        self._cur.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)

    def fetchone(self) -> Row | None:
        row = self._cur.fetchone()
        return None if row is None else tuple(row)

    def fetchall(self) -> list[Row]:
        return [tuple(r) for r in self._cur.fetchall()]

    @property
    def rowcount(self) -> int:
        return int(self._cur.rowcount)


class Database:
    """A connection to SQLite (a path) or PostgreSQL (a ``postgresql://`` URL)."""

    def __init__(self, url: str, busy_timeout: float = 30.0) -> None:
        self.url = url
        self.pg = url.startswith(("postgresql://", "postgres://"))
        self._lock = threading.RLock()
        self._conn: Any
        if self.pg:
            import psycopg  # imported here: SQLite users need no PostgreSQL driver

            self._conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
        else:
            path = url.removeprefix("sqlite://")
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
            self._conn.execute("PRAGMA foreign_keys=ON")

    @property
    def kind(self) -> str:
        return "postgresql" if self.pg else "sqlite"

    @property
    def lock_clause(self) -> str:
        """``FOR UPDATE`` on PostgreSQL (SQLite's BEGIN IMMEDIATE already holds the lock)."""
        return " FOR UPDATE" if self.pg else ""

    @contextmanager
    def tx(self, write: bool = True) -> Iterator[Tx]:
        """A transaction: committed on exit, rolled back on an exception."""
        with self._lock:
            if self.pg:
                with self._conn.transaction(), self._conn.cursor() as cur:
                    yield Tx(cur, True)
                return
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield Tx(cur, False)
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            else:
                cur.execute("COMMIT")
            finally:
                cur.close()

    def execute_script(self, sql: str) -> None:
        with self._lock:
            if self.pg:
                with self._conn.transaction():
                    self._conn.execute(sql)
            else:
                self._conn.executescript(f"BEGIN IMMEDIATE;\n{sql};\nCOMMIT;")

    def migrate(self, migrations: Sequence[Migration], table: str = "schema_migrations") -> int:
        """Apply the migrations not yet applied; returns the schema version."""
        with self._lock:
            self.raw(
                f"CREATE TABLE IF NOT EXISTS {table} (version INTEGER PRIMARY KEY, applied REAL)"
            )
            if self.pg:  # two instances starting at once: one migrates, the other waits
                self.raw("SELECT pg_advisory_lock(724101)")
            try:
                with self.tx() as t:
                    done = {r[0] for r in t.execute(f"SELECT version FROM {table}").fetchall()}
                version = max(done, default=0)
                for m in sorted(migrations, key=lambda m: m.version):
                    if m.version in done:
                        continue
                    self.execute_script(m.postgresql if self.pg else m.sqlite)
                    with self.tx() as t:
                        t.execute(
                            f"INSERT INTO {table} (version, applied) VALUES (?, 0)", (m.version,)
                        )
                    version = m.version
                return version
            finally:
                if self.pg:
                    self.raw("SELECT pg_advisory_unlock(724101)")

    def pragma(self, sql: str) -> None:
        """A SQLite PRAGMA (outside any transaction); nothing on PostgreSQL."""
        if not self.pg:
            with self._lock:
                self._conn.execute(f"PRAGMA {sql}")

    def raw(self, sql: str, params: Sequence[Any] = ()) -> None:
        """One statement outside any transaction (ATTACH, DETACH, advisory locks)."""
        with self._lock:
            self._conn.execute(sql, tuple(params))

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def ping(self) -> None:
        """Raises when the database does not answer (the /ready check)."""
        with self.tx(write=False) as t:
            t.execute("SELECT 1").fetchone()
