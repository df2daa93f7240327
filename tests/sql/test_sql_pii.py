"""Column facts PII rules decide on: roles, whole-row references, flows, case rules."""

from __future__ import annotations

import pytest

from subguard.sql import analyze

SCHEMA = {
    "users": {
        "id": "int", "name": "text", "email": {"type": "text", "tags": ["pii"]},
        "ssn": {"type": "text", "tags": ["pii"]},
    },
    "orders": {"id": "int", "user_id": "int", "total": "int"},
}  # fmt: skip


def _pii(sql: str, dialect: str = "postgres") -> dict[str, tuple[bool, frozenset[str]]]:
    facts = analyze(sql, dialect=dialect, schema=SCHEMA)
    assert facts.parse_error is None, facts.parse_error
    return {f"{c.table}.{c.column}": (c.in_output, c.roles) for c in facts.columns_read if c.tags}


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT row_to_json(u) FROM users u",
        "SELECT to_jsonb(u) FROM users u",
        "SELECT json_agg(u) FROM users u",
        "SELECT u FROM users u",
        "SELECT (u).ssn FROM users u",
        "SELECT u::text FROM users u",
        "SELECT format('%s', u) FROM users u",
        "SELECT hstore(u) FROM users u",
        "SELECT json_build_object('r', row(u.*)) FROM users u",
        "SELECT row_to_json(users) FROM users",
        "SELECT to_json(x) FROM (SELECT * FROM users) x",
        "SELECT x FROM users u, LATERAL (SELECT u.ssn AS x) l",
        "SELECT c FROM users AS u (a, b, c, d)",
        "VALUES ((SELECT ssn FROM users LIMIT 1))",
        "UPDATE orders SET total = 1 WHERE id = 1 RETURNING (SELECT ssn FROM users LIMIT 1)",
        "COPY users TO STDOUT",
        "COPY users (id, ssn) TO STDOUT",
        "WITH T AS (SELECT ssn FROM users) SELECT ssn FROM t",
    ],
)
def test_whole_rows_and_hidden_outputs_reach_the_result(sql: str) -> None:
    found = _pii(sql)
    assert found.get("users.ssn", (False,))[0] or found.get("users.email", (False,))[0], found


@pytest.mark.parametrize(
    ("sql", "role"),
    [
        ("SELECT id FROM users WHERE ssn LIKE '1%'", "filter"),
        ("SELECT o.id FROM orders o JOIN users u ON u.ssn = o.id::text", "join"),
        ("SELECT count(*) FROM users GROUP BY ssn", "group"),
        ("SELECT id, ssn FROM users ORDER BY 2", "order"),
        ("SELECT ssn AS s FROM users ORDER BY s", "order"),
        ("SELECT id FROM users GROUP BY id HAVING max(ssn) > '5'", "having"),
        ("SELECT rank() OVER (PARTITION BY ssn) FROM users", "window"),
        ("DELETE FROM users WHERE id = 1 RETURNING ssn", "returning"),
        ("UPDATE orders SET total = (SELECT length(ssn) FROM users LIMIT 1) WHERE id = 1", "write-source"),
        ("SELECT x FROM (SELECT ssn AS x FROM users) t WHERE x LIKE '1%'", "filter"),
        ("SELECT 1/(CASE WHEN (SELECT ssn FROM users LIMIT 1) LIKE '1%' THEN 1 ELSE 0 END)", "filter"),
        ("SELECT id, CASE ssn WHEN '1' THEN 'a' END FROM users", "filter"),
    ],
)
def test_roles(sql: str, role: str) -> None:
    assert role in _pii(sql)["users.ssn"][1]


@pytest.mark.parametrize(
    "sql",
    [
        "WITH recent AS (SELECT user_id FROM orders WHERE total > 10) SELECT ssn FROM users WHERE id IN (SELECT user_id FROM recent)",
        "SELECT ssn FROM users WHERE id = 1 UNION ALL SELECT ssn FROM users WHERE id = 2",
        "SELECT upper(ssn) FROM users WHERE id = 7 ORDER BY name",
    ],
)
def test_returning_a_column_while_filtering_on_others_is_output_only(sql: str) -> None:
    assert _pii(sql)["users.ssn"] == (True, frozenset({"output"}))


@pytest.mark.parametrize(
    ("sql", "flow"),
    [
        ("CREATE TABLE leak AS SELECT ssn FROM users", ("leak", "ssn", frozenset())),
        ("SELECT ssn INTO leak FROM users", ("leak", "ssn", frozenset())),
        ("CREATE VIEW v AS SELECT ssn AS s FROM users", ("v", "s", frozenset())),
        ("INSERT INTO orders (id, total) SELECT id, ssn::int FROM users", ("orders", "total", frozenset())),
        ("INSERT INTO orders (total) VALUES ((SELECT length(ssn) FROM users LIMIT 1))", ("orders", "total", frozenset())),
        ("UPDATE orders SET total = (SELECT length(ssn) FROM users LIMIT 1) WHERE id = 1", ("orders", "total", frozenset())),
        ("UPDATE users SET email = ssn WHERE id = 1", ("users", "email", frozenset({"pii"}))),
        ("INSERT INTO audit SELECT * FROM users", ("audit", "*", frozenset())),
    ],
)
def test_columns_written_from(sql: str, flow: tuple[str, str, frozenset[str]]) -> None:
    facts = analyze(sql, dialect="postgres", schema=SCHEMA)
    flows = [
        (f.table, f.column, f.tags)
        for s in facts.statements
        for f in s.columns_written_from
        if any(c.column == "ssn" for c in f.sources)
    ]
    assert flow in flows


@pytest.mark.parametrize(
    ("dialect", "sql", "mask"),
    [
        ("mysql", "SELECT EMAIL FROM Users", "users.email"),
        ("mysql", "SELECT `Email` FROM `USERS`", "users.email"),
        ("snowflake", "SELECT email FROM users", "users.email"),
        ("snowflake", "SELECT OBJECT_CONSTRUCT(*) FROM users", "users.ssn"),
        ("tsql", "SELECT TOP 1 SSN FROM dbo.Users", "users.ssn"),
        ("tsql", "SELECT l.x FROM users u CROSS APPLY (SELECT u.ssn AS x) l", "users.ssn"),
        ("bigquery", "SELECT TO_JSON_STRING(u) FROM ds.users u", "users.ssn"),
        ("sqlite", 'SELECT "SSN" FROM users', "users.ssn"),
        ("duckdb", "SELECT SSN FROM users", "users.ssn"),
    ],
)
def test_case_rules_and_schema_spelling(dialect: str, sql: str, mask: str) -> None:
    found = _pii(sql, dialect)
    assert found[mask][0] is True
