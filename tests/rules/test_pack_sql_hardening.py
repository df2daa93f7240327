"""The SQL packs against an adversarial agent: metamorphic properties and no false refusals.

- A refused statement stays refused when wrapped in a CTE, commented, re-cased, quoted,
  surrounded by other statements, or moved into a function body or literal dynamic SQL.
- A masked column stays masked through aliases, expressions, subqueries, CTEs, set
  operations and whole-row references.
- Every TPC-H and TPC-DS query, and an everyday agent corpus, is allowed or masked.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from subguard.engine import Engine, load_policy
from subguard.engine.types import Resource, SqlRequest, Subject
from subguard.testing import policy_files

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "corpora" / "sqlglot"
EXAMPLES = settings(max_examples=40, deadline=None)

SCHEMA = {
    "users": {
        "id": "int", "name": "text", "email": {"type": "text", "tags": ["pii"]},
        "ssn": {"type": "text", "tags": ["pii"]}, "active": "boolean", "last_seen": "date",
    },
    "orders": {"id": "int", "user_id": "int", "total": "numeric", "created": "date"},
}  # fmt: skip

AGENT = Subject("ci-bot", ["agents"])
DBA = Subject("ana", ["dba"])
REFUSED = ("deny", "terminate", "approve")


@pytest.fixture(scope="module")
def packs() -> Engine:
    return Engine(load_policy(policy_files(ROOT / "rules")))


def _effect(packs: Engine, sql: str, subject: Subject = DBA, kind: str = "postgres") -> str:
    decision = packs.check(
        SqlRequest(sql), subject=subject, resource=Resource(kind=kind, schema=SCHEMA)
    )
    return str(decision.effect.value)


# -- refused statements stay refused ---------------------------------------------------

#: Statements the packs refuse for a DBA (so that a function wrapper, which the posture
#: pack holds for agents, does not make the property trivial).
REFUSED_DML = [
    "DELETE FROM users WHERE id = id",
    "DELETE FROM users WHERE id IS NOT NULL",
    "UPDATE users SET active = false WHERE id < 10 OR id >= 10",
    "DELETE FROM users WHERE id IN (SELECT user_id FROM orders)",
    "UPDATE users SET name = 'x' WHERE total IS NULL OR total IS NOT NULL",
]
REFUSED_OTHER = [
    "DROP TABLE users",
    "TRUNCATE orders",
    "ALTER TABLE users DROP COLUMN ssn",
    "GRANT ALL ON users TO agent",
    "ALTER GROUP admins ADD USER agent",
    "SET SESSION AUTHORIZATION postgres",
    "SELECT set_config('role', 'postgres', false)",
    "SELECT pg_read_file('/etc/passwd')",
    "SELECT dblink_connect_u('host=evil')",
    "SET log_statement = 'none'",
    "ALTER TABLE users OWNER TO agent",
]

_WORD = re.compile(r"[A-Za-z_]+")


def _recase(sql: str, flips: list[bool]) -> str:
    """Flip the case of words outside string literals (keywords and unquoted names)."""
    parts = re.split(r"('(?:[^']|'')*')", sql)
    out = []
    k = 0
    for i, part in enumerate(parts):
        if i % 2:
            out.append(part)
            continue
        def swap(m: re.Match[str]) -> str:
            nonlocal k
            flip = flips[k % len(flips)] if flips else False
            k += 1
            return m.group(0).upper() if flip else m.group(0).lower()
        out.append(_WORD.sub(swap, part))
    return "".join(out)


def _comment(sql: str, at: int) -> str:
    spaces = [m.start() for m in re.finditer(" ", sql.split("'")[0])]
    if not spaces:
        return "/* x */ " + sql
    pos = spaces[at % len(spaces)]
    return sql[:pos] + " /* ; DROP nothing */ " + sql[pos + 1 :]


def _quote_tables(sql: str) -> str:
    return re.sub(r"\b(users|orders)\b", r'"\1"', sql)


def _escape(sql: str) -> str:
    return sql.replace("'", "''")


WRAPPERS = [
    ("comment", lambda s, n, f: _comment(s, n)),
    ("recase", lambda s, n, f: _recase(s, f)),
    ("quote", lambda s, n, f: _quote_tables(s)),
    ("before", lambda s, n, f: "SELECT 1; " + s),
    ("after", lambda s, n, f: s + "; SELECT 1"),
    ("explain_analyze", lambda s, n, f: "EXPLAIN ANALYZE " + s),
    ("execute_literal", lambda s, n, f: f"EXECUTE '{_escape(s)}'"),
    ("format_execute", lambda s, n, f: f"DO $$ BEGIN EXECUTE format('{_escape(s)}'); END $$"),
    ("plpgsql_body", lambda s, n, f: f"CREATE FUNCTION f() RETURNS void LANGUAGE plpgsql AS $$ BEGIN {s}; END $$"),
    ("sql_body", lambda s, n, f: f"CREATE FUNCTION f() RETURNS void LANGUAGE sql AS $$ {s} $$"),
    ("atomic_body", lambda s, n, f: f"CREATE PROCEDURE p() LANGUAGE sql BEGIN ATOMIC {s}; END"),
    ("prepare", lambda s, n, f: f"PREPARE p AS {s}"),
]  # fmt: skip

DML_WRAPPERS = [
    ("cte", lambda s, n, f: f"WITH x AS ({s} RETURNING 1) SELECT count(*) FROM x"),
]


@EXAMPLES
@given(
    st.sampled_from(REFUSED_DML + REFUSED_OTHER),
    st.lists(st.sampled_from(WRAPPERS), min_size=1, max_size=3),
    st.integers(min_value=0, max_value=50),
    st.lists(st.booleans(), min_size=1, max_size=8),
)
def test_a_refused_statement_stays_refused(packs: Engine, sql, wrappers, n, flips) -> None:  # type: ignore[no-untyped-def]
    assert _effect(packs, sql) in REFUSED, sql
    wrapped = sql
    for _, wrap in wrappers:
        wrapped = wrap(wrapped, n, flips)
    assert _effect(packs, wrapped) in REFUSED, wrapped


@EXAMPLES
@given(
    st.sampled_from(REFUSED_DML),
    st.lists(st.sampled_from(WRAPPERS[:5] + DML_WRAPPERS), min_size=1, max_size=3),
    st.integers(min_value=0, max_value=50),
    st.lists(st.booleans(), min_size=1, max_size=8),
)
def test_a_refused_write_stays_refused_in_a_cte(packs: Engine, sql, wrappers, n, flips) -> None:  # type: ignore[no-untyped-def]
    wrapped = sql
    for _, wrap in wrappers:
        wrapped = wrap(wrapped, n, flips)
    assert _effect(packs, wrapped) in REFUSED, wrapped


# -- masked columns stay masked ---------------------------------------------------------

#: Ways to return `ssn` (as `{e}` an expression over a users row aliased `u`).
MASK_FORMS = [
    "SELECT {e} FROM users u WHERE u.id = 1",
    "SELECT {e} AS x FROM users u",
    "SELECT x FROM (SELECT {e} AS x FROM users u) t",
    "WITH t AS (SELECT {e} AS x FROM users u) SELECT x FROM t",
    "SELECT name FROM users UNION ALL SELECT {e} FROM users u",
    "SELECT (SELECT {e} FROM users u LIMIT 1)",
    "SELECT o.id, (SELECT {e} FROM users u WHERE u.id = o.user_id) FROM orders o",
    "SELECT * FROM (SELECT {e} FROM users u) AS t (renamed)",
    "WITH a AS (SELECT * FROM users), b AS (SELECT * FROM a u) SELECT {e} FROM b u",
]
MASK_EXPRESSIONS = [
    "u.ssn", "upper(u.ssn)", "u.ssn || ''", "coalesce(u.ssn, 'none')", "row_to_json(u)",
    "to_jsonb(u)", "u::text", "format('%s', u)", "(u).ssn", "json_agg(u.*)", "u",
    "substr(u.ssn, 1, 3)", "CASE WHEN u.id > 0 THEN u.ssn END", "md5(u.ssn)",
]  # fmt: skip


@EXAMPLES
@given(st.sampled_from(MASK_FORMS), st.sampled_from(MASK_EXPRESSIONS), st.lists(st.booleans(), min_size=1, max_size=6))
def test_a_masked_column_stays_masked(packs: Engine, form: str, expression: str, flips: list[bool]) -> None:
    sql = _recase(form.format(e=expression), flips)
    decision = packs.check(
        SqlRequest(sql), subject=Subject("ana", ["analysts"]), resource=Resource(kind="postgres", schema=SCHEMA)
    )
    assert decision.effect.value in ("mask", "deny"), sql
    if decision.effect.value == "mask":
        assert "users.ssn" in decision.masks, sql


# -- no false refusals --------------------------------------------------------------------


def _tpc(name: str) -> list[str]:
    text = (CORPUS / name).read_text()
    chunks = [c for c in re.split(r";\s*\n", text) if c.strip()]
    cleaned = ["\n".join(ln for ln in c.splitlines() if not ln.startswith("#")) for c in chunks]
    return cleaned[0::2]


@pytest.mark.parametrize(("name", "key"), [("tpc-h.sql", "tpch"), ("tpc-ds.sql", "tpcds")])
def test_tpc_queries_are_allowed_or_masked_for_agents(packs: Engine, name: str, key: str) -> None:
    schema = json.loads((CORPUS / "schemas.json").read_text())[key]
    refused = []
    queries = _tpc(name)
    assert len(queries) > 20
    for sql in queries:
        decision = packs.check(
            SqlRequest(sql), subject=AGENT, resource=Resource(kind="postgres", schema=schema)
        )
        if decision.effect.value not in ("allow", "mask"):
            refused.append((sql[:60], decision.effect.value, decision.reasons[:1]))
    assert not refused


EVERYDAY = [
    ("postgres", "SELECT id, name FROM users WHERE id = 42"),
    ("postgres", "SELECT count(*) FROM orders WHERE created >= now() - interval '7 days'"),
    ("postgres", "SELECT u.name, sum(o.total) FROM users u JOIN orders o ON o.user_id = u.id GROUP BY u.name ORDER BY 2 DESC LIMIT 10"),
    ("postgres", "SELECT email FROM users WHERE id = 7"),
    ("postgres", "WITH recent AS (SELECT user_id FROM orders WHERE total > 10) SELECT email FROM users WHERE id IN (SELECT user_id FROM recent)"),
    ("postgres", "SELECT email FROM users WHERE id = 1 UNION ALL SELECT email FROM users WHERE id = 2"),
    ("postgres", "UPDATE users SET active = false WHERE id = 42"),
    ("postgres", "UPDATE orders SET total = total * 1.1 WHERE id IN (1, 2, 3)"),
    ("postgres", "DELETE FROM orders WHERE id = 9 RETURNING id"),
    ("postgres", "DELETE FROM orders WHERE created >= '2020-01-01' AND created < '2020-02-01'"),
    ("postgres", "INSERT INTO orders (user_id, total) VALUES (1, 9.5) RETURNING id"),
    ("postgres", "INSERT INTO orders (id, user_id, total) VALUES (1, 2, 3) ON CONFLICT (id) DO UPDATE SET total = excluded.total"),
    ("postgres", "BEGIN"), ("postgres", "BEGIN READ ONLY"), ("postgres", "START TRANSACTION READ ONLY"),
    ("postgres", "START TRANSACTION ISOLATION LEVEL REPEATABLE READ"), ("postgres", "SAVEPOINT s1"),
    ("postgres", "RELEASE SAVEPOINT s1"), ("postgres", "ROLLBACK TO SAVEPOINT s1"), ("postgres", "COMMIT"),
    ("postgres", "ROLLBACK"), ("postgres", "ABORT"), ("postgres", "END"), ("postgres", "DISCARD ALL"),
    ("postgres", "DEALLOCATE ALL"), ("postgres", "DEALLOCATE p1"),
    ("postgres", "EXPLAIN SELECT * FROM orders WHERE id = 1"),
    ("postgres", "EXPLAIN (ANALYZE, BUFFERS) SELECT count(*) FROM orders"),
    ("postgres", "SHOW search_path"), ("postgres", "SHOW ALL"),
    ("postgres", "SET search_path TO public"), ("postgres", "SET statement_timeout = '5s'"),
    ("postgres", "SET LOCAL lock_timeout = '1s'"), ("postgres", "RESET statement_timeout"),
    ("postgres", "SET TRANSACTION READ ONLY"), ("postgres", "SET application_name = 'agent'"),
    ("postgres", "COPY (SELECT id, total FROM orders WHERE id < 100) TO STDOUT WITH CSV HEADER"),
    ("postgres", "COPY users TO STDOUT"),
    ("postgres", "CREATE TEMP TABLE scratch AS SELECT id, total FROM orders WHERE id = 1"),
    ("postgres", "PREPARE q AS SELECT * FROM orders WHERE id = $1"),
    ("postgres", "SELECT * FROM information_schema.columns WHERE table_name = 'users'"),
    ("postgres", "SELECT pg_size_pretty(pg_total_relation_size('users'))"),
    ("mysql", "SELECT id, name FROM users WHERE id = 1"), ("mysql", "SHOW TABLES"),
    ("mysql", "SHOW CREATE TABLE users"), ("mysql", "DESCRIBE users"), ("mysql", "START TRANSACTION"),
    ("mysql", "SET NAMES utf8mb4"), ("mysql", "UPDATE users SET name = 'x' WHERE id = 1 LIMIT 1"),
    ("mysql", "INSERT INTO orders (id, total) VALUES (1, 2) ON DUPLICATE KEY UPDATE total = 2"),
    ("sqlite", "SELECT * FROM orders WHERE rowid = 3"), ("sqlite", "BEGIN IMMEDIATE"),
    ("sqlite", "PRAGMA table_info(users)"), ("sqlite", "DELETE FROM orders WHERE rowid = 3"),
    ("tsql", "SELECT TOP 10 id, total FROM orders ORDER BY id DESC"), ("tsql", "BEGIN TRANSACTION"),
    ("tsql", "SET NOCOUNT ON"), ("tsql", "SAVE TRANSACTION s1"),
    ("snowflake", "SELECT id FROM orders WHERE id = 1"), ("snowflake", "SHOW TABLES"),
    ("snowflake", "USE WAREHOUSE reporting_wh"), ("snowflake", "ALTER SESSION SET QUERY_TAG = 'agent'"),
    ("bigquery", "SELECT id FROM ds.orders WHERE id = 1"),
    ("bigquery", "SELECT * FROM ds.orders WHERE created BETWEEN '2020-01-01' AND '2020-02-01'"),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "sql"), EVERYDAY)
def test_everyday_agent_requests_pass(packs: Engine, kind: str, sql: str) -> None:
    decision = packs.check(
        SqlRequest(sql), subject=AGENT, resource=Resource(kind=kind, schema=SCHEMA)
    )
    assert decision.effect.value in ("allow", "mask"), (sql, decision.reasons)
