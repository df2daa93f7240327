"""A PostgreSQL recorder that writes a batch in one round trip.

eventsourcing's own recorder pipelines a handful of statements and syncs twice; on this
path (one small batch per group commit) the round trips cost more than the commit. This
subclass sends BEGIN, the table lock, NOTIFY, one multi-row INSERT and COMMIT as one
simple-protocol query, with values rendered as typed literals by psycopg. It keeps the
EXCLUSIVE table lock, so notification ids stay in commit order and a tailing reader never
skips a row. Chosen through eventsourcing's APPLICATION_RECORDER_TOPIC setting.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder
from psycopg.pq import TransactionStatus
from psycopg.sql import SQL, Identifier, Literal

__all__ = ["OneTripPostgresRecorder"]


class OneTripPostgresRecorder(PostgresApplicationRecorder):
    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        if not stored_events or kwargs:
            return super().insert_events(stored_events, **kwargs)  # type: ignore[no-any-return]
        schema = Identifier(self.datastore.schema)
        table = Identifier(self.events_table_name)
        rows = SQL(",").join(
            SQL("({},{},{},{})").format(
                Literal(e.originator_id),
                Literal(e.originator_version),
                Literal(e.topic),
                Literal(e.state),
            )
            for e in stored_events
        )
        query = SQL(
            "BEGIN; SET LOCAL lock_timeout = '{timeout}s'; "
            "LOCK TABLE {schema}.{table} IN EXCLUSIVE MODE; NOTIFY {channel}; "
            "INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state) "
            "VALUES {rows} RETURNING notification_id; COMMIT"
        ).format(
            timeout=SQL(str(int(self.datastore.lock_timeout))),
            schema=schema,
            table=table,
            channel=Identifier(self.channel_name),
            rows=rows,
        )
        with self.datastore.get_connection() as conn:
            try:
                text = query.as_string(conn)
                with conn.cursor() as cur:
                    cur.execute(text.encode(), prepare=False)
                    ids: list[int] = []
                    while True:
                        if cur.pgresult is not None and cur.description is not None:
                            ids.extend(row["notification_id"] for row in cur.fetchall())
                        if not cur.nextset():
                            break
                    return ids
            except BaseException:
                # An error inside our BEGIN leaves the session in a failed transaction.
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

    def select_states(self, positions: Sequence[int]) -> dict[int, bytes]:
        query = SQL(
            "SELECT notification_id, state FROM {0}.{1} WHERE notification_id = ANY(%s)"
        ).format(Identifier(self.datastore.schema), Identifier(self.events_table_name))
        with self.datastore.get_connection() as conn, conn.cursor() as cur:
            cur.execute(query, (list(positions),))
            return {r["notification_id"]: bytes(r["state"]) for r in cur.fetchall()}
