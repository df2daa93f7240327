"""The DB-API adapter over sqlite3: each effect becomes its action, every paramstyle is
analysed as placeholders, and nothing reaches the driver before the gate decides."""

from __future__ import annotations

import sqlite3
import threading
import time
from typing import Any

import pytest

import subguard
from subguard.adapters import dbapi
from subguard.log import DecisionLog, Topic, read_records

from .conftest import TAGS


def guarded(raw: sqlite3.Connection, engine: subguard.Engine, **options: Any) -> dbapi.GuardedConnection:
    options.setdefault("session", "s1")
    return dbapi.guard(
        raw,
        engine,
        subject=subguard.Subject("ci-bot", groups={"agents"}),
        resource=subguard.Resource(name="shop", kind="sqlite"),
        tags=TAGS,
        **options,
    )


def decisions(log: DecisionLog) -> list[dict[str, Any]]:
    return [r.state for r in read_records(log.store, topics=[Topic.DECISION_RECORDED])]


def test_allowed_read_behaves_as_the_raw_connection(raw: sqlite3.Connection, engine: subguard.Engine) -> None:
    conn = guarded(raw, engine)
    cur = conn.cursor()
    assert cur.execute("SELECT id, total FROM orders WHERE id = ?", (10,)) is cur
    assert [d[0] for d in cur.description] == ["id", "total"]
    assert cur.fetchone() == (10, 25.5)
    assert cur.fetchone() is None
    cur.execute("SELECT id FROM orders ORDER BY id")
    assert cur.fetchmany(2) == [(10,), (11,)]
    assert list(cur) == [(12,), (13,)]
    assert conn.execute("SELECT count(*) FROM orders").fetchall() == [(4,)]
    cur.execute("UPDATE orders SET status = ? WHERE id = ?", ("paid", 11))
    assert cur.rowcount == 1
    conn.commit()
    assert raw.execute("SELECT status FROM orders WHERE id = 11").fetchone() == ("paid",)


def test_context_manager_commits_and_rolls_back(raw: sqlite3.Connection, engine: subguard.Engine) -> None:
    conn = guarded(raw, engine)
    with conn:
        conn.execute("INSERT INTO orders VALUES (?, ?, ?, ?)", (20, 1, 1.0, "open"))
    assert raw.execute("SELECT count(*) FROM orders WHERE id = 20").fetchone() == (1,)
    with pytest.raises(sqlite3.IntegrityError), conn:
        conn.execute("INSERT INTO orders VALUES (?, ?, ?, ?)", (21, 1, 1.0, "open"))
        conn.execute("INSERT INTO orders VALUES (?, ?, ?, ?)", (21, 1, 1.0, "open"))
    assert raw.execute("SELECT count(*) FROM orders WHERE id = 21").fetchone() == (0,)


def test_deny_refuses_and_leaves_the_connection_usable(raw: sqlite3.Connection, engine: subguard.Engine) -> None:
    conn = guarded(raw, engine)
    with pytest.raises(subguard.Denied) as caught:
        conn.execute("DROP TABLE orders")
    exc = caught.value
    assert isinstance(exc, sqlite3.DatabaseError) and isinstance(exc, subguard.Refused)
    assert exc.decision is not None and exc.decision.effect is subguard.Effect.DENY
    assert str(exc.decision.id) in str(exc) and "gate.test.deny" in str(exc)
    assert raw.execute("SELECT count(*) FROM orders").fetchone() == (4,)  # never reached the driver
    assert conn.execute("SELECT count(*) FROM orders").fetchone() == (4,)


def test_unbounded_delete_is_held_with_the_responders_command(raw: sqlite3.Connection, engine: subguard.Engine) -> None:
    conn = guarded(raw, engine)
    with pytest.raises(subguard.ApprovalRequired) as caught:
        conn.execute("DELETE FROM orders")
    exc = caught.value
    assert isinstance(exc, sqlite3.DatabaseError)
    assert exc.approval_id is not None
    assert f"subguard approve {exc.approval_id}" in str(exc)
    assert raw.execute("SELECT count(*) FROM orders").fetchone() == (4,)


def test_once_grant_runs_this_statement_once(raw: sqlite3.Connection, engine: subguard.Engine, log: DecisionLog) -> None:
    conn = guarded(raw, engine)
    with pytest.raises(subguard.ApprovalRequired) as caught:
        conn.execute("DELETE FROM payments")
    log.approve(caught.value.approval_id, by="alice")
    with pytest.raises(subguard.ApprovalRequired):
        conn.execute("DELETE FROM orders")  # another statement: not covered
    assert conn.execute("DELETE FROM payments").rowcount == 2
    with pytest.raises(subguard.ApprovalRequired):
        conn.execute("DELETE FROM payments")  # used up


