"""`has_where`'s fast path never says yes where sqlglot's simplifier would say no."""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp
from sqlglot.optimizer.simplify import simplify

from subguard.sql import analyze
from subguard.sql._describe import _plainly_bounded

CORPUS = Path(__file__).resolve().parent.parent / "corpora" / "sqlglot"

ATOMS = [
    "x = 1", "x = NULL", "x IS NULL", "x IS NOT NULL", "1 = 1", "1 = 0", "NULL", "TRUE",
    "FALSE", "x = x", "x = y", "x IN (1, 2)", "x IN (SELECT 1)", "x IN (SELECT NULL)",
    "x BETWEEN 1 AND 2", "x BETWEEN 2 AND 1", "x < CURRENT_TIMESTAMP - INTERVAL '1' DAY",
    "x = 1 / 0", "x = CAST(NULL AS INT)", "x = (SELECT 1)", "x = (SELECT NULL)",
    "CAST(x AS DATE) <= CAST('1998-12-01' AS DATE) - INTERVAL '90' DAY", "x <> 1", "x > 2",
    "NOT x = 1", "x LIKE '%'", "EXISTS(SELECT 1)", "x = -1", "x = 1 + 2 * 3", "x = TRUE",
    "x = DATE '2020-13-45'", "x = CAST('abc' AS INT)", "1 < x", "x = 'a'", "x = ?",
    "RANDOM() > 0.5", "x IN (NULL)", "TRY_CAST(x AS INT) = 1", "x = TRY_CAST('a' AS INT)",
    "x NOT LIKE 'a%'", "x ILIKE '%'", "x LIKE NULL", "x NOT IN (1, 2)", "x IS NOT NULL",
    "x", "NOT x", "t.x = u.x", "t.x = t.x", "x <> y", "x < y", "y = x", "t.x = x", "NOT y",
]  # fmt: skip


def _simplifier_verdict(condition: exp.Expr) -> bool:
    """`has_where` as the simplifier alone decides it (the definition the fast path keeps)."""
    try:
        simplified = simplify(condition.copy())
    except Exception:
        simplified = condition
    if isinstance(simplified, exp.Boolean):
        return not simplified.this
    branches = list(simplified.flatten()) if isinstance(simplified, exp.Or) else [simplified]
    return all(b.find(exp.Column) is not None for b in branches)


def _corpus_conditions() -> list[exp.Expr]:
    texts = [ln for ln in (CORPUS / "identity.sql").read_text().splitlines() if ln.strip()]
    for name in ("tpc-h.sql", "tpc-ds.sql"):
        chunks = re.split(r";\s*\n", (CORPUS / name).read_text())
        texts += ["\n".join(ln for ln in c.splitlines() if not ln.startswith("#")) for c in chunks]
    found: list[exp.Expr] = []
    for text in texts:
        try:
            trees = sqlglot.parse(text)
        except Exception:
            continue
        for tree in trees:
            if tree is not None:
                found.extend(w.this for w in tree.find_all(exp.Where))
    return found


def _condition(rnd: random.Random, depth: int) -> str:
    if depth == 0 or rnd.random() < 0.3:
        return rnd.choice(ATOMS)
    parts = [_condition(rnd, depth - 1) for _ in range(rnd.randint(2, 3))]
    text = rnd.choice([" AND ", " AND ", " OR "]).join(parts)
    return f"({text})" if rnd.random() < 0.5 else text


def _generated_conditions(count: int) -> list[exp.Expr]:
    rnd = random.Random(0)
    found: list[exp.Expr] = []
    for _ in range(count):
        text = _condition(rnd, 3)
        where = sqlglot.parse_one(f"SELECT 1 FROM t WHERE {text}").args["where"]
        found.append(where.this)
    return found


@pytest.mark.parametrize("source", ["corpus", "generated"])
def test_fast_path_agrees_with_the_simplifier(source: str) -> None:
    conditions = _corpus_conditions() if source == "corpus" else _generated_conditions(1500)
    fast = [c for c in conditions if _plainly_bounded(c)]
    assert len(fast) > 100
    wrong = [c.sql() for c in fast if not _simplifier_verdict(c)]
    assert not wrong


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("created_at > now() - interval '1 day'", True),
        ("CAST(d AS DATE) <= DATE '1998-12-01' - INTERVAL '90' DAY", True),
        ("price BETWEEN 10 AND 20 AND category IN ('a', 'b')", True),
        ("id IN (SELECT user_id FROM orders)", True),
        ("amount IS NULL", True),
        ("email LIKE '%@example.com'", True),
        ("(a = 1 AND b = c) OR (a = 2 AND b > 3)", True),
        ("t.a = u.b", True),
        ("active", True),
        ("a = a OR 1 = 1", False),
        ("(a = 1 AND b = c) OR 2 > 1", False),
        ("x = NULL OR 1 = 1", False),
        ("now() > DATE '2000-01-01'", False),
        ("EXISTS (SELECT 1 FROM t2)", False),
    ],
)
def test_has_where_on_pinned_and_constant_conditions(where: str, expected: bool) -> None:
    facts = analyze(f"DELETE FROM t WHERE {where}", dialect="postgres")
    assert facts.statements[0].has_where is expected
