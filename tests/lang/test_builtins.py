"""Tests for the builtin library: Rego semantics per builtin, errors, and order properties."""

from __future__ import annotations

import contextlib
import itertools
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from subguard.lang.builtins import BUILTINS, Builtin, BuiltinError, BuiltinUndefined, lookup
from subguard.lang.values import FrozenDict, compare, equal, freeze


def call(name: str, *args: Any) -> Any:
    builtin = BUILTINS[name]
    assert builtin.arity == len(args)
    return builtin.fn(*args)


S = frozenset

CASES: list[tuple[str, tuple[Any, ...], Any]] = [
    # aggregates
    ("count", ("héllo",), 5),
    ("count", ((1, 2, 3),), 3),
    ("count", (S({1, 2}),), 2),
    ("count", ({"a": 1},), 1),
    ("count", ((),), 0),
    ("sum", ((1, 2, 3.5),), 6.5),
    ("sum", (S({1, 2}),), 3),
    ("sum", ((),), 0),
    ("product", ((2, 3),), 6),
    ("max", ((1, 5, 3),), 5),
    ("max", (S({"a", "b"}),), "b"),
    ("min", ((4, 2.5, 3),), 2.5),
    ("sort", ((3, 1, 2),), (1, 2, 3)),
    ("sort", (S({"b", "a"}),), ("a", "b")),
    ("sort", (("a", 1, None, True),), (None, True, 1, "a")),
    # numbers
    ("abs", (-3,), 3),
    ("abs", (-1.5,), 1.5),
    ("round", (2.5,), 3),
    ("round", (-2.5,), -3),
    ("round", (2.4,), 2),
    ("ceil", (1.2,), 2),
    ("floor", (-1.2,), -2),
    ("numbers.range", (1, 3), (1, 2, 3)),
    ("numbers.range", (3, 1), (3, 2, 1)),
    ("to_number", ("10",), 10),
    ("to_number", ("-1.5",), -1.5),
    ("to_number", (True,), 1),
    ("to_number", (None,), 0),
    ("to_number", (2.5,), 2.5),
    ("format_int", (255, 16), "ff"),
    ("format_int", (5, 2), "101"),
    ("format_int", (-8.9, 8), "-10"),
    ("format_int", (42, 10), "42"),
    # strings
    ("lower", ("DROP",), "drop"),
    ("upper", ("drop",), "DROP"),
    ("trim", ("xxhixx", "x"), "hi"),
    ("trim_left", ("xxhix", "x"), "hix"),
    ("trim_right", ("xhixx", "x"), "xhi"),
    ("trim_prefix", ("prod-db", "prod-"), "db"),
    ("trim_prefix", ("db", "prod-"), "db"),
    ("trim_suffix", ("users.sql", ".sql"), "users"),
    ("trim_space", ("  a b \n",), "a b"),
    ("replace", ("a-b-c", "-", "_"), "a_b_c"),
    ("split", ("a.b.c", "."), ("a", "b", "c")),
    ("split", ("ab", ""), ("a", "b")),
    ("concat", (", ", ("a", "b")), "a, b"),
    ("concat", ("-", S({"b", "a"})), "a-b"),
    ("startswith", ("prod-db", "prod"), True),
    ("startswith", ("db", "prod"), False),
    ("endswith", ("users.sql", ".sql"), True),
    ("contains", ("DROP TABLE", "TABLE"), True),
    ("contains", ("DROP", "x"), False),
    ("indexof", ("abcd", "cd"), 2),
    ("indexof", ("abcd", "x"), -1),
    ("substring", ("abcdef", 1, 3), "bcd"),
    ("substring", ("abcdef", 2, -1), "cdef"),
    ("substring", ("abc", 5, 1), ""),
    ("strings.reverse", ("abc",), "cba"),
    ("strings.any_prefix_match", ("prod-db", ("dev-", "prod-")), True),
    ("strings.any_prefix_match", (S({"a", "b"}), "c"), False),
    ("strings.any_suffix_match", (("x.sql", "y"), S({".sql"})), True),
    # sprintf
    ("sprintf", ("%s is never allowed", ("DROP",)), "DROP is never allowed"),
    ("sprintf", ("%v", ("bare",)), "bare"),
    ("sprintf", ("%v", (S({"b", "a"}),)), '["a","b"]'),
    ("sprintf", ("%v", ({"b": 1, "a": (None, True)},)), '{"a":[null,true],"b":1}'),
    ("sprintf", ("%d rows", (3,)), "3 rows"),
    ("sprintf", ("%q", ('a"b',)), '"a\\"b"'),
    ("sprintf", ("%.2f", (1.5,)), "1.50"),
    ("sprintf", ("%x %X", (255, 255)), "ff FF"),
    ("sprintf", ("100%%", ()), "100%"),
    ("sprintf", ("%5s|%-3d|", ("ab", 7)), "   ab|7  |"),
    ("sprintf", ("%v %v %v", (1.0, None, False)), "1 null false"),
    ("sprintf", ("%s", ()), "%!s(MISSING)"),
    ("sprintf", ("x", (1,)), "x%!(EXTRA number=1)"),
    # regex and glob
    ("regex.match", ("^prod-", "prod-db"), True),
    ("regex.match", ("db", "prod-db-1"), True),
    ("regex.match", ("^dev", "prod"), False),
    ("regex.is_valid", ("(",), False),
    ("regex.is_valid", ("a+",), True),
    ("regex.split", (",\\s*", "a, b,c"), ("a", "b", "c")),
    ("glob.match", ("*.github.com", (), "api.github.com"), True),
    ("glob.match", ("*.github.com", (), "api.cdn.github.com"), False),
    ("glob.match", ("*hub.com", None, "api.cdn.github.com"), True),
    ("glob.match", ("*:github:com", (":",), "api:github:com"), True),
    ("glob.match", ("api.**.com", (), "api.cdn.github.com"), True),
    ("glob.match", ("api.**.com", (), "api.github.com"), True),
    ("glob.match", ("?at", (), "cat"), True),
    ("glob.match", ("?at", (), ".at"), False),
    ("glob.match", ("[ch]at", (), "hat"), True),
    ("glob.match", ("[!ch]at", (), "hat"), False),
    ("glob.match", ("[a-c]at", (), "bat"), True),
    ("glob.match", ("{cat,dog}.io", (), "dog.io"), True),
    ("glob.match", ("{cat,dog}.io", (), "cow.io"), False),
    ("glob.match", ("\\*.io", (), "*.io"), True),
    ("glob.match", ("\\*.io", (), "a.io"), False),
    ("glob.match", ("/var/*", ("/",), "/var/lib/x"), False),
    ("glob.match", ("/var/**", ("/",), "/var/lib/x"), True),
    ("glob.quote_meta", ("*.io",), "\\*.io"),
    # networks
    ("net.cidr_contains", ("10.0.0.0/8", "10.1.2.3"), True),
    ("net.cidr_contains", ("10.0.0.0/8", "11.1.2.3"), False),
    ("net.cidr_contains", ("10.0.0.0/8", "10.1.0.0/16"), True),
    ("net.cidr_contains", ("10.1.0.0/16", "10.0.0.0/8"), False),
    ("net.cidr_contains", ("10.0.0.0/8", "::1"), False),
    ("net.cidr_contains", ("fd00::/8", "fd12::1"), True),
    ("net.cidr_is_valid", ("10.0.0.0/8",), True),
    ("net.cidr_is_valid", ("10.0.0.0",), False),
    ("net.cidr_is_valid", ("nope/8",), False),
    ("net.cidr_intersects", ("10.0.0.0/8", "10.1.0.0/16"), True),
    ("net.cidr_intersects", ("10.0.0.0/8", "192.168.0.0/16"), False),
    # objects, arrays, sets
    ("object.get", ({"a": 1}, "a", 0), 1),
    ("object.get", ({"a": 1}, "b", 0), 0),
    ("object.get", ({"a": {"b": {"c": 1}}}, ("a", "b", "c"), 0), 1),
    ("object.get", ({"a": {"b": {"c": 1}}}, ("a", "x", "c"), 0), 0),
    ("object.get", ({"a": (10, 20)}, ("a", 1), 0), 20),
    ("object.get", ({"a": 1}, (), 0), {"a": 1}),
    ("object.get", ({"a": None}, "a", 0), None),
    ("object.keys", ({"a": 1, "b": 2},), S({"a", "b"})),
    ("object.remove", ({"a": 1, "b": 2}, ("a",)), {"b": 2}),
    (
        "object.union",
        ({"a": {"x": 1}, "b": 1}, {"a": {"y": 2}, "b": 2}),
        {"a": {"x": 1, "y": 2}, "b": 2},
    ),
    ("array.concat", ((1,), (2, 3)), (1, 2, 3)),
    ("array.slice", ((1, 2, 3, 4), 1, 3), (2, 3)),
    ("array.slice", ((1, 2, 3), -5, 10), (1, 2, 3)),
    ("array.slice", ((1, 2, 3), 2, 1), ()),
    ("array.reverse", ((1, 2),), (2, 1)),
    ("union", (S({S({1}), S({2})}),), S({1, 2})),
    ("union", (S(),), S()),
    ("intersection", (S({S({1, 2}), S({2, 3})}),), S({2})),
    ("intersection", (S(),), S()),
    # types
    ("is_string", ("a",), True),
    ("is_string", (1,), False),
    ("is_number", (1.5,), True),
    ("is_number", (True,), False),
    ("is_boolean", (False,), True),
    ("is_boolean", (0,), False),
    ("is_null", (None,), True),
    ("is_array", ((),), True),
    ("is_array", (S(),), False),
    ("is_set", (S(),), True),
    ("is_object", ({},), True),
    ("is_object", (FrozenDict(),), True),
    ("type_name", (S(),), "set"),
    ("type_name", (True,), "boolean"),
    # encodings
    ("json.marshal", ({"b": S({2, 1}), "a": "x"},), '{"a":"x","b":[1,2]}'),
    ("json.unmarshal", ('{"a": [1, {"b": null}]}',), {"a": (1, {"b": None})}),
    ("json.is_valid", ("{",), False),
    ("json.is_valid", ("[1]",), True),
    ("base64.encode", ("hi",), "aGk="),
    ("base64.decode", ("aGk=",), "hi"),
]


