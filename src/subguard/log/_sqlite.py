"""The SQLite recorder subguard uses: batches inserted with one `executemany` on one
writer connection, and a light read of the notification log (no state) so a follower can
skip what it already holds. Chosen through eventsourcing's APPLICATION_RECORDER_TOPIC
setting."""

from __future__ import annotations

import contextlib
import functools
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from eventsourcing.persistence import (
    IntegrityError,
    Notification,
    OperationalError,
    PersistenceError,
    StoredEvent,
)
from eventsourcing.sqlite import (
    SQLITE3_DEFAULT_LOCK_TIMEOUT,
    SQLiteApplicationRecorder,
    SQLiteCursor,
)

__all__ = ["BatchSQLiteRecorder"]


def _inserted_ids(conn: sqlite3.Connection, count: int) -> list[int] | None:
    """The notification ids of the `count` rows just inserted in this transaction.

    The transaction holds SQLite's write lock from its first INSERT to COMMIT, so the
    rowids it assigned are consecutive and end at `last_insert_rowid()`.
    """
    if not count:
        return None
    last = int(conn.execute("SELECT last_insert_rowid()").fetchone()[0])
    return list(range(last - count + 1, last + 1))


class BatchSQLiteRecorder(SQLiteApplicationRecorder):
    """Writes go through one connection of their own (WAL, `synchronous=FULL`), opened on
    first use: a batch is `BEGIN`, one `executemany`, `COMMIT`, without the pool's
    per-transaction bookkeeping. Reads use eventsourcing's pool as before."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Made here, not on first use: two threads' first writes must share one lock
        # (sharing the connection unguarded crashed the interpreter in the conformance run).
        self._writer_lock = threading.RLock()
        self._writer: sqlite3.Connection | None = None
        #: the thread holding the write lock through `exclusive()`, if any
        self._exclusive: int | None = None

    def _writer_connection(self) -> sqlite3.Connection:
        conn = self._writer
        if conn is None:
            pool = self.datastore.pool
            conn = sqlite3.connect(
                pool.db_name,
                uri=True,
                check_same_thread=False,
                isolation_level=None,
                timeout=pool.lock_timeout or SQLITE3_DEFAULT_LOCK_TIMEOUT,
            )
            try:
                if (conn.execute("PRAGMA journal_mode=WAL").fetchone() or [""])[0] != "wal":
                    raise OperationalError("the SQLite database could not be put in WAL mode")
                conn.execute("PRAGMA synchronous=FULL")
            except BaseException:
                conn.close()
                raise
            self._writer = conn
        return conn

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Write a batch in one transaction; returns the notification ids assigned."""
        if kwargs or self.datastore.pool.is_sqlite_memory_mode:
            return super().insert_events(stored_events, **kwargs)
        rows = [
            (_hex(e.originator_id), e.originator_version, e.topic, e.state) for e in stored_events
        ]
        with self._writer_lock:
            try:
                conn = self._writer_connection()
                if self._exclusive != threading.get_ident():
                    conn.execute("BEGIN")
                try:
                    conn.executemany(self.insert_events_statement, rows)
                    ids = _inserted_ids(conn, len(rows))
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.IntegrityError as e:
                raise IntegrityError(e) from e
            except sqlite3.OperationalError as e:
                raise OperationalError(e) from e
            except sqlite3.Error as e:
                raise PersistenceError(e) from e
        return ids

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """Hold SQLite's write lock (`BEGIN IMMEDIATE`, waiting up to the lock timeout)
        until the next `insert_events` of this thread commits, or the block ends.

        Reads made inside see every commit (no other writer can commit meanwhile), so
        a writer that re-reads, re-decides and inserts inside cannot conflict.
        """
        with self._writer_lock:
            try:
                conn = self._writer_connection()
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as e:
                raise OperationalError(e) from e
            self._exclusive = threading.get_ident()
            try:
                yield
            finally:
                self._exclusive = None
                if conn.in_transaction:
                    conn.execute("ROLLBACK")

    def close_writer(self) -> None:
        """Close the writer connection (the pool's readers close with the datastore)."""
        conn, self._writer = self._writer, None
        if conn is not None:
            conn.close()

    def _insert_events(
        self, c: SQLiteCursor, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        # Notification ids are not needed by the writer; one executemany is much cheaper
        # than a statement per row.
        c.executemany(
            self.insert_events_statement,
            [
                (
                    e.originator_id.hex if hasattr(e.originator_id, "hex") else e.originator_id,
                    e.originator_version,
                    e.topic,
                    e.state,
                )
                for e in stored_events
            ],
        )
        c.execute("SELECT last_insert_rowid()")
        last = int(c.fetchone()[0])
        return list(range(last - len(stored_events) + 1, last + 1)) if stored_events else None

    def select_positions(self, after: int, limit: int) -> list[tuple[int, str, int, str]]:
        """(position, aggregate id as stored, version, topic) after `after`, no state."""
        statement = (
            f"SELECT rowid, originator_id, originator_version, topic FROM {self.events_table_name} "
            "WHERE rowid>? ORDER BY rowid LIMIT ?"
        )
        with self.datastore.transaction(commit=False) as c:
            c.execute(statement, (after, limit))
            return [(r[0], r[1], r[2], r[3]) for r in c.fetchall()]

    def select_rows(self, after: int, limit: int) -> list[Notification]:
        """Rows after `after` exactly as stored (no id conversion, any state type), so
        `verify` can name a malformed row instead of failing to read it."""
        statement = (
            "SELECT rowid, originator_id, originator_version, topic, state "
            f"FROM {self.events_table_name} WHERE rowid>? ORDER BY rowid LIMIT ?"
        )
        # a malformed row is passed on as stored, whatever `Notification` declares
        as_stored: Any = Notification
        with self.datastore.transaction(commit=False) as c:
            c.execute(statement, (after, limit))
            return [
                as_stored(
                    id=r[0], originator_id=r[1], originator_version=r[2], topic=r[3], state=r[4]
                )
                for r in c.fetchall()
            ]

    def select_states(self, positions: Sequence[int]) -> dict[int, bytes]:
        out: dict[int, bytes] = {}
        with self.datastore.transaction(commit=False) as c:
            for i in range(0, len(positions), 500):
                chunk = positions[i : i + 500]
                c.execute(
                    f"SELECT rowid, state FROM {self.events_table_name} "
                    f"WHERE rowid IN ({','.join('?' * len(chunk))})",
                    list(chunk),
                )
                out.update((r[0], r[1]) for r in c.fetchall())
        return out


@functools.lru_cache(maxsize=65536)
def _uuid_hex(value: uuid.UUID) -> str:
    return value.hex


def _hex(value: Any) -> Any:
    """An aggregate id as the events table stores it (hex text), cached per id."""
    return _uuid_hex(value) if isinstance(value, uuid.UUID) else value
