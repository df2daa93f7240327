"""One pass over a raw (JSON-decoded) input document: check its types and convert it.

`Engine.evaluate` on a raw document used to walk it three times: a type check against
the input schema (`dataschema.type_errors`), the conversion into the value model
(`from_json`: arrays as tuples) and the conversion of schema-typed sets (`conform`). The
decoder here is built once from the schema as a tree of small functions, one per type,
and does all three in one walk.

It accepts only what JSON decodes to, with exactly the types the schema names: `dict`,
`list`, `str`, `int`/`float`, `bool`, `None`. Anything else — a wrong type, an unknown
field, a tuple, a set or a `Mapping` from a Python caller, an unhashable set member —
stops it with `Slow`, and the caller takes the general path, which reports the first
problem exactly as before (or accepts what only a Python caller can build). So the fast
path never decides what the general path would refuse: it is the general path's answer
on the documents both accept, and no answer at all on the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

from subguard.lang import Schema, Type, from_json

__all__ = ["Slow", "raw_decoder"]

Decode = Callable[[Any], Any]


class Slow(Exception):
    """The document needs the general path (a problem to report, or a Python-only type)."""


_SLOW: Final = Slow()


def raw_decoder(schema: Schema) -> Decode:
    """The decoder of documents of `schema.root`; raises `Slow` (see the module)."""
    built: dict[str, Decode] = {}
    return _decoder(schema.root, schema, built)


def _decoder(t: Type, schema: Schema, built: dict[str, Decode]) -> Decode:
    kind = t.kind
    if kind == "record":
        name = t.record or ""
        if name in built:
            return _nullable(t, _late(built, name))
        slot: list[Decode] = []
        built[name] = lambda v: slot[0](v)
        fields = {k: _decoder(ft, schema, built) for k, ft in schema.fields(t).items()}
        slot.append(_record(fields))
        built[name] = slot[0]
        return _nullable(t, slot[0])
    if kind == "any":
        return from_json
    if kind == "null":
        return _null
    if kind in ("string", "number", "boolean"):
        types = {"string": (str,), "number": (int, float), "boolean": (bool,)}[kind]
        return _nullable(t, _scalar(types))
    elem = _decoder(t.elem, schema, built) if t.elem is not None else from_json
    if kind == "set":
        return _nullable(t, _set(elem))
    if kind == "array":
        return _nullable(t, _array(elem))
    if kind == "object":
        return _nullable(t, _object(elem))
    raise ValueError(f"unknown type kind `{kind}`")


def _late(built: dict[str, Decode], name: str) -> Decode:
    return lambda v: built[name](v)  # a record that contains itself


def _nullable(t: Type, decode: Decode) -> Decode:
    if not t.nullable:
        return decode

    def nullable(value: Any) -> Any:
        return None if value is None else decode(value)

    return nullable


def _null(value: Any) -> Any:
    if value is not None:
        raise _SLOW
    return None


def _scalar(types: tuple[type, ...]) -> Decode:
    def scalar(value: Any) -> Any:
        if type(value) not in types:  # bool is not a number; a str subclass is not JSON
            raise _SLOW
        return value

    return scalar


def _set(elem: Decode) -> Decode:
    def as_set(value: Any) -> Any:
        if type(value) is not list:
            raise _SLOW
        try:
            return frozenset([elem(v) for v in value])
        except TypeError:  # an unhashable member: the general path freezes it
            raise _SLOW from None

    return as_set


def _array(elem: Decode) -> Decode:
    def as_array(value: Any) -> Any:
        if type(value) is not list:
            raise _SLOW
        return tuple([elem(v) for v in value])

    return as_array


def _object(elem: Decode) -> Decode:
    def as_object(value: Any) -> Any:
        if type(value) is not dict:
            raise _SLOW
        return {k: elem(v) for k, v in value.items()}

    return as_object


def _record(fields: Mapping[str, Decode]) -> Decode:
    get = fields.get

    def as_record(value: Any) -> Any:
        if type(value) is not dict:
            raise _SLOW
        out = {}
        for k, v in value.items():
            decode = get(k)
            if decode is None:  # not a field of the record
                raise _SLOW
            out[k] = decode(v)
        return out

    return as_record
