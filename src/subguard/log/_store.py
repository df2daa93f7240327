"""Stores chosen by URL, mapped onto eventsourcing's persistence settings.

`memory://[name]` (eventsourcing.popo; one per name, per process), `sqlite:///path`
(eventsourcing.sqlite, WAL, synchronous=FULL), `postgresql://user@host:port/db?schema=s`
(eventsourcing.postgres). A store records its schema version as the first event of a
fixed aggregate, so a newer store is refused instead of misread.
"""

from __future__ import annotations

import contextlib
import math
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from eventsourcing.persistence import (
    ApplicationRecorder,
    InfrastructureFactory,
    IntegrityError,
    Notification,
    PersistenceError,
    StoredEvent,
)
from eventsourcing.popo import POPOApplicationRecorder
from eventsourcing.utils import Environment

from subguard.errors import ConfigError, LogError
from subguard.log._events import (
    SCHEMA_VERSION,
    Topic,
    _uuid_text,
    decode_state,
    encode_event,
    format_time,
    store_aggregate_id,
)

__all__ = ["Store", "StoreConflict", "open_store"]

_MEMORY_STORES: dict[str, Store] = {}
_MEMORY_LOCK = threading.Lock()


class StoreConflict(LogError):
    """Another writer appended to the same aggregate first (optimistic concurrency)."""


