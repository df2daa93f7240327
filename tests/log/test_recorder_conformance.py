"""eventsourcing's own recorder conformance tests, run against subguard's two recorders.

`BatchSQLiteRecorder` (one `executemany` per batch on a writer connection of its own)
and `OneTripPostgresRecorder` (a batch in one round trip) replace eventsourcing's insert
paths; its `ApplicationRecorderTestCase` and `NonInterleavingNotificationIDsBaseCase`
pin what the rest of eventsourcing (and our followers) rely on: notification ids
returned and contiguous, optimistic concurrency, topic filters, non-interleaved batches.
The throughput cases only print timings; they run too, on a small machine in seconds.
"""

from __future__ import annotations

import os
import tempfile
import threading
import uuid
from typing import Any

import pytest
from eventsourcing.persistence import InfrastructureFactory
from eventsourcing.tests.persistence import (
    ApplicationRecorderTestCase,
    NonInterleavingNotificationIDsBaseCase,
)
from eventsourcing.utils import Environment

from .conftest import PG_DSN, require_postgres


def _join_readers() -> None:
    """eventsourcing's `test_concurrent_no_conflicts` stops its two reader threads but
    does not join them: one may still be inside `select_notifications` when tearDown
    closes the connections, and SQLite then crashes the process. Wait for them first."""
    for thread in threading.enumerate():
        target = getattr(thread, "_target", None)
        if thread is not threading.current_thread() and getattr(target, "__name__", "") == "read_continuously":
            thread.join(timeout=30)


def _sqlite_factory(path: str) -> Any:
    return InfrastructureFactory.construct(
        Environment(
            "",
            {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": path,
                "SQLITE_LOCK_TIMEOUT": "10",
                "CREATE_TABLE": "y",
                "APPLICATION_RECORDER_TOPIC": "subguard.log._sqlite:BatchSQLiteRecorder",
            },
        )
    )


class _SQLite:
    def setUp(self) -> None:
        self._dir = tempfile.TemporaryDirectory()
        self.factory = _sqlite_factory(os.path.join(self._dir.name, "conformance.db"))

    def tearDown(self) -> None:
        _join_readers()
        recorder = getattr(self, "_recorder", None)
        if recorder is not None:
            recorder.close_writer()
        self.factory.close()
        self._dir.cleanup()

    def create_recorder(self) -> Any:
        self._recorder = self.factory.application_recorder()
        return self._recorder


class TestBatchSQLiteRecorder(_SQLite, ApplicationRecorderTestCase[Any]):
    pass


class TestBatchSQLiteRecorderNonInterleaving(_SQLite, NonInterleavingNotificationIDsBaseCase):
    pass


class _Postgres:
    def setUp(self) -> None:
        require_postgres()
        from urllib.parse import urlsplit

        parts = urlsplit(PG_DSN)
        self.schema = "sgconf_" + uuid.uuid4().hex[:12]
        self.factory = InfrastructureFactory.construct(
            Environment(
                "",
                {
                    "PERSISTENCE_MODULE": "eventsourcing.postgres",
                    "POSTGRES_DBNAME": parts.path.lstrip("/") or "postgres",
                    "POSTGRES_HOST": parts.hostname or "127.0.0.1",
                    "POSTGRES_PORT": str(parts.port or 5432),
                    "POSTGRES_USER": parts.username or "postgres",
                    "POSTGRES_PASSWORD": parts.password or "",
                    "POSTGRES_SCHEMA": self.schema,
                    "POSTGRES_LOCK_TIMEOUT": "10",
                    "POSTGRES_POOL_SIZE": "4",
                    "POSTGRES_MAX_OVERFLOW": "12",
                    "CREATE_TABLE": "y",
                    "APPLICATION_RECORDER_TOPIC": "subguard.log._postgres:OneTripPostgresRecorder",
                },
            )
        )
        from psycopg.sql import SQL, Identifier

        with self.factory.datastore.transaction(commit=True) as curs:
            curs.execute(SQL("CREATE SCHEMA IF NOT EXISTS {0}").format(Identifier(self.schema)))

    def tearDown(self) -> None:
        import psycopg

        _join_readers()
        self.factory.close()
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')

    def create_recorder(self) -> Any:
        recorder = self.factory.application_recorder()
        recorder.create_table()
        return recorder


@pytest.mark.postgres
class TestOneTripPostgresRecorder(_Postgres, ApplicationRecorderTestCase[Any]):
    # PostgreSQL sequences burn values on conflicts: ids may have gaps
    EXPECT_CONTIGUOUS_NOTIFICATION_IDS = False


@pytest.mark.postgres
class TestOneTripPostgresRecorderNonInterleaving(_Postgres, NonInterleavingNotificationIDsBaseCase):
    pass