@pytest.mark.parametrize(
    ("name", "args", "expected"),
    CASES,
    ids=[f"{name}-{i}" for i, (name, _, _) in enumerate(CASES)],
)
def test_builtin(name: str, args: tuple[Any, ...], expected: Any) -> None:
    result = call(name, *args)
    assert equal(result, expected), result
    assert type(result) is type(expected) or (
        isinstance(result, dict) and isinstance(expected, dict)
    )


ERRORS: list[tuple[str, tuple[Any, ...]]] = [
    ("count", (1,)),
    ("count", (None,)),
    ("sum", (("a",),)),
    ("sum", ((True,),)),
    ("sum", ("abc",)),
    ("max", (1,)),
    ("sort", ({"a": 1},)),
    ("abs", ("1",)),
    ("round", (None,)),
    ("numbers.range", (1.5, 3)),
    ("to_number", ("abc",)),
    ("to_number", ("0x10",)),
    ("to_number", ("",)),
    ("to_number", ((),)),
    ("format_int", (10, 3)),
    ("format_int", ("10", 10)),
    ("lower", (1,)),
    ("upper", (None,)),
    ("trim", ("a", 1)),
    ("replace", ("a", "b", 1)),
    ("split", (1, ",")),
    ("concat", (",", "ab")),
    ("concat", (",", (1, 2))),
    ("startswith", ("a", 1)),
    ("endswith", (1, "a")),
    ("contains", (("a",), "a")),
    ("indexof", ("a", None)),
    ("substring", ("abc", -1, 2)),
    ("substring", ("abc", 1.5, 2)),
    ("strings.any_prefix_match", (1, "a")),
    ("sprintf", (1, ())),
    ("sprintf", ("%s", "a")),
    ("regex.match", ("(", "x")),
    ("regex.match", ("a", 1)),
    ("glob.match", ("[ab", (), "a")),
    ("glob.match", ("{a,b", (), "a")),
    ("glob.match", ("*", "x", "a")),
    ("glob.match", ("*", (1,), "a")),
    ("net.cidr_contains", ("nope", "10.0.0.1")),
    ("net.cidr_contains", ("10.0.0.0/8", "10.0.0")),
    ("net.cidr_contains", (1, "10.0.0.1")),
    ("object.get", ((), "a", 0)),
    ("object.keys", ((),)),
    ("object.remove", ({}, 1)),
    ("object.union", ({}, ())),
    ("array.concat", ((), S())),
    ("array.slice", ("abc", 0, 1)),
    ("union", (S({1}),)),
    ("intersection", (((),),)),
    ("json.marshal", (float("nan"),)),
    ("json.unmarshal", ("{",)),
    ("base64.decode", ("%%%",)),
]