class Store:
    """One event store: eventsourcing's application recorder plus what subguard needs."""

    def __init__(
        self, kind: str, display_url: str, factory: InfrastructureFactory[Any], recorder: Any
    ) -> None:
        self.kind = kind
        self.url = display_url
        self.factory = factory
        self.recorder: ApplicationRecorder = recorder
        self._closed = False

    # -- writing -------------------------------------------------------------------------
    def insert(self, events: Sequence[StoredEvent]) -> Sequence[int] | None:
        """Write events in one transaction; raise `StoreConflict` or `LogError`."""
        try:
            return self.recorder.insert_events(events)
        except IntegrityError as e:
            raise StoreConflict(f"conflicting append: {e}") from e
        except (PersistenceError, sqlite3.Error, OSError) as e:
            raise LogError(f"cannot write to the decision log at {self.url}: {_one_line(e)}") from e

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        """Keep other writers out until this thread's next `insert` commits (SQLite's
        write lock); a no-op on stores whose writers are serialised otherwise."""
        hold = getattr(self.recorder, "exclusive", None)
        if hold is None:
            yield
            return
        held = hold()
        try:
            held.__enter__()
        except (PersistenceError, sqlite3.Error, OSError) as e:
            raise LogError(f"cannot write to the decision log at {self.url}: {_one_line(e)}") from e
        try:
            yield
        except BaseException as e:
            held.__exit__(type(e), e, e.__traceback__)
            raise
        else:
            held.__exit__(None, None, None)

    # -- reading -------------------------------------------------------------------------
    def select_events(
        self, aggregate_id: uuid.UUID, gt: int | None = None
    ) -> Sequence[StoredEvent]:
        with self._reading():
            return self.recorder.select_events(aggregate_id, gt=gt)

    def select_notifications(
        self, after: int, limit: int = 500, topics: Sequence[str] = ()
    ) -> Sequence[Notification]:
        """Notifications with a position greater than `after`, in notification order."""
        with self._reading():
            return self.recorder.select_notifications(
                start=after, limit=limit, topics=list(topics), inclusive_of_start=False
            )

    def select_positions(
        self, after: int, limit: int = 1000
    ) -> list[tuple[int, uuid.UUID, int, str]]:
        """(position, aggregate id, version, topic) after `after`: no state, cheap."""
        light = getattr(self.recorder, "select_positions", None)
        with self._reading():
            if light is None:
                return [
                    (n.id, _as_uuid(n.originator_id), n.originator_version, n.topic)
                    for n in self.recorder.select_notifications(
                        start=after, limit=limit, inclusive_of_start=False
                    )
                ]
            return [(p, _as_uuid(a), v, t) for p, a, v, t in light(after, limit)]

    def select_states(self, positions: Sequence[int]) -> dict[int, bytes]:
        """The stored state of the events at these positions."""
        if not positions:
            return {}
        states = getattr(self.recorder, "select_states", None)
        with self._reading():
            if states is not None:
                return dict(states(positions))
            wanted = set(positions)
            out: dict[int, bytes] = {}
            for n in self.recorder.select_notifications(
                start=min(positions), limit=max(positions) - min(positions) + 1
            ):
                if n.id in wanted:
                    out[n.id] = n.state
            return out

    def max_position(self) -> int:
        with self._reading():
            return self.recorder.max_notification_id() or 0

    def iter_notifications(
        self, after: int = 0, topics: Sequence[str] = (), batch: int = 1000
    ) -> Iterator[Notification]:
        while True:
            page = self.select_notifications(after, batch, topics)
            yield from page
            if len(page) < batch:
                return
            after = page[-1].id

    def iter_rows(self, after: int = 0, batch: int = 1000) -> Iterator[Notification]:
        """Every row after `after` as stored, for `verify`: a malformed state (NULL, TEXT)
        is passed on as it is instead of failing the read."""
        rows = getattr(self.recorder, "select_rows", None)
        if rows is None:
            yield from self.iter_notifications(after, batch=batch)
            return
        while True:
            with self._reading():
                page = rows(after, batch)
            yield from page
            if len(page) < batch:
                return
            after = page[-1].id

    @contextmanager
    def _reading(self) -> Iterator[None]:
        try:
            yield
        except (PersistenceError, sqlite3.Error, OSError) as e:
            raise LogError(f"cannot read the decision log at {self.url}: {_one_line(e)}") from e
        except (TypeError, ValueError) as e:
            # eventsourcing converts each row (UUID ids, bytes states): a row no writer of
            # ours produced fails there
            raise LogError(
                f"cannot read the decision log at {self.url}: a malformed row "
                f"({type(e).__name__}): run `subguard verify` to find it"
            ) from e

    @contextmanager
    def listen(self) -> Iterator[Any]:
        """A PostgreSQL connection listening on the store's channel (None elsewhere)."""
        if self.kind != "postgresql":
            yield None
            return
        from psycopg.sql import SQL, Identifier

        recorder: Any = self.recorder
        with recorder.listen_connection() as conn:
            conn.execute(SQL("LISTEN {0}").format(Identifier(recorder.channel_name)))
            yield conn

    def close(self) -> None:
        if self._closed or self.kind == "memory":
            return
        self._closed = True
        with contextlib.suppress(Exception):  # closing must never mask the real error
            close_writer = getattr(self.recorder, "close_writer", None)
            if close_writer is not None:
                close_writer()
        with contextlib.suppress(Exception):
            self.factory.close()

    # -- schema --------------------------------------------------------------------------
    def check_schema(self, *, create: bool) -> None:
        events = self.select_events(store_aggregate_id())
        try:
            versions = [int(decode_state(e.state).get("schema", 0)) for e in events]
        except (TypeError, ValueError, AttributeError):
            if not create:
                return  # a reader goes on: `verify` names the malformed row
            raise LogError(
                f"the decision log at {self.url} has a malformed StoreCreated event: "
                "run `subguard verify`"
            ) from None
        if versions:
            newest = max(versions)
            if newest > SCHEMA_VERSION:
                raise LogError(
                    f"the decision log at {self.url} has schema version {newest}, newer than "
                    f"this subguard understands ({SCHEMA_VERSION}): upgrade subguard"
                )
            return
        if not create:
            # Readers (verify, log, export…) never write: a store without its
            # StoreCreated event stays that way, and `verify` reports it.
            return
        stored, _ = encode_event(
            store_aggregate_id(),
            1,
            Topic.STORE_CREATED,
            {"schema": SCHEMA_VERSION, "at": format_time(_now_ns())},
            "",
        )
        with contextlib.suppress(StoreConflict):  # another process declared it first
            self.insert([stored])


_UUIDS: dict[Any, uuid.UUID] = {}


def _as_uuid(value: Any) -> uuid.UUID:
    """Aggregate ids as stored (UUID, or hex text on SQLite) → UUID, cached."""
    if isinstance(value, uuid.UUID):
        return value
    found = _UUIDS.get(value)
    if found is None:
        if len(_UUIDS) > 100_000:
            _UUIDS.clear()
        found = _UUIDS[value] = uuid.UUID(value)
    return found


def _now_ns() -> int:
    import time

    return time.time_ns()


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def redact_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(":" + parts.password + "@", ":***@")
        return parts._replace(netloc=netloc).geturl()
    return url


