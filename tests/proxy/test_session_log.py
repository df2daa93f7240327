"""What the proxy records of a connection in the decision log: its opening (peer,
application_name, subject, TLS), what the database did with every statement the gate
let through (rows, milliseconds, SQLSTATE; never a value or an error's message), its
closing; `subguard replay` shows them and `subguard verify` still verifies. And
LISTEN/NOTIFY through the proxy: notifications reach a listening client, idle or not."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest

from subguard.log import open_store, read_records

from .conftest import PG_DSN, Proxy, cli

LITERAL = "zq-literal-7781-unique"


def _records(store: str) -> list[Any]:
    s = open_store(store, create=False)
    try:
        return list(read_records(s))
    finally:
        s.close()


def _session_of(
    store: str, subject: str, *, closed: bool = True, timeout: float = 10.0
) -> tuple[str, list[Any]]:
    """The one proxy session of `subject` and its records, once it is closed."""
    deadline = time.monotonic() + timeout
    while True:
        records = _records(store)
        opened = [r for r in records if r.name == "SessionOpened" and r.subject == subject]
        if opened:
            session = opened[0].session
            assert session is not None
            mine = [r for r in records if r.session == session]
            if not closed or any(r.name == "SessionClosed" for r in mine):
                return session, mine
        if time.monotonic() > deadline:
            raise AssertionError(
                f"no {'closed ' if closed else ''}session of `{subject}` in the log"
            )
        time.sleep(0.05)


def _completions(records: list[Any], text_part: str) -> tuple[Any, list[dict[str, Any]]]:
    decisions = [
        r for r in records if r.name == "DecisionRecorded" and text_part in str(r.state.get("text"))
    ]
    assert len(decisions) == 1, [
        r.state.get("text") for r in records if r.name == "DecisionRecorded"
    ]
    decision = decisions[0]
    done = [
        r.state
        for r in records
        if r.name == "StatementCompleted" and r.decision_id == decision.decision_id
    ]
    return decision, sorted(done, key=lambda c: (c["statement"], c["at"]))


def _psql(
    proxy: Proxy, token: str, *commands: str, app: str = "sgpx-psql"
) -> subprocess.CompletedProcess[str]:
    args = [
        "psql",
        "-X",
        "-A",
        "-t",
        "-v",
        "ON_ERROR_STOP=0",
        "-h",
        "127.0.0.1",
        "-p",
        str(proxy.port),
        "-U",
        "agent",
        "test",
    ]
    for c in commands:
        args += ["-c", c]
    env = {**os.environ, "PGPASSWORD": token, "PGAPPNAME": app}
    return subprocess.run(args, capture_output=True, text=True, timeout=60, env=env, check=False)


def _raw_store(proxy: Proxy) -> bytes:
    return b"".join(p.read_bytes() for p in Path(proxy.directory).glob("log.db*"))


def test_psycopg_session_statements_and_end_are_recorded(
    proxy: Proxy, token: Callable[..., str], subject: str
) -> None:
    with psycopg.connect(
        proxy.dsn(token(subject), application_name="sgpx-recorder"), autocommit=True
    ) as conn:
        conn.execute("CREATE TEMP TABLE sgpx_rec (id int, note text)")
        conn.execute("INSERT INTO sgpx_rec VALUES (1, 'a'), (2, 'b'), (3, 'c')")
        assert len(conn.execute("SELECT id, note FROM sgpx_rec ORDER BY id").fetchall()) == 3
        conn.execute(f"UPDATE sgpx_rec SET note = '{LITERAL}' WHERE id IN (1, 2)")
        with pytest.raises(psycopg.errors.DivisionByZero):
            conn.execute("SELECT 1/0")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DROP TABLE sgpx_rec")
    session, records = _session_of(proxy.store, subject)

    opened = next(r.state for r in records if r.name == "SessionOpened")
    assert opened["subject"] == subject
    assert opened["application_name"] == "sgpx-recorder"
    assert opened["peer"].startswith("127.0.0.1:")
    assert opened["tls"] is False and opened["adapter"] == "postgres"

    _, selected = _completions(records, "SELECT id, note FROM sgpx_rec")
    assert [(c["outcome"], c["command"], c["rows"], c["sqlstate"]) for c in selected] == [
        ("complete", "SELECT", 3, None)
    ]
    assert selected[0]["ms"] >= 0
    _, updated = _completions(records, "UPDATE sgpx_rec")
    assert [(c["command"], c["rows"]) for c in updated] == [("UPDATE", 2)]
    _, inserted = _completions(records, "INSERT INTO sgpx_rec")
    assert [(c["command"], c["rows"]) for c in inserted] == [("INSERT", 3)]
    _, created = _completions(records, "CREATE TEMP")
    assert [(c["command"], c["rows"]) for c in created] == [("CREATE TABLE", None)]
    _, failed = _completions(records, "SELECT ? / ?")
    assert [(c["outcome"], c["sqlstate"], c["rows"]) for c in failed] == [("error", "22012", None)]
    refused, none = _completions(records, "DROP TABLE")
    assert refused.state["effect"] == "deny" and none == []

    closed = next(r.state for r in records if r.name == "SessionClosed")
    assert closed["duration_ms"] > 0 and closed["reason"]

    raw = _raw_store(proxy)
    assert LITERAL.encode() not in raw
    assert b"division by zero" not in raw

    verify = cli("verify", store=proxy.store)
    assert verify.returncode == 0, verify.stdout + verify.stderr

    replay = cli("replay", session, "--format", "jsonl", store=proxy.store)
    assert replay.returncode == 0, replay.stderr
    lines = [json.loads(line) for line in replay.stdout.splitlines() if line.strip()]
    events = [line["event"] for line in lines]
    assert events[0] == "SessionOpened" and events[-1] == "SessionClosed"
    by_text = {line["text"]: line for line in lines if line["event"] == "DecisionRecorded"}
    select_line = next(line for text, line in by_text.items() if text.startswith("SELECT id, note"))
    assert [(c["rows"], c["sqlstate"]) for c in select_line["completions"]] == [(3, None)]
    assert (
        next(line for text, line in by_text.items() if "/" in text)["completions"][0]["sqlstate"]
        == "22012"
    )

    text = cli("replay", session, store=proxy.store)
    assert text.returncode == 0, text.stderr
    assert (
        f"session {session} opened" in text.stdout
        and "application_name='sgpx-recorder'" in text.stdout
    )
    assert "SELECT 3 rows" in text.stdout and "UPDATE 2 rows" in text.stdout
    assert "error 22012" in text.stdout and "session closed" in text.stdout
    assert LITERAL not in text.stdout


def test_psql_simple_query_statements_each_get_a_completion(
    proxy: Proxy, token: Callable[..., str], subject: str
) -> None:
    done = _psql(
        proxy,
        token(subject),
        "SELECT a FROM generate_series(1, 3) AS a; SELECT b FROM generate_series(1, 2) AS b",
        "SELECT 1/0",
        app="sgpx-psql-rec",
    )
    assert "division by zero" in done.stderr
    _, records = _session_of(proxy.store, subject)
    opened = next(r.state for r in records if r.name == "SessionOpened")
    assert opened["application_name"] == "sgpx-psql-rec"
    _, both = _completions(records, "AS b")
    assert [(c["statement"], c["command"], c["rows"]) for c in both] == [
        (0, "SELECT", 3),
        (1, "SELECT", 2),
    ]
    _, failed = _completions(records, "SELECT ? / ?")
    assert [(c["outcome"], c["sqlstate"]) for c in failed] == [("error", "22012")]
    assert b"division by zero" not in _raw_store(proxy)


# ----------------------------------------------------------------------------------------
# LISTEN / NOTIFY


def _next_notify(conn: psycopg.Connection[Any], timeout: float = 10.0) -> tuple[str, str]:
    for n in conn.notifies(timeout=timeout, stop_after=1):
        return n.channel, n.payload
    raise AssertionError("no notification arrived")


def test_listen_through_the_proxy_receives_notifications(
    proxy: Proxy, token: Callable[..., str], subject: str
) -> None:
    payload = "zq-payload-5521"
    with (
        psycopg.connect(proxy.dsn(token(subject)), autocommit=True) as listener,
        psycopg.connect(proxy.dsn(token(subject)), autocommit=True) as sender,
    ):
        listener.execute("LISTEN sgpx_jobs")
        sender.execute(f"NOTIFY sgpx_jobs, '{payload}'")
        assert _next_notify(listener) == ("sgpx_jobs", payload)
        # the listener idle, the notification sent straight to the database
        time.sleep(0.2)
        with psycopg.connect(PG_DSN, autocommit=True) as direct:
            direct.execute("SELECT pg_notify('sgpx_jobs', 'direct')")
        assert _next_notify(listener) == ("sgpx_jobs", "direct")
        # the connection stays usable, and UNLISTEN * stops them
        assert listener.execute("SELECT 7").fetchone() == (7,)
        listener.execute("UNLISTEN *")
        sender.execute("NOTIFY sgpx_jobs, 'late'")
        assert list(listener.notifies(timeout=0.5, stop_after=1)) == []
    _, records = _session_of(proxy.store, subject)
    kinds = [r.state["facts"]["kinds"] for r in records if r.name == "DecisionRecorded"]
    assert ["listen"] in kinds and ["unlisten"] in kinds
    assert payload.encode() not in _raw_store(proxy)


def test_a_malformed_notify_is_refused(
    proxy: Proxy, token: Callable[..., str], subject: str
) -> None:
    with (
        psycopg.connect(proxy.dsn(token(subject)), autocommit=True) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        conn.execute("NOTIFY sgpx_jobs, 'a' || 'b'")


def test_asyncpg_cursor_executes_are_suspended_then_complete(
    proxy: Proxy, token: Callable[..., str], subject: str
) -> None:
    import asyncio

    import asyncpg

    async def main() -> list[int]:
        conn = await asyncpg.connect(
            host="127.0.0.1",
            port=proxy.port,
            user="agent",
            password=token(subject),
            database="test",
        )
        try:
            async with conn.transaction():
                cursor = conn.cursor("SELECT g FROM generate_series(1, 3) AS g", prefetch=2)
                return [r["g"] async for r in cursor]
        finally:
            await conn.close()

    assert asyncio.run(main()) == [1, 2, 3]
    _, records = _session_of(proxy.store, subject)
    _, runs = _completions(records, "generate_series(?, ?) AS g")
    assert [(c["outcome"], c["rows"]) for c in runs] == [("suspended", 2), ("complete", 1)]


def test_a_log_that_cannot_record_completions_never_holds_up_a_session(
    tmp_path: Path, token: Callable[..., str]
) -> None:
    from .inprocess import running_proxy

    with running_proxy(tmp_path) as (server, _):
        log = server.log
        assert log is not None

        def broken(*_args: Any, **_kwargs: Any) -> bool:
            raise RuntimeError("the log is on fire")

        log.statement_completed = broken  # type: ignore[method-assign]
        log.session_opened = broken  # type: ignore[method-assign]
        log.session_closed = broken  # type: ignore[method-assign]
        dsn = f"host=127.0.0.1 port={server.config.listen[1]} dbname=test user=agent password={token('bot-broken')}"
        with psycopg.connect(dsn, autocommit=True) as conn:
            assert conn.execute("SELECT 41 + 1").fetchone() == (42,)
            with pytest.raises(psycopg.errors.DivisionByZero):
                conn.execute("SELECT 1/0")
            assert conn.execute("SELECT 2").fetchone() == (2,)


def test_an_error_at_bind_is_recorded_by_its_sqlstate_only(
    proxy: Proxy, token: Callable[..., str], subject: str
) -> None:
    bad = "zq-bind-literal-3307"
    with psycopg.connect(proxy.dsn(token(subject)), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InvalidTextRepresentation):
            conn.execute("SELECT %s::int AS n", (bad,))
        assert conn.execute("SELECT 5").fetchone() == (5,)
    _, records = _session_of(proxy.store, subject)
    _, failed = _completions(records, "AS n")
    assert [(c["outcome"], c["sqlstate"]) for c in failed] == [("error", "22P02")]
    assert bad.encode() not in _raw_store(proxy)