@pytest.mark.parametrize(
    ("name", "args"), ERRORS, ids=[f"{name}-{i}" for i, (name, _) in enumerate(ERRORS)]
)
def test_builtin_error(name: str, args: tuple[Any, ...]) -> None:
    with pytest.raises(BuiltinError):
        call(name, *args)


@pytest.mark.parametrize("name", ["max", "min"])
def test_empty_collection_is_undefined(name: str) -> None:
    with pytest.raises(BuiltinUndefined):
        call(name, ())
    assert issubclass(BuiltinUndefined, BuiltinError)


def test_time_now_ns() -> None:
    before = time.time_ns()
    now = call("time.now_ns")
    assert type(now) is int
    assert before <= now <= time.time_ns()


def test_registry() -> None:
    assert lookup("regex.match") is BUILTINS["regex.match"]
    assert lookup("no.such") is None
    for name, builtin in BUILTINS.items():
        assert isinstance(builtin, Builtin)
        assert builtin.name == name
        assert builtin.result
    with pytest.raises(TypeError):
        BUILTINS["x"] = BUILTINS["count"]  # type: ignore[index]


def test_design_builtins_present() -> None:
    required = [
        *("count", "sum", "max", "min", "lower", "upper", "startswith", "endswith"),
        *("contains", "sprintf", "concat", "split", "trim", "replace", "regex.match"),
        *("glob.match", "net.cidr_contains", "object.get", "time.now_ns", "sort"),
        *("is_string", "is_number", "is_boolean", "is_null", "is_array", "is_set"),
        "is_object",
    ]
    assert not [name for name in required if name not in BUILTINS]


