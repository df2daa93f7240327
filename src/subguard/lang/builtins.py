"""The builtin functions policies may call, with Rego's names, argument orders and semantics.

Compiled rules call `BUILTINS[name].fn(*args)` on values of the value model
(`subguard.lang.values`). A builtin either returns a value or raises `BuiltinError`;
every other exception a builtin's implementation could raise is converted at the
registry boundary, so the engine only ever has one failure to record (and fail closed
on). `BuiltinUndefined` marks the cases where OPA yields *undefined* rather than an
error (`max([])`), so the compiler may treat them as an unsatisfied expression.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
import re
import time
import types
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import attrs

from subguard.lang.budget import charge_arguments, spend
from subguard.lang.types import Type, parse_type
from subguard.lang.values import from_json, marshal, sort_key, type_name

__all__ = ["BUILTINS", "Builtin", "BuiltinError", "BuiltinUndefined", "lookup"]


class BuiltinError(Exception):
    """A builtin was called with bad arguments or could not compute its result."""


class BuiltinUndefined(BuiltinError):
    """The builtin has no result for these arguments; OPA calls this *undefined*."""


def _type(declared: Type | str) -> Type:
    # a type written as text (`"set<string>"`) is parsed once, when the builtin is
    # registered; the checker reads the `Type`
    return parse_type(declared) if isinstance(declared, str) else declared


def _types(declared: Sequence[Type | str] | None) -> tuple[Type, ...] | None:
    return None if declared is None else tuple(_type(t) for t in declared)


@attrs.frozen
class Builtin:
    """One builtin function: its policy name, arity, implementation, result type and
    (when declared) argument types — each a `Type` or its text, parsed once here, as
    OPA's `builtins.go` declares them. Undeclared argument types are `any`."""

    name: str
    arity: int
    fn: Callable[..., Any] = attrs.field(repr=False)
    result: Type = attrs.field(converter=_type)
    args: tuple[Type, ...] | None = attrs.field(default=None, converter=_types)

    def __attrs_post_init__(self) -> None:
        if self.args is not None and len(self.args) != self.arity:
            raise ValueError(
                f"`{self.name}` declares {len(self.args)} argument types for {self.arity} arguments"
            )


_REGISTRY: dict[str, Builtin] = {}
_F = TypeVar("_F", bound=Callable[..., Any])


def _builtin(name: str, args: tuple[str, ...], result: str) -> Callable[[_F], _F]:
    """Register `fn` as the builtin `name`, taking arguments of the types `args` and
    returning a `result`."""

    def register(fn: _F) -> _F:
        _REGISTRY[name] = Builtin(name, len(args), _guarded(name, fn), result, args)
        return fn

    return register


