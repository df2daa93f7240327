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


# -- JSON text: checked and converted by msgspec, in C --------------------------------


class JsonDecoder:
    """Raw input documents from JSON text, typed by the schema in one C-level pass.

    Two msgspec types are generated from the schema: closed structs (an unknown field,
    a wrong type, `true` for a number are errors) that only check, and `TypedDict`s
    that build the value model directly (`set<…>` as frozensets, arrays as tuples).
    Fields typed `any` are converted afterwards (`from_json`). Whatever msgspec refuses
    — wrong shapes, but also JSON it reads differently from `json` (`NaN`, `1e400`,
    lone surrogates, a repeated key) — raises `Slow`: the caller then reads the text as
    before and the general path decides, so a refusal here is never a different answer.
    """

    def __init__(self, schema: Schema) -> None:
        import msgspec

        types = _MsgspecTypes(schema, msgspec)
        root = schema.root
        self._errors = (msgspec.ValidationError, msgspec.DecodeError)
        check = types.checked(root)
        build = types.built(root)
        line_check = msgspec.defstruct("Line", [("input", check)], forbid_unknown_fields=True)
        self._check_doc = msgspec.json.Decoder(check).decode
        self._check_line = msgspec.json.Decoder(line_check).decode
        self._build_doc = msgspec.json.Decoder(build).decode
        self._build_line = msgspec.json.Decoder(
            _typed_dict("Line", {"input": build}, total=True)
        ).decode
        self._fix = _any_fixer(root, schema)

    def document(self, raw: bytes) -> dict[str, Any]:
        """The document in `raw` (a JSON object of the root record)."""
        try:
            self._check_doc(raw)
            doc = self._build_doc(raw)
        except self._errors:
            raise _SLOW from None
        return self._fixed(doc)

    def line(self, raw: bytes) -> dict[str, Any]:
        """The document in a batch line `{"input": {…}}`."""
        try:
            self._check_line(raw)
            doc = self._build_line(raw)["input"]
        except (*self._errors, KeyError):
            raise _SLOW from None
        return self._fixed(doc)

    def _fixed(self, doc: Any) -> dict[str, Any]:
        if type(doc) is not dict:
            raise _SLOW
        return self._fix(doc) if self._fix is not None else doc


def _typed_dict(name: str, fields: Mapping[str, Any], *, total: bool) -> Any:
    from typing import TypedDict

    return TypedDict(name, dict(fields), total=total)  # type: ignore[operator]


class _MsgspecTypes:
    def __init__(self, schema: Schema, msgspec: Any) -> None:
        self.schema = schema
        self.msgspec = msgspec
        self._checked: dict[str, Any] = {}
        self._built: dict[str, Any] = {}
        self._building: set[str] = set()  # records begun (a record inside itself is refused)
        self._building_built: set[str] = set()

    def checked(self, t: Type) -> Any:
        return self._typed(t, self._check_record)

    def built(self, t: Type) -> Any:
        return self._typed(t, self._build_record)

    def _typed(self, t: Type, record: Callable[[Type], Any]) -> Any:
        kind = t.kind
        built: Any
        if kind == "any":
            return Any
        if kind == "null":
            return type(None)
        if kind == "string":
            built = str
        elif kind == "number":
            built = int | float
        elif kind == "boolean":
            built = bool
        elif kind == "record":
            built = record(t)
        else:
            elem = self._typed(t.elem, record) if t.elem is not None else Any
            checking = record == self._check_record
            if kind == "object":
                built = dict[str, elem]  # type: ignore[valid-type]
            elif kind == "set":
                built = list[elem] if checking else frozenset[elem]  # type: ignore[valid-type]
            else:
                built = list[elem] if checking else tuple[elem, ...]  # type: ignore[valid-type]
        return built | None if t.nullable else built

    def _check_record(self, t: Type) -> Any:
        name = t.record or ""
        if name not in self._checked:
            if name in self._building:
                raise ValueError(f"record `{name}` contains itself")
            self._building.add(name)
            fields = [
                (f"f{i}", self.checked(ft) | self.msgspec.UnsetType, self.msgspec.UNSET)
                for i, ft in enumerate(self.schema.fields(t).values())
            ]
            renames = {f"f{i}": k for i, k in enumerate(self.schema.fields(t))}
            self._checked[name] = self.msgspec.defstruct(
                f"Check{name}", fields, forbid_unknown_fields=True, rename=renames
            )
        return self._checked[name]

    def _build_record(self, t: Type) -> Any:
        name = t.record or ""
        if name not in self._built:
            if name in self._building_built:
                raise ValueError(f"record `{name}` contains itself")
            self._building_built.add(name)
            fields = {k: self.built(ft) for k, ft in self.schema.fields(t).items()}
            self._built[name] = _typed_dict(f"Build{name}", fields, total=False)
        return self._built[name]


def _any_fixer(t: Type, schema: Schema, seen: frozenset[str] = frozenset()) -> Decode | None:
    """A function that converts the `any`-typed parts of a built value, or None if none."""
    kind = t.kind
    if kind == "any":
        return from_json
    if kind == "record":
        name = t.record or ""
        if name in seen:
            return None
        fixers = {
            k: f
            for k, ft in schema.fields(t).items()
            if (f := _any_fixer(ft, schema, seen | {name})) is not None
        }
        if not fixers:
            return None

        def fix_record(value: Any) -> Any:
            for k, f in fixers.items():
                v = value.get(k)
                if v is not None:
                    value[k] = f(v)
            return value

        return fix_record
    if kind in ("array", "object", "set") and t.elem is not None:
        elem = _any_fixer(t.elem, schema, seen)
        if elem is None:
            return None
        if kind == "object":
            return lambda value: {k: elem(v) if v is not None else v for k, v in value.items()}
        if kind == "array":
            return lambda value: tuple(elem(v) if v is not None else v for v in value)
        return lambda value: frozenset(elem(v) if v is not None else v for v in value)
    return None
