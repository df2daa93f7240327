"""`estimated_rows` over psycopg 3 and the PostgreSQL server: EXPLAIN (FORMAT JSON) of the
write with its parameters, never running it, leaving the caller's transaction (and
autocommit) exactly as it was."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import subguard
from subguard.adapters import dbapi
from subguard.adapters._estimate import Estimator, plan_rows
from subguard.engine.policy import policy_from_sources
from subguard.log import DecisionLog

from .conftest import PG_DSN, postgres_or_skip

pytestmark = pytest.mark.postgres

psycopg = pytest.importorskip("psycopg")

RULES = Path(__file__).resolve().parents[2] / "rules"
AGENT = subguard.Subject("ci-bot", groups={"agents"})

DENY_DELETES = """package t

deny contains "no deletes" if {
    some s in input.sql.statements
    s.kind == "delete"
}

approve contains "big" if {
    some s in input.sql.statements
    s.estimated_rows > 100000
}

default allow := true
"""


@pytest.fixture
def schema() -> Iterator[str]:
    postgres_or_skip()
    name = "sgest_" + uuid.uuid4().hex[:10]
    with psycopg.connect(PG_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{name}"')
        admin.execute(f'SET search_path = "{name}"')
        admin.execute("CREATE TABLE big (id integer PRIMARY KEY, v text)")
        admin.execute("INSERT INTO big SELECT g, 'v' || g FROM generate_series(1, 5000) g")
        admin.execute("CREATE TABLE audit (n integer)")
        admin.execute("ANALYZE big")
        # a side-effecting function an agent hopes the estimate will run
        admin.execute(
            "CREATE FUNCTION touch(x integer) RETURNS boolean LANGUAGE plpgsql VOLATILE AS "
            "$$ BEGIN INSERT INTO audit VALUES (x); RETURN true; END $$"
        )
    try:
        yield name
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def _raw(schema: str, *, autocommit: bool = False) -> Any:
    return psycopg.connect(PG_DSN, autocommit=autocommit, options=f"-c search_path={schema}")


def _guard(raw: Any, policy: subguard.Policy, log: DecisionLog | None = None) -> dbapi.GuardedConnection:
    return dbapi.guard(
        raw, subguard.Engine(policy, log=log), subject=AGENT, resource={"name": "shop", "kind": "postgres"}, session="pg-est"
    )


@pytest.fixture(scope="module")
def bundled() -> subguard.Policy:
    return subguard.load_policy(RULES, data={"unbounded_writes": {"max_rows": 1000}})


def _rows(raw: Any, sql: str) -> Any:
    with raw.cursor() as cur:
        cur.execute(sql)
        return cur.fetchone()[0]


@pytest.mark.parametrize("style", ["format", "pyformat"])
def test_a_write_estimated_above_max_rows_is_held_below_runs(
    schema: str, bundled: subguard.Policy, log: DecisionLog, style: str
) -> None:
    raw = _raw(schema)
    conn = _guard(raw, bundled, log)
    cur = conn.cursor()
    big = ("UPDATE big SET v = %s WHERE id BETWEEN %s AND %s", ("x", 1, 4000))
    small = ("UPDATE big SET v = %s WHERE id BETWEEN %s AND %s", ("x", 1, 3))
    if style == "pyformat":
        big = ("UPDATE big SET v = %(v)s WHERE id BETWEEN %(lo)s AND %(hi)s", {"v": "x", "lo": 1, "hi": 4000})  # type: ignore[assignment]
        small = ("UPDATE big SET v = %(v)s WHERE id BETWEEN %(lo)s AND %(hi)s", {"v": "x", "lo": 1, "hi": 3})  # type: ignore[assignment]
    with pytest.raises(subguard.ApprovalRequired) as held:
        cur.execute(*big)
    estimate = held.value.decision.input["sql"]["statements"][0]["estimated_rows"]
    assert 1000 < estimate <= 5000
    assert isinstance(held.value, psycopg.DatabaseError)
    assert _rows(raw, "SELECT count(*) FROM big WHERE v = 'x'") == 0
    cur.execute(*small)
    assert cur.rowcount == 3
    raw.rollback()
    raw.close()


@pytest.mark.parametrize("autocommit", [True, False], ids=["autocommit", "transactional"])
def test_the_callers_transaction_state_is_unchanged(schema: str, bundled: subguard.Policy, autocommit: bool) -> None:
    from psycopg.pq import TransactionStatus

    raw = _raw(schema, autocommit=autocommit)
    conn = _guard(raw, bundled)
    assert raw.info.transaction_status == TransactionStatus.IDLE
    with pytest.raises(subguard.ApprovalRequired):
        conn.cursor().execute("DELETE FROM big WHERE id > %s AND id < %s", (0, 5000))
    assert raw.info.transaction_status == TransactionStatus.IDLE and raw.autocommit is autocommit
    if not autocommit:
        # inside the caller's open transaction: a savepoint, rolled back; the caller's
        # own uncommitted change stays, and so does the transaction
        conn.cursor().execute("UPDATE big SET v = %s WHERE id = %s", ("mine", 7))
        assert raw.info.transaction_status == TransactionStatus.INTRANS
        with pytest.raises(subguard.ApprovalRequired):
            conn.cursor().execute("DELETE FROM big WHERE id > %s AND id < %s", (0, 5000))
        assert raw.info.transaction_status == TransactionStatus.INTRANS
        assert _rows(raw, "SELECT v FROM big WHERE id = 7") == "mine"
        raw.rollback()
    assert _rows(raw, "SELECT count(*) FROM big") == 5000
    raw.close()


def test_a_side_effecting_function_in_the_where_is_planned_not_run(schema: str) -> None:
    raw = _raw(schema, autocommit=True)
    conn = _guard(raw, policy_from_sources([("t.guard", DENY_DELETES)]))
    with pytest.raises(subguard.Denied):
        conn.cursor().execute("DELETE FROM big WHERE id > %s AND touch(id)", (0,))
    assert conn._estimator.runs == 1
    assert _rows(raw, "SELECT count(*) FROM audit") == 0
    assert _rows(raw, "SELECT count(*) FROM big") == 5000
    raw.close()


def test_a_data_modifying_cte_is_not_estimated(schema: str) -> None:
    raw = _raw(schema, autocommit=True)
    conn = _guard(raw, policy_from_sources([("t.guard", DENY_DELETES)]))
    with pytest.raises(subguard.Denied):
        conn.cursor().execute("WITH d AS (DELETE FROM big WHERE id < %s RETURNING id) UPDATE big SET v = 'y' WHERE id IN (SELECT id FROM d)", (100,))
    assert conn._estimator.runs == 0
    assert _rows(raw, "SELECT count(*) FROM big") == 5000
    raw.close()


def test_a_second_statement_never_reaches_the_server(schema: str) -> None:
    # Were the analysis ever to read two statements as one, the extended protocol still
    # refuses to run the second: the estimate fails (null), nothing is deleted.
    raw = _raw(schema, autocommit=True)
    est = Estimator(raw, "postgres", bound=10)
    with pytest.raises(psycopg.errors.SyntaxError):
        est._explain("UPDATE big SET v = 'z' WHERE id = 1; DELETE FROM big", None)
    assert _rows(raw, "SELECT count(*) FROM big") == 5000
    assert raw.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    raw.close()


def test_not_computed_when_no_rule_reads_it(schema: str, policy: subguard.Policy) -> None:
    raw = _raw(schema, autocommit=True)
    conn = _guard(raw, policy)
    conn.cursor().execute("UPDATE big SET v = %s WHERE id = %s", ("w", 1))
    assert not conn.gate.wants_estimate and conn._estimator.runs == 0
    raw.close()


def test_merge_is_estimated(schema: str) -> None:
    raw = _raw(schema, autocommit=True)
    if raw.info.server_version < 150000:
        raw.close()
        pytest.skip("MERGE needs PostgreSQL 15")
    est = Estimator(raw, "postgres", bound=10)
    text = "MERGE INTO big b USING (SELECT g AS id FROM generate_series(1, 300) g) s ON b.id = s.id WHEN MATCHED THEN UPDATE SET v = 'm'"
    assert est.rows(text, None) is not None
    assert _rows(raw, "SELECT count(*) FROM big WHERE v = 'm'") == 0
    raw.close()


def test_plan_rows_reads_the_node_feeding_modify_table() -> None:
    plan = [{"Plan": {"Node Type": "ModifyTable", "Plan Rows": 0, "Plans": [
        {"Node Type": "Result", "Parent Relationship": "InitPlan", "Plan Rows": 1},
        {"Node Type": "Seq Scan", "Parent Relationship": "Outer", "Plan Rows": 423},
    ]}}]
    assert plan_rows(plan) == 423
    assert plan_rows([{"Plan": {"Node Type": "Seq Scan", "Plan Rows": 9}}]) is None
    assert plan_rows([]) is None and plan_rows("not json") is None
