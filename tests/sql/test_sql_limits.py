"""Bounded analysis: statements too deep or too large are unparseable facts (never a silent
truncation, never a traceback), and the WHERE test gives up on huge conditions as unbounded."""

from __future__ import annotations

import pytest

from subguard.sql import analyze
from subguard.sql._draft import MAX_DEPTH
from subguard.sql._parse import MAX_NAMES, MAX_NESTING, MAX_QUERIES
from subguard.sql._where import MAX_WHERE_NODES


def _tautologies(n: int) -> str:
    return "DELETE FROM t WHERE " + " OR ".join(f"(b{i} = b{i})" for i in range(n))


def _nested_subqueries(n: int) -> str:
    return "SELECT * FROM " + "(SELECT * FROM " * n + "users" + ") x" * n


def _cte_chain(n: int) -> str:
    ctes = ", ".join(
        f"c{i} AS (SELECT * FROM c{i - 1})" if i else "c0 AS (SELECT 1)" for i in range(n)
    )
    return f"WITH {ctes} DELETE FROM users WHERE id IN (SELECT * FROM c{n - 1})"


def test_tautology_chain_of_600_terms_is_unbounded() -> None:
    # once a RecursionError in the simplifier, reported as an analysis failure
    facts = analyze(_tautologies(600), dialect="postgres")
    assert facts.parse_error is None
    (stmt,) = facts.statements
    assert (stmt.kind, stmt.has_where) == ("delete", False)


def test_tautology_chain_of_4000_terms_is_too_complex_not_slow() -> None:
    # 8,000 names: resolving each through the scopes was the cost (97 s once)
    facts = analyze(_tautologies(4000), dialect="postgres")
    assert facts.parse_error is not None and f"more than {MAX_NAMES} names" in facts.parse_error
    assert [s.kind for s in facts.statements] == ["unparseable"]


def test_names_at_the_limit_are_analysed() -> None:
    sql = "SELECT " + ", ".join(f"a{i}" for i in range(MAX_NAMES - 1)) + " FROM t"
    facts = analyze(sql, dialect="postgres")
    assert facts.parse_error is None and facts.tables_read == frozenset({"t"})


def test_a_long_bounding_condition_within_the_limit_is_still_bounded() -> None:
    # 3,000 terms of `id = k`: 15,000 nodes, under MAX_WHERE_NODES; once a
    # RecursionError in the simplifier turned this into an analysis failure
    sql = "DELETE FROM t WHERE " + " OR ".join(f"id = {i}" for i in range(3000))
    facts = analyze(sql, dialect="postgres")
    assert facts.parse_error is None
    assert facts.statements[0].has_where is True


def test_a_bounding_condition_beyond_the_limit_counts_as_unbounded() -> None:
    n = MAX_WHERE_NODES + 10
    sql = "DELETE FROM t WHERE id IN (" + ", ".join(str(i) for i in range(n)) + ")"
    facts = analyze(sql, dialect="postgres")
    assert facts.parse_error is None
    assert facts.statements[0].has_where is False


@pytest.mark.parametrize("n", [MAX_NESTING + 1, 4000])
def test_4000_nested_subqueries_are_a_parse_error(n: int) -> None:
    facts = analyze(_nested_subqueries(n), dialect="postgres")
    assert facts.parse_error is not None and "too complex" in facts.parse_error
    assert [s.kind for s in facts.statements] == ["unparseable"]


def test_nesting_at_the_limit_is_analysed() -> None:
    facts = analyze(_nested_subqueries(MAX_NESTING - 1), dialect="postgres")
    assert facts.parse_error is None
    assert facts.tables_read == frozenset({"users"})


@pytest.mark.parametrize("n", [MAX_QUERIES + 1, 2000])
def test_2000_chained_ctes_are_a_parse_error(n: int) -> None:
    facts = analyze(_cte_chain(n), dialect="postgres")
    assert facts.parse_error is not None and "more than" in facts.parse_error
    assert [s.kind for s in facts.statements] == ["unparseable"]


def test_a_cte_chain_at_the_limit_is_analysed() -> None:
    facts = analyze(_cte_chain(MAX_QUERIES - 1), dialect="postgres")
    assert facts.parse_error is None
    assert "users" in facts.tables_written


def test_deep_parentheses_are_a_parse_error() -> None:
    sql = "DELETE FROM t WHERE " + "(" * 5000 + "id = 1" + ")" * 5000
    facts = analyze(sql, dialect="postgres")
    assert facts.parse_error is not None and "parentheses nested deeper" in facts.parse_error
    assert facts.statements[0].kind == "unparseable"


def test_too_complex_is_reported_in_the_right_statement() -> None:
    sql = "SELECT 1; " + _nested_subqueries(MAX_NESTING + 5)
    facts = analyze(sql, dialect="postgres")
    assert facts.parse_error is not None and facts.parse_error.startswith("statement 2:")
    assert [s.kind for s in facts.statements] == ["select", "unparseable"]


def _execute_nest(depth: int) -> str:
    sql = "EXECUTE 'DELETE FROM users'"
    for _ in range(depth):
        sql = "EXECUTE '" + sql.replace("'", "''") + "'"
    return sql


def test_execute_nested_five_deep_is_opaque_not_dropped() -> None:
    facts = analyze(_execute_nest(MAX_DEPTH), dialect="tsql")
    inner = facts.statements[-1]
    assert inner.kind == "unparseable" and inner.nested and inner.opaque_code
    assert inner.path == "0" + ".execute" * (MAX_DEPTH + 1)


def test_execute_nested_within_the_depth_is_followed() -> None:
    facts = analyze(_execute_nest(MAX_DEPTH - 1), dialect="tsql")
    assert facts.statements[-1].kind == "delete"
    assert "users" in facts.tables_written


def test_recursion_error_in_the_parser_or_analysis_is_a_parse_error() -> None:
    # a host with a small stack (or a deep call site) still gets facts, never a traceback
    import inspect
    import sys

    sql = _nested_subqueries(MAX_NESTING - 5)
    analyze("SELECT 1", dialect="postgres")  # dialect loaded outside the squeeze
    errors = []
    old = sys.getrecursionlimit()
    for extra in range(30, 130, 10):
        sys.setrecursionlimit(len(inspect.stack(0)) + extra)
        try:
            facts = analyze(f"{sql} -- {extra}", dialect="postgres")
        finally:
            sys.setrecursionlimit(old)
        if facts.parse_error is not None:
            assert [s.kind for s in facts.statements] == ["unparseable"]
            errors.append(facts.parse_error)
    assert any("RecursionError" in e for e in errors)