def test_waiting_hold_runs_once_a_responder_grants(raw: sqlite3.Connection, engine: subguard.Engine, log: DecisionLog) -> None:
    conn = guarded(raw, engine, approval_timeout=10.0)

    def responder() -> None:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            pending = [a for a in log.approvals() if a.status == "pending"]
            if pending:
                log.approve(pending[0].id, by="alice")
                return
            time.sleep(0.02)

    thread = threading.Thread(target=responder)
    thread.start()
    started = time.monotonic()
    assert conn.execute("DELETE FROM payments").rowcount == 2
    thread.join()
    assert time.monotonic() - started < 5
    effects = [d["effect"] for d in decisions(log) if d["text"].startswith("DELETE")]
    assert effects == ["approve", "allow"]


def test_window_grant_covers_the_statements_shape(raw: sqlite3.Connection, engine: subguard.Engine, log: DecisionLog) -> None:
    conn = guarded(raw, engine)
    with pytest.raises(subguard.ApprovalRequired) as caught:
        conn.execute("UPDATE orders SET status = 'x'")
    log.approve(caught.value.approval_id, by="alice", window=60)
    conn.execute("UPDATE orders SET status = 'y'")
    conn.execute("UPDATE orders SET status = 'z'")
    assert {r[0] for r in raw.execute("SELECT status FROM orders")} == {"z"}


def test_refused_approval_refuses_with_the_reason(raw: sqlite3.Connection, engine: subguard.Engine, log: DecisionLog) -> None:
    conn = guarded(raw, engine, approval_timeout=5.0)

    def responder() -> None:
        for _ in range(250):
            pending = [a for a in log.approvals() if a.status == "pending"]
            if pending:
                log.reject(pending[0].id, by="alice", reason="not during business hours")
                return
            time.sleep(0.02)

    thread = threading.Thread(target=responder)
    thread.start()
    with pytest.raises(subguard.Denied) as caught:
        conn.execute("DELETE FROM orders")
    thread.join()
    assert "not during business hours" in str(caught.value)
    assert not conn.closed
    assert raw.execute("SELECT count(*) FROM orders").fetchone() == (4,)


def test_unanswered_wait_ends_held(raw: sqlite3.Connection, engine: subguard.Engine) -> None:
    conn = guarded(raw, engine, approval_timeout=0.3)
    started = time.monotonic()
    with pytest.raises(subguard.ApprovalRequired):
        conn.execute("DELETE FROM orders")
    assert 0.25 < time.monotonic() - started < 3


def test_terminate_closes_the_connection(raw: sqlite3.Connection, engine: subguard.Engine) -> None:
    conn = guarded(raw, engine)
    with pytest.raises(subguard.Terminated) as caught:
        conn.execute("SELECT value FROM secrets")
    assert isinstance(caught.value, sqlite3.DatabaseError)
    assert conn.closed
    with pytest.raises(sqlite3.ProgrammingError):
        raw.execute("SELECT 1")  # the raw connection is closed too
    with pytest.raises(subguard.Terminated):
        conn.execute("SELECT 1")
    with pytest.raises(subguard.Terminated):
        conn.cursor()
    with pytest.raises(subguard.Terminated):
        conn.commit()


def test_revocation_closes_an_idle_connection_within_a_second(raw: sqlite3.Connection, engine: subguard.Engine, log: DecisionLog) -> None:
    conn = guarded(raw, engine)
    cur = conn.execute("SELECT id FROM orders")
    log.revoke("ci-bot", reason="offboarded", by="sec")
    deadline = time.monotonic() + 1.0
    while not conn.closed and time.monotonic() < deadline:
        time.sleep(0.01)
    assert conn.closed
    with pytest.raises(sqlite3.ProgrammingError):
        raw.execute("SELECT 1")  # closed by the watcher, not on the next call
    with pytest.raises(subguard.Terminated) as caught:
        cur.fetchall()
    assert "offboarded" in str(caught.value)


def test_kill_closes_only_that_session(raw: sqlite3.Connection, engine: subguard.Engine, log: DecisionLog) -> None:
    other_raw = sqlite3.connect(":memory:", check_same_thread=False)
    other_raw.execute("CREATE TABLE t (x INTEGER)")
    conn = guarded(raw, engine, session="s1")
    other = guarded(other_raw, engine, session="s2")
    conn.execute("SELECT 1")
    other.execute("SELECT 1")
    log.kill("s1", reason="runaway job")
    deadline = time.monotonic() + 1.0
    while not conn.closed and time.monotonic() < deadline:
        time.sleep(0.01)
    assert conn.closed and not other.closed
    assert other.execute("SELECT count(*) FROM t").fetchone() == (0,)
    with pytest.raises(subguard.Terminated):
        conn.execute("SELECT 1")


