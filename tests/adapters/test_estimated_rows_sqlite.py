"""`estimated_rows` over sqlite3: a bounded count of the write's WHERE, computed only when
a rule reads it, never calling code the application registered, never running the write,
leaving the caller's transaction as it was."""

from __future__ import annotations

import logging
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import subguard
from subguard.adapters import dbapi
from subguard.adapters._estimate import Estimator
from subguard.engine.policy import policy_from_sources
from subguard.log import DecisionLog

RULES = Path(__file__).resolve().parents[2] / "rules"
AGENT = subguard.Subject("ci-bot", groups={"agents"})

#: A policy that reads the estimate and refuses every DELETE: a write judged by it never
#: runs, so anything that happens to the data happened while estimating.
DENY_DELETES = """package t

deny contains "no deletes" if {
    some s in input.sql.statements
    s.kind == "delete"
}

approve contains "big" if {
    some s in input.sql.statements
    s.estimated_rows > 10
}

default allow := true
"""


@pytest.fixture(scope="module")
def bundled() -> subguard.Policy:
    return subguard.load_policy(RULES, data={"unbounded_writes": {"max_rows": 50}})


@pytest.fixture
def raw() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, qty INTEGER)")
    conn.execute("CREATE TABLE tags (item_id INTEGER, tag TEXT)")
    conn.executemany("INSERT INTO items VALUES (?, ?, ?)", [(i, f"item{i}", i % 7) for i in range(1, 201)])
    conn.executemany("INSERT INTO tags VALUES (?, ?)", [(i, "hot" if i % 2 else "cold") for i in range(1, 201)])
    conn.commit()
    yield conn
    conn.close()


def _guard(raw: Any, policy: subguard.Policy, log: DecisionLog | None = None, **kwargs: Any) -> dbapi.GuardedConnection:
    engine = subguard.Engine(policy, log=log)
    return dbapi.guard(raw, engine, subject=AGENT, resource={"name": "shop", "kind": "sqlite"}, session="est-1", **kwargs)


def _count(raw: sqlite3.Connection, table: str = "items") -> int:
    row = raw.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0])


def test_a_write_estimated_above_max_rows_is_held_below_runs(raw: sqlite3.Connection, bundled: subguard.Policy, log: DecisionLog) -> None:
    conn = _guard(raw, bundled, log)
    cur = conn.cursor()
    with pytest.raises(subguard.ApprovalRequired) as held:
        cur.execute("UPDATE items SET qty = ? WHERE id BETWEEN ? AND ?", (0, 1, 120))
    assert held.value.decision.reasons[0].rule == "approve"
    statement = held.value.decision.input["sql"]["statements"][0]
    assert statement["estimated_rows"] == 120
    assert isinstance(held.value, sqlite3.DatabaseError)
    assert _count(raw) == 200 and raw.execute("SELECT count(*) FROM items WHERE qty = 0").fetchone()[0] == 28

    cur.execute("UPDATE items SET qty = ? WHERE id BETWEEN ? AND ?", (0, 1, 50))  # 50: not above 50
    assert cur.rowcount == 50
    cur.execute("DELETE FROM items WHERE id BETWEEN :lo AND :hi", {"lo": 1, "hi": 10})  # named style
    assert cur.rowcount == 10
    with pytest.raises(subguard.ApprovalRequired):
        cur.execute("DELETE FROM items WHERE id BETWEEN :lo AND :hi", {"lo": 11, "hi": 200})
    assert _count(raw) == 190


def test_the_estimate_counts_with_the_where_parameters_only(raw: sqlite3.Connection, bundled: subguard.Policy) -> None:
    # placeholders in SET come before the WHERE's: the count binds the WHERE's slice
    conn = _guard(raw, bundled)
    est: Estimator = conn._estimator
    text = "UPDATE items SET name = ?, qty = ? WHERE qty = ? AND id > ? AND id < ?"
    assert est.rows(text, ("x", 1, 3, 0, 1000)) == sum(1 for i in range(1, 201) if i % 7 == 3)
    # a subquery in the WHERE reads another base table
    assert est.rows("DELETE FROM items WHERE id IN (SELECT item_id FROM tags WHERE tag = ?)", ("hot",)) == 100


def test_the_count_is_bounded(raw: sqlite3.Connection, bundled: subguard.Policy) -> None:
    conn = _guard(raw, bundled, estimate_bound=30)
    assert conn._estimator.rows("DELETE FROM items WHERE id > ? AND id < ?", (0, 1000)) == 31
    assert conn._estimator.rows("DELETE FROM items", None) == 31


def test_not_computed_when_no_rule_reads_it(raw: sqlite3.Connection, policy: subguard.Policy) -> None:
    # `policy` (the adapters' fixture) has rules on writes but none reads `estimated_rows`
    assert not policy.reads("input.sql.statements[i].estimated_rows")
    conn = _guard(raw, policy)
    traced: list[str] = []
    raw.set_trace_callback(traced.append)
    conn.cursor().execute("UPDATE items SET qty = ? WHERE id = ?", (1, 2))
    assert not conn.gate.wants_estimate
    assert conn._estimator.runs == 0
    assert not any("count" in t.lower() for t in traced)
    assert traced == ["BEGIN ", "UPDATE items SET qty = 1 WHERE id = 2"]


