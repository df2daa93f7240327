"""Rego features beyond the normative core, each with OPA's meaning: `else`, default
functions, indexing a value that is not a name, `k, v in xs` and chained `in`, `some`
with constants and patterns, destructuring, `not a = b`, `with` on `some … in`,
`every` with `_`. Every case runs through the compiled policy and the reference
evaluator, which must agree with each other and with the value OPA gives."""

from __future__ import annotations

from typing import Any

import pytest
from reference import ERROR, evaluate_all

from subguard.lang import PolicyErrors, compile_policy, format_module, parse_module
from subguard.lang.values import equal

UNDEFINED = "<undefined>"

CASES: list[tuple[str, str, dict[str, Any], Any]] = [
    # else: the first clause with a solution gives the value
    ("else, first body holds", 'x := "a" if { input.n > 1 } else := "b" if { input.n > 0 } else := "c"', {"n": 2}, "a"),
    ("else, second body holds", 'x := "a" if { input.n > 1 } else := "b" if { input.n > 0 } else := "c"', {"n": 1}, "b"),
    ("else, last clause", 'x := "a" if { input.n > 1 } else := "b" if { input.n > 0 } else := "c"', {"n": 0}, "c"),
    ("else, undefined input", 'x := "a" if { input.n > 1 } else := "b" if { input.n > 0 }', {}, UNDEFINED),
    ("else without value is true", "x if { input.n > 1 } else if { input.n == 0 }", {"n": 0}, True),
    ("boolean rule, else false", "x if { input.n > 1 } else := false", {"n": 0}, False),
    ("else on the next line", "x if {\n    input.n > 1\n}\n\nelse := false", {"n": 5}, True),
    ("else in a function", 'f(n) := "big" if { n > 10 } else := "small"\nx := [f(11), f(1)]', {}, ("big", "small")),
    ("two definitions with else conflict", "x if { false } else := false\nx if { false } else := true", {}, ERROR),
    ("else with a default", "default x := 0\nx := 1 if { input.n > 1 } else := 2 if { input.n > 0 }", {"n": 0}, 0),
    # default functions
    ("default function applies", "default f(_) := 1\nf(n) := n if { n > 0 }\nx := f(-1)", {}, 1),
    ("default function, a definition applies", "default f(_) := 1\nf(n) := n if { n > 0 }\nx := f(2)", {}, 2),
    ("only a default function", "default f(_, _) := 1\nx := f(2, 3)", {}, 1),
    ("default function in a comprehension", "default f(_) := 1000\nf(n) := n if { n > 0 }\nx := [f(y) | some y in [1, -2, 3]]", {}, (1, 1000, 3)),
    # indexing values that are not names
    ("index an array literal", "x := [10, 20][1]", {}, 20),
    ("field of an object literal", 'x := {"a": 1}.a', {}, 1),
    ("index a call", 'x := split("a:b", ":")[1]', {}, "b"),
    ("index a comprehension", "x := [y | some y in input.xs][0]", {"xs": [7, 8]}, 7),
    ("index out of range is undefined", "x := [1][3]", {}, UNDEFINED),
    # k, v in xs and chained in
    ("key and value in an object", 'x if { "foo", 1 in {"foo": 1} }', {}, True),
    ("index and value in an array", 'x if { 1, "two" in ["one", "two"] }', {}, True),
    ("wrong index", 'x := (0, "two" in ["one", "two"])', {}, False),
    ("key and value in a set", "x := (1, 1 in {1})", {}, True),
    ("key and value in a non-collection", 'x := (1, "foo" in input.n)', {"n": 1}, False),
    ("chained in", "x if { {1, 2} in [{1, 2}] in [true] }", {}, True),
    ("negated key and value", 'x if { not "foo", 2 in {"foo": 1} }', {}, True),
    # some with constants and patterns
    ("some with a constant", 'x if { some "foo" in ["foo"] }', {}, True),
    ("some with a constant key", 'x := v if { some "foo", v in {"foo": 100, "what": "ever"} }', {}, 100),
    ("some with a constant value", 'x := k if { some k, "ever" in {"foo": 100, "what": "ever"} }', {}, "what"),
    ("some with an object pattern", 'x := v if { some {"foo": v} in [{"foo": 100}, {"what": "ever"}] }', {}, 100),
    ("some with a pattern that never matches", 'x if { some {"foo": 0} in [{"foo": 100}] }', {}, UNDEFINED),
    ("some with an array pattern", "x := {a | some [a, 2] in [[1, 2], [3, 4], [5, 2]]}", {}, frozenset({1, 5})),
    ("some with a call", "x if { some numbers.range(1, 1) in [[1]] }", {}, True),
    ("some in, with", 'x := {[k, v] | some k, v in input with input.foo as "bar"}', {}, frozenset({("foo", "bar")})),
    # destructuring
    ("array destructuring", 'x := a if { [a, "b"] := ["a", "b"] }', {}, "a"),
    ("object destructuring", 'x := v if { {"k": v} = input.o }', {"o": {"k": 3}}, 3),
    ("object destructuring needs the same keys", 'x := v if { {"k": v} = input.o }', {"o": {"k": 3, "j": 4}}, UNDEFINED),
    ("pattern on the right", "x := a if { input.xs = [a, _] }", {"xs": [1, 2]}, 1),
    ("function parameter pattern", "f([a, b]) := a + b\nx := f([1, 2])", {}, 3),
    ("function constant parameter", 'f(1, y) := y\nf(2, y) := y * 10\nx := [f(1, 2), f(2, 2)]', {}, (2, 20)),
    # with replacing functions and builtins (mocking in tests)
    ("with replaces a function by a value", "f(_) := 2\nx := y if { y := f(true) with f as 1 }", {}, 1),
    ("with replaces a function by another", "f(_) := 2\ng(_) := 1\nx := y if { y := f(true) with f as g }", {}, 1),
    ("with replaces a function by a builtin", "f(_) := 2\nx := y if { y := f([1, 2]) with f as count }", {}, 2),
    ("with replaces a builtin by a function", 'g(_) := 42\nx := y if { y := count([1]) with count as g }', {}, 42),
    ("with replaces a builtin by a value", 'x := y if { y := time.now_ns() with time.now_ns as 7 }', {}, 7),
    ("the replacement sees the original", "f(_) := 2\ng(n) := f(n)\nx := y if { y := f(1) with f as g }", {}, 2),
    ("a mock reaches rules called under it", 'f(_) := 1\nq := f(0)\nx := y if { y := q with f as 5 }', {}, 5),
    ("a mock ends with its literal", 'f(_) := 1\nx := [a, b] if { a := f(0) with f as 5; b := f(0) }', {}, (5, 1)),
    ("a function under data replaced", "f(_) := 2\nx := y if { y := data.p.f(0) with data.p.f as 3 }", {}, 3),
    # rule heads of several parts
    ("a head of several parts", "a.b.c := 1\nx := a.b.c", {}, 1),
    ("read through data", "a.b.c := 1\nx := data.p.a.b", {}, {"c": 1}),
    ("a function with a dotted head", "a.b.f(n) := n + 1\nx := a.b.f(1)", {}, 2),
    ("a default function with a dotted head", "default a.f(_) := 100\na.f(n) := n if { n == 2 }\nx := [a.f(2), a.f(3)]", {}, (2, 100)),
    ("a set rule with a dotted head", 'a.s contains "v"\nx := a.s', {}, frozenset({"v"})),
    # objects as keys
    ("an object key", 'p[{"id": i}] := i * 2 if { some i in [1, 2] }\nx := p[{"id": 2}]', {}, 4),
    # builtins real policies use
    ("strings.count", 'x := strings.count("a,b,c", ",")', {}, 2),
    ("object.union_n", 'x := object.union_n([{"a": 1}, {"b": 2}, {"a": 3}])', {}, {"a": 3, "b": 2}),
    ("units and semver", 'x := [units.parse_bytes("2KiB"), semver.compare("1.2.3", "1.2.10")]', {}, (2048, -1)),
    ("a hash", 'x := crypto.sha256("")', {}, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    ("time", 'x := time.date(time.parse_rfc3339_ns("2024-02-29T12:00:00Z"))', {}, (2024, 2, 29)),
    # numbers: integral literals beyond a float's precision stay exact
    ("1e30 + 1 is exact", "x := 1e30 + 1", {}, 10**30 + 1),
    ("big integers compare exactly", "x := 1234567890123456789012 < 1234567890123456789013", {}, True),
    ("beyond a float's exponent", "x := 1e400 > 1e399", {}, True),
    ("a literal too large for anything", "x := 1e99999 > 1", {}, True),
    ("% of integral floats", "x := 7.0 % 2", {}, 1),
    # negated unification, unused function parameters, every with _
    ("not a = b", "x if { not true = false }", {}, True),
    ("unused function parameter", "f(n) := 2\nx := f(1)", {}, 2),
    ("every with _ as key", 'x if { every _, v in {"a": 1, "b": 2} { v > 0 } }', {}, True),
    ("every with _ as value", "x if { every k, _ in [5, 6] { k >= 0 } }", {}, True),
    ("every k, v over an object", 'x if { every k, v in {"a": "a"} { k == v } }', {}, True),
    ("every k, v fails", 'x if { every k, v in {"a": "b"} { k == v } }', {}, UNDEFINED),
]


def _same(a: Any, b: Any) -> bool:
    if (isinstance(a, str) and a in (ERROR, UNDEFINED)) or (isinstance(b, str) and b in (ERROR, UNDEFINED)):
        return a == b
    return equal(a, b)


@pytest.mark.parametrize(("name", "source", "input", "expected"), CASES, ids=[c[0] for c in CASES])
def test_feature(name: str, source: str, input: dict[str, Any], expected: Any) -> None:
    modules = [parse_module("package p\n\n" + source + "\n")]
    compiled = compile_policy(modules).evaluate_all(input, {})
    reference = evaluate_all(modules, input, {})
    key = "p.x"
    assert _same(compiled.get(key, UNDEFINED), expected), f"compiled {compiled.get(key, UNDEFINED)!r}"
    assert _same(reference.get(key, UNDEFINED), expected), f"reference {reference.get(key, UNDEFINED)!r}"


@pytest.mark.parametrize(("name", "source", "input", "expected"), CASES, ids=[c[0] for c in CASES])
def test_feature_formats_and_reparses_to_the_same_policy(name: str, source: str, input: dict[str, Any], expected: Any) -> None:
    module = parse_module("package p\n\n" + source + "\n")
    text = format_module(module)
    again = parse_module(text)
    assert again.rules == module.rules, text
    assert format_module(again) == text


def test_iterating_a_literal_binds_its_indexes() -> None:
    policy = compile_policy([parse_module("package p\n\nx := {i | [10, 20][i]}\n")])
    assert policy.evaluate_all({}, {}) == {"p.x": frozenset({0, 1})}


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("s := {[1, 2], [1, 3], [2, 2]}\nx := {v | s[[1, v]]}", frozenset({2, 3})),
        ('s := {{"foo": "bar"}, {"foo": "baz"}, {"k": 1}}\nx := {v | s[{"foo": v}]}', frozenset({"bar", "baz"})),
        ("s := {[1, 2]}\nx if { not s[[2, _]] }", True),
    ],
)
def test_a_composite_key_with_variables_matches_each_key(source: str, expected: object) -> None:
    # the reference evaluator does not iterate references; OPA's results, by hand
    policy = compile_policy([parse_module("package p\n\n" + source + "\n")])
    assert equal(policy.evaluate_all({}, {})["p.x"], expected)