def _guarded(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    # One boundary where stray Python exceptions become BuiltinError, so that the
    # engine can record "`regex.match`: …" instead of crashing on a re.error.
    @functools.wraps(fn)
    def call(*args: Any) -> Any:
        charge_arguments(args)  # reading a large input once per loop iteration adds up
        try:
            return fn(*args)
        except BuiltinError:
            raise
        except (TypeError, ValueError, ArithmeticError, re.error, KeyError, IndexError) as exc:
            raise BuiltinError(f"`{name}`: {exc}") from exc

    return call


def lookup(name: str) -> Builtin | None:
    """The builtin called `name` in policy text, or None if there is none."""
    return _REGISTRY.get(name)


# --- argument checks --------------------------------------------------------------------


def _bad(name: str, pos: int, expected: str, value: Any) -> BuiltinError:
    try:
        got = type_name(value)
    except TypeError:
        got = "an unknown value"
    return BuiltinError(f"`{name}`: operand {pos} must be {expected}, got {got}")


def _str(name: str, pos: int, value: Any) -> str:
    if type(value) is not str:
        raise _bad(name, pos, "string", value)
    return value


def _num(name: str, pos: int, value: Any) -> int | float:
    if type(value) is not int and type(value) is not float:
        raise _bad(name, pos, "number", value)
    return value


def _int(name: str, pos: int, value: Any) -> int:
    number = _num(name, pos, value)
    if type(number) is float:
        if not number.is_integer():
            raise BuiltinError(f"`{name}`: operand {pos} must be an integer, got `{number}`")
        return int(number)
    return number  # type: ignore[return-value]


def _collection(name: str, pos: int, value: Any) -> tuple[Any, ...] | frozenset[Any]:
    if isinstance(value, (tuple, frozenset)):
        return value
    raise _bad(name, pos, "array or set", value)


def _strings(name: str, pos: int, value: Any) -> tuple[str, ...]:
    """An array or set of strings, or a single string, as a tuple (sets in sorted order)."""
    if type(value) is str:
        return (value,)
    items = _collection(name, pos, value)
    if isinstance(items, frozenset):
        items = tuple(sorted(items, key=sort_key))
    for item in items:
        if type(item) is not str:
            raise _bad(name, pos, "a collection of strings", value)
    return items


def _object(name: str, pos: int, value: Any) -> dict[Any, Any]:
    if not isinstance(value, dict):
        raise _bad(name, pos, "object", value)
    return value


# --- aggregates ---------------------------------------------------------------------------


@_builtin("count", ("any",), "number")
def _count(collection: Any) -> int:
    if isinstance(collection, (str, tuple, frozenset, dict)):
        return len(collection)
    raise _bad("count", 1, "string, array, set or object", collection)


def _numbers(name: str, collection: Any) -> list[int | float]:
    items = _collection(name, 1, collection)
    for item in items:
        if type(item) is not int and type(item) is not float:
            raise _bad(name, 1, "a collection of numbers", collection)
    return list(items)


@_builtin("sum", ("any",), "number")
def _sum(collection: Any) -> int | float:
    return sum(_numbers("sum", collection))


@_builtin("product", ("any",), "number")
def _product(collection: Any) -> int | float:
    return math.prod(_numbers("product", collection))


@_builtin("max", ("any",), "any")
def _max(collection: Any) -> Any:
    items = _collection("max", 1, collection)
    if not items:
        raise BuiltinUndefined("`max`: the collection is empty")
    return max(items, key=sort_key)


@_builtin("min", ("any",), "any")
def _min(collection: Any) -> Any:
    items = _collection("min", 1, collection)
    if not items:
        raise BuiltinUndefined("`min`: the collection is empty")
    return min(items, key=sort_key)


@_builtin("sort", ("any",), "array<any>")
def _sort(collection: Any) -> tuple[Any, ...]:
    return tuple(sorted(_collection("sort", 1, collection), key=sort_key))


# --- numbers ------------------------------------------------------------------------------


@_builtin("abs", ("number",), "number")
def _abs(x: Any) -> int | float:
    return abs(_num("abs", 1, x))


@_builtin("round", ("number",), "number")
def _round(x: Any) -> int:
    # Go's math.Round: halves round away from zero (Python's round() goes to even)
    n = _num("round", 1, x)
    return int(math.copysign(math.floor(abs(n) + 0.5), n))


@_builtin("ceil", ("number",), "number")
def _ceil(x: Any) -> int:
    return math.ceil(_num("ceil", 1, x))


@_builtin("floor", ("number",), "number")
def _floor(x: Any) -> int:
    return math.floor(_num("floor", 1, x))


@_builtin("numbers.range", ("number", "number"), "array<number>")
def _range(a: Any, b: Any) -> tuple[int, ...]:
    start, stop = _int("numbers.range", 1, a), _int("numbers.range", 2, b)
    step = 1 if stop >= start else -1
    spend(abs(stop - start) + 1)  # before allocating: `numbers.range(1, 1e9)` is refused
    return tuple(range(start, stop + step, step))


_NUMBER_TEXT = re.compile(r"[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?")


@_builtin("to_number", ("any",), "number")
def _to_number(x: Any) -> int | float:
    if x is None:
        return 0
    if type(x) is bool:
        return int(x)
    if type(x) is int or type(x) is float:
        return x
    if type(x) is str:
        if not _NUMBER_TEXT.fullmatch(x):
            raise BuiltinError(f"`to_number`: `{x}` is not a number")
        try:
            return int(x)
        except ValueError:
            number = float(x)
            if math.isinf(number):
                raise BuiltinError(f"`to_number`: `{x}` is out of range") from None
            return number
    raise _bad("to_number", 1, "null, boolean, number or string", x)


_INT_FORMATS = {2: "b", 8: "o", 10: "d", 16: "x"}


@_builtin("format_int", ("number", "number"), "string")
def _format_int(number: Any, base: Any) -> str:
    n = _num("format_int", 1, number)
    b = _int("format_int", 2, base)
    if b not in _INT_FORMATS:
        raise BuiltinError(f"`format_int`: base must be one of 2, 8, 10, 16, got `{b}`")
    # OPA truncates toward zero before formatting
    return format(int(n), _INT_FORMATS[b])


# --- objects, arrays, sets ----------------------------------------------------------------


_MISSING = object()


def _step(container: Any, key: Any) -> Any:
    if isinstance(container, dict):
        return container.get(key, _MISSING)
    if isinstance(container, tuple) and type(key) in (int, float):
        if type(key) is float and not key.is_integer():
            return _MISSING
        index = int(key)
        return container[index] if 0 <= index < len(container) else _MISSING
    if isinstance(container, frozenset):
        return key if key in container else _MISSING
    return _MISSING


@_builtin("object.get", ("any", "any", "any"), "any")
def _object_get(obj: Any, key: Any, default: Any) -> Any:
    current = _object("object.get", 1, obj)
    # as in OPA, an array key is a path into nested objects (and arrays)
    path = key if isinstance(key, tuple) else (key,)
    found: Any = current
    for step in path:
        found = _step(found, step)
        if found is _MISSING:
            return default
    return found


@_builtin("object.keys", ("any",), "set<any>")
def _object_keys(obj: Any) -> frozenset[Any]:
    return frozenset(_object("object.keys", 1, obj))


@_builtin("object.remove", ("any", "any"), "object<any>")
def _object_remove(obj: Any, keys: Any) -> dict[Any, Any]:
    source = _object("object.remove", 1, obj)
    if isinstance(keys, dict):
        drop: set[Any] | dict[Any, Any] = keys
    elif isinstance(keys, (tuple, frozenset)):
        drop = set(keys)
    else:
        raise _bad("object.remove", 2, "array, set or object", keys)
    return {k: v for k, v in source.items() if k not in drop}


@_builtin("object.union", ("any", "any"), "object<any>")
def _object_union(a: Any, b: Any) -> dict[Any, Any]:
    return _merge(_object("object.union", 1, a), _object("object.union", 2, b))


def _merge(a: dict[Any, Any], b: dict[Any, Any]) -> dict[Any, Any]:
    # OPA merges nested objects recursively; on any other conflict the right side wins
    merged = dict(a)
    for k, v in b.items():
        if k in merged and isinstance(merged[k], dict) and isinstance(v, dict):
            merged[k] = _merge(merged[k], v)
        else:
            merged[k] = v
    return merged


@_builtin("array.concat", ("any", "any"), "array<any>")
def _array_concat(a: Any, b: Any) -> tuple[Any, ...]:
    if not isinstance(a, tuple):
        raise _bad("array.concat", 1, "array", a)
    if not isinstance(b, tuple):
        raise _bad("array.concat", 2, "array", b)
    spend(len(a) + len(b))
    return a + b


@_builtin("array.slice", ("any", "number", "number"), "array<any>")
def _array_slice(arr: Any, start: Any, stop: Any) -> tuple[Any, ...]:
    if not isinstance(arr, tuple):
        raise _bad("array.slice", 1, "array", arr)
    first = max(_int("array.slice", 2, start), 0)
    last = min(_int("array.slice", 3, stop), len(arr))
    return arr[first:last] if first < last else ()


@_builtin("array.reverse", ("any",), "array<any>")
def _array_reverse(arr: Any) -> tuple[Any, ...]:
    if not isinstance(arr, tuple):
        raise _bad("array.reverse", 1, "array", arr)
    return arr[::-1]


def _sets(name: str, value: Any) -> list[frozenset[Any]]:
    if not isinstance(value, frozenset):
        raise _bad(name, 1, "set of sets", value)
    for item in value:
        if not isinstance(item, frozenset):
            raise _bad(name, 1, "set of sets", value)
    return list(value)


@_builtin("union", ("any",), "set<any>")
def _union(sets: Any) -> frozenset[Any]:
    return frozenset().union(*_sets("union", sets))


@_builtin("intersection", ("any",), "set<any>")
def _intersection(sets: Any) -> frozenset[Any]:
    members = _sets("intersection", sets)
    if not members:
        return frozenset()
    return members[0].intersection(*members[1:])


# --- types --------------------------------------------------------------------------------


def _is(name: str, test: Callable[[Any], bool]) -> None:
    _REGISTRY[name] = Builtin(name, 1, test, "boolean", ("any",))


_is("is_string", lambda x: type(x) is str)
_is("is_number", lambda x: type(x) is int or type(x) is float)
_is("is_boolean", lambda x: type(x) is bool)
_is("is_null", lambda x: x is None)
_is("is_array", lambda x: isinstance(x, tuple))
_is("is_set", lambda x: isinstance(x, frozenset))
_is("is_object", lambda x: isinstance(x, dict))


@_builtin("type_name", ("any",), "string")
def _type_name(x: Any) -> str:
    return type_name(x)


# --- encodings and time ---------------------------------------------------------------


@_builtin("json.marshal", ("any",), "string")
def _json_marshal(x: Any) -> str:
    return marshal(x)


@_builtin("json.unmarshal", ("string",), "any")
def _json_unmarshal(x: Any) -> Any:
    try:
        return from_json(json.loads(_str("json.unmarshal", 1, x)))
    except json.JSONDecodeError as exc:
        raise BuiltinError(f"`json.unmarshal`: invalid JSON: {exc.msg}") from None


@_builtin("json.is_valid", ("any",), "boolean")
def _json_is_valid(x: Any) -> bool:
    if type(x) is not str:
        return False
    try:
        json.loads(x)
    except ValueError:
        return False
    return True


@_builtin("base64.encode", ("string",), "string")
def _base64_encode(x: Any) -> str:
    return base64.b64encode(_str("base64.encode", 1, x).encode()).decode("ascii")


@_builtin("base64.decode", ("string",), "string")
def _base64_decode(x: Any) -> str:
    try:
        return base64.b64decode(_str("base64.decode", 1, x), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise BuiltinError(f"`base64.decode`: {exc}") from None


@_builtin("time.now_ns", (), "number")
def _now_ns() -> int:
    return time.time_ns()


#: Every builtin, by the dotted name policies call it with.
BUILTINS: Mapping[str, Builtin] = types.MappingProxyType(_REGISTRY)


# the text builtins (strings, regular expressions, globs, networks) register here
# and the rest (units, versions, hashes, encodings, JWTs, time)
from subguard.lang import builtins_more as _more  # noqa: E402, F401
from subguard.lang import builtins_text as _text  # noqa: E402, F401
