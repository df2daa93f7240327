"""The shape cache: facts shared by texts that differ only in literals are the fresh facts.

A wrong hit is a bypass, so each property compares what the cache returns for a text with
a fresh analysis of that same text, after another text of its shape filled the cache.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from subguard.sql import CACHE, analyze
from subguard.sql._analyze import SHAPE_CACHE
from subguard.sql._tokens import tokenize

CORPUS = Path(__file__).resolve().parent.parent / "corpora" / "sqlglot"
SCHEMAS = json.loads((CORPUS / "schemas.json").read_text())

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _fresh(text: str, dialect: str | None = None, schema: Any = None) -> Any:
    CACHE.clear()
    SHAPE_CACHE.clear()
    return analyze(text, dialect=dialect, schema=schema)


def _after(seed: str, text: str, dialect: str | None = None, schema: Any = None) -> Any:
    """`text`'s facts when `seed` (another text of its shape, or itself) was analysed first."""
    CACHE.clear()
    SHAPE_CACHE.clear()
    analyze(seed, dialect=dialect, schema=schema)
    return analyze(text, dialect=dialect, schema=schema)


def _same(got: Any, want: Any) -> None:
    assert got == want
    assert got.to_input() == want.to_input()
    assert (got.redacted, got.fingerprint, got.exact_hash) == (
        want.redacted,
        want.fingerprint,
        want.exact_hash,
    )


# -- generated statements with literal slots ------------------------------------------

#: Values chosen to flip literal-dependent facts: tautologies, setting names, SQL and
#: file names in strings, positions, interval text, JSON keys.
STRING_VALUES = [
    "x", "", "1", "a''b", "select * from secrets", "DROP TABLE users", "search_path",
    "role", "s3://bucket/k", "/etc/passwd", "1 day", "$.a", "email", "%", "id",
    "delete from users", "postgres",
]  # fmt: skip
NUMBER_VALUES = ["0", "1", "2", "5", "-1", "42", "1.5", "1000000", "3"]

TEMPLATES = [
    "SELECT abalance FROM pgbench_accounts WHERE aid = {n}",
    "UPDATE pgbench_accounts SET abalance = abalance + {n} WHERE aid = {n}",
    "UPDATE pgbench_tellers SET tbalance = tbalance + -{n} WHERE tid = {n}",
    "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) "
    "VALUES ({n}, {n}, {n}, {n}, CURRENT_TIMESTAMP)",
    "DELETE FROM users WHERE {a} = {a}",
    "DELETE FROM users WHERE id = {a} OR {a} = {a}",
    "DELETE FROM users WHERE id = {a} OR id <> {a}",
    "DELETE FROM users WHERE id > {n} AND id < {n}",
    "DELETE FROM users WHERE id BETWEEN {n} AND {n}",
    "UPDATE users SET email = {s} WHERE {a} = {a}",
    "UPDATE users SET email = {s} WHERE id IN ({n}, {n})",
    "SELECT {a} FROM users",
    "SELECT id, {a} AS k FROM users WHERE id = {n}",
    "SELECT id FROM users ORDER BY {n}",
    "SELECT id, count(*) FROM users GROUP BY {n} HAVING count(*) > {n}",
    "SELECT id FROM users WHERE created > now() - INTERVAL {s}",
    "SELECT data->>{s} FROM users WHERE id = {n}",
    "SELECT id FROM users WHERE data->>{s} = {s}",
    "SELECT set_config({s}, {s}, false)",
    "SET search_path = {s}",
    "SET ROLE {s}",
    "SELECT * FROM query_to_xml({s}, true, true, '')",
    "SELECT * FROM dblink({s}, {s}) AS t(a int)",
    "COPY users TO {s}",
    "COPY users FROM PROGRAM {s}",
    "SELECT id FROM users LIMIT {n} OFFSET {n}",
    "SELECT u.id FROM users u JOIN orders o ON o.uid = u.id AND o.total > {n} "
    "WHERE u.id IN ({n}, {n})",
    "INSERT INTO users (id, email) VALUES ({n}, {s}) ON CONFLICT (id) DO UPDATE SET email = {s}",
    "SELECT * FROM users WHERE email LIKE {s}",
    "DELETE FROM users WHERE id = {n}; DELETE FROM users WHERE {a} = {a}",
    "SELECT CAST({s} AS INT) FROM users WHERE id = {n}",
    "SELECT id FROM users WHERE id = {n} UNION SELECT id FROM orders WHERE total < {n}",
    "DO {s}",
    "EXECUTE {s}",
    "SELECT id FROM users WHERE id = (SELECT {a})",
    "SELECT id FROM users WHERE (id, email) IN (({n}, {s}))",
    "INSERT INTO users SELECT {a}, email FROM users WHERE id = {n}",
    "SELECT id FROM users WHERE id = {n} FOR UPDATE",
    "SELECT {n} = {n} FROM users",
    "DELETE FROM users WHERE NOT (id = {n})",
    "UPDATE users SET total = total * {n} / {n} WHERE id = {n} RETURNING {a}",
]
DIALECTS = [None, "postgres", "mysql", "sqlite", "tsql"]


