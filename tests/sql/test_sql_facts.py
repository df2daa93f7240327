"""The facts' shape: the public surface, `to_input` against the engine schema, columns, cache."""

from __future__ import annotations

from typing import Any

import subguard.sql
from subguard.engine.schema import RECORDS, STATEMENT_KINDS
from subguard.sql import CACHE, KINDS, Schema, analyze, fingerprint, redact

SCHEMA = {
    "users": {
        "id": "int",
        "email": {"type": "text", "tags": ["pii"]},
        "name": {"type": "text", "tags": ["pii", "name"]},
    },
    "orders": {"id": "int", "user_id": "int", "total": "numeric"},
}


def test_public_surface_is_pinned() -> None:
    assert subguard.sql.__all__ == [
        "CACHE",
        "DIALECT_ALIASES",
        "KINDS",
        "Column",
        "ColumnFlow",
        "CountQuery",
        "Grant",
        "LRUCache",
        "OutputColumn",
        "OutputLineage",
        "ResultLineage",
        "Schema",
        "SqlFacts",
        "Statement",
        "Table",
        "analyze",
        "count_query",
        "fingerprint",
        "output_lineage",
        "redact",
        "schema_tagged",
        "validate_schema",
    ]


def test_kinds_are_exactly_the_designs() -> None:
    assert tuple(KINDS) == tuple(STATEMENT_KINDS)


def _check_record(value: dict[str, Any], record: str) -> None:
    assert set(value) == set(RECORDS[record]), record
    for field, ftype in RECORDS[record].items():
        v = value[field]
        base = ftype.replace(" | null", "")
        if ftype.endswith("| null") and v is None:
            continue
        if base.startswith("set<"):
            assert isinstance(v, frozenset), (record, field)
        elif base.startswith("array<"):
            assert isinstance(v, tuple), (record, field)
            inner = base[6:-1]
            if inner in RECORDS:
                for item in v:
                    _check_record(item, inner)
        elif base == "string":
            assert isinstance(v, str), (record, field)
        elif base == "boolean":
            assert isinstance(v, bool), (record, field)


def test_to_input_matches_the_engine_schema_exactly() -> None:
    facts = analyze(
        "WITH x AS (DELETE FROM users WHERE id = 1 RETURNING *) SELECT * FROM x; "
        "GRANT SELECT ON users TO bob; SELECT upper(email) AS shout FROM users",
        dialect="postgres",
        schema=SCHEMA,
    )
    doc = facts.to_input()
    _check_record(doc, "Sql")
    assert doc is facts.to_input()  # computed once per facts object
    assert any(s["output_columns"] for s in doc["statements"])
    assert any(s["grants"] for s in doc["statements"])
    assert any(s["tables"] for s in doc["statements"])


def test_columns_resolve_through_aliases_ctes_subqueries_unions_and_expressions() -> None:
    facts = analyze(
        "WITH c AS (SELECT id, email FROM users) "
        "SELECT upper(s.email) AS shout, s.id FROM (SELECT * FROM c) AS s "
        "UNION ALL SELECT name, o.id FROM users u JOIN orders o ON o.user_id = u.id",
        dialect="postgres",
        schema=SCHEMA,
    )
    (head,) = facts.statements
    shout, ident = head.output_columns
    assert shout.name == "shout"
    assert {(c.table, c.column) for c in shout.sources} == {("users", "email"), ("users", "name")}
    assert {(c.table, c.column) for c in ident.sources} == {("users", "id"), ("orders", "id")}
    pii = {c.column for c in facts.columns_read if "pii" in c.tags and c.in_output}
    assert pii == {"email", "name"}
    user_id = [c for c in facts.columns_read if c.column == "user_id"]
    assert user_id and not user_id[0].in_output


def test_star_expands_through_the_schema() -> None:
    facts = analyze("SELECT u.* FROM users u", dialect="postgres", schema=SCHEMA)
    names = [o.name for o in facts.statements[0].output_columns]
    assert names == ["id", "email", "name"]