def test_a_gate_opened_for_a_revoked_subject_is_closed(raw: sqlite3.Connection, engine: subguard.Engine, log: DecisionLog) -> None:
    log.revoke("ci-bot", reason="offboarded")
    conn = guarded(raw, engine)
    assert conn.closed
    with pytest.raises(subguard.Terminated):
        conn.execute("SELECT 1")


def test_a_connection_closed_from_another_thread_is_closed_by_its_owner(engine: subguard.Engine, log: DecisionLog) -> None:
    raw = sqlite3.connect(":memory:")  # check_same_thread: only this thread may close it
    conn = guarded(raw, engine)
    conn.execute("SELECT 1")
    log.revoke("ci-bot", reason="offboarded")
    deadline = time.monotonic() + 1.0
    while not conn.closed and time.monotonic() < deadline:
        time.sleep(0.01)
    assert conn.closed
    with pytest.raises(subguard.Terminated):
        conn.execute("SELECT 1")
    with pytest.raises(sqlite3.ProgrammingError):
        raw.execute("SELECT 1")


@pytest.mark.parametrize(
    ("sql", "params"),
    [
        ("SELECT id FROM orders WHERE total > ? AND status = ?", (1.0, "s3cr3t-qmark")),
        ("SELECT id FROM orders WHERE total > ?1 AND status = ?2", (1.0, "s3cr3t-qmark")),
        ("SELECT id FROM orders WHERE total > :1 AND status = :2", (1.0, "s3cr3t-qmark")),
        ("SELECT id FROM orders WHERE total > :t AND status = :s", {"t": 1.0, "s": "s3cr3t-qmark"}),
    ],
    ids=["qmark", "qmark-numbered", "numeric", "named"],
)
def test_every_paramstyle_is_analysed_as_placeholders(
    raw: sqlite3.Connection, engine: subguard.Engine, log: DecisionLog, sql: str, params: Any
) -> None:
    conn = guarded(raw, engine)
    assert conn.execute(sql, params).fetchall() == []
    recorded = decisions(log)
    assert [d["effect"] for d in recorded] == ["allow"]  # parsed: not unparseable
    assert recorded[0]["facts"]["tables_read"] == ["orders"]
    everything = repr([r.state for r in read_records(log.store)])
    assert "s3cr3t" not in everything


def test_executemany_decides_once(raw: sqlite3.Connection, engine: subguard.Engine, log: DecisionLog) -> None:
    conn = guarded(raw, engine)
    rows = [(30 + i, 1, float(i), f"secret-{i}") for i in range(5)]
    conn.executemany("INSERT INTO orders VALUES (?, ?, ?, ?)", rows)
    assert raw.execute("SELECT count(*) FROM orders").fetchone() == (9,)
    assert len(decisions(log)) == 1
    assert "secret-" not in repr([r.state for r in read_records(log.store)])


def test_executescript_is_decided_as_a_whole(raw: sqlite3.Connection, engine: subguard.Engine) -> None:
    conn = guarded(raw, engine)
    with pytest.raises(subguard.Denied):
        conn.executescript("UPDATE orders SET status = 'a' WHERE id = 10; DROP TABLE payments;")
    assert raw.execute("SELECT status FROM orders WHERE id = 10").fetchone() == ("paid",)
    conn.executescript("UPDATE orders SET status = 'a' WHERE id = 10; UPDATE orders SET status = 'b' WHERE id = 11;")
    assert raw.execute("SELECT status FROM orders WHERE id IN (10, 11) ORDER BY id").fetchall() == [("a",), ("b",)]


def test_other_cursor_factories_are_guarded_and_masked(raw: sqlite3.Connection, engine: subguard.Engine) -> None:
    class MyCursor(sqlite3.Cursor):
        pass

    conn = guarded(raw, engine)
    cur = conn.cursor(MyCursor)
    with pytest.raises(subguard.Denied):
        cur.execute("DROP TABLE users")
    assert cur.execute("SELECT email FROM users WHERE id = 1").fetchone() == ("****@example.com",)
    conn.row_factory = sqlite3.Row
    assert tuple(conn.execute("SELECT name, email FROM users WHERE id = 1").fetchone()) == ("Ann Lee", "****@example.com")


@pytest.mark.parametrize("name", ["iterdump", "backup", "blobopen", "serialize", "load_extension", "enable_load_extension", "deserialize"])
def test_raw_data_handles_are_not_exposed(raw: sqlite3.Connection, engine: subguard.Engine, name: str) -> None:
    conn = guarded(raw, engine)
    with pytest.raises(AttributeError):
        getattr(conn, name)
    assert conn.cursor().connection is conn  # a cursor leads back to the guarded connection


