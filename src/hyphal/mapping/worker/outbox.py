"""Results waiting to be shipped: rotating SQLite files, deleted only once the store has them.

The outbox is a directory of ``outbox-<n>.sqlite`` files (WAL). New results go into the newest
file; it is closed and a new one started when it passes ``max_file_bytes`` or ``max_file_age``
seconds. The shipper reads the oldest results first and deletes exactly the ids the store
acknowledged; a closed file with no rows left is removed. Results survive a restart, a crash
and an uplink that is gone for days; when ``max_files`` files are full the outbox says
:meth:`Outbox.full` and the worker stops measuring instead of dropping results.

Writes are synchronous (a result is a few kB and SQLite commits in well under a millisecond on
a WAL file); the worker calls them from its loop between measurements.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

_NAME = re.compile(r"^outbox-(\d{6})\.sqlite$")
_SCHEMA = "CREATE TABLE IF NOT EXISTS results (id TEXT PRIMARY KEY, created REAL, body TEXT)"
_REJECTED = "CREATE TABLE IF NOT EXISTS rejected (id TEXT PRIMARY KEY, created REAL, body TEXT, reason TEXT)"


class Outbox:
    def __init__(
        self,
        directory: Path,
        *,
        max_file_bytes: int = 16 * 1024 * 1024,
        max_file_age: float = 3600.0,
        max_files: int = 32,
        clock: Any = time.time,
    ) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.max_file_bytes = max_file_bytes
        self.max_file_age = max_file_age
        self.max_files = max_files
        self._clock = clock
        self._conns: dict[int, sqlite3.Connection] = {}
        self.rotations = 0
        numbers = sorted(int(m.group(1)) for p in directory.iterdir() if (m := _NAME.match(p.name)))
        for n in numbers:
            self._open(n)
        if not numbers:
            self._open(1)
        self._current = max(self._conns)
        self._current_started = self._clock()

    def _path(self, n: int) -> Path:
        return self.directory / f"outbox-{n:06d}.sqlite"

    def _open(self, n: int) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path(n), isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(_SCHEMA)
        conn.execute(_REJECTED)
        self._conns[n] = conn
        return conn

    def _size(self, n: int) -> int:
        total = 0
        for suffix in ("", "-wal"):
            path = Path(str(self._path(n)) + suffix)
            if path.exists():
                total += path.stat().st_size
        return total

    def _rotate_if_needed(self) -> None:
        now = self._clock()
        too_big = self._size(self._current) >= self.max_file_bytes
        too_old = now - self._current_started >= self.max_file_age and self._count(self._current)
        if too_big or too_old:
            self._current += 1
            self._open(self._current)
            self._current_started = now
            self.rotations += 1

    def full(self) -> bool:
        """True when ``max_files`` files exist and the newest is full too: stop measuring."""
        return (
            len(self._conns) >= self.max_files and self._size(self._current) >= self.max_file_bytes
        )

    def add(self, result: dict[str, Any]) -> bool:
        """Store one result (idempotent on its id); False if it was already there."""
        self._rotate_if_needed()
        body = json.dumps(result, separators=(",", ":"))
        for conn in self._conns.values():
            if conn.execute("SELECT 1 FROM results WHERE id=?", (result["id"],)).fetchone():
                return False
        self._conns[self._current].execute(
            "INSERT INTO results (id, created, body) VALUES (?, ?, ?)",
            (result["id"], self._clock(), body),
        )
        return True

    def _count(self, n: int) -> int:
        row = self._conns[n].execute("SELECT COUNT(*) FROM results").fetchone()
        return int(row[0])

    def __len__(self) -> int:
        return sum(self._count(n) for n in self._conns)

    def files(self) -> list[Path]:
        return [self._path(n) for n in sorted(self._conns)]

    def peek(self, limit: int = 500, max_bytes: int = 3 * 1024 * 1024) -> list[dict[str, Any]]:
        """The oldest results, at most ``limit`` and about ``max_bytes`` of JSON."""
        out: list[dict[str, Any]] = []
        size = 0
        for n in sorted(self._conns):
            rows = self._conns[n].execute(
                "SELECT body FROM results ORDER BY created, id LIMIT ?", (limit - len(out),)
            )
            for (body,) in rows:
                if out and size + len(body) > max_bytes:
                    return out
                size += len(body)
                out.append(json.loads(body))
            if len(out) >= limit:
                break
        return out

    def reject(self, reasons: dict[str, str]) -> int:
        """Set aside results the store refused as malformed (it never will accept them): they
        stay in the file's ``rejected`` table for a person to read, and are not sent again."""
        moved = 0
        for conn in self._conns.values():
            for rid, reason in reasons.items():
                row = conn.execute(
                    "SELECT created, body FROM results WHERE id=?", (rid,)
                ).fetchone()
                if row is None:
                    continue
                conn.execute(
                    "INSERT OR REPLACE INTO rejected (id, created, body, reason) VALUES (?,?,?,?)",
                    (rid, row[0], row[1], reason[:500]),
                )
                conn.execute("DELETE FROM results WHERE id=?", (rid,))
                moved += 1
        return moved

    def rejected(self) -> int:
        return sum(
            int(c.execute("SELECT COUNT(*) FROM rejected").fetchone()[0])
            for c in self._conns.values()
        )

    def delete(self, ids: Iterable[str]) -> int:
        """Remove acknowledged ids; drop closed files left empty. Returns how many went."""
        wanted: Sequence[str] = [i for i in ids if isinstance(i, str)]
        gone = 0
        for n in sorted(self._conns):
            conn = self._conns[n]
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                gone += conn.execute(f"DELETE FROM results WHERE id IN ({marks})", chunk).rowcount
            if n != self._current and self._count(n) == 0 and not self._has_rejected(n):
                conn.close()
                del self._conns[n]
                for suffix in ("", "-wal", "-shm"):
                    Path(str(self._path(n)) + suffix).unlink(missing_ok=True)
        return gone

    def _has_rejected(self, n: int) -> bool:
        return self._conns[n].execute("SELECT 1 FROM rejected LIMIT 1").fetchone() is not None

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()