def test_without_a_schema_nothing_is_invented() -> None:
    facts = analyze("SELECT * FROM users", dialect="postgres")
    (out,) = facts.statements[0].output_columns
    assert [(c.table, c.column, c.resolved) for c in out.sources] == [("users", "*", False)]
    ambiguous = analyze("SELECT email FROM users, orders", dialect="postgres")
    (col,) = ambiguous.columns_read
    assert (col.table, col.resolved) == (None, False)
    single = analyze("SELECT email FROM users", dialect="postgres")
    assert [(c.table, c.column, c.resolved) for c in single.columns_read] == [
        ("users", "email", True)
    ]


def test_dml_columns_and_returning() -> None:
    facts = analyze(
        "DELETE FROM users WHERE email = 'x' RETURNING *", dialect="postgres", schema=SCHEMA
    )
    head = facts.statements[0]
    assert head.has_where
    assert [o.name for o in head.output_columns] == ["id", "email", "name"]
    assert any(c.column == "email" and "pii" in c.tags for c in head.columns_read)


def test_schema_mapping_and_schema_object_agree() -> None:
    a = analyze("SELECT email FROM users", dialect="postgres", schema=SCHEMA)
    b = analyze(
        "SELECT email FROM users",
        dialect="postgres",
        schema=Schema.from_mapping(SCHEMA, "postgres"),
    )
    assert a.columns_read == b.columns_read


def test_cache_returns_the_same_facts() -> None:
    a = analyze("SELECT 1 FROM t WHERE x = 1", dialect="postgres")
    assert analyze("SELECT 1 FROM t WHERE x = 1", dialect="postgres") is a
    assert analyze("SELECT 1 FROM t WHERE x = 1", dialect="mysql") is not a


def test_redaction_fingerprint_and_exact_hash() -> None:
    text = "SELECT * FROM users WHERE email = 'alice@example.com' AND id > 42"
    assert redact(text, "postgres") == "SELECT * FROM users WHERE email = ? AND id > ?"
    facts = analyze(text, dialect="postgres")
    assert facts.redacted == redact(text, "postgres")
    assert facts.fingerprint == fingerprint(text, "postgres")
    other = analyze(
        "select *  from USERS -- note\n where email = 'bob@example.com' and id > 7",
        dialect="postgres",
    )
    assert other.fingerprint == facts.fingerprint
    assert other.exact_hash != facts.exact_hash
    same = analyze(
        "select * from users /* c */ where email = 'alice@example.com' and id > 42",
        dialect="postgres",
    )
    assert same.exact_hash == facts.exact_hash
    # Dynamic SQL keeps its own shape: approving one EXECUTE shape is not approving all.
    assert fingerprint("EXECUTE 'DELETE FROM a'", "postgres") != fingerprint(
        "EXECUTE 'DROP TABLE b'", "postgres"
    )
    assert "secret" not in redact("PREPARE p AS SELECT 'secret'", "postgres")


def test_dialect_aliases() -> None:
    for name in ("postgresql", "mariadb", "", None, "duckdb", "bigquery", "tsql", "sqlite"):
        assert analyze("SELECT a FROM t", dialect=name).parse_error is None
    assert analyze("SELECT 1", dialect="postgresql").dialect == "postgres"
    assert analyze("SELECT 1", dialect="mariadb").dialect == "mysql"


def test_column_tags_follow_each_schema_even_with_a_shared_version() -> None:
    # Column facts are shared between analyses; two schemas must never share tags.
    text = "SELECT zq_email FROM zq_users"
    pii = Schema("", {"zq_users": {"zq_email": frozenset({"pii"})}}, "same")
    plain = Schema("", {"zq_users": {"zq_email": frozenset()}}, "same")
    tagged = analyze(text, schema=pii).columns_read
    CACHE.clear()  # the analysis cache keys by version; the column facts must not
    untagged = analyze(text, schema=plain).columns_read
    assert [c.tags for c in tagged] == [frozenset({"pii"})]
    assert [c.tags for c in untagged] == [frozenset()]