def test_computed_when_a_rule_reads_it(raw: sqlite3.Connection, bundled: subguard.Policy) -> None:
    conn = _guard(raw, bundled)
    conn.cursor().execute("UPDATE items SET qty = ? WHERE id = ?", (1, 2))
    assert conn.gate.wants_estimate and conn._estimator.runs == 1
    conn.cursor().execute("SELECT * FROM items WHERE id = ?", (2,))  # reads are never estimated
    conn.cursor().execute("INSERT INTO tags VALUES (?, ?)", (1, "x"))
    assert conn._estimator.runs == 1


#: sqlite3's `autocommit` attribute (Python 3.12+), where the running Python has it.
_MODES = [None, True, False] if sys.version_info >= (3, 12) else [None]


@pytest.mark.parametrize("autocommit", _MODES)
def test_the_callers_transaction_state_is_unchanged(bundled: subguard.Policy, autocommit: bool | None) -> None:
    kwargs: dict[str, Any] = {} if autocommit is None else {"autocommit": autocommit}
    raw = sqlite3.connect(":memory:", **kwargs)
    raw.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, qty INTEGER)")
    raw.executemany("INSERT INTO items VALUES (?, ?)", [(i, 0) for i in range(100)])
    raw.commit()
    conn = _guard(raw, bundled)
    before = (raw.in_transaction, raw.total_changes)
    with pytest.raises(subguard.ApprovalRequired):
        conn.cursor().execute("DELETE FROM items WHERE id >= ? AND id < ?", (0, 100))
    assert (raw.in_transaction, raw.total_changes) == before
    # inside the caller's own transaction: still open, its change still there
    conn.cursor().execute("UPDATE items SET qty = ? WHERE id = ?", (5, 1))
    during = (raw.in_transaction, raw.total_changes)
    with pytest.raises(subguard.ApprovalRequired):
        conn.cursor().execute("DELETE FROM items WHERE id >= ? AND id < ?", (0, 100))
    assert (raw.in_transaction, raw.total_changes) == during
    assert raw.execute("SELECT qty FROM items WHERE id = 1").fetchone() == (5,)
    raw.close()