def test_errors_name_the_builtin_and_quote_user_text() -> None:
    with pytest.raises(BuiltinError, match=r"regex\.match"):
        call("regex.match", "(", "x")
    with pytest.raises(BuiltinError, match="`abc`"):
        call("to_number", "abc")


# --- properties ---------------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-1000, max_value=1000),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(max_size=4),
)
values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(tuple),
        st.lists(inner, max_size=3).map(lambda xs: frozenset(freeze(x) for x in xs)),
        st.dictionaries(st.text(max_size=2), inner, max_size=3),
    ),
    max_leaves=8,
)


@given(st.lists(values, max_size=8))
def test_sort_output_is_ordered(items: list[Any]) -> None:
    result = call("sort", tuple(items))
    assert len(result) == len(items)
    for a, b in itertools.pairwise(result):
        assert compare(a, b) <= 0


@given(st.lists(values, min_size=1, max_size=8))
def test_max_and_min_bound_the_sort(items: list[Any]) -> None:
    ordered = call("sort", tuple(items))
    assert equal(call("max", tuple(items)), ordered[-1])
    assert equal(call("min", tuple(items)), ordered[0])


@given(st.text(max_size=20), st.text(max_size=20))
def test_string_builtins_never_raise_on_strings(a: str, b: str) -> None:
    for name in ("startswith", "endswith", "contains", "indexof", "split", "trim"):
        call(name, a, b)
    assert call("regex.match", "", a) is True


@given(st.text(max_size=10), st.text(max_size=10))
def test_glob_and_sprintf_raise_only_builtin_errors(pattern: str, text: str) -> None:
    for name, args in (
        ("glob.match", (pattern, (), text)),
        ("glob.match", (pattern, None, text)),
        ("sprintf", (pattern, (text, 1, None))),
        ("regex.match", (pattern, text)),
    ):
        with contextlib.suppress(BuiltinError):
            call(name, *args)
