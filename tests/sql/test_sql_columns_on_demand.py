"""`analyze(…, columns=False)`: column resolution skipped, every other fact the same.

The column fields are absent from `input.sql` (not empty), `column_facts` says so, and
both caches (by text and by shape) keep the two kinds of analysis apart.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from subguard.sql import CACHE, analyze, schema_tagged
from subguard.sql._facts import COLUMN_FIELDS

CORPUS = Path(__file__).resolve().parents[1] / "corpora" / "sqlglot"
SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SCHEMA = {
    "users": {"id": "int", "email": {"type": "text", "tags": ["pii"]}, "name": "text"},
    "orders": {"id": "int", "user_id": "int", "total": "numeric"},
}


def without_columns(doc: dict[str, Any]) -> dict[str, Any]:
    """`input.sql` with its column fields taken out (what the skipping analysis gives)."""
    out = {k: v for k, v in doc.items() if k != "columns_read"}
    out["statements"] = tuple(
        {k: v for k, v in s.items() if k not in COLUMN_FIELDS} for s in doc["statements"]
    )
    return out


def assert_same_but_columns(text: str, dialect: str | None, schema: Any = None) -> None:
    CACHE.clear()
    full = analyze(text, dialect=dialect, schema=schema)
    CACHE.clear()
    lean = analyze(text, dialect=dialect, schema=schema, columns=False)
    assert full.column_facts and not lean.column_facts
    doc = lean.to_input()
    assert "columns_read" not in doc
    assert all(field not in s for s in doc["statements"] for field in COLUMN_FIELDS)
    assert doc == without_columns(full.to_input()), text
    assert (lean.redacted, lean.fingerprint, lean.exact_hash) == (
        full.redacted,
        full.fingerprint,
        full.exact_hash,
    )


def _corpus_lines(name: str) -> list[str]:
    lines = (CORPUS / name).read_text().splitlines()
    return [line for line in lines if line.strip() and not line.startswith("--")]


def _tpc(name: str) -> list[str]:
    text = (CORPUS / name).read_text()
    return [c for c in re.split(r";\s*\n", text) if c.strip() and "select" in c.lower()]


def test_identity_corpus_same_facts_without_columns() -> None:
    for text in _corpus_lines("identity.sql"):
        assert_same_but_columns(text, None)


@pytest.mark.parametrize("dialect", ["postgres", "mysql", "tsql"])
def test_identity_corpus_sample_in_other_dialects(dialect: str) -> None:
    for text in _corpus_lines("identity.sql")[::7]:
        assert_same_but_columns(text, dialect)


@pytest.mark.parametrize(("name", "key"), [("tpc-h.sql", "tpch"), ("tpc-ds.sql", "tpcds")])
def test_tpc_corpora_with_their_schema(name: str, key: str) -> None:
    schema = json.loads((CORPUS / "schemas.json").read_text()).get(key)
    for text in _tpc(name):
        assert_same_but_columns(text, None, schema)


@pytest.mark.parametrize(
    "text",
    [
        # sqlglot refuses these trees while selecting sources: fail closed either way
        "SELECT LEFT FROM LEFT LEFT JOIN RIGHT RIGHT JOIN LEFT",
        "SELECT * FROM ((SELECT * FROM x) INNER JOIN (SELECT * FROM y) ON a = c)",
        "SELECT a FROM t AS x JOIN u AS x ON x.id = x.id",
        "UPDATE t SET a = 1 FROM u AS x, v AS x WHERE t.id = x.id",
    ],
)
def test_a_tree_sqlglot_refuses_fails_with_and_without_columns(text: str) -> None:
    assert_same_but_columns(text, "postgres")
    CACHE.clear()
    full = analyze(text, dialect="postgres")
    lean = analyze(text, dialect="postgres", columns=False)
    assert (full.parse_error is None) == (lean.parse_error is None)


# -- generated statements ----------------------------------------------------------------

tables = st.sampled_from(["users", "orders", "t", "u"])
cols = st.sampled_from(["id", "email", "name", "total", "user_id", "x"])
aliases = st.sampled_from(["a", "b", "u", "t", "x"])


@st.composite
def query(draw: st.DrawFn, depth: int = 0) -> str:
    projection = draw(
        st.one_of(
            st.just("*"),
            st.lists(cols, min_size=1, max_size=3).map(", ".join),
            st.builds(lambda a, c: f"{a}.{c}", aliases, cols),
            st.builds(lambda c: f"count({c})", cols),
            st.builds(lambda a: f"row_to_json({a})", aliases),
        )
    )
    source = draw(tables)
    alias = draw(aliases)
    text = f"SELECT {projection} FROM {source} AS {alias}"
    if draw(st.booleans()):
        other = draw(st.one_of(tables, st.just(None) if depth > 1 else query(depth + 1)))
        other = other if other in ("users", "orders", "t", "u") else f"({other})"
        text += f" JOIN {other} AS {draw(aliases)} ON {alias}.{draw(cols)} = {draw(cols)}"
    if draw(st.booleans()):
        text += f" WHERE {draw(cols)} = {draw(st.integers(0, 9))}"
        if depth < 2 and draw(st.booleans()):
            text += f" AND {draw(cols)} IN ({draw(query(depth + 1))})"
    if draw(st.booleans()):
        text += f" GROUP BY {draw(cols)} ORDER BY 1"
    if depth < 2 and draw(st.booleans()):
        text += f" UNION SELECT {draw(cols)} FROM {draw(tables)}"
    return text


@st.composite
def statement(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["query", "cte", "insert", "update", "delete", "view", "copy"]))
    q = draw(query())
    table = draw(tables)
    if kind == "cte":
        return f"WITH {draw(aliases)} AS ({q}) SELECT * FROM {draw(aliases)}"
    if kind == "insert":
        return f"INSERT INTO {table} ({draw(cols)}) {q}"
    if kind == "update":
        return f"UPDATE {table} SET {draw(cols)} = {draw(cols)} WHERE id IN ({q}) RETURNING *"
    if kind == "delete":
        return f"DELETE FROM {table} USING {draw(tables)} AS {draw(aliases)} WHERE {draw(cols)} = 1"
    if kind == "view":
        return f"CREATE VIEW v AS {q}"
    if kind == "copy":
        return f"COPY ({q}) TO STDOUT"
    return q


@SETTINGS
@given(
    st.lists(statement(), min_size=1, max_size=3).map("; ".join),
    st.sampled_from([None, "postgres", "mysql"]),
    st.sampled_from([None, SCHEMA]),
)
def test_generated_statements_same_facts_without_columns(
    text: str, dialect: str | None, schema: Any
) -> None:
    assert_same_but_columns(text, dialect, schema)


# -- caches ------------------------------------------------------------------------------


@pytest.mark.parametrize("schema", [None, SCHEMA])
def test_an_analysis_without_columns_is_never_served_to_one_with(schema: Any) -> None:
    CACHE.clear()
    text = "SELECT email FROM users WHERE id = 1"
    lean = analyze(text, dialect="postgres", schema=schema, columns=False)
    full = analyze(text, dialect="postgres", schema=schema)
    assert not lean.column_facts and full.column_facts
    assert {c.column for c in full.columns_read} == {"email", "id"}
    assert "columns_read" in full.to_input()
    # and the other way round, from the cache
    assert analyze(text, dialect="postgres", schema=schema, columns=False) is lean
    assert analyze(text, dialect="postgres", schema=schema) is full


def test_the_shape_cache_keeps_them_apart_too() -> None:
    CACHE.clear()
    analyze("SELECT email FROM users WHERE id = 1", dialect="postgres", columns=False)
    # another text of the same shape: served by shape, with columns
    other = analyze("SELECT email FROM users WHERE id = 2", dialect="postgres")
    assert other.column_facts
    assert {c.column for c in other.columns_read} == {"email", "id"}
    lean = analyze("SELECT email FROM users WHERE id = 3", dialect="postgres", columns=False)
    assert not lean.column_facts and "columns_read" not in lean.to_input()


def test_schema_tagged() -> None:
    assert schema_tagged(SCHEMA)
    assert not schema_tagged({"orders": {"id": "int", "total": {"type": "numeric"}}})
    assert not schema_tagged(None)
    assert schema_tagged({"users": {"email": {"tags": 5}}})  # unreadable: resolve
