"""Column facts on demand: an engine resolves columns only when its policy may read them
(`Policy.reads` on every column path) or the resource's schema tags a column; decisions
are the same as with every fact."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from subguard import CommandRequest, Engine, Resource, SqlRequest
from subguard.engine.inputs import COLUMN_PATHS, reads_columns
from subguard.engine.policy import load_policy, policy_from_sources
from subguard.log._builders import decision_facts
from subguard.sql import CACHE

ROOT = Path(__file__).resolve().parents[2]
CORPUS = ROOT / "tests" / "corpora" / "sqlglot"
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

#: Reads kinds, tables, functions, has_where, parse errors, and masks by constant: no column.
NO_COLUMNS = """package t

deny contains sprintf("%s of %s is not allowed", [s.kind, s.target]) if {
    some s in input.sql.statements
    s.kind in {"drop", "truncate", "grant", "revoke"}
}

approve contains "unbounded write" if {
    some s in input.sql.statements
    s.kind in {"update", "delete"}
    not s.has_where
}

deny contains msg if {
    some s in input.sql.statements
    some t in s.tables
    startswith(t.name, "secret")
    msg := sprintf("touches %s", [t.qualified])
}

deny contains "unparseable" if input.sql.parse_error != null

deny contains "copy to a program" if {
    some s in input.sql.statements
    s.copy_program
}

approve contains sprintf("calls %s", [f]) if {
    some f in input.sql.functions
    f in {"pg_sleep", "dblink", "lo_import"}
}

mask contains "users.email" if "users" in input.sql.tables_read

