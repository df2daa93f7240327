"""`has_where` is sound: a WHERE called bounding never matches every row of a table.

The property is checked against a real database (SQLite, in memory): for generated
conditions that the analysis calls bounding, a table holding, for every constant of the
condition, that value, its neighbours, NULL and two extremes in each column always keeps
some row out of `SELECT … WHERE <condition>`.
"""

from __future__ import annotations

import itertools
import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from subguard.sql import analyze

COLUMNS = ("a", "b")


def _const() -> st.SearchStrategy[str]:
    return st.integers(min_value=-3, max_value=12).map(str)


def _atom() -> st.SearchStrategy[str]:
    col = st.sampled_from(COLUMNS)
    cmp = st.sampled_from(["=", "<", "<=", ">", ">=", "<>"])
    return st.one_of(
        st.builds(lambda c, o, k: f"{c} {o} {k}", col, cmp, _const()),
        st.builds(lambda c, o, k: f"{k} {o} {c}", col, cmp, _const()),
        st.builds(lambda c, o, d: f"{c} {o} {d}", col, cmp, col),
        st.builds(lambda c: f"{c} IS NULL", col),
        st.builds(lambda c: f"{c} IS NOT NULL", col),
        st.builds(lambda c, ks: f"{c} IN ({', '.join(ks)})", col, st.lists(_const(), min_size=1, max_size=3)),
        st.builds(lambda c, ks: f"{c} NOT IN ({', '.join(ks)})", col, st.lists(_const(), min_size=1, max_size=2)),
        st.builds(lambda c, d: f"{c} IN (SELECT {d} FROM t)", col, col),
        st.builds(lambda c, lo, hi: f"{c} BETWEEN {lo} AND {hi}", col, _const(), _const()),
        st.builds(lambda c, lo, hi: f"{c} NOT BETWEEN {lo} AND {hi}", col, _const(), _const()),
        st.builds(lambda c: f"{c} - {c} = 0", col),
        st.builds(lambda c: f"coalesce({c}, 0) = coalesce({c}, 0)", col),
        st.sampled_from(["1 = 1", "1", "NOT 0", "TRUE", "a = a", "rowid = rowid", "rowid > 0"]),
    )


def _condition() -> st.SearchStrategy[str]:
    return st.recursive(
        _atom(),
        lambda inner: st.one_of(
            st.builds(lambda x, y: f"({x} AND {y})", inner, inner),
            st.builds(lambda x, y: f"({x} OR {y})", inner, inner),
            st.builds(lambda x: f"NOT ({x})", inner),
        ),
        max_leaves=5,
    )


def _values(condition: str) -> list[int | None]:
    import re

    consts = {int(n) for n in re.findall(r"-?\d+", condition)}
    values: set[int | None] = {None, -(10**9), 10**9, 0}
    for c in consts:
        values |= {c - 1, c, c + 1}
    return sorted(values, key=lambda v: (v is None, v or 0))


def _matches_every_row(condition: str) -> bool:
    """True when the condition keeps every row of a table with NULLs, or of one without
    (a NOT NULL column makes `id = id` true for all rows)."""
    values = _values(condition)
    return _all_rows(condition, values) or _all_rows(condition, [v for v in values if v is not None])


def _all_rows(condition: str, values: list[int | None]) -> bool:
    db = sqlite3.connect(":memory:")
    try:
        db.execute("CREATE TABLE t (a INT, b INT)")
        db.executemany("INSERT INTO t VALUES (?, ?)", itertools.product(values, values))
        total = db.execute("SELECT count(*) FROM t").fetchone()[0]
        try:
            hit = db.execute(f"SELECT count(*) FROM t WHERE {condition}").fetchone()[0]
        except sqlite3.Error:
            return False
        return bool(hit == total)
    finally:
        db.close()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_condition())
def test_a_bounding_where_never_matches_every_row(condition: str) -> None:
    stmt = analyze(f"DELETE FROM t WHERE {condition}", dialect="sqlite").statements[0]
    if stmt.has_where:
        assert not _matches_every_row(condition), condition


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        # bounded: a target column pinned by constants or parameters
        ("id = 1", True),
        ("id = $1", True),
        ("id = :id", True),
        ("id IN (1, 2)", True),
        ("price BETWEEN 10 AND 20 AND category IN ('a', 'b')", True),
        ("d >= DATE '2024-01-01' AND d < DATE '2024-02-01'", True),
        ("(a = 1 AND b = c) OR (a = 2 AND b > 3 AND b < 9)", True),
        ("id = 1 AND (x IS NULL OR x IS NOT NULL)", True),
        ("id = 1 OR id = 2", True),
        # unbounded: the evasions and their relatives
        ("id = id", False),
        ("id IS NOT NULL", False),
        ("total IS NULL OR total IS NOT NULL", False),
        ("id < 10 OR id >= 10", False),
        ("id IN (SELECT id FROM orders)", False),
        ("id = (SELECT max(id) FROM users)", False),
        ("created_at > now() - interval '1 day'", False),
        ("t.a = u.b", False),
        ("active", False),
        ("email LIKE '%'", False),
        ("id <> 1", False),
        ("NOT id = 1", False),
        ("id - id = 0", False),
        ("a = a OR 1 = 1", False),
        ("id = 1 OR 1 = 1", False),
        ("id = 1 OR id = id", False),
        ("EXISTS (SELECT 1 FROM t2)", False),
        ("1 = 1", False),
        ("'a' = 'a'", False),
        ("NOT false", False),
    ],
)
def test_has_where_postgres(where: str, expected: bool) -> None:
    facts = analyze(f"DELETE FROM t WHERE {where}", dialect="postgres")
    assert facts.statements[0].has_where is expected
    facts = analyze(f"UPDATE t SET z = 1 WHERE {where}", dialect="postgres")
    assert facts.statements[0].has_where is expected


