"""What compiled policy code calls at evaluation time: undefinedness, context, helpers.

Generated code works on plain Python values (see `values`). A reference that does not
resolve raises one of `UNDEFINED_ERRORS`, which the literal around it catches: in Rego an
undefined expression makes its literal fail, it is not an error.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from subguard.lang import budget
from subguard.lang.builtins import BuiltinUndefined
from subguard.lang.values import FrozenDict, equal, freeze, sort_key

__all__ = ["UNDEFINED_ERRORS", "ConflictError", "Ctx", "EvalFault", "Undefined"]


class Undefined(Exception):
    """A rule or function has no value for this input."""


class EvalFault(Exception):
    """A runtime error inside a rule (conflict, a failing builtin, bad operand types)."""

    code = "eval_error"


class ConflictError(EvalFault):
    code = "conflict"


#: Exceptions that mean "this expression is undefined" rather than "this is an error".
UNDEFINED_ERRORS = (Undefined, KeyError, IndexError, TypeError, BuiltinUndefined)

_MISSING = object()

#: The collection types whose size a loop charges to the budget (anything else costs 1).
SIZED = frozenset({tuple, frozenset, dict, FrozenDict, list, set, str})


class Ctx:
    """One evaluation: the documents and the memo of rule values computed so far."""

    __slots__ = ("data", "input", "memo", "meter", "mocks")

    def __init__(
        self,
        input: Any,
        data: Any,
        memo: dict[int, Any] | None = None,
        meter: list[int] | None = None,
        mocks: dict[Any, Any] | None = None,
    ) -> None:
        self.input = input
        self.data = data
        self.memo: dict[int, Any] = {} if memo is None else memo
        #: The evaluation's budget meter (`budget.start`): units left, units given.
        self.meter: list[int] = budget.start() if meter is None else meter
        #: Functions replaced by `with f as …`: function (rule group index or builtin
        #: name) → a replacement function `(ctx, *args)`, or a value every call returns.
        self.mocks: dict[Any, Any] = {} if mocks is None else mocks


def with_(ctx: Ctx, overrides: Iterable[tuple[str, tuple[Any, ...], Any, Any]]) -> Ctx:
    """A new context in which `with` replaced parts of `input`/`data`, rule values or
    functions (root `"fn"`, the function's key in place of a rule index)."""
    inp, data, memo = ctx.input, ctx.data, {}
    mocks = ctx.mocks
    for root, path, rule_index, value in overrides:
        if root == "fn":
            mocks = {**mocks, rule_index: value}
        elif rule_index is not None:
            memo[rule_index] = value
        elif root == "input":
            inp = _replace(inp, path, value)
        else:
            data = _replace(data, path, value)
    return Ctx(inp, data, memo, ctx.meter, mocks)


def call_mockable(ctx: Ctx, key: Any, fn: Any, *args: Any) -> Any:
    """Call a function that some `with` may replace: its replacement in this context
    (called, or, for a value, returned), else the function itself."""
    mocks = ctx.mocks
    if mocks and key in mocks:
        replacement = mocks[key]
        if not callable(replacement):
            return replacement
        # inside the replacement, the function it replaces is the original again (OPA's
        # scoping: `with f as g` where `g` calls `f` is no recursion)
        inner = Ctx(
            ctx.input, ctx.data, {}, ctx.meter, {k: v for k, v in mocks.items() if k != key}
        )
        return replacement(inner, *args)
    return fn(ctx, *args)


def _replace(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    base = dict(doc) if isinstance(doc, Mapping) else {}
    base[path[0]] = _replace(base.get(path[0]), path[1:], value)
    return base


def get(container: Any, key: Any) -> Any:
    """`container[key]` with Rego's rules: sets index by membership; booleans never
    index arrays; a miss raises KeyError (undefined)."""
    if type(container) is dict or type(container) is FrozenDict:
        try:
            return container[key]
        except TypeError:  # an object or array key built at run time: its frozen form
            return container[freeze(key)]
    if type(container) is tuple:
        if type(key) is int and key >= 0:
            return container[key]
        if type(key) is float and key.is_integer() and key >= 0:
            return container[int(key)]
        raise KeyError(key)
    if type(container) is frozenset:
        if key in container:
            return key
        raise KeyError(key)
    if isinstance(container, Mapping):
        return container[key]
    raise KeyError(key)


def values_of(collection: Any) -> Iterable[Any]:
    """What `some x in c` iterates: array and set elements, object values."""
    t = type(collection)
    if t is tuple or t is frozenset:
        return collection  # type: ignore[no-any-return]
    if isinstance(collection, Mapping):
        return collection.values()
    if isinstance(collection, list | set):
        return collection
    raise TypeError("not a collection")


def items_of(collection: Any) -> Iterable[tuple[Any, Any]]:
    """What `some k, v in c` and `c[k]` iterate: index or key, and value."""
    t = type(collection)
    if t is tuple:
        return enumerate(collection)
    if t is frozenset:
        return ((v, v) for v in collection)
    if isinstance(collection, Mapping):
        return collection.items()
    raise TypeError("not a collection")


def member(element: Any, collection: Any) -> bool:
    """`x in c`: membership in an array or set, or among an object's values; `false`
    for anything else (a string is not a collection of its substrings)."""
    if type(collection) is frozenset:
        try:
            found = element in collection
        except TypeError:
            element = freeze(element)
            found = element in collection
        if not found or type(element) is str:
            return found
        # Python hashes `true` like `1`: confirm with Rego's equality
        return any(equal(element, v) for v in collection)
    if type(collection) is tuple or isinstance(collection, Mapping):
        if len(collection) > budget.FREE_SIZE:
            budget.spend(len(collection))  # a scan of a large collection, maybe once per iteration
        return any(equal(element, v) for v in values_of(collection))
    # not a collection: false, as OPA's `internal.member_2` (never a substring test)
    return False


def member_kv(key: Any, value: Any, collection: Any) -> bool:
    """`k, v in c`: the array has `v` at index `k`, the object `v` at key `k`, or the set
    holds `v` and `k` equals it; `false` for anything else."""
    if type(collection) is tuple:
        if (
            (type(key) is int or type(key) is float)
            and float(key).is_integer()
            and 0 <= key < len(collection)
        ):
            return equal(collection[int(key)], value)
        return False
    if type(collection) is frozenset:
        return equal(key, value) and member(value, collection)
    if isinstance(collection, Mapping):
        for k, v in collection.items():
            if equal(k, key):
                return equal(v, value)
        return False
    return False


def eq(a: Any, b: Any) -> bool:
    return equal(a, b)


def ne(a: Any, b: Any) -> bool:
    return not equal(a, b)


def _number(x: Any) -> bool:
    return (type(x) is int or type(x) is float) and type(x) is not bool


def _operands(op: str, a: Any, b: Any) -> None:
    if not (_number(a) and _number(b)):
        raise EvalFault(f"`{op}` needs numbers")


def add(a: Any, b: Any) -> Any:
    _operands("+", a, b)
    return a + b


def sub(a: Any, b: Any) -> Any:
    if type(a) is frozenset and type(b) is frozenset:
        return a - b
    _operands("-", a, b)
    return a - b


def mul(a: Any, b: Any) -> Any:
    _operands("*", a, b)
    return a * b


def div(a: Any, b: Any) -> Any:
    _operands("/", a, b)
    if b == 0:
        raise EvalFault("divide by zero")
    result = a / b
    return (
        int(result)
        if isinstance(result, float) and result.is_integer() and type(a) is int and type(b) is int
        else result
    )


def mod(a: Any, b: Any) -> Any:
    _operands("%", a, b)
    if b == 0:
        raise EvalFault("modulo by zero")
    if not (float(a).is_integer() and float(b).is_integer()):
        raise EvalFault("modulo on a floating-point number")
    a, b = int(a), int(b)
    # Rego (Go) truncates toward zero: the remainder takes the dividend's sign
    remainder = abs(a) % abs(b)
    return -remainder if a < 0 else remainder


def neg(a: Any) -> Any:
    if not _number(a):
        raise EvalFault("`-` needs a number")
    return -a


def union(a: Any, b: Any) -> frozenset[Any]:
    if type(a) is not frozenset or type(b) is not frozenset:
        raise EvalFault("`|` needs sets")
    return a | b


def intersect(a: Any, b: Any) -> frozenset[Any]:
    if type(a) is not frozenset or type(b) is not frozenset:
        raise EvalFault("`&` needs sets")
    return a & b


def less(a: Any, b: Any) -> bool:
    """`a < b` in Rego's total order: across types by type (null < boolean < number <
    string < …), never Python's (`True < 2`, `1 < "a"`)."""
    ta, tb = type(a), type(b)
    if (ta is int or ta is float) and (tb is int or tb is float):
        return bool(a < b)
    if ta is str and tb is str:
        return bool(a < b)
    return sort_key(a) < sort_key(b)


def to_set(items: list[Any]) -> frozenset[Any]:
    try:
        return frozenset(items)
    except TypeError:
        return frozenset(freeze(i) for i in items)


def single(values: list[Any], what: str) -> Any:
    """The one value of a complete rule or function; several different ones conflict."""
    first = values[0]
    for other in values[1:]:
        if not equal(first, other):
            raise ConflictError(f"{what} produced different values")
    return first


def build_object(pairs: list[tuple[Any, Any]], what: str) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for key, value in pairs:
        key = freeze(key)
        if key in out and not equal(out[key], value):
            raise ConflictError(f"{what} produced different values for one key")
        out[key] = value
    return out


MISSING = _MISSING


def package_document(
    ctx: Ctx,
    path: tuple[str, ...],
    packages: tuple[tuple[str, ...], ...],
    rules: tuple[tuple[tuple[str, ...], str, Any], ...],
) -> dict[str, Any]:
    """The document at `data.<path>` when packages live there: the `data` document's
    object at that path, with each package below it (by its path relative to `path`)
    nested in, holding its rules' values (`(package path, rule name, rule function)`);
    undefined rules are left out."""
    base: Any = ctx.data
    for step in path:
        try:
            base = get(base, step)
        except UNDEFINED_ERRORS:
            base = None
            break
    document: dict[str, Any] = dict(base) if isinstance(base, Mapping) else {}
    built = {id(document)}  # objects made here; the `data` document's are copied first

    def node(relative: tuple[str, ...]) -> dict[str, Any]:
        current = document
        for step in relative:
            child: Any = current.get(step)
            if id(child) not in built:
                child = dict(child) if isinstance(child, Mapping) else {}
                built.add(id(child))
                current[step] = child
            current = child
        return current

    for relative in packages:
        node(relative)
    for relative, name, fn in rules:
        try:
            node(relative)[name] = fn(ctx)
        except UNDEFINED_ERRORS:
            continue
    return document