default allow := true
"""

SCHEMA_UNTAGGED = {
    "users": {"id": "int", "email": "text", "name": "text"},
    "orders": {"id": "int", "user_id": "int", "total": "numeric"},
}
SCHEMA_TAGGED = {
    "users": {"id": "int", "email": {"type": "text", "tags": ["pii"]}},
    "orders": {"id": "int", "user_id": "int", "total": "numeric"},
}


def _policy(source: str) -> Any:
    return policy_from_sources([("t.guard", source)])


def _view(decision: Any) -> tuple[Any, ...]:
    return (decision.effect, decision.reasons, decision.masks, decision.errors)


def _pair(source: str = NO_COLUMNS) -> tuple[Engine, Engine]:
    policy = _policy(source)
    lean, full = Engine(policy), Engine(policy, column_facts=True)
    assert not lean.column_facts and full.column_facts
    return lean, full


def _same_decisions(lean: Engine, full: Engine, request: Any, resource: Resource) -> None:
    CACHE.clear()
    a = lean.check(request, subject="agent", resource=resource)
    CACHE.clear()
    b = full.check(request, subject="agent", resource=resource)
    assert _view(a) == _view(b), request


# -- the engine's choice -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "reads"),
    [
        ('deny contains "x" if { some s in input.sql.statements; s.kind == "drop" }', False),
        ('deny contains "x" if { count(input.sql.statements) > 1 }', False),
        ('deny contains "x" if { input.sql != null; not input.sql.statements }', False),
        (
            'deny contains "x" if { some s in input.sql.statements; object.get(s, "kind", "") == "drop" }',
            False,
        ),
        ('deny contains "x" if { some c in input.sql.columns_read; "pii" in c.tags }', True),
        (
            'deny contains "x" if { some s in input.sql.statements; some o in s.output_columns; o.name == "ssn" }',
            True,
        ),
        (
            'deny contains "x" if { some s in input.sql.statements; count(s.columns_written_from) > 0 }',
            True,
        ),
        ('deny contains "x" if { some c in input.command.sql.columns_read; c.in_output }', True),
        # generic access: any field may be read
        ('deny contains "x" if { some s in input.sql.statements; some k; s[k] == "ssn" }', True),
        (
            'deny contains "x" if { some s in input.sql.statements; some k, v in s; k != "kind"; v == "ssn" }',
            True,
        ),
        ('deny contains "x" if { some s in input.sql.statements; k := "columns" ; s[k] }', True),
        ('deny contains "x" if { contains(json.marshal(input.sql), "ssn") }', True),
        ('deny contains "x" if { contains(json.marshal(input), "ssn") }', True),
        ('deny contains m if { m := sprintf("%v", [input.sql.statements[0]]) }', True),
        ('deny contains m if { m := sprintf("%v x %v", [input.sql, 1]) }', True),
        ('deny contains "x" if { input.sql.statements[0] == input.sql.statements[1] }', True),
        ('deny contains "x" if { count(input.sql) > 7 }', True),
        (
            'deny contains m if { m := sprintf("%v", [object.get(input.sql, "statements", [])]) }',
            True,
        ),
        ('deny contains "x" if { object.get(input.sql, "parse_error", null) != null }', False),
        # `with`: a record in place of a typed part of the input is read by field names
        (
            'r contains s.kind if { some s in input.sql.statements }\ndeny contains "x" if { "drop" in r with input.sql as input.command.sql }',
            False,
        ),
        (
            'r := json.marshal(input.subject.claims)\ndeny contains "x" if { contains(r, "ssn") with input.subject.claims as input.sql }',
            True,
        ),
        (
            'r := data.t.q\nq := 1\ndeny contains m if { m := sprintf("%v", [r]) with data.t.q as input.sql }',
            True,
        ),
        ('deny contains "x" if { some s in input.sql.statements; object.keys(s) }', True),
        (
            'f(s) := s\ndeny contains "x" if { some s in input.sql.statements; f(s).kind == "drop" }',
            True,
        ),
        ('first := input.sql.statements[0]\ndeny contains "x" if { first.kind == "drop" }', True),
        (
            'xs := [s | some s in input.sql.statements]\ndeny contains "x" if { count(xs) > 1 }',
            True,
        ),
    ],
)
def test_engine_resolves_columns_when_the_policy_may_read_them(body: str, reads: bool) -> None:
    policy = _policy(f"package t\n{body}\n")
    assert reads_columns(policy.reads) is reads
    assert Engine(policy).column_facts is reads


def test_column_paths_cover_every_column_field() -> None:
    assert {p.rsplit(".", 1)[-1] for p in COLUMN_PATHS} == {
        "columns_read",
        "output_columns",
        "columns_written_from",
    }
    assert any(p.startswith("input.command.sql.") for p in COLUMN_PATHS)


@pytest.mark.parametrize(
    "paths",
    [["rules"], ["rules/base.guard", "rules/sql"], ["rules/base.guard", "rules/sql", "rules/mcp"]],
)
def test_bundled_sql_packs_resolve_columns(paths: list[str]) -> None:
    engine = Engine(load_policy([str(ROOT / p) for p in paths]))
    assert engine.column_facts
    decision = engine.check(
        SqlRequest("SELECT email FROM users", "postgres"),
        subject="agent",
        resource=Resource(schema=SCHEMA_TAGGED),
    )
    assert "columns_read" in decision.input["sql"]


@pytest.mark.parametrize("paths", [["rules/session"], ["rules/base.guard", "rules/mcp"]])
def test_packs_reading_no_column_skip_resolution(paths: list[str]) -> None:
    assert not Engine(load_policy([str(ROOT / p) for p in paths])).column_facts


def test_column_facts_false_is_refused() -> None:
    with pytest.raises(ValueError, match="column_facts"):
        Engine(_policy(NO_COLUMNS), column_facts=False)  # type: ignore[arg-type]


# -- the input document ----------------------------------------------------------------------


def test_skipped_column_fields_are_absent_not_empty() -> None:
    lean, full = _pair()
    request = SqlRequest("SELECT email FROM users WHERE id = 1", "postgres")
    a = lean.check(request, subject="agent", resource=Resource(schema=SCHEMA_UNTAGGED))
    b = full.check(request, subject="agent", resource=Resource(schema=SCHEMA_UNTAGGED))
    assert "columns_read" not in a.input["sql"]
    assert "output_columns" not in a.input["sql"]["statements"][0]
    assert {c["column"] for c in b.input["sql"]["columns_read"]} == {"email", "id"}
    # the log says "not computed", not "no columns"
    assert decision_facts(a)["columns"] is None
    assert decision_facts(b)["columns"] == ["users.email", "users.id"]


def test_a_tagged_schema_gets_columns_whatever_the_policy() -> None:
    lean, _ = _pair()
    decision = lean.check(
        SqlRequest("SELECT email FROM users", "postgres"),
        subject="agent",
        resource=Resource(schema=SCHEMA_TAGGED),
    )
    (column,) = decision.input["sql"]["columns_read"]
    assert column["tags"] == frozenset({"pii"}) and column["in_output"]


def test_command_sql_without_columns() -> None:
    lean, full = _pair()
    request = CommandRequest("psql -c 'DELETE FROM users; SELECT email FROM users'")
    a = lean.check(request, subject="agent", resource=Resource(kind="postgres"))
    b = full.check(request, subject="agent", resource=Resource(kind="postgres"))
    assert _view(a) == _view(b)
    assert "columns_read" not in a.input["command"]["sql"]
    assert "columns_read" in b.input["command"]["sql"]


# -- decisions are the same --------------------------------------------------------------------


def _corpus() -> list[str]:
    lines = (CORPUS / "identity.sql").read_text().splitlines()
    texts = [line for line in lines if line.strip() and not line.startswith("--")][::5]
    tpch = (CORPUS / "tpc-h.sql").read_text()
    texts += [c for c in re.split(r";\s*\n", tpch) if c.strip()][0::2]
    return texts


@pytest.mark.parametrize("schema", [None, SCHEMA_UNTAGGED])
def test_corpus_decisions_equal_with_and_without_column_facts(schema: Any) -> None:
    lean, full = _pair()
    resource = Resource(dialect="postgres", schema=schema)
    for text in _corpus():
        _same_decisions(lean, full, SqlRequest(text, "postgres"), resource)


_TEXTS = st.sampled_from(
    [
        "SELECT email FROM users WHERE id = 1",
        "SELECT * FROM secret_keys",
        "DELETE FROM orders",
        "DELETE FROM orders WHERE id = 7",
        "UPDATE users SET name = 'x'",
        "UPDATE users SET name = (SELECT email FROM users u2 WHERE u2.id = users.id) WHERE id = 1",
        "WITH d AS (DELETE FROM secret_t RETURNING *) SELECT * FROM d",
        "INSERT INTO orders SELECT * FROM users",
        "DROP TABLE users",
        "GRANT SELECT ON users TO bob",
        "COPY users TO PROGRAM 'sh'",
        "SELECT pg_sleep(10), row_to_json(u) FROM users u",
        "SELECT LEFT FROM LEFT LEFT JOIN RIGHT RIGHT JOIN LEFT",
        "CREATE VIEW v AS SELECT a.email FROM users a JOIN orders o ON o.user_id = a.id",
        "SELECT 1 FROM (",
        "EXECUTE 'DELETE FROM users'",
        "DO $$ BEGIN DELETE FROM secret_x; END $$",
    ]
)


@SETTINGS
@given(
    st.lists(_TEXTS, min_size=1, max_size=3).map("; ".join),
    st.sampled_from([None, SCHEMA_UNTAGGED, SCHEMA_TAGGED]),
)
def test_generated_requests_decide_the_same(text: str, schema: Any) -> None:
    lean, full = _ENGINES
    _same_decisions(lean, full, SqlRequest(text, "postgres"), Resource(schema=schema))


_ENGINES = _pair()


# -- generated policies -------------------------------------------------------------------

#: Rule fragments that read no column fact.
_LEAN_RULES = [
    'deny contains "drop" if { some s in input.sql.statements; s.kind == "drop" }',
    'approve contains "bulk" if { some s in input.sql.statements; s.kind == "delete"; not s.has_where }',
    'deny contains t if { some t in input.sql.tables_written; startswith(t, "secret") }',
    'deny contains "bad" if input.sql.parse_error != null',
    'deny contains "many" if count(input.sql.statements) > 2',
    'mask contains "users.email" if "users" in input.sql.tables_read',
    'approve contains f if { some f in input.sql.functions; f == "pg_sleep" }',
    'deny contains "nested" if { some s in input.sql.statements; s.nested; object.get(s, "kind", "") == "delete" }',
]
#: Fragments that may read one (by name, or through generic access).
_COLUMN_RULES = [
    'deny contains "pii" if { some c in input.sql.columns_read; "pii" in c.tags }',
    'deny contains m if { some s in input.sql.statements; m := sprintf("%v", [s]); contains(m, "email") }',
    'deny contains "k" if { some s in input.sql.statements; some k, v in s; k == "output_columns"; count(v) > 1 }',
    'deny contains "j" if contains(json.marshal(input.sql), "\\"email\\"")',
    'g(s) := s.kind\ndeny contains "g" if { some s in input.sql.statements; g(s) == "drop" }',
]


@SETTINGS
@given(
    st.lists(st.sampled_from(_LEAN_RULES), min_size=1, max_size=4, unique=True),
    st.lists(st.sampled_from(_COLUMN_RULES), max_size=1),
    st.lists(_TEXTS, min_size=1, max_size=2).map("; ".join),
)
def test_generated_policies(lean_rules: list[str], column_rules: list[str], text: str) -> None:
    source = "package t\n\n" + "\n\n".join([*lean_rules, *column_rules]) + "\n"
    policy = _policy(source)
    engine = Engine(policy)
    assert engine.column_facts is bool(column_rules)
    full = Engine(policy, column_facts=True)
    _same_decisions(engine, full, SqlRequest(text, "postgres"), Resource(schema=SCHEMA_UNTAGGED))