@pytest.mark.parametrize(
    ("dialect", "sql", "expected"),
    [
        ("sqlite", "DELETE FROM users WHERE rowid = rowid", False),
        ("sqlite", "DELETE FROM users WHERE rowid = 7", True),
        ("mysql", "DELETE FROM users WHERE 1", False),
        ("mysql", "DELETE FROM users WHERE id = id LIMIT 10", False),
        ("mysql", "DELETE u FROM users u JOIN orders o ON u.id = o.uid WHERE o.id = 1", False),
        ("mysql", "DELETE u FROM users u JOIN orders o ON u.id = o.uid WHERE u.id = 1", True),
        ("mysql", "UPDATE users u JOIN orders o ON u.id = o.uid SET u.x = 1 WHERE o.id = 1", False),
        ("postgres", "DELETE FROM users u USING orders o WHERE o.id = 1", False),
        ("postgres", "DELETE FROM users u USING orders o WHERE u.id = 1", True),
        ("postgres", "DELETE FROM users USING orders WHERE id = 1", False),
        ("postgres", "UPDATE users SET x = 1 FROM orders o WHERE o.id = 1", False),
        ("postgres", "UPDATE users SET x = 1 FROM orders o WHERE users.id = o.uid AND users.id = 3", True),
        ("tsql", "DELETE FROM users WHERE id = id", False),
        ("tsql", "DELETE FROM users WHERE id = @id", True),
        ("snowflake", "DELETE FROM users WHERE id IS NOT NULL", False),
        ("snowflake", "DELETE FROM users WHERE id = 4", True),
        ("bigquery", "DELETE FROM ds.users WHERE true", False),
        ("bigquery", "DELETE FROM ds.users WHERE id = 4", True),
    ],
)
def test_has_where_in_dialects(dialect: str, sql: str, expected: bool) -> None:
    stmt = analyze(sql, dialect=dialect).statements[0]
    assert stmt.kind in ("delete", "update")
    assert stmt.has_where is expected


def test_a_writing_cte_is_judged_on_its_own_where() -> None:
    facts = analyze(
        "WITH d AS (DELETE FROM users WHERE id = id RETURNING *) SELECT * FROM d",
        dialect="postgres",
    )
    delete = next(s for s in facts.statements if s.kind == "delete")
    assert delete.path == "0.cte[d]"
    assert delete.has_where is False


@pytest.mark.parametrize(
    ("dialect", "sql", "upsert", "bounded"),
    [
        ("postgres", "INSERT INTO t SELECT * FROM s ON CONFLICT (id) DO UPDATE SET x = 1", True, False),
        ("postgres", "INSERT INTO t SELECT * FROM s WHERE id = 3 ON CONFLICT (id) DO UPDATE SET x = 1", True, True),
        ("postgres", "INSERT INTO t VALUES (1, 2) ON CONFLICT (id) DO UPDATE SET x = 1", True, True),
        ("postgres", "INSERT INTO t SELECT * FROM s ON CONFLICT DO NOTHING", False, False),
        ("mysql", "INSERT INTO t SELECT * FROM s ON DUPLICATE KEY UPDATE x = 1", True, False),
        ("sqlite", "INSERT OR REPLACE INTO t SELECT * FROM s", True, False),
        ("mysql", "REPLACE INTO t SELECT * FROM s", True, False),
        ("mysql", "REPLACE INTO t VALUES (1)", True, True),
        ("postgres", "INSERT INTO t SELECT * FROM s", False, False),
    ],
)
def test_upserts_are_marked_and_bounded_by_their_rows(
    dialect: str, sql: str, upsert: bool, bounded: bool
) -> None:
    stmt = analyze(sql, dialect=dialect).statements[0]
    assert stmt.kind == "insert"
    assert stmt.upsert is upsert
    if upsert:
        assert stmt.has_where is bounded


def test_merge_is_an_upsert_without_a_bound() -> None:
    stmt = analyze(
        "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET x = s.x",
        dialect="postgres",
    ).statements[0]
    assert (stmt.kind, stmt.upsert, stmt.has_where) == ("merge", True, False)
