"""Hypothesis properties of `analyze` and `redact` on generated SQL."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from subguard.sql import analyze, redact

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# A statement is a list of (text, is_keyword) tokens, rendered with chosen spacing and case.
Token = tuple[str, bool]

names = st.sampled_from(["users", "orders", "audit_log", "accounts", "items"])
columns = st.sampled_from(["id", "email", "total", "status", "owner"])
# Marked literal values: letters only after a marker, or large numbers, so a leak is visible.
strings = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=4, max_size=10).map(
    lambda s: "zq" + s
)
numbers = st.integers(min_value=100000, max_value=10**9)
literals = st.one_of(strings.map(lambda s: (f"'{s}'", s)), numbers.map(lambda n: (str(n), str(n))))


@st.composite
def predicate(draw: st.DrawFn) -> tuple[list[Token], list[str]]:
    col = draw(columns)
    op = draw(st.sampled_from(["=", "<>", ">", "<"]))
    lit, value = draw(literals)
    toks: list[Token] = [(col, False), (op, False), (lit, False)]
    values = [value]
    if draw(st.booleans()):
        col2 = draw(columns)
        lit2, value2 = draw(literals)
        toks += [
            (draw(st.sampled_from(["AND", "OR"])), True),
            (col2, False),
            ("=", False),
            (lit2, False),
        ]
        values.append(value2)
    return toks, values


@st.composite
def statement(draw: st.DrawFn) -> tuple[list[Token], list[str], str | None]:
    """A statement's tokens, its literal values, and the table it writes (if any)."""
    table = draw(names)
    where, values = draw(predicate())
    kind = draw(st.sampled_from(["select", "update", "delete", "insert"]))
    if kind == "select":
        cols = draw(st.lists(columns, min_size=1, max_size=3, unique=True))
        toks: list[Token] = [("SELECT", True)]
        for i, c in enumerate(cols):
            toks += ([(",", False)] if i else []) + [(c, False)]
        toks += [("FROM", True), (table, False), ("WHERE", True), *where]
        return toks, values, None
    if kind == "update":
        col = draw(columns)
        lit, value = draw(literals)
        toks = [("UPDATE", True), (table, False), ("SET", True), (col, False), ("=", False), (lit, False),
                ("WHERE", True), *where]  # fmt: skip
        return toks, [value, *values], table
    if kind == "delete":
        return (
            [("DELETE", True), ("FROM", True), (table, False), ("WHERE", True), *where],
            values,
            table,
        )
    lit, value = draw(literals)
    toks = [("INSERT", True), ("INTO", True), (table, False), ("(", False), (draw(columns), False),
            (")", False), ("VALUES", True), ("(", False), (lit, False), (")", False)]  # fmt: skip
    return toks, [value], table


def render(toks: list[Token], spaces: list[str], upper: list[bool]) -> str:
    out = []
    for i, (text, keyword) in enumerate(toks):
        if keyword:
            text = text.upper() if upper[i % len(upper)] else text.lower()
        out.append(text)
        out.append(spaces[i % len(spaces)])
    return "".join(out)


separators = st.lists(
    st.sampled_from([" ", "  ", "\n", "\t", " /* note */ ", " -- note\n", "\n\n  "]),
    min_size=1,
    max_size=6,
)
cases = st.lists(st.booleans(), min_size=1, max_size=6)


def facts_view(text: str) -> tuple[object, ...]:
    f = analyze(text, dialect="postgres")
    return (
        f.statements,
        f.tables_read,
        f.tables_written,
        f.columns_read,
        f.functions,
        f.parse_error is None,
        f.redacted,
        f.fingerprint,
        f.exact_hash,
    )


@SETTINGS
@given(st.text(max_size=200), st.sampled_from([None, "postgres", "mysql", "tsql", "bigquery"]))
def test_analyze_never_raises_on_any_text(text: str, dialect: str | None) -> None:
    facts = analyze(text, dialect=dialect)
    assert facts.statements
    assert isinstance(redact(text, dialect), str)


@SETTINGS
@given(statement(), separators, separators, cases)
def test_whitespace_comments_and_keyword_case_change_no_fact(
    stmt: tuple[list[Token], list[str], str | None],
    spaces_a: list[str],
    spaces_b: list[str],
    upper: list[bool],
) -> None:
    toks, _, _ = stmt
    plain = render(toks, [" "], [True])
    varied = render(toks, spaces_b, upper)
    assert facts_view(plain) == facts_view(varied)
    assert facts_view(render(toks, spaces_a, [False])) == facts_view(varied)


@SETTINGS
@given(statement())
def test_wrapping_a_write_in_a_cte_keeps_it_written(
    stmt: tuple[list[Token], list[str], str | None],
) -> None:
    toks, _, table = stmt
    text = render(toks, [" "], [True])
    if table is None:
        return
    wrapped = f"WITH w AS ({text} RETURNING *) SELECT * FROM w"
    facts = analyze(wrapped, dialect="postgres")
    assert facts.parse_error is None
    assert table in facts.tables_written
    assert any(s.nested and table in s.tables_written for s in facts.statements)


@SETTINGS
@given(st.lists(statement(), min_size=1, max_size=3), st.sampled_from([None, "postgres", "mysql"]))
def test_redact_leaves_no_literal_value(
    stmts: list[tuple[list[Token], list[str], str | None]], dialect: str | None
) -> None:
    text = "; ".join(render(t, [" "], [True]) for t, _, _ in stmts)
    out = redact(text, dialect)
    facts = analyze(text, dialect=dialect)
    for _, values, _ in stmts:
        for value in values:
            assert value not in out
            assert value not in facts.redacted
            assert value not in (facts.parse_error or "")
