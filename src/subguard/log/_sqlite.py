"""The SQLite recorder subguard uses: batches inserted with one `executemany`, and a
light read of the notification log (no state) so a follower can skip what it already
holds. Chosen through eventsourcing's APPLICATION_RECORDER_TOPIC setting."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from eventsourcing.persistence import StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor

__all__ = ["BatchSQLiteRecorder"]


class BatchSQLiteRecorder(SQLiteApplicationRecorder):
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
        return None

    def select_positions(self, after: int, limit: int) -> list[tuple[int, str, int, str]]:
        """(position, aggregate id as stored, version, topic) after `after`, no state."""
        statement = (
            f"SELECT rowid, originator_id, originator_version, topic FROM {self.events_table_name} "
            "WHERE rowid>? ORDER BY rowid LIMIT ?"
        )
        with self.datastore.transaction(commit=False) as c:
            c.execute(statement, (after, limit))
            return [(r[0], r[1], r[2], r[3]) for r in c.fetchall()]

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