def _seconds(name: str, text: str) -> int:
    """A timeout in a store URL: a finite number of seconds above 0, rounded up to whole
    seconds (what the drivers take). 0 would mean "wait forever" to PostgreSQL."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(
            f"store URL parameter `{name}` must be a positive number of seconds, not `{text}`"
        )
    return max(1, math.ceil(value))


def _count(name: str, text: str, *, least: int) -> int:
    if not text.isdigit() or int(text) < least:
        raise ConfigError(
            f"store URL parameter `{name}` must be an integer of at least {least}, not `{text}`"
        )
    return int(text)


_SQLITE_PARAMETERS = ("lock_timeout",)
_POSTGRES_PARAMETERS = ("schema", "lock_timeout", "connect_timeout", "pool_size", "max_overflow")


def _parameters(url: str, allowed: tuple[str, ...]) -> dict[str, str]:
    """The URL's query parameters; an unknown one is an error, never ignored."""
    params = {k: v[-1] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}
    for name in params:
        if name not in allowed:
            raise ConfigError(f"unknown store URL parameter `{name}` (known: {', '.join(allowed)})")
    return params


def open_store(url: str, *, create: bool | None = None, lock_timeout: float = 5.0) -> Store:
    """Open the store named by `url`; `create` makes tables (default: yes except PostgreSQL)."""
    if not url:
        raise ConfigError("no store URL given")
    scheme = url.split(":", 1)[0].lower()
    try:
        if scheme == "memory":
            return _open_memory(url)
        if scheme == "sqlite":
            store = _open_sqlite(
                url, create=True if create is None else create, lock_timeout=lock_timeout
            )
        elif scheme in ("postgresql", "postgres"):
            store = _open_postgres(url, create=bool(create), lock_timeout=lock_timeout)
        else:
            raise ConfigError(
                f"unknown store URL scheme `{scheme}`: use sqlite:///path, postgresql://… or memory://"
            )
    except (LogError, ConfigError):
        raise
    except (PersistenceError, sqlite3.Error, OSError, ImportError) as e:
        raise LogError(f"cannot open the decision log at {redact_url(url)}: {_one_line(e)}") from e
    try:
        store.check_schema(
            create=True if create is None and store.kind != "postgresql" else bool(create)
        )
    except LogError as e:
        store.close()
        if store.kind == "postgresql" and "does not exist" in str(e):
            raise LogError(
                f"the decision log at {store.url} is not initialised: run `subguard init --store URL`"
            ) from e
        if "locked" in str(e):
            raise LogError(f"the decision log at {store.url} is locked by another process") from e
        raise
    return store


class MemoryRecorder(POPOApplicationRecorder):
    """eventsourcing's in-memory recorder, with aggregate ids turned to text once (not
    twice per event) and positions read without building notifications."""

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        with self._database_lock:
            self._assert_uniqueness(stored_events)
            ids = self._update_table(stored_events)
        if self._listeners:
            self._notify_listeners()
        return ids

    def _assert_uniqueness(self, stored_events: Sequence[StoredEvent], **_: Any) -> None:
        index = self._stored_events_index
        new = set()
        for s in stored_events:
            key = _uuid_text(s.originator_id)
            versions = index.get(key)
            if versions is not None and s.originator_version in versions:
                raise IntegrityError(f"Stored event already recorded: {s}")
            new.add((key, s.originator_version))
        if len(new) < len(stored_events):
            raise IntegrityError(f"Stored events are not unique: {stored_events}")

    def _update_table(self, stored_events: Sequence[StoredEvent], **_: Any) -> Sequence[int]:
        events = self._stored_events
        index = self._stored_events_index
        ids = []
        for s in stored_events:
            events.append(s)
            position = len(events)
            index[_uuid_text(s.originator_id)][s.originator_version] = position - 1
            ids.append(position)
        return ids

    def select_positions(self, after: int, limit: int) -> list[tuple[int, Any, int, str]]:
        with self._database_lock:
            page = self._stored_events[max(after, 0) : max(after, 0) + limit]
            return [
                (after + 1 + i, s.originator_id, s.originator_version, s.topic)
                for i, s in enumerate(page)
            ]

    def select_states(self, positions: Sequence[int]) -> list[tuple[int, bytes]]:
        with self._database_lock:
            events = self._stored_events
            return [(p, events[p - 1].state) for p in positions if 0 < p <= len(events)]


def _open_memory(url: str) -> Store:
    name = url.split("://", 1)[1] if "://" in url else ""
    with _MEMORY_LOCK:
        if name and name in _MEMORY_STORES:
            return _MEMORY_STORES[name]
        factory: Any = InfrastructureFactory.construct(
            Environment("", {"PERSISTENCE_MODULE": "eventsourcing.popo"})
        )
        store = Store("memory", url, factory, MemoryRecorder())
        store.check_schema(create=True)
        if name:
            _MEMORY_STORES[name] = store
        return store


