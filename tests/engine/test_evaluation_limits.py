"""Bounded policy evaluation: regexes on RE2 (no backtracking), and a budget of loop
iterations and allocations per evaluation whose excess fails closed (`budget_exceeded`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import subguard
from subguard import CommandRequest, Effect, Engine, SqlRequest
from subguard.lang.budget import DEFAULT_BUDGET


def _engine(tmp_path: Path, body: str) -> Engine:
    (tmp_path / "p.guard").write_text(f"package p\n\n{body}\n\ndefault allow := true\n")
    return Engine(subguard.load_policy(tmp_path))


def _load_errors(tmp_path: Path, body: str) -> list[tuple[str, int, int]]:
    (tmp_path / "p.guard").write_text(f"package p\n\n{body}\n")
    with pytest.raises(subguard.PolicyErrors) as info:
        subguard.load_policy(tmp_path)
    return [(e.code, e.location.line, e.location.col) for e in info.value.errors]


def _decide(engine: Engine, subject: str = "bot") -> Any:
    return engine.check(SqlRequest("SELECT 1"), subject=subject)


# ── RE2 ─────────────────────────────────────────────────────────────────────────────


def test_regex_match_redos_pattern_is_linear(tmp_path: Path) -> None:
    # with backtracking `re` this pattern on 27 characters took 8 s, on 40 it would take
    # hours: RE2 answers at once
    engine = _engine(tmp_path, 'deny contains "a run of a" if regex.match("^(a+)+$", input.subject.id)')
    assert _decide(engine, "a" * 40 + "b").effect is Effect.ALLOW
    assert _decide(engine, "a" * 40).effect is Effect.DENY


@pytest.mark.parametrize(
    ("call", "column"),
    [
        ('regex.match("(a)\\\\1", input.subject.id)', 34),
        ('regex.match("(?=admin)", input.subject.id)', 34),
        ('regex.split("(?<!x)y", input.subject.id) == []', 34),
        ('glob.match("{a,b", [], input.subject.id)', 33),
    ],
)
def test_constant_pattern_re2_rejects_is_a_load_error_with_its_place(tmp_path: Path, call: str, column: int) -> None:
    errors = _load_errors(tmp_path, f'deny contains "x" if {call}')
    assert errors == [("invalid_regex", 3, column)]


def test_computed_pattern_re2_rejects_fails_closed(tmp_path: Path) -> None:
    engine = _engine(tmp_path, 'deny contains "x" if regex.match(input.subject.id, "abc")')
    decision = _decide(engine, "(a)\\1")
    assert decision.effect is Effect.DENY
    assert [e.code for e in decision.errors] == ["builtin_error"]
    assert decision.errors[0].location.endswith("p.guard:3")
    # the pattern came from the request: the error names RE2's reason, not the pattern
    assert "(a)" not in decision.errors[0].message


def test_regex_is_valid_is_false_for_what_re2_rejects(tmp_path: Path) -> None:
    engine = _engine(
        tmp_path,
        'deny contains "valid" if regex.is_valid(input.subject.id)',
    )
    assert _decide(engine, "(?=a)").effect is Effect.ALLOW
    assert _decide(engine, "^a+$").effect is Effect.DENY


def test_regex_semantics_kept_on_re2(tmp_path: Path) -> None:
    engine = _engine(
        tmp_path,
        'deny contains "x" if {\n'
        '    regex.match("(?i)^DROP\\\\s+table", input.subject.id)\n'
        '    regex.split("[,;]", input.subject.id) == ["drop table x", "y"]\n'
        '    glob.match("drop*", [], input.subject.id)\n'
        "}",
    )
    assert _decide(engine, "drop table x;y").effect is Effect.DENY
    assert _decide(engine, "select x;y").effect is Effect.ALLOW


# ── budget ──────────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    "body",
    [
        # `numbers.range(1, 1e9)` once ate 16 GB
        'deny contains "x" if {\n    some n in numbers.range(1, 1e9)\n    n == -1\n}',
        # nested `some … in`: two million iterations
        'deny contains "x" if {\n    xs := numbers.range(1, 1500)\n    some a in xs\n    some b in xs\n    a + b == -1\n}',
        # a comprehension
        'deny contains "x" if {\n    xs := numbers.range(1, 1500)\n    count([a + b | some a in xs; some b in xs]) == 0\n}',
        # `every`
        'deny contains "x" if {\n    xs := numbers.range(1, 1500)\n    every a in xs {\n        every b in xs {\n            a != -b\n        }\n    }\n}',
        # iteration by reference `xs[i]`
        'deny contains "x" if {\n    xs := numbers.range(1, 1500)\n    xs[i] + xs[j] == -1\n}',
        # allocations that multiply: padding, replace, concat
        'deny contains msg if msg := sprintf("%999999999d", [1])',
        'deny contains "x" if {\n    a := concat("", ["a" | some _ in numbers.range(1, 50000)])\n'
        '    count(replace(a, "", a)) == 0\n}',
        'deny contains "x" if {\n    xs := numbers.range(1, 900000)\n    ys := array.concat(xs, xs)\n    count(ys) == 0\n}',
    ],
    ids=["range_1e9", "some_in", "comprehension", "every", "ref_iteration", "sprintf_width", "replace", "array_concat"],
)
def test_numbers_range_1e9_and_unbounded_loops_are_budget_exceeded(tmp_path: Path, body: str) -> None:
    decision = _decide(_engine(tmp_path, body))
    assert decision.effect is Effect.DENY
    assert [e.code for e in decision.errors] == ["budget_exceeded"]
    assert decision.errors[0].location.endswith("p.guard:3")


def test_with_and_functions_cannot_escape_the_budget(tmp_path: Path) -> None:
    body = (
        "pairs(xs) := n if n := count([a + b | some a in xs; some b in xs])\n\n"
        'deny contains "x" if {\n'
        "    pairs(numbers.range(1, 1500)) == 0 with input.subject.id as \"other\"\n"
        "}"
    )
    decision = _decide(_engine(tmp_path, body))
    assert [e.code for e in decision.errors] == ["budget_exceeded"]


def test_the_budget_is_per_evaluation(tmp_path: Path) -> None:
    # 0.6 of the budget per evaluation: every evaluation stays within it
    n = int((0.6 * DEFAULT_BUDGET) ** 0.5)
    body = f'deny contains "x" if {{\n    xs := numbers.range(1, {n})\n    some a in xs\n    some b in xs\n    a + b == -1\n}}'
    engine = _engine(tmp_path, body)
    for _ in range(3):
        decision = _decide(engine)
        assert decision.effect is Effect.ALLOW and decision.errors == ()


def test_a_budget_exceeded_rule_never_allows_under_default_allow(tmp_path: Path) -> None:
    body = 'allow if {\n    some n in numbers.range(1, 1e9)\n    n > 0\n}'
    (tmp_path / "p.guard").write_text(f"package p\n\n{body}\n")
    decision = _decide(Engine(subguard.load_policy(tmp_path)))
    assert decision.effect is Effect.DENY
    assert [e.code for e in decision.errors] == ["budget_exceeded"]


@pytest.mark.parametrize(
    "body",
    [
        # a builtin reading the whole request text once per argument
        'deny contains "x" if {\n    some a in input.command.argv\n'
        '    contains(input.request.text, concat("", [a, "zz"]))\n}',
        # a membership scan of the argument list once per argument
        'deny contains "x" if {\n    some a in input.command.argv\n'
        '    not concat("", [a, "z"]) in input.command.argv\n    a == "nope"\n}',
    ],
    ids=["builtin_reads_large_text", "membership_scans_large_array"],
)
def test_reading_a_large_input_once_per_iteration_is_charged(tmp_path: Path, body: str) -> None:
    engine = _engine(tmp_path, body)
    small = engine.check(CommandRequest("ls " + "a " * 100))
    assert small.effect is Effect.ALLOW and small.errors == ()
    # 19,000 arguments: under the command reader's word limit (20,000), so the rule runs
    # and it is the budget that refuses (19,000 reads of a 38 KB text; 19,000² elements)
    large = engine.check(CommandRequest("ls " + "a " * 19_000))
    assert large.effect is Effect.DENY
    assert [e.code for e in large.errors] == ["budget_exceeded"]