def _literal(kind: str, draw: st.DrawFn) -> str:
    if kind == "a":
        kind = draw(st.sampled_from("ns"))
    if kind == "n":
        return draw(st.sampled_from(NUMBER_VALUES))
    return "'" + draw(st.sampled_from(STRING_VALUES)) + "'"


@st.composite
def filled_pair(draw: st.DrawFn) -> tuple[str, str, str | None]:
    template = draw(st.sampled_from(TEMPLATES))
    slots = re.findall(r"\{([nsa])\}", template)
    texts = []
    for _ in range(2):
        values = iter([_literal(k, draw) for k in slots])
        texts.append(re.sub(r"\{[nsa]\}", lambda _m, v=values: next(v), template))
    return texts[0], texts[1], draw(st.sampled_from(DIALECTS))


@SETTINGS
@given(filled_pair())
def test_shape_shared_facts_equal_a_fresh_analysis(pair: tuple[str, str, str | None]) -> None:
    seed, text, dialect = pair
    _same(_after(seed, text, dialect), _fresh(text, dialect))


@SETTINGS
@given(filled_pair())
def test_shape_shared_facts_equal_a_fresh_analysis_with_a_schema(
    pair: tuple[str, str, str | None],
) -> None:
    seed, text, dialect = pair
    schema = {"users": {"id": "int", "email": "text", "data": "json", "total": "int"}}
    _same(_after(seed, text, dialect, schema), _fresh(text, dialect, schema))


# -- what is and is not shared ----------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "SELECT abalance FROM pgbench_accounts WHERE aid = 1",
        "UPDATE pgbench_accounts SET abalance = abalance + -4012 WHERE aid = 5",
        "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) "
        "VALUES (1, 2, 3, -4012, CURRENT_TIMESTAMP)",
        "SELECT id FROM users WHERE email = 'a@b.c' LIMIT 10",
        "BEGIN",
    ],
)
def test_literal_independent_shapes_are_shared(text: str) -> None:
    _fresh(text, "postgres")
    assert len(SHAPE_CACHE) == 1


@pytest.mark.parametrize(
    "text",
    [
        "DELETE FROM users WHERE 1 = 1",
        "DELETE FROM users WHERE id = 1 OR 2 = 2",
        "SELECT 'x' FROM users",
        "SELECT id FROM users ORDER BY 1",
        "SELECT id FROM users WHERE created > now() - INTERVAL '1 day'",
        "SELECT data->>'k' FROM users",
        "SELECT set_config('role', 'admin', false)",
        "SET search_path = 'x'",
        "SELECT * FROM query_to_xml('select 1', true, true, '')",
        "COPY users TO '/tmp/x'",
        "INSERT INTO users (id) VALUES (1) ON CONFLICT (id) DO UPDATE SET id = 2",
        "SELECT CAST('1' AS INT)",
        "DO 'begin end'",
        "SELECT id FROM users WHERE email = E'x'",
        "VACUUM users",
        "SELEC id FROM users WHERE id = 1",
    ],
)
def test_literal_dependent_shapes_are_analysed_per_text(text: str) -> None:
    _fresh(text, "postgres")
    assert len(SHAPE_CACHE) == 0


