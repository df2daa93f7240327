"""Tests for the policy value model: freezing, Rego equality, Rego's total order, JSON."""

from __future__ import annotations

import itertools
import json
import pickle
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from subguard.lang.values import (
    FrozenDict,
    compare,
    equal,
    freeze,
    from_json,
    marshal,
    sort_key,
    to_json,
    type_name,
)

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**53), max_value=2**53),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=5),
)

values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(tuple),
        st.lists(inner, max_size=4).map(lambda xs: frozenset(freeze(x) for x in xs)),
        st.dictionaries(st.text(max_size=3), inner, max_size=4),
    ),
    max_leaves=12,
)

# JSON-shaped input, the way documents arrive from json.loads
json_values: st.SearchStrategy[Any] = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.text(max_size=3), inner, max_size=4),
    ),
    max_leaves=12,
)


class TestFrozenDict:
    def test_is_a_hashable_dict(self) -> None:
        d = FrozenDict({"a": 1})
        assert isinstance(d, dict)
        assert d == {"a": 1}
        assert hash(d) == hash(FrozenDict({"a": 1}))
        assert {d, FrozenDict({"a": 1})} == {d}

    @pytest.mark.parametrize(
        "mutate",
        [
            lambda d: d.__setitem__("b", 2),
            lambda d: d.__delitem__("a"),
            lambda d: d.update(b=2),
            lambda d: d.pop("a"),
            lambda d: d.popitem(),
            lambda d: d.setdefault("b", 2),
            lambda d: d.clear(),
        ],
    )
    def test_refuses_mutation(self, mutate: Any) -> None:
        d = FrozenDict({"a": 1})
        with pytest.raises(TypeError):
            mutate(d)
        assert d == {"a": 1}

    def test_pickles(self) -> None:
        d = FrozenDict({"a": (1, 2)})
        copy = pickle.loads(pickle.dumps(d))
        assert type(copy) is FrozenDict
        assert copy == d


class TestConversions:
    def test_freeze(self) -> None:
        frozen = freeze({"a": [1, {"b": {2}}]})
        assert isinstance(frozen, FrozenDict)
        assert frozen["a"] == (1, FrozenDict({"b": frozenset({2})}))
        hash(frozen)

    def test_from_json_keeps_plain_dicts(self) -> None:
        value = from_json(json.loads('{"a": [1, {"b": []}], "c": null}'))
        assert value == {"a": (1, {"b": ()}), "c": None}
        assert type(value) is dict
        assert type(value["a"][1]) is dict

    def test_to_json(self) -> None:
        assert to_json({"s": frozenset({"b", "a"}), "t": (1, frozenset({2, 1}))}) == {
            "s": ["a", "b"],
            "t": [1, [1, 2]],
        }

    def test_marshal_is_compact_and_sorted(self) -> None:
        assert marshal({"b": 1, "a": (True, None)}) == '{"a":[true,null],"b":1}'
        assert marshal(frozenset({"x", "a"})) == '["a","x"]'
        assert marshal("é") == '"é"'

    def test_marshal_rejects_values_without_json_form(self) -> None:
        with pytest.raises(ValueError):
            marshal(float("nan"))
        with pytest.raises(ValueError):
            marshal(object())


class TestTypes:
    @pytest.mark.parametrize(
        ("value", "name"),
        [
            (None, "null"),
            (True, "boolean"),
            (0, "number"),
            (1.5, "number"),
            ("", "string"),
            ((), "array"),
            ({}, "object"),
            (FrozenDict(), "object"),
            (frozenset(), "set"),
        ],
    )
    def test_type_name(self, value: Any, name: str) -> None:
        assert type_name(value) == name

    def test_type_name_rejects_foreign_values(self) -> None:
        with pytest.raises(TypeError):
            type_name(object())


class TestEquality:
    @pytest.mark.parametrize(
        ("a", "b"),
        [
            (1, 1.0),
            ((1, "a"), (1.0, "a")),
            ({"a": 1}, FrozenDict({"a": 1.0})),
            (frozenset({1, 2}), frozenset({2.0, 1.0})),
            (None, None),
        ],
    )
    def test_equal(self, a: Any, b: Any) -> None:
        assert equal(a, b)
        assert compare(a, b) == 0

    @pytest.mark.parametrize(
        ("a", "b"),
        [
            (True, 1),
            (False, 0),
            ((True,), (1,)),
            ({"a": True}, {"a": 1}),
            (frozenset({True}), frozenset({1})),
            ("1", 1),
            ((), frozenset()),
            (None, False),
            ((1, 2), (1, 2, 3)),
        ],
    )
    def test_not_equal(self, a: Any, b: Any) -> None:
        assert not equal(a, b)
        assert compare(a, b) != 0


class TestOrder:
    def test_order_across_types(self) -> None:
        ordered: list[Any] = [
            None,
            False,
            True,
            -1,
            0.5,
            2,
            "",
            "a",
            (),
            (1,),
            {},
            {"a": 1},
            frozenset(),
        ]
        shuffled = list(reversed(ordered))
        assert sorted(shuffled, key=sort_key) == ordered
        for a, b in itertools.pairwise(ordered):
            assert compare(a, b) == -1
            assert compare(b, a) == 1

    def test_order_within_types(self) -> None:
        assert compare((1, 2), (1, 3)) < 0
        assert compare((1, 2), (1, 2, 0)) < 0
        assert compare({"a": 2}, {"b": 1}) < 0
        assert compare({"a": 1}, {"a": 2}) < 0
        assert compare(frozenset({1, 3}), frozenset({2})) < 0
        assert compare("Z", "a") < 0

    @given(values, values)
    def test_compare_is_antisymmetric(self, a: Any, b: Any) -> None:
        assert compare(a, b) == -compare(b, a)
        assert (compare(a, b) == 0) == equal(a, b)

    @given(values, values, values)
    def test_compare_is_transitive(self, a: Any, b: Any, c: Any) -> None:
        a, b, c = sorted((a, b, c), key=sort_key)
        assert compare(a, b) <= 0
        assert compare(b, c) <= 0
        assert compare(a, c) <= 0
        if compare(a, b) == 0 and compare(b, c) == 0:
            assert compare(a, c) == 0

    @given(values)
    def test_compare_is_reflexive(self, a: Any) -> None:
        assert compare(a, a) == 0
        assert equal(a, a)


class TestProperties:
    @given(json_values)
    def test_freeze_is_hashable_and_equal(self, value: Any) -> None:
        frozen = freeze(value)
        hash(frozen)
        assert equal(frozen, from_json(value))
        assert equal(freeze(frozen), frozen)

    @given(values)
    def test_marshal_parses_back_to_json_form(self, value: Any) -> None:
        assert json.loads(marshal(value)) == to_json(value)