def test_a_package_document_merges_data_and_leaves_it_unchanged() -> None:
    source = "package p\n\na.b.c := 1\na.f(n) := n\nx := data.p.a\n"
    data = {"p": {"a": {"base": True}}}
    modules = [parse_module(source), parse_module("package q\n\ny := data.p\n")]
    values = compile_policy(modules).evaluate_all({}, data)
    assert values["p.x"] == {"base": True, "b": {"c": 1}}
    assert values["q.y"] == {"a": {"base": True, "b": {"c": 1}}, "x": {"base": True, "b": {"c": 1}}}
    assert data == {"p": {"a": {"base": True}}}


def test_iterating_data_goes_through_sub_packages() -> None:
    # the reference evaluator does not iterate references; OPA's results, by hand
    modules = [
        parse_module("package a.x\n\nv := 1\n"),
        parse_module("package a.y\n\nv := 2\n"),
        parse_module("package q\n\nks := {k | data.a[k]}\nvs := {n | some k; data.a[k].v = n}\n"),
    ]
    values = compile_policy(modules).evaluate_all({}, {"a": {"z": {"v": 3}}})
    assert values["q.ks"] == frozenset({"x", "y", "z"})
    assert values["q.vs"] == frozenset({1, 2, 3})


def test_else_clauses_do_not_index_on_the_first_body() -> None:
    # the first body's requirement is no requirement of the definition: the `else`
    # produces a value exactly when it does not hold
    from subguard.lang import Entrypoint

    modules = [parse_module('package p\n\nallow if { input.kind == "select" } else := false\n')]
    policy = compile_policy(modules, entrypoints={"allow": Entrypoint(("complete",), "kind")})
    assert [d.requires for d in policy.definitions] == [()]
    assert policy.run({"kind": "drop"}, {}).hits == [(0, [False])]


