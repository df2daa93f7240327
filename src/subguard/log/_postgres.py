"""A PostgreSQL recorder that writes a batch in one round trip.

eventsourcing's own recorder pipelines a handful of statements and syncs twice; on this
path (one small batch per group commit) the round trips cost more than the commit. This
subclass sends BEGIN, the table lock, NOTIFY, one multi-row INSERT and COMMIT as one
simple-protocol query; values are rendered as literals directly (the id from a UUID,
the version from an int, the state as bytea hex), a fraction of the cost of psycopg's
per-value adaptation on large batches. It keeps the EXCLUSIVE table lock, so
notification ids stay in commit order and a tailing reader never skips a row. Chosen through eventsourcing's APPLICATION_RECORDER_TOPIC setting.

Every statement has a deadline (`deadline`, set by the store to lock_timeout +
connect_timeout): a watchdog thread shuts down the socket of a connection still checked
out past it, so a server that died or froze mid-batch costs a bounded wait and an
error, never a hang. eventsourcing's retry loops (ten attempts) are bypassed for the
same reason: one attempt per deadline, and the log fails closed.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

from eventsourcing.persistence import Notification, StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.pq import TransactionStatus
from psycopg.sql import SQL, Identifier, Literal

__all__ = ["OneTripPostgresRecorder", "Watchdog"]


class Watchdog:
    """Cuts the connections whose checkout outlived its deadline.

    One thread per process sleeps until the earliest deadline. Arming and disarming is
    a heap push and a flag under one lock; the cut happens under the same lock, so a
    connection already returned to its pool is never touched.
    """

    def __init__(self) -> None:
        self._lock = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, list[Any]]] = []
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None
        #: connections cut so far (for tests and logs)
        self.cuts = 0

    @contextlib.contextmanager
    def guard(self, conn: Any, seconds: float) -> Iterator[None]:
        entry: list[Any] = [conn]
        deadline = time.monotonic() + seconds
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="subguard-log-watchdog", daemon=True
                )
                self._thread.start()
            first = not self._heap or deadline < self._heap[0][0]
            heapq.heappush(self._heap, (deadline, next(self._ids), entry))
            if first:
                self._lock.notify()
        try:
            yield
        finally:
            with self._lock:
                entry[0] = None

    def _run(self) -> None:
        with self._lock:
            while True:
                now = time.monotonic()
                while self._heap and (self._heap[0][2][0] is None or self._heap[0][0] <= now):
                    _, _, entry = heapq.heappop(self._heap)
                    if entry[0] is not None:
                        _cut(entry[0])
                        entry[0] = None
                        self.cuts += 1
                self._lock.wait(self._heap[0][0] - now if self._heap else None)


def _cut(conn: Any) -> None:
    """Shut the connection's socket down: the thread blocked on it gets an error."""
    with contextlib.suppress(Exception):
        fd = conn.pgconn.socket
        dup = socket.socket(fileno=os.dup(fd))
        try:
            dup.shutdown(socket.SHUT_RDWR)
        finally:
            dup.close()


WATCHDOG = Watchdog()


def _unretried(method: Any) -> Any:
    """eventsourcing's method without its `@retry` wrapper."""
    return getattr(method, "__wrapped__", method)


def _row_literal(e: StoredEvent) -> str:
    """One `(id,version,topic,state)` tuple as SQL text (standard-conforming strings).

    The id is rendered from a `UUID` (hex and dashes only), the version from an `int`,
    the state as a bytea hex literal; the topic is quoted with its quotes doubled.
    """
    originator = e.originator_id
    if not isinstance(originator, uuid.UUID):
        originator = uuid.UUID(str(originator))
    topic = e.topic.replace("'", "''")
    return f"('{originator}',{int(e.originator_version)},'{topic}','\\x{e.state.hex()}')"


