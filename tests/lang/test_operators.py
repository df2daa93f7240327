"""Operators on values of any type, the wrong ones included, mean what they mean in Rego
and never what they mean in Python: `"dba" in "not-a-dba-list"` is no substring test,
`true == 1` does not hold, `true < 0.5` orders by type. The compiled policy agrees with
the reference evaluator on every operator over generated values, untyped and typed."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reference import ERROR, evaluate_all

from subguard.engine.schema import INPUT_TYPE, RECORDS
from subguard.lang import Schema, compile_policy, parse_module
from subguard.lang.values import equal, freeze

SCHEMA = Schema.from_strings(RECORDS, INPUT_TYPE)

OPERATORS = ("==", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "%", "|", "&", "in")

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 3),
    st.sampled_from([0.5, -1.5, 2.0, 1e30]),
    st.sampled_from(["", "a", "dba", "not-a-dba-list", "1"]),
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(tuple),
        st.frozensets(inner.map(freeze), max_size=3),
        st.dictionaries(st.sampled_from(["a", "dba", "k"]), inner, max_size=2),
    ),
    max_leaves=5,
)


def _same(a: Any, b: Any) -> bool:
    if (isinstance(a, str) and a == ERROR) or (isinstance(b, str) and b == ERROR):
        return a == b
    return equal(a, b)


def _both(source: str, input: dict[str, Any], schema: Schema | None = None) -> tuple[dict[str, object], dict[str, object]]:
    modules = [parse_module("package p\n" + source)]
    compiled = compile_policy(modules, schema=schema).evaluate_all(input, {})
    return compiled, evaluate_all(modules, input, {})


@settings(max_examples=300, deadline=None)
@given(op=st.sampled_from(OPERATORS), left=_values, right=_values)
def test_every_operator_agrees_with_the_reference_on_any_values(op: str, left: Any, right: Any) -> None:
    compiled, reference = _both(f"x := input.a {op} input.b\ny if input.a {op} input.b\nz if not input.a {op} input.b", {"a": left, "b": right})
    assert compiled.keys() == reference.keys()
    for name in compiled:
        assert _same(compiled[name], reference[name]), (name, compiled[name], reference[name])


@pytest.mark.parametrize(
    ("source", "input", "expected"),
    [
        # `in` is never a substring test, nor a dict-key test
        ('x := "dba" in input.a', {"a": "not-a-dba-list"}, False),
        ('x := "k" in input.a', {"a": {"k": 1}}, False),
        ('x := 1 in input.a', {"a": {"k": 1}}, True),
        # Python hashes true like 1
        ("x := 1 in input.a", {"a": frozenset({True})}, False),
        ("x := true in input.a", {"a": frozenset({1})}, False),
        ("x := input.a == input.b", {"a": True, "b": 1}, False),
        ("x := input.a != input.b", {"a": True, "b": 1}, True),
        # order across types is by type: null < boolean < number < string
        ("x := input.a < input.b", {"a": True, "b": 0.5}, True),
        ("x := input.a < input.b", {"a": 1, "b": "a"}, True),
        # `%` takes integer-valued numbers
        ("x := input.a % input.b", {"a": 7.0, "b": 2}, 1),
    ],
)
def test_mistyped_operands_have_regos_meaning(source: str, input: dict[str, Any], expected: Any) -> None:
    compiled, reference = _both(source, input)
    assert _same(compiled["p.x"], expected)
    assert _same(reference["p.x"], expected)


@pytest.mark.parametrize(
    ("expr", "target", "replacement"),
    [
        ('"dba" in input.subject.groups', "input.subject.groups", '"not-a-dba-list"'),
        ('"id" in input.subject.groups', "input.subject.groups", '{"id": "x"}'),
        ("input.subject.id == input.resource.name", "input.subject.id", "true"),
        ("input.session.requests < 0.5", "input.session.requests", "true"),
        ('input.subject.id < "a"', "input.subject.id", "1"),
    ],
)
def test_typed_fast_paths_hold_when_with_gives_another_type(expr: str, target: str, replacement: str) -> None:
    # the schema says `groups` is a set of strings and `id` a string; `with` can
    # replace them by anything, and the code written for the static type must still
    # have Rego's meaning
    text = f"x := v if {{\n    v := {expr} with {target} as {replacement}\n}}\ny if {{\n    {expr} with {target} as {replacement}\n}}\n"
    input = {"subject": {"id": "a", "groups": frozenset({"dba"}), "claims": {}}, "resource": {"name": "a"}, "session": {"requests": 1}}
    compiled, reference = _both(text, input, SCHEMA)
    assert "p.x" in compiled
    assert compiled.keys() == reference.keys()
    for name in compiled:
        assert _same(compiled[name], reference[name]), (name, compiled[name], reference[name])