class _Spy:
    """A side-effecting function the agent hopes the estimate will call."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, *args: Any) -> int:
        self.calls += 1
        return 1


def test_a_registered_function_in_the_where_is_never_called(raw: sqlite3.Connection) -> None:
    spy = _Spy()
    conn = _guard(raw, policy_from_sources([("t.guard", DENY_DELETES)]))
    conn.create_function("side", 1, spy)
    traced: list[str] = []
    raw.set_trace_callback(traced.append)
    with pytest.raises(subguard.Denied):
        conn.cursor().execute("DELETE FROM items WHERE id > ? AND side(id)", (0,))
    assert spy.calls == 0 and conn._estimator.runs == 0 and traced == []
    assert _count(raw) == 200


@pytest.mark.parametrize(
    "name, arity, where",
    [
        ("lower", 1, "lower(name) = 'item1'"),  # a builtin's name, shadowed by the application
        ("like", 2, "name LIKE 'item%'"),  # LIKE runs the function `like`
        ("glob", 2, "name GLOB 'item*'"),
        ("regexp", 2, "name REGEXP 'item'"),
    ],
)
def test_a_shadowed_builtin_or_operator_is_never_called(raw: sqlite3.Connection, name: str, arity: int, where: str) -> None:
    spy = _Spy()
    conn = _guard(raw, policy_from_sources([("t.guard", DENY_DELETES)]))
    conn.create_function(name, arity, spy)
    with pytest.raises(subguard.Denied):
        conn.cursor().execute(f"DELETE FROM items WHERE {where}")
    assert spy.calls == 0 and conn._estimator.runs == 0


def test_a_view_target_or_a_view_in_the_where_is_not_counted(raw: sqlite3.Connection) -> None:
    spy = _Spy()
    raw.create_function("side", 1, spy)  # registered on the raw connection, before guarding
    raw.execute("CREATE VIEW busy AS SELECT id, side(id) AS s FROM items")
    conn = _guard(raw, policy_from_sources([("t.guard", DENY_DELETES)]))
    est: Estimator = conn._estimator
    assert est.rows("DELETE FROM busy WHERE id = ?", (1,)) is None
    assert est.rows("DELETE FROM items WHERE id IN (SELECT id FROM busy WHERE s = ?)", (1,)) is None
    assert spy.calls == 0


@pytest.mark.parametrize(
    "text",
    [
        "WITH d AS (SELECT 1) DELETE FROM items WHERE id IN (SELECT * FROM d)",
        "UPDATE items SET qty = 1 FROM tags WHERE tags.item_id = items.id",
        "DELETE FROM items WHERE id = 1; DELETE FROM tags",
        "DELETE FROM items WHERE id = ?1",
        "DELETE FROM items WHERE id = @x",
        "DELETE FROM items WHERE name = ? COLLATE mine",
        "DELETE FROM items WHERE id IN (SELECT value FROM json_each(?))",
        "INSERT INTO items VALUES (1000, 'x', 1)",
        "SELECT * FROM items",
    ],
)
def test_what_cannot_be_counted_soundly_is_null(raw: sqlite3.Connection, bundled: subguard.Policy, text: str) -> None:
    conn = _guard(raw, bundled)
    params: Any = {"x": 1} if "@x" in text else ((1,) if "?" in text else None)
    assert conn._estimator.rows(text, params) is None
    assert _count(raw) == 200 and _count(raw, "tags") == 200


def test_executemany_sums_every_set_and_runs_them_all(raw: sqlite3.Connection, bundled: subguard.Policy) -> None:
    conn = _guard(raw, bundled)
    sets = iter([(1, 20), (21, 40), (41, 60)])  # one pass only: read once by the wrapper
    with pytest.raises(subguard.ApprovalRequired) as held:
        conn.cursor().executemany("DELETE FROM items WHERE id BETWEEN ? AND ?", sets)
    assert held.value.decision.input["sql"]["statements"][0]["estimated_rows"] == 60
    conn.cursor().executemany("DELETE FROM items WHERE id BETWEEN ? AND ?", (x for x in [(1, 20), (21, 40)]))
    assert _count(raw) == 160


def test_a_failed_estimate_is_null_and_logged_without_parameters(
    raw: sqlite3.Connection, bundled: subguard.Policy, caplog: pytest.LogCaptureFixture
) -> None:
    conn = _guard(raw, bundled)
    caplog.set_level(logging.DEBUG, logger="subguard.adapters")
    # a type the driver cannot bind: the count fails, the estimate is null, the write
    # is decided on the other rules (bounded: allowed) and the driver refuses it itself
    secret = object()
    with pytest.raises(sqlite3.ProgrammingError):
        conn.cursor().execute("UPDATE items SET qty = 1 WHERE id = ?", (secret,))
    failed = [r for r in caplog.records if "estimate failed" in r.getMessage()]
    assert failed and failed[0].levelno == logging.DEBUG
    assert "ProgrammingError" in failed[0].getMessage()
    conn.cursor().execute("UPDATE items SET qty = ? WHERE name = ?", (1, "s3cr3t-value"))
    assert "s3cr3t-value" not in caplog.text


_SAFE_WHERE = st.sampled_from(["id > ?", "id < ?", "qty = ?", "lower(name) = ?", "abs(qty - ?) < 2", "id IN (SELECT item_id FROM tags WHERE tag = 'hot') AND id > ?"])
_UNSAFE_WHERE = st.sampled_from(["side(id) > ?", "name LIKE 'item' || ?", "id > side(?)", "coalesce(side(qty), ?) = 1"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.one_of(_SAFE_WHERE, _UNSAFE_WHERE), st.integers(-5, 250)), min_size=1, max_size=3),
    st.sampled_from(["AND", "OR"]),
    st.booleans(),
)
def test_the_estimate_never_runs_code_and_counts_what_the_write_would_touch(
    raw: sqlite3.Connection, parts: list[tuple[str, int]], joiner: str, update: bool
) -> None:
    spy = _Spy()
    conn = _guard(raw, policy_from_sources([("t.guard", DENY_DELETES)]), estimate_bound=1000)
    raw.create_function("side", 1, spy)  # on the raw connection: the wrapper cannot know it
    where = f" {joiner} ".join(p for p, _ in parts)
    params = [v for _, v in parts]
    text = f"UPDATE items SET qty = ? WHERE {where}" if update else f"DELETE FROM items WHERE {where}"
    bound = [7, *params] if update else params
    before = (raw.in_transaction, raw.total_changes)
    estimate = conn._estimator.rows(text, tuple(bound))
    assert spy.calls == 0
    assert (raw.in_transaction, raw.total_changes) == before
    if any(p in where for p in ("side(", "LIKE")):
        assert estimate is None
        return
    # sound: exactly the rows the write touches (run it in a savepoint, then undo it)
    raw.execute("SAVEPOINT probe")
    touched = raw.execute(text, tuple(bound)).rowcount
    raw.execute("ROLLBACK TO probe")
    raw.execute("RELEASE probe")
    assert estimate == touched


def test_the_gate_takes_an_estimate_from_any_adapter(bundled: subguard.Policy, log: DecisionLog) -> None:
    # what an adapter over another protocol (the wire proxy) does: ask the gate whether a
    # rule reads the estimate, compute it upstream, hand it over on the request
    from subguard.adapters import Gate

    gate = Gate(subguard.Engine(bundled, log=log), subject=AGENT, resource={"name": "shop", "kind": "postgres"}, session="proxy-1")
    assert gate.wants_estimate
    with pytest.raises(subguard.ApprovalRequired) as held:
        gate.decide(subguard.SqlRequest("DELETE FROM t WHERE id BETWEEN $1 AND $2", estimated_rows=51))
    assert held.value.approval_id is not None
    assert gate.decide(subguard.SqlRequest("DELETE FROM t WHERE id BETWEEN $1 AND $2", estimated_rows=50)).effect is subguard.Effect.ALLOW