class OneTripPostgresRecorder(PostgresApplicationRecorder):
    _parts: tuple[str, str] | None = None
    #: seconds any checkout of a connection may last (None: no deadline)
    _deadline: float | None = None

    select_events = _unretried(PostgresApplicationRecorder.select_events)
    select_notifications = _unretried(PostgresApplicationRecorder.select_notifications)
    max_notification_id = _unretried(PostgresApplicationRecorder.max_notification_id)

    @property
    def deadline(self) -> float | None:
        return self._deadline

    @deadline.setter
    def deadline(self, seconds: float | None) -> None:
        """Bound every checkout of a connection from now on (the LISTEN connection
        excepted: see `listen_connection`)."""
        datastore: Any = self.datastore
        unguarded = getattr(datastore, "_unguarded_get_connection", None)
        if unguarded is None:
            unguarded = datastore._unguarded_get_connection = datastore.get_connection
        self._deadline = seconds
        if seconds is None:
            datastore.get_connection = unguarded
            return

        @contextlib.contextmanager
        def get_connection() -> Iterator[Any]:
            with unguarded() as conn, WATCHDOG.guard(conn, seconds):
                yield conn

        datastore.get_connection = get_connection

    def listen_connection(self) -> Any:
        """A connection for LISTEN, held for long: no deadline (its waits are bounded
        by `notifies(timeout=…)`)."""
        unguarded = getattr(self.datastore, "_unguarded_get_connection", None)
        return (unguarded or self.datastore.get_connection)()

    def _statement_parts(self, conn: Any) -> tuple[str, str]:
        """The fixed text around the VALUES list, rendered once per recorder."""
        parts = self._parts
        if parts is None:
            head = SQL(
                "BEGIN; SET LOCAL lock_timeout = '{timeout}s'; "
                "LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; NOTIFY {channel}; "
                "INSERT INTO {schema}.{table} "
                "(originator_id, originator_version, topic, state) VALUES "
            ).format(
                timeout=SQL(str(int(self.datastore.lock_timeout))),
                schema=Identifier(self.datastore.schema),
                table=Identifier(self.events_table_name),
                channel=Identifier(self.channel_name),
            )
            parts = (head.as_string(conn), " RETURNING notification_id; COMMIT")
            self._parts = parts
        return parts

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if not stored_events or kwargs:
            return super().insert_events(stored_events, **kwargs)  # type: ignore[no-any-return]
        with self.datastore.get_connection() as conn:
            try:
                head, tail = self._statement_parts(conn)
                if conn.info.parameter_status("standard_conforming_strings") == "on":
                    values = ",".join(map(_row_literal, stored_events))
                else:  # pragma: no cover - every supported server defaults to on
                    values = (
                        SQL(",")
                        .join(
                            SQL("({},{},{},{})").format(
                                Literal(e.originator_id),
                                Literal(e.originator_version),
                                Literal(e.topic),
                                Literal(e.state),
                            )
                            for e in stored_events
                        )
                        .as_string(conn)
                    )
                with conn.cursor() as cur:
                    cur.execute((head + values + tail).encode(), prepare=False)
                    ids: list[int] = []
                    while True:
                        if cur.pgresult is not None and cur.description is not None:
                            ids.extend(row["notification_id"] for row in cur.fetchall())
                        if not cur.nextset():
                            break
                    return ids
            except BaseException:
                # An error inside our BEGIN leaves the session in a failed transaction
                # (on a connection that was cut, there is nothing left to roll back).
                with contextlib.suppress(Exception):
                    if not conn.closed and conn.info.transaction_status != TransactionStatus.IDLE:
                        conn.execute("ROLLBACK")
                raise

    def select_positions(self, after: int, limit: int) -> list[tuple[int, Any, int, str]]:
        """(position, aggregate id, version, topic) after `after`, no state."""
        query = SQL(
            "SELECT notification_id, originator_id, originator_version, topic FROM {0}.{1} "
            "WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
        ).format(Identifier(self.datastore.schema), Identifier(self.events_table_name))
        with self.datastore.get_connection() as conn, conn.cursor() as cur:
            cur.execute(query, (after, limit), prepare=True)
            return [
                (r["notification_id"], r["originator_id"], r["originator_version"], r["topic"])
                for r in cur.fetchall()
            ]

    def select_rows(self, after: int, limit: int) -> list[Notification]:
        """Rows after `after` as stored: a NULL state stays `None` (eventsourcing's
        `select_notifications` would raise on it), so `verify` can name the row."""
        query = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state "
            "FROM {0}.{1} WHERE notification_id > %s ORDER BY notification_id LIMIT %s"
        ).format(Identifier(self.datastore.schema), Identifier(self.events_table_name))
        # `state` may be None here although `Notification` declares bytes: on purpose
        as_stored: Any = Notification
        with self.datastore.get_connection() as conn, conn.cursor() as cur:
            cur.execute(query, (after, limit))
            return [
                as_stored(
                    id=r["notification_id"],
                    originator_id=r["originator_id"],
                    originator_version=r["originator_version"],
                    topic=r["topic"],
                    state=r["state"] if r["state"] is None else bytes(r["state"]),
                )
                for r in cur.fetchall()
            ]

    def select_states(self, positions: Sequence[int]) -> dict[int, bytes]:
        query = SQL(
            "SELECT notification_id, state FROM {0}.{1} WHERE notification_id = ANY(%s)"
        ).format(Identifier(self.datastore.schema), Identifier(self.events_table_name))
        with self.datastore.get_connection() as conn, conn.cursor() as cur:
            cur.execute(query, (list(positions),))
            return {r["notification_id"]: bytes(r["state"]) for r in cur.fetchall()}