@pytest.mark.parametrize(
    ("source", "code"),
    [
        ("x := [1] else := 2", "type_error"),  # no body: nothing to fall back from
        ("x contains 1 if { true } else := 2", "parse_error"),
        ("default f(1) := 2\nf(n) := n", "type_error"),
        ("default f(_, _) := 2\nf(n) := n", "arity"),
        ("default f(x) := input.a", "type_error"),
        ("x if { some 1 }", "parse_error"),
        ("x if { not y := 1 }", "parse_error"),
    ],
)
def test_misuse_is_a_located_error(source: str, code: str) -> None:
    with pytest.raises((PolicyErrors, Exception)) as info:
        compile_policy([parse_module("package p\n\n" + source + "\n")])
    found = info.value.errors if isinstance(info.value, PolicyErrors) else [info.value]
    assert code in {getattr(e, "code", None) for e in found}
    assert all(getattr(e, "line", 0) >= 3 for e in found)


def test_format_keeps_patterns_and_comments_of_else_clauses() -> None:
    source = (
        "package p\n\n"
        'level := "high" if {\n    # many denials\n    input.session.denied > 3\n} else := "mid" if {\n'
        '    # some\n    input.session.denied > 0\n} else := "low"\n\n'
        'ok if {\n    some "a", [x, _] in {"a": [1, 2]}\n    x == 1\n}\n'
    )
    assert format_module(parse_module(source)) == source