def test_a_shared_hit_keeps_its_own_exact_hash() -> None:
    first = _fresh("SELECT abalance FROM pgbench_accounts WHERE aid = 1", "postgres")
    second = analyze("SELECT abalance FROM pgbench_accounts WHERE aid = 2", dialect="postgres")
    assert SHAPE_CACHE.hits == 1
    assert second.fingerprint == first.fingerprint
    assert second.exact_hash != first.exact_hash
    assert "2" not in second.redacted


def test_clearing_the_analysis_cache_clears_the_shape_cache() -> None:
    _fresh("SELECT abalance FROM pgbench_accounts WHERE aid = 1", "postgres")
    assert len(SHAPE_CACHE) == 1
    CACHE.clear()
    assert len(SHAPE_CACHE) == 0


def test_the_schema_version_is_part_of_the_shape_key() -> None:
    text = "SELECT email FROM users WHERE id = 1"
    _fresh(text, "postgres", {"users": {"id": "int", "email": "text"}})
    tagged = {"users": {"id": "int", "email": {"type": "text", "tags": ["pii"]}}}
    _same(
        analyze("SELECT email FROM users WHERE id = 2", dialect="postgres", schema=tagged),
        _fresh("SELECT email FROM users WHERE id = 2", "postgres", tagged),
    )


# -- every corpus statement, its literals changed ---------------------------------------

_NEW_NUMBERS = ["7", "0", "123456"]
_NEW_STRINGS = ["'zz'", "'select * from secrets'", "''"]


def _relit(text: str, dialect: str, round_: int) -> str:
    """`text` with each plain string and number literal replaced by another value."""
    try:
        tokens = tokenize(text, dialect)
    except Exception:
        return text
    out, at = [], 0
    for i, tok in enumerate(tokens):
        name = tok.token_type.name
        if name not in ("NUMBER", "STRING") or text[tok.start : tok.end + 1] != (
            tok.text if name == "NUMBER" else f"'{tok.text}'"
        ):
            continue
        pool = _NEW_NUMBERS if name == "NUMBER" else _NEW_STRINGS
        out += [text[at : tok.start], pool[(i + round_) % len(pool)]]
        at = tok.end + 1
    return "".join([*out, text[at:]])


def _corpus() -> list[tuple[str, Any]]:
    lines = [ln for ln in (CORPUS / "identity.sql").read_text().splitlines() if ln.strip()]
    cases: list[tuple[str, Any]] = [(ln, None) for ln in lines]
    for name, schema in (("tpc-h.sql", "tpch"), ("tpc-ds.sql", "tpcds")):
        text = (CORPUS / name).read_text()
        chunks = [c for c in re.split(r";\s*\n", text) if c.strip()]
        cleaned = ["\n".join(x for x in c.splitlines() if not x.startswith("#")) for c in chunks]
        cases += [(q, SCHEMAS[schema]) for q in cleaned[0::2]]
    return cases


def test_every_corpus_statement_shared_by_shape_equals_a_fresh_analysis() -> None:
    shared = 0
    cases = _corpus()
    assert len(cases) > 1000
    for text, schema in cases:
        for round_ in (0, 1):
            other = _relit(text, "", round_)
            got = _after(text, other, None, schema)
            shared += SHAPE_CACHE.hits
            _same(got, _fresh(other, None, schema))
    assert shared > 100  # the cache is exercised, not only bypassed


def test_a_texts_facts_from_its_shape_equal_evolving_the_shapes_facts() -> None:
    """`_with_exact_hash` builds the facts field by field: every field but the exact hash
    comes from the shape's facts (a field added to `SqlFacts` and missed there fails here)."""
    import attrs

    from subguard.sql._analyze import _with_exact_hash

    text = "SELECT a, b FROM t JOIN u ON t.id = u.id WHERE t.x = 5"
    for shared in (analyze(text, dialect="postgres"), analyze(text, dialect="postgres", columns=False)):
        facts = _with_exact_hash(shared, "another-exact-hash")
        assert facts == attrs.evolve(shared, exact_hash="another-exact-hash")
        assert facts.to_input() is shared.to_input()
