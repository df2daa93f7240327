"""Fixtures for the decision log: store URLs for memory, SQLite and PostgreSQL.

PostgreSQL tests run against 127.0.0.1:5432 (database `test`), each in its own schema,
dropped afterwards. Without a server they skip, unless SUBGUARD_REQUIRE_POSTGRES=1 (CI),
where a missing server is a failure.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from subguard.engine.recorder import CheckContext
from subguard.engine.types import Decision, Effect, Reason, Resource, SqlRequest, Subject

T = TypeVar("T")

#: How long a polling test waits for something another thread or process does. The wait
#: ends as soon as the condition holds (typically within tens of milliseconds: the
#: follower polls every 20 ms); the bound only matters when the behaviour is broken, so
#: it is generous enough for a loaded CI machine with two shared cores.
EVENTUALLY = 10.0


def eventually(probe: Callable[[], T], *, timeout: float = EVENTUALLY, interval: float = 0.01) -> T:
    """Call `probe` until it returns something truthy or `timeout` passes; return the
    last value (the caller asserts on it, so a failure shows what was seen)."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(interval)


PG_DSN = os.environ.get("SUBGUARD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def postgres_available() -> str | None:
    """None when the server answers, else why not."""
    try:
        import psycopg

        with psycopg.connect(
            PG_DSN.replace("postgresql://", "postgresql://", 1), connect_timeout=3
        ) as conn:
            conn.execute("SELECT 1")
        return None
    except Exception as e:  # any failure means: no usable server
        return f"{type(e).__name__}: {e}"


def require_postgres() -> None:
    why = postgres_available()
    if why is None:
        return
    message = f"PostgreSQL at {PG_DSN} is not available ({why})"
    if os.environ.get("SUBGUARD_REQUIRE_POSTGRES") == "1":
        pytest.fail(message + " and SUBGUARD_REQUIRE_POSTGRES=1", pytrace=False)
    pytest.skip(message)


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh schema on the test server, initialised, and dropped afterwards."""
    require_postgres()
    import psycopg

    schema = "sgtest_" + uuid.uuid4().hex[:12]
    url = f"{PG_DSN}?schema={schema}"
    from subguard.log import open_store

    open_store(url, create=True).close()
    try:
        yield url
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def sqlite_url(tmp_path: Any) -> str:
    return f"sqlite:///{tmp_path}/subguard.db"


def make_ctx(
    subject: str = "agent-1",
    session: str | None = "s1",
    text: str = "SELECT * FROM users WHERE id = ?",
    fingerprint: str | None = "fp-users-by-id",
    exact_hash: str | None = "exact-1",
    groups: tuple[str, ...] = ("agents",),
    literal: str = "SELECT * FROM users WHERE id = 4242",
) -> CheckContext:
    return CheckContext(
        request=SqlRequest(literal),
        subject=Subject(subject, groups=groups, claims={"iss": "https://idp.example"}),
        resource=Resource("prod-db", kind="postgres", env="prod"),
        session_id=session,
        request_kind="sql",
        redacted_text=text,
        fingerprint=fingerprint,
        exact_hash=exact_hash,
        time_ns=time.time_ns(),
    )


def make_decision(effect: Effect = Effect.ALLOW, message: str = "") -> Decision:
    reasons = ()
    if message:
        reasons = (Reason(effect, "guard.test", str(effect), message, "test.guard:1"),)
    doc = {
        "sql": {
            "statements": [{"kind": "select"}],
            "tables_read": frozenset({"users"}),
            "tables_written": frozenset(),
            "columns_read": [{"table": "users", "column": "email", "tags": {"pii"}}],
        }
    }
    return Decision(
        effect=effect, reasons=reasons, input=doc, policy_hash="sha256:test-policy", elapsed_ns=1234
    )