def _open_sqlite(url: str, *, create: bool, lock_timeout: float) -> Store:
    path = unquote(url.split("://", 1)[1].split("?", 1)[0]) if "://" in url else ""
    if not path or path == "/":
        raise ConfigError(f"store URL `{url}` names no file: use sqlite:///path/to/subguard.db")
    params = _parameters(url, _SQLITE_PARAMETERS)
    timeout = str(_seconds("lock_timeout", params.get("lock_timeout", str(lock_timeout))))
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise LogError(
            f"cannot open the decision log at {url}: directory {directory} does not exist"
        )
    if not create and not os.path.exists(path):
        raise LogError(f"cannot open the decision log at {url}: no such file")
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.sqlite",
        "SQLITE_DBNAME": path,
        "SQLITE_LOCK_TIMEOUT": timeout,
        "CREATE_TABLE": "y" if create else "n",
        "APPLICATION_RECORDER_TOPIC": "subguard.log._sqlite:BatchSQLiteRecorder",
    }
    factory: Any = InfrastructureFactory.construct(Environment("", env))
    _durable_connections(factory.datastore.pool)
    recorder = factory.application_recorder()
    return Store("sqlite", url, factory, recorder)


def _durable_connections(pool: Any) -> None:
    """Make every connection the pool opens sync the WAL at each commit.

    `synchronous=FULL` is SQLite's usual default in WAL mode, but a build may lower it
    (SQLITE_DEFAULT_WAL_SYNCHRONOUS); a decision must survive power loss, so it is set.
    """
    create = pool._create_connection

    def create_durable() -> Any:
        conn = create()
        conn._sqlite_conn.execute("PRAGMA synchronous=FULL")
        return conn

    pool._create_connection = create_durable


def _open_postgres(url: str, *, create: bool, lock_timeout: float) -> Store:
    parts = urlsplit(url)
    params = _parameters(url, _POSTGRES_PARAMETERS)
    schema = params.get("schema", "public")
    lock = _seconds("lock_timeout", params.get("lock_timeout", str(lock_timeout)))
    connect = _seconds("connect_timeout", params.get("connect_timeout", "5"))
    pool_size = _count("pool_size", params.get("pool_size", "2"), least=1)
    max_overflow = _count("max_overflow", params.get("max_overflow", "14"), least=0)
    server = {
        "dbname": unquote(parts.path.lstrip("/")) or "postgres",
        "host": parts.hostname or "127.0.0.1",
        "port": str(parts.port or 5432),
        "user": unquote(parts.username or "postgres"),
        "password": unquote(parts.password or ""),
    }
    _probe_postgres(server, connect, redact_url(url))
    env = {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": server["dbname"],
        "POSTGRES_HOST": server["host"],
        "POSTGRES_PORT": server["port"],
        "POSTGRES_USER": server["user"],
        "POSTGRES_PASSWORD": server["password"],
        "POSTGRES_SCHEMA": schema,
        "POSTGRES_LOCK_TIMEOUT": str(lock),
        "POSTGRES_CONNECT_TIMEOUT": str(connect),
        "POSTGRES_POOL_SIZE": str(pool_size),
        "POSTGRES_MAX_OVERFLOW": str(max_overflow),
        "CREATE_TABLE": "n",
        "APPLICATION_RECORDER_TOPIC": "subguard.log._postgres:OneTripPostgresRecorder",
    }
    factory: Any = InfrastructureFactory.construct(Environment("", env))
    # libpq's own connect timeout: a connection attempt to a host that does not answer
    # ends too (eventsourcing only bounds the wait for a pooled connection).
    factory.datastore.pool.kwargs["connect_timeout"] = connect
    if create:
        from psycopg.sql import SQL, Identifier

        with factory.datastore.transaction(commit=True) as curs:
            curs.execute(SQL("CREATE SCHEMA IF NOT EXISTS {0}").format(Identifier(schema)))
    recorder = factory.application_recorder()
    # every statement this store sends ends within this many seconds, answered or not
    recorder.deadline = float(lock + connect)
    if create:
        recorder.create_table()
    return Store("postgresql", redact_url(url), factory, recorder)


def _probe_postgres(server: dict[str, str], connect_timeout: int, display_url: str) -> None:
    """Connect once, directly, so that a wrong database, user or password reads as the
    server says it (not as a pool that "couldn't get a connection" seconds later)."""
    import psycopg

    try:
        conninfo = psycopg.conninfo.make_conninfo(**server, connect_timeout=connect_timeout)
        psycopg.connect(conninfo, autocommit=True).close()
    except psycopg.Error as e:
        text = str(e).strip()
        reason = text.rsplit("FATAL:", 1)[-1].strip() if "FATAL:" in text else _one_line(e)
        raise LogError(f"cannot open the decision log at {display_url}: {reason}") from None
