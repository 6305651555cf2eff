"""Optional on-disk persistence of the inbox and outbox in one SQLite file.

With ``--message-store DIR`` the node keeps ``DIR/messages.sqlite3``:

* ``inbox``: every message accepted into the inbox is written before the sender is told it was
  received, and deleted when popped. After a restart the inbox is loaded again.
* ``outbox``: every message submitted for sending, with its absolute (wall-clock) deadline. Its
  payload is dropped once the transfer is final (received / read / aborted); the row remains as a
  status record. After a restart unfinished transfers start again from INIT until their deadline.

Writes survive power loss (WAL journal, ``synchronous=FULL``: a commit returns after fsync). A
store file that SQLite cannot read is renamed aside (``messages.sqlite3.corrupt-<UTC time>``,
with its ``-wal``/``-shm`` files) with one log line, and the node starts with an empty store
instead of failing at every start. Without a store everything is in memory, as in Mycelium.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from hyphal.bus.inbox import InboundMessage
from hyphal.filemodes import private_dir, private_file

log = logging.getLogger(__name__)

#: Payloads are copied into SQLite this many bytes at a time (incremental blob I/O), so a writer
#: thread never holds the GIL for a whole 128 MiB copy and the event loop keeps running.
BLOB_PIECE = 1 << 20

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id BLOB NOT NULL, reply INTEGER NOT NULL, dst BLOB NOT NULL, topic BLOB NOT NULL,
    payload BLOB, msg_len INTEGER NOT NULL, created REAL NOT NULL, deadline REAL NOT NULL,
    state TEXT NOT NULL, reason TEXT, finished REAL, PRIMARY KEY (id, reply));
CREATE TABLE IF NOT EXISTS inbox (
    seq INTEGER PRIMARY KEY, id BLOB NOT NULL, src BLOB NOT NULL, dst BLOB NOT NULL,
    topic BLOB NOT NULL, payload BLOB NOT NULL, reply INTEGER NOT NULL, received REAL NOT NULL);
"""


@dataclass(slots=True)
class OutboxRecord:
    msg_id: bytes
    reply: bool
    dst: bytes
    topic: bytes
    payload: bytes | None
    msg_len: int
    created: float  # wall clock
    deadline: float  # wall clock
    state: str
    reason: str | None = None
    finished: float | None = None


class MessageStore:
    """SQLite-backed inbox and outbox."""

    FILENAME = "messages.sqlite3"

    def __init__(self, directory: Path) -> None:
        # Payloads are stored in plaintext: a 0700 directory, and 0600 files (SQLite gives the
        # -wal and -shm files the database file's mode).
        private_dir(directory, "message store directory")
        self.path = directory / self.FILENAME
        self.moved_aside: Path | None = None
        try:
            self._db = self._open()
        except sqlite3.DatabaseError as exc:
            self.moved_aside = self._move_aside()
            log.error(
                "message store %s is unreadable (%s); moved it to %s and starting empty",
                self.path,
                exc,
                self.moved_aside,
            )
            self._db = self._open()

    def _open(self) -> sqlite3.Connection:
        # One writer thread (the service's) uses it after loading; never two at once.
        for suffix in ("", "-wal", "-shm"):
            side = self.path.with_name(self.FILENAME + suffix)
            if suffix == "" or side.exists():
                private_file(side)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
            db.execute("SELECT count(*) FROM inbox").fetchone()
            db.execute("SELECT count(*) FROM outbox").fetchone()
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def _move_aside(self) -> Path:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        target = self.path.with_name(f"{self.FILENAME}.corrupt-{stamp}")
        n = 1
        while target.exists():
            target = self.path.with_name(f"{self.FILENAME}.corrupt-{stamp}-{n}")
            n += 1
        for suffix in ("-wal", "-shm"):
            side = self.path.with_name(self.FILENAME + suffix)
            if side.exists():
                side.rename(target.with_name(target.name + suffix))
        self.path.rename(target)
        return target

    def close(self) -> None:
        self._db.close()

    def _put_with_payload(
        self, table: str, sql: str, params: tuple[object, ...], payload: bytes | None
    ) -> None:
        """Run ``sql`` (an insert whose payload column is ``zeroblob(?)``, the last parameter
        appended here) and fill the payload in pieces, all in one transaction."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            size = 0 if payload is None else len(payload)
            rowid = db.execute(sql, (*params, size)).lastrowid
            if payload and rowid is not None:
                view = memoryview(payload)
                with db.blobopen(table, "payload", rowid) as blob:
                    for start in range(0, size, BLOB_PIECE):
                        blob.write(view[start : start + BLOB_PIECE])
            if payload is None:
                db.execute(f"UPDATE {table} SET payload=NULL WHERE rowid=?", (rowid,))
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    # outbox
    def outbox_put(self, rec: OutboxRecord) -> None:
        self._put_with_payload(
            "outbox",
            "INSERT OR REPLACE INTO outbox (id, reply, dst, topic, msg_len, created, deadline,"
            " state, reason, finished, payload) VALUES (?,?,?,?,?,?,?,?,?,?,zeroblob(?))",
            (
                rec.msg_id,
                int(rec.reply),
                rec.dst,
                rec.topic,
                rec.msg_len,
                rec.created,
                rec.deadline,
                rec.state,
                rec.reason,
                rec.finished,
            ),
            rec.payload,
        )

    def outbox_finish(
        self, msg_id: bytes, reply: bool, state: str, reason: str | None, finished: float
    ) -> None:
        self._db.execute(
            "UPDATE outbox SET state=?, reason=?, finished=?, payload=NULL WHERE id=? AND reply=?",
            (state, reason, finished, msg_id, int(reply)),
        )

    def outbox_delete(self, msg_id: bytes, reply: bool) -> None:
        self._db.execute("DELETE FROM outbox WHERE id=? AND reply=?", (msg_id, int(reply)))

    def outbox_load(self) -> list[OutboxRecord]:
        rows = self._db.execute(
            "SELECT id, reply, dst, topic, payload, msg_len, created, deadline, state, reason,"
            " finished FROM outbox ORDER BY created"
        ).fetchall()
        return [
            OutboxRecord(
                bytes(r[0]),
                bool(r[1]),
                bytes(r[2]),
                bytes(r[3]),
                None if r[4] is None else bytes(r[4]),
                r[5],
                r[6],
                r[7],
                r[8],
                r[9],
                r[10],
            )
            for r in rows
        ]

    # inbox
    def inbox_put(self, seq: int, msg: InboundMessage) -> None:
        self._put_with_payload(
            "inbox",
            "INSERT OR REPLACE INTO inbox (seq, id, src, dst, topic, reply, received, payload)"
            " VALUES (?,?,?,?,?,?,?,zeroblob(?))",
            (seq, msg.msg_id, msg.src_pk, msg.dst_pk, msg.topic, int(msg.reply), msg.received_at),
            msg.payload,
        )

    def inbox_delete(self, seq: int) -> None:
        self._db.execute("DELETE FROM inbox WHERE seq=?", (seq,))

    def inbox_load(self) -> list[tuple[int, InboundMessage]]:
        rows = self._db.execute(
            "SELECT seq, id, src, dst, topic, payload, reply, received FROM inbox ORDER BY seq"
        ).fetchall()
        return [
            (
                r[0],
                InboundMessage(
                    bytes(r[1]),
                    bytes(r[2]),
                    bytes(r[3]),
                    bytes(r[4]),
                    bytes(r[5]),
                    bool(r[6]),
                    r[7],
                ),
            )
            for r in rows
        ]