@pytest.mark.parametrize(
    ("importing", "expected"),
    [
        ("import data.lib\n\nx := [lib.f(2), lib.g]", (20, 7)),
        ("import data.lib as helpers\n\nx := helpers.f(3)", 30),
        ("import data.a.lib\n\nx := lib.h(1)", 2),
    ],
)
def test_a_function_called_through_an_import(importing: str, expected: Any) -> None:
    # `import data.lib` then `lib.f(x)` calls package lib's function, as in Rego
    modules = [
        parse_module("package p\n\n" + importing + "\n"),
        parse_module("package lib\n\nf(n) := n * 10\n\ng := 7\n"),
        parse_module("package a.lib\n\nh(n) := n + 1\n"),
    ]
    compiled = compile_policy(modules).evaluate_all({}, {})
    reference = evaluate_all(modules, {}, {})
    assert _same(compiled["p.x"], expected)
    assert _same(reference["p.x"], expected)


def test_an_imported_package_without_the_function_is_unknown_function() -> None:
    modules = [
        parse_module("package p\n\nimport data.lib\n\nx := lib.nope(1)\n"),
        parse_module("package lib\n\nf(n) := n\n"),
    ]
    with pytest.raises(PolicyErrors) as info:
        compile_policy(modules)
    assert [(e.code, e.line) for e in info.value.errors] == [("unknown_function", 5)]
