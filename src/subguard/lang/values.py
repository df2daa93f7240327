"""The value model compiled policies compute with: plain Python values under Rego rules.

Compiled rules work directly on Python values so that evaluation costs what hand-written
code costs. The mapping is fixed:

=========  ====================================================
Rego       Python
=========  ====================================================
string     `str`
number     `int` or `float` (never `bool`)
boolean    `bool`
null       `None`
array      `tuple`
set        `frozenset`
object     `dict`, treated as immutable (`FrozenDict` inside sets)
=========  ====================================================

Python's own `==` almost agrees with Rego's: `1 == 1.0` holds in both, but Python also
says `True == 1`, which Rego does not. `equal` implements Rego's equality and `compare`
/ `sort_key` its total order across types. One known limit of the mapping: a `frozenset`
or `dict` cannot hold both `true` and `1` (Python hashes them alike); policies over
real request facts never need that.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

__all__ = [
    "FrozenDict",
    "compare",
    "equal",
    "freeze",
    "from_json",
    "marshal",
    "sort_key",
    "to_json",
    "type_name",
]


class FrozenDict(dict[Any, Any]):
    """An object value that can live in a set or be a key: a `dict` that refuses mutation.

    It stays a `dict` subclass so that compiled code reads it exactly like any other
    object (`obj["k"]`, `obj.get`, `in`, iteration) without knowing it was frozen.
    """

    __slots__ = ("_hash",)

    def __hash__(self) -> int:  # type: ignore[override]
        try:
            return self._hash
        except AttributeError:
            self._hash: int = hash(frozenset(self.items()))
            return self._hash

    def _readonly(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("an object value is immutable")

    __setitem__ = _readonly
    __delitem__ = _readonly
    __ior__ = _readonly
    clear = _readonly
    pop = _readonly
    popitem = _readonly
    setdefault = _readonly
    update = _readonly

    def __repr__(self) -> str:
        return f"FrozenDict({dict.__repr__(self)})"

    def __reduce__(self) -> tuple[Any, ...]:
        # dict's default pickling would call __setitem__ on the copy
        return (FrozenDict, (dict(self),))


def freeze(value: Any) -> Any:
    """Return `value` with every container made hashable: list→tuple, set→frozenset,
    dict→`FrozenDict`, recursively. Scalars are returned unchanged."""
    kind = type(value)
    if kind is str or kind is int or kind is float or kind is bool or value is None:
        return value
    if isinstance(value, FrozenDict):
        return value
    if isinstance(value, dict):
        return FrozenDict({freeze(k): freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(freeze(v) for v in value)
    if isinstance(value, (set, frozenset)):
        return frozenset(freeze(v) for v in value)
    return value


def from_json(value: Any) -> Any:
    """Convert a decoded JSON document (`json.loads`, `orjson.loads`) into the value model.

    Lists become tuples; dicts stay plain dicts (with converted values), because only a
    dict that must be hashed, i.e. one put in a set, needs to be a `FrozenDict`.
    """
    if isinstance(value, list):
        return tuple(from_json(v) for v in value)
    if isinstance(value, dict):
        return {k: from_json(v) for k, v in value.items()}
    return value


def to_json(value: Any) -> Any:
    """Convert a value into plain JSON-compatible data for output.

    Sets become arrays sorted in Rego order, tuples become lists, and object keys that
    are not strings become their JSON text (JSON objects only have string keys).
    """
    if isinstance(value, dict):
        return {(k if type(k) is str else marshal(k)): to_json(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [to_json(v) for v in value]
    if isinstance(value, (frozenset, set)):
        return [to_json(v) for v in sorted(value, key=sort_key)]
    return value


def marshal(value: Any) -> str:
    """JSON text of `value` with sorted keys and compact separators, as OPA's `json.marshal`.

    Raises `ValueError` for values that have no JSON form (NaN, infinities, foreign types).
    """
    try:
        return json.dumps(
            to_json(value),
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
        )
    except TypeError as exc:
        raise ValueError(f"value of type `{type(value).__name__}` has no JSON form") from exc


# Rego's order of types: null < boolean < number < string < array < object < set.
_NULL, _BOOLEAN, _NUMBER, _STRING, _ARRAY, _OBJECT, _SET = range(7)

_RANK_BY_TYPE: dict[type, int] = {
    type(None): _NULL,
    bool: _BOOLEAN,
    int: _NUMBER,
    float: _NUMBER,
    str: _STRING,
    tuple: _ARRAY,
    list: _ARRAY,
    dict: _OBJECT,
    FrozenDict: _OBJECT,
    frozenset: _SET,
    set: _SET,
}

_TYPE_NAMES = ("null", "boolean", "number", "string", "array", "object", "set")


def _rank(value: Any) -> int:
    try:
        return _RANK_BY_TYPE[type(value)]
    except KeyError:
        pass
    # subclasses of the builtin containers (named tuples, dict subclasses, ...)
    for base, rank in (
        (bool, _BOOLEAN),
        (int, _NUMBER),
        (float, _NUMBER),
        (str, _STRING),
        (tuple, _ARRAY),
        (list, _ARRAY),
        (dict, _OBJECT),
        (frozenset, _SET),
        (set, _SET),
    ):
        if isinstance(value, base):
            return rank
    raise TypeError(f"`{type(value).__name__}` is not a policy value")


def type_name(value: Any) -> str:
    """The Rego type name of `value`: null, boolean, number, string, array, object or set."""
    return _TYPE_NAMES[_rank(value)]


def sort_key(value: Any) -> tuple[Any, ...]:
    """A key whose Python ordering is Rego's total order over values.

    Within a type: booleans false < true, numbers by value, strings by code point (the
    same as Go's byte order on UTF-8), arrays lexicographically, objects by their sorted
    (key, value) pairs, sets by their sorted elements.
    """
    rank = _rank(value)
    if rank == _NULL:
        return (_NULL,)
    if rank <= _STRING:
        return (rank, value)
    if rank == _ARRAY:
        return (_ARRAY, tuple(sort_key(v) for v in value))
    if rank == _OBJECT:
        pairs = sorted((sort_key(k), sort_key(v)) for k, v in value.items())
        return (_OBJECT, tuple(pairs))
    return (_SET, tuple(sorted(sort_key(v) for v in value)))


def compare(a: Any, b: Any) -> int:
    """-1, 0 or 1 as `a` sorts before, equal to, or after `b` in Rego's order."""
    ka, kb = sort_key(a), sort_key(b)
    return (ka > kb) - (ka < kb)


_SCALARS = frozenset((str, int, float, bool, type(None)))


def equal(a: Any, b: Any) -> bool:
    """Rego equality: `1 == 1.0`, but `true != 1`, also inside containers."""
    ta = type(a)
    if ta is type(b) and ta in _SCALARS:
        return bool(a == b)
    ra, rb = _rank(a), _rank(b)
    if ra != rb:
        return False
    if ra <= _STRING:
        return bool(a == b)
    if ra == _ARRAY:
        return len(a) == len(b) and all(equal(x, y) for x, y in zip(a, b))
    # objects and sets: Python's own equality would conflate `true` and `1` in keys and
    # elements, so compare them in Rego's order instead
    return len(a) == len(b) and sort_key(a) == sort_key(b)
