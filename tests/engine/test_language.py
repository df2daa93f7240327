"""The policy language's normative core (DESIGN.md), one focused test per feature,
evaluated on small inputs through the compiled policy or the engine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import subguard


def _policy(tmp_path: Path, files: dict[str, str], data: dict[str, Any] | None = None) -> subguard.Policy:
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    return subguard.load_policy(tmp_path, data=data)


def rules(tmp_path: Path, body: str, input: dict[str, Any] | None = None, data: dict[str, Any] | None = None, package: str = "t") -> dict[str, Any]:
    """Every defined rule of one package, `rule name → value`, for `input` and `data`."""
    policy = _policy(tmp_path, {"t.guard": f"package {package}\n\n{body}\n"}, data)
    values = policy.compiled.evaluate_all(input or {}, policy.data)
    prefix = f"{package}."
    return {k[len(prefix):]: v for k, v in values.items() if k.startswith(prefix)}


def value(tmp_path: Path, expr: str, input: dict[str, Any] | None = None) -> Any:
    """The value of one expression, or `None` when undefined."""
    return rules(tmp_path, f"x := v if {{\n    v := {expr}\n}}", input).get("x")


def errors(tmp_path: Path, body: str) -> set[str]:
    with pytest.raises(subguard.PolicyErrors) as info:
        _policy(tmp_path, {"t.guard": f"package t\n\n{body}\n"})
    return {e.code for e in info.value.errors}


# ── modules ────────────────────────────────────────────────────────────────────────


def test_package_names_rules(tmp_path: Path) -> None:
    policy = _policy(tmp_path, {"a.guard": "package guard.a.b\n\nx := 1\n"})
    assert policy.packages == ("guard.a.b",)
    assert policy.compiled.evaluate_all({}, {}) == {"guard.a.b.x": 1}


def test_same_package_across_files(tmp_path: Path) -> None:
    policy = _policy(tmp_path, {"a.guard": "package p\n\nx := 1\n", "b.guard": "package p\n\ny := x + 1\n"})
    assert policy.compiled.evaluate_all({}, {}) == {"p.x": 1, "p.y": 2}


def test_import_and_alias(tmp_path: Path) -> None:
    policy = _policy(
        tmp_path,
        {
            "lib.guard": "package lib\n\nlimit := 3\n",
            "main.guard": (
                "package main\n\nimport data.lib\nimport data.lib.limit as cap\nimport input.subject.groups\nimport input.subject as who\n\n"
                "a := lib.limit\nb := cap\nc if \"ops\" in groups\nd := who.id\n"
            ),
        },
    )
    out = policy.compiled.evaluate_all({"subject": {"id": "u", "groups": ["ops"]}}, {})
    assert (out["main.a"], out["main.b"], out["main.c"], out["main.d"]) == (3, 3, True, "u")


def test_import_rego_v1_is_accepted(tmp_path: Path) -> None:
    assert rules(tmp_path, "import rego.v1\n\nx := 1") == {"x": 1}


def test_default(tmp_path: Path) -> None:
    body = 'default level := "low"\n\nlevel := "high" if input.subject.id == "root"'
    assert rules(tmp_path, body)["level"] == "low"
    assert rules(_fresh(tmp_path, "b"), body, {"subject": {"id": "root"}})["level"] == "high"


def _fresh(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.mkdir()
    return path


# ── rules ──────────────────────────────────────────────────────────────────────────


def test_complete_rule_with_body(tmp_path: Path) -> None:
    out = rules(tmp_path, 'x := n + 1 if {\n    n := count(input.subject.groups)\n}', {"subject": {"groups": ["a", "b"]}})
    assert out["x"] == 3


def test_complete_boolean_rule_with_body(tmp_path: Path) -> None:
    body = 'ops if {\n    "ops" in input.subject.groups\n}'
    assert rules(tmp_path, body, {"subject": {"groups": ["ops"]}}) == {"ops": True}
    assert rules(_fresh(tmp_path, "b"), body, {"subject": {"groups": ["dev"]}}) == {}


def test_complete_one_line_rule(tmp_path: Path) -> None:
    body = 'ops if "ops" in input.subject.groups\n\nname := upper(input.subject.id) if input.subject.id != ""'
    assert rules(tmp_path, body, {"subject": {"id": "x", "groups": ["ops"]}}) == {"ops": True, "name": "X"}


def test_complete_rule_constant(tmp_path: Path) -> None:
    assert rules(tmp_path, 'x := {"a": [1, 2]}') == {"x": {"a": (1, 2)}}


def test_partial_set_rule(tmp_path: Path) -> None:
    body = "big contains n if {\n    some n in [1, 5, 10, 20]\n    n > 4\n}\n\nsmall contains 1"
    assert rules(tmp_path, body) == {"big": frozenset({5, 10, 20}), "small": frozenset({1})}


def test_partial_object_rule(tmp_path: Path) -> None:
    body = 'lengths[name] := count(name) if {\n    some name in ["ab", "abc"]\n}\n\nfixed["k"] := "v"'
    assert rules(tmp_path, body) == {"lengths": {"ab": 2, "abc": 3}, "fixed": {"k": "v"}}


def test_partial_object_lookup(tmp_path: Path) -> None:
    body = 'owner["users"] := "team-a"\n\nowner["orders"] := "team-b"\n\nx := owner["orders"]\n\ny := owner[input.subject.id]'
    assert rules(tmp_path, body, {"subject": {"id": "users"}})["y"] == "team-a"
    assert rules(_fresh(tmp_path, "b"), body)["x"] == "team-b"


def test_functions(tmp_path: Path) -> None:
    body = "add(a, b) := a + b\n\nbig(n) if n > 10\n\nx := add(2, 3)\n\ny if big(11)\n\nz if big(3)"
    assert rules(tmp_path, body) == {"x": 5, "y": True}


def test_function_constant_parameters(tmp_path: Path) -> None:
    body = 'sev("drop") := 3\n\nsev("delete") := 2\n\nsev(k) := 0 if not k in {"drop", "delete"}\n\nx := [sev("drop"), sev("delete"), sev("select")]'
    assert rules(tmp_path, body)["x"] == (3, 2, 0)


def test_function_with_body_and_multiple_definitions_conflict(tmp_path: Path) -> None:
    body = 'f(x) := "a" if x > 0\n\nf(x) := "b" if x > 1\n\nok := f(1)\n\nbad := f(5)'
    out = rules(tmp_path, body)
    assert out["ok"] == "a"
    assert out["bad"] == "<error>"


# ── iteration ──────────────────────────────────────────────────────────────────────


def test_some_in(tmp_path: Path) -> None:
    body = "xs contains y if {\n    some x in input.subject.groups\n    y := upper(x)\n}"
    assert rules(tmp_path, body, {"subject": {"groups": ["a", "b"]}})["xs"] == frozenset({"A", "B"})


def test_some_key_value_in_array_and_object(tmp_path: Path) -> None:
    body = (
        'idx contains i if {\n    some i, v in ["a", "b", "a"]\n    v == "a"\n}\n\n'
        'keys contains k if {\n    some k, v in {"x": 1, "y": 2}\n    v > 1\n}'
    )
    assert rules(tmp_path, body) == {"idx": frozenset({0, 2}), "keys": frozenset({"y"})}


def test_some_declared_var(tmp_path: Path) -> None:
    body = "xs contains x if {\n    arr := [1, 2, 3]\n    some x\n    arr[x] > 1\n}"
    out = rules(tmp_path, body)
    assert out["xs"] == frozenset({1, 2})


def test_every(tmp_path: Path) -> None:
    body = "all_pos if {\n    every n in input.subject.claims.ns {\n        n > 0\n    }\n}"
    assert rules(tmp_path, body, {"subject": {"claims": {"ns": [1, 2]}}}) == {"all_pos": True}
    assert rules(_fresh(tmp_path, "b"), body, {"subject": {"claims": {"ns": [1, -2]}}}) == {}
    assert rules(_fresh(tmp_path, "c"), body, {"subject": {"claims": {"ns": []}}}) == {"all_pos": True}


def test_every_key_value(tmp_path: Path) -> None:
    body = 'ok if {\n    every k, v in {"a": 1, "b": 2} {\n        count(k) == 1\n        v < 3\n    }\n}'
    assert rules(tmp_path, body) == {"ok": True}


def test_not(tmp_path: Path) -> None:
    body = 'a if not "x" in {"y"}\n\nb if not "y" in {"y"}\n\nc if not false'
    assert rules(tmp_path, body) == {"a": True, "c": True}


def test_not_on_undefined_succeeds(tmp_path: Path) -> None:
    body = "a if not input.subject.claims.missing\n\nb if not input.subject.claims.present"
    assert rules(tmp_path, body, {"subject": {"claims": {"present": True}}}) == {"a": True}


def test_undefined_reference_makes_literal_fail(tmp_path: Path) -> None:
    body = 'a if input.subject.claims.missing == 1\n\nb if input.subject.claims.missing != 1\n\nc := input.subject.claims.missing\n\nd if true'
    assert rules(tmp_path, body, {"subject": {"claims": {}}}) == {"d": True}


def test_false_fails_but_null_and_zero_succeed(tmp_path: Path) -> None:
    body = "a if input.subject.claims.f\n\nb if input.subject.claims.n\n\nc if input.subject.claims.z"
    out = rules(tmp_path, body, {"subject": {"claims": {"f": False, "n": None, "z": 0}}})
    assert out == {"b": True, "c": True}


# ── operators ──────────────────────────────────────────────────────────────────────


def test_assignment_and_unification(tmp_path: Path) -> None:
    body = "a := x if {\n    x := 1\n}\n\nb if {\n    y = 2\n    3 = q\n    y < q\n}\n\nc := z if {\n    [z, w] := [1, 2]\n    w == 2\n}"
    assert rules(tmp_path, body) == {"a": 1, "b": True, "c": 1}


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("1 == 1", True), ("1 == 2", False), ("1 != 2", True), ('"a" != "a"', False),
        ("1 < 2", True), ("2 < 1", False), ("2 <= 2", True), ("3 <= 2", False),
        ("3 > 2", True), ("2 > 3", False), ("2 >= 2", True), ("1 >= 2", False),
        ('"a" < "b"', True), ("1 == 1.0", True),
    ],
)
def test_comparison_operators(tmp_path: Path, expr: str, expected: bool) -> None:
    assert value(tmp_path, expr) is expected


def test_true_is_not_one(tmp_path: Path) -> None:
    # Rego semantics: booleans and numbers never compare equal (values of dynamic type)
    body = (
        "a if input.subject.claims.flag != 1\n\nb if input.subject.claims.flag == 1\n\n"
        "c if input.subject.claims.zero != false\n\nd if input.subject.claims.zero == false\n\n"
        "e if input.subject.claims.flag in {1}"
    )
    assert rules(tmp_path, body, {"subject": {"claims": {"flag": True, "zero": 0}}}) == {"a": True, "c": True}


def test_true_not_equal_one_literal(tmp_path: Path) -> None:
    assert rules(tmp_path, "a if true != 1") == {"a": True}


def test_membership(tmp_path: Path) -> None:
    # `in` looks at an object's values, not its keys
    body = 'a if 2 in [1, 2]\n\nb if "k" in {"k"}\n\nc if 1 in {"k": 1}\n\nd if input.subject.id in {"k": "v"}\n\ne if 3 in [1, 2]'
    assert rules(tmp_path, body, {"subject": {"id": "k"}}) == {"a": True, "b": True, "c": True}


@pytest.mark.parametrize(
    ("expr", "expected"),
    [("1 + 2", 3), ("5 - 7", -2), ("3 * 4", 12), ("7 / 2", 3.5), ("6 / 3", 2), ("7 % 3", 1), ("2 + 3 * 4", 14), ("(2 + 3) * 4", 20), ("-(3)", -3)],
)
def test_arithmetic(tmp_path: Path, expr: str, expected: float) -> None:
    assert value(tmp_path, expr) == expected


def test_division_by_zero_is_a_runtime_error(tmp_path: Path) -> None:
    assert rules(tmp_path, "x := input.subject.claims.n / 0", {"subject": {"claims": {"n": 1}}})["x"] == "<error>"


def test_set_union_and_intersection(tmp_path: Path) -> None:
    assert value(tmp_path, "{1, 2} | {2, 3}") == frozenset({1, 2, 3})
    assert value(_fresh(tmp_path, "b"), "{1, 2} & {2, 3}") == frozenset({2})
    assert value(_fresh(tmp_path, "c"), "{1} & {2}") == frozenset()


# ── values ─────────────────────────────────────────────────────────────────────────


def test_literals(tmp_path: Path) -> None:
    out = rules(tmp_path, 'a := [1, "two", null, true]\n\nb := {"x", "y", "x"}\n\nc := {"k": {"n": [1]}}\n\nd := []\n\ne := {}\n\nf := set()')
    assert out == {"a": (1, "two", None, True), "b": frozenset({"x", "y"}), "c": {"k": {"n": (1,)}}, "d": (), "e": {}, "f": frozenset()}


def test_comprehensions(tmp_path: Path) -> None:
    body = (
        "a := [x * 2 | some x in [1, 2, 3]]\n\n"
        "b := {x | some x in [1, 1, 2]}\n\n"
        'c := {k: count(k) | some k in ["a", "bb"]}\n\n'
        "d := [x | some x in [1, 2, 3]; x > 1]"
    )
    assert rules(tmp_path, body) == {"a": (2, 4, 6), "b": frozenset({1, 2}), "c": {"a": 1, "bb": 2}, "d": (2, 3)}


def test_references(tmp_path: Path) -> None:
    doc = {"subject": {"id": "u", "groups": [], "claims": {"team": {"name": "ops", "ids": [10, 20]}, "key": "name"}}}
    body = "a := input.subject.claims.team.name\n\nb := input.subject.claims.team.ids[1]\n\nk := input.subject.claims.key\n\nc := input.subject.claims.team[k]\n\nd := input[\"subject\"].id"
    assert rules(tmp_path, body, doc) == {"a": "ops", "b": 20, "k": "name", "c": "ops", "d": "u"}


def test_data_document(tmp_path: Path) -> None:
    out = rules(tmp_path, 'a := data.limits.rows\n\nb if "users" in data.protected', data={"limits": {"rows": 100}, "protected": ["users"]})
    assert out == {"a": 100, "b": True}


def test_with_replaces_input_in_a_helper(tmp_path: Path) -> None:
    body = 'is_ops if "ops" in input.subject.groups\n\nas_ops if is_ops with input.subject.groups as {"ops"}\n\nreal if is_ops'
    assert rules(tmp_path, body, {"subject": {"groups": []}}) == {"as_ops": True}


def test_with_replaces_data(tmp_path: Path) -> None:
    body = "n := data.n\n\nm := v if {\n    v := n with data.n as 5\n}"
    assert rules(tmp_path, body, data={"n": 1}) == {"n": 1, "m": 5}


# ── builtins ───────────────────────────────────────────────────────────────────────


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("count([1, 2, 3])", 3), ('count("abc")', 3), ('count({"a": 1})', 1),
        ("sum([1, 2, 3.5])", 6.5), ("max([3, 9, 2])", 9), ("min({3, 9, 2})", 2),
        ('lower("AbC")', "abc"), ('upper("AbC")', "ABC"),
        ('startswith("prod_users", "prod_")', True), ('endswith("users_bak", "_bak")', True),
        ('contains("hello", "ell")', True), ('contains("hello", "z")', False),
        ('sprintf("%s-%d", ["a", 5])', "a-5"), ('sprintf("%v", [{"a": [1, "b"]}])', '{"a":[1,"b"]}'),
        ('sprintf("%v", ["bare"])', "bare"),
        ('concat(",", ["a", "b"])', "a,b"), ('split("a,b,c", ",")', ("a", "b", "c")),
        ('trim("  x  ", " ")', "x"), ('replace("a-b-c", "-", "+")', "a+b+c"),
        ('regex.match("^prod_[a-z]+$", "prod_users")', True), ('regex.match("^prod_", "dev_users")', False),
        ('glob.match("*.internal", ["."], "db.internal")', True), ('glob.match("*.internal", ["."], "a.db.internal")', False),
        ('net.cidr_contains("10.0.0.0/8", "10.1.2.3")', True), ('net.cidr_contains("10.0.0.0/8", "192.168.0.1")', False),
        ('object.get({"a": 1}, "a", 0)', 1), ('object.get({"a": 1}, "b", 0)', 0),
        ("sort([3, 1, 2])", (1, 2, 3)), ('sort({"b", "a"})', ("a", "b")),
        ("array.concat([1], [2, 3])", (1, 2, 3)),
        ("union({{1}, {2}, {1, 3}})", frozenset({1, 2, 3})), ("intersection({{1, 2}, {2, 3}})", frozenset({2})),
        ('to_number("42")', 42), ('to_number("1.5")', 1.5), ("to_number(7)", 7),
        ("format_int(255, 16)", "ff"), ("format_int(5, 2)", "101"),
        ('json.marshal({"a": [1, true, null]})', '{"a":[1,true,null]}'),
        ("is_string(\"s\")", True), ("is_number(1)", True), ("is_boolean(false)", True), ("is_array([])", True),
        ("is_set(set())", True), ("is_object({})", True), ("is_null(null)", True), ("is_string(1)", False),
    ],
)
def test_builtin(tmp_path: Path, expr: str, expected: Any) -> None:
    got = value(tmp_path, expr)
    assert got == expected
    assert type(got) is type(expected)


def test_time_now_ns(tmp_path: Path) -> None:
    import time

    before = time.time_ns()
    got = value(tmp_path, "time.now_ns()")
    assert isinstance(got, int)
    assert before - 10**9 <= got <= time.time_ns() + 10**9


def test_builtin_error_surfaces_as_error_value(tmp_path: Path) -> None:
    assert rules(tmp_path, 'x := to_number("x")')["x"] == "<error>"


def test_deny_rule_runtime_error_fails_closed(tmp_path: Path) -> None:
    policy = _policy(tmp_path, {"t.guard": 'package t\n\ndefault allow := true\n\ndeny contains "n" if to_number(input.subject.id) > 1\n'})
    decision = subguard.Engine(policy).evaluate({"subject": {"id": "abc", "groups": []}})
    assert decision.effect is subguard.Effect.DENY
    assert [e.code for e in decision.errors] == ["builtin_error"]


# ── load-time errors the language defines ──────────────────────────────────────────


def test_recursion_is_an_error(tmp_path: Path) -> None:
    assert errors(tmp_path, "a if b\n\nb if a") == {"recursion"}


def test_self_recursion_is_an_error(tmp_path: Path) -> None:
    assert errors(tmp_path, "f(n) := f(n - 1) if n > 0") == {"recursion"}


def test_unknown_builtin_is_an_error(tmp_path: Path) -> None:
    assert errors(tmp_path, 'x := lowr("A")') == {"unknown_function"}


def test_impossible_comparison_is_an_error(tmp_path: Path) -> None:
    assert errors(tmp_path, "x if input.subject.groups == 3") == {"type_error"}