def test_schema_is_refreshed_after_ddl(raw: sqlite3.Connection, engine: subguard.Engine) -> None:
    conn = dbapi.guard(
        raw, engine, subject="ci-bot", resource={"name": "shop", "kind": "sqlite"}, session="s1",
        tags={**TAGS, "notes.body": ["mask:redact"]},
    )
    conn.execute("CREATE TABLE notes (id INTEGER, body TEXT)")
    conn.execute("INSERT INTO notes VALUES (1, 'private note')")
    assert conn.execute("SELECT * FROM notes").fetchall() == [(1, "****")]


def test_given_schema_is_used_as_is(raw: sqlite3.Connection, engine: subguard.Engine) -> None:
    schema = {"users": {"id": "integer", "name": "text", "email": {"type": "text", "tags": ["mask:redact"]}, "ssn": "text", "phone": "text", "birth_year": "integer"}}
    conn = dbapi.guard(raw, engine, subject="ci-bot", resource=subguard.Resource(name="shop", kind="sqlite", schema=schema), session="s1")
    assert conn.execute("SELECT email, ssn FROM users WHERE id = 2").fetchone() == ("****", "987-65-4321")


def test_statement_objects_and_bytes(raw: sqlite3.Connection, engine: subguard.Engine) -> None:
    conn = guarded(raw, engine)
    with pytest.raises(TypeError):
        conn.execute(42)
    with pytest.raises(subguard.Denied):
        conn.execute("SELEC nonsense FROM")  # unparseable is refused by the policy


def test_a_cursor_class_that_would_see_rows_unmasked_is_refused(raw: sqlite3.Connection, engine: subguard.Engine) -> None:
    seen: list[Any] = []

    class Leaky(sqlite3.Cursor):
        def fetchall(self) -> list[Any]:
            rows = super().fetchall()
            seen.extend(rows)
            return rows

    conn = guarded(raw, engine)
    with pytest.raises(TypeError):
        conn.cursor(Leaky)
    with pytest.raises(TypeError):
        conn.cursor(factory=Leaky)
    assert seen == []


@pytest.mark.parametrize("name", ["row_factory", "text_factory"])
def test_factories_that_would_see_values_unmasked_are_refused(raw: sqlite3.Connection, engine: subguard.Engine, name: str) -> None:
    seen: list[Any] = []
    conn = guarded(raw, engine)
    with pytest.raises(TypeError):
        setattr(conn, name, lambda *values: seen.append(values) or values[-1])
    assert conn.execute("SELECT email FROM users WHERE id = 1").fetchall() == [("****@example.com",)]
    assert seen == []
    raw.row_factory = lambda cur, row: row
    with pytest.raises(TypeError):
        guarded(raw, engine)  # a raw connection already carrying one is refused too


def test_a_registered_function_never_sees_tagged_values(raw: sqlite3.Connection, engine: subguard.Engine) -> None:
    seen: list[Any] = []
    conn = guarded(raw, engine)
    conn.create_function("leak", 1, lambda v: seen.append(v) or 1)
    with pytest.raises(subguard.Denied):
        conn.execute("SELECT id FROM users WHERE leak(email) = 1")
    with pytest.raises(subguard.Denied):
        conn.execute("SELECT leak(ssn) FROM users")
    assert conn.execute("SELECT leak(status) FROM orders WHERE id = 10").fetchall() == [(1,)]  # untagged
    assert seen == ["paid"]


@pytest.mark.parametrize("name", ["create_collation", "adapters", "cursor_factory"])
def test_callbacks_on_values_are_not_exposed(raw: sqlite3.Connection, engine: subguard.Engine, name: str) -> None:
    conn = guarded(raw, engine)
    with pytest.raises(AttributeError):
        getattr(conn, name)


def test_the_log_follower_stops_once_no_gate_is_left(raw: sqlite3.Connection, policy: subguard.Policy) -> None:
    """One watcher per log, shared by its gates, stopped once none is left (closed or
    dropped). Tracked by the log's own watcher thread: other tests' watchers may still
    be winding down, so a count of every watcher thread would race with them."""
    import gc

    from subguard.adapters._gate import _Watcher

    with __import__("subguard.log", fromlist=["open_log"]).open_log("memory://", follow=False) as log:
        engine = subguard.Engine(policy, log=log)
        first = guarded(raw, engine, session="a")
        watcher = _Watcher._by_log[log]
        second = guarded(raw, engine, session="b")
        assert _Watcher._by_log[log] is watcher and watcher.thread.is_alive()  # shared
        assert {g.session for g in watcher.gates} == {"a", "b"}
        first.close()
        assert watcher.thread.is_alive()
        del second  # dropped without close
        gc.collect()
        watcher.thread.join(timeout=2)
        assert not watcher.thread.is_alive()
        assert log not in _Watcher._by_log
