"""Static types for the checker: parsed from the schema's type strings, joined loosely.

The checker is a safety net for typos, not a proof system: anything it cannot know is
`ANY`, and `ANY` never produces an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import attrs

from subguard.lang.values import freeze

__all__ = [
    "ANY",
    "BOOLEAN",
    "NULL",
    "NUMBER",
    "STRING",
    "Schema",
    "Type",
    "TypeKind",
    "conform",
    "parse_type",
]


#: What a static type is.
TypeKind = Literal["any", "string", "number", "boolean", "null", "set", "array", "object", "record"]


@attrs.frozen
class Type:
    """`kind` is any, string, number, boolean, null, set, array, object or record.

    `elem` is the element type of a set or array, or the value type of an object;
    `record` names a record of the schema, whose fields are looked up there.
    """

    kind: TypeKind
    elem: Type | None = None
    record: str | None = None
    nullable: bool = False

    def __str__(self) -> str:
        if self.kind in ("set", "array", "object"):
            return f"{self.kind}<{self.elem}>"
        if self.kind == "record":
            return str(self.record)
        return self.kind

    @property
    def is_scalar(self) -> bool:
        return self.kind in ("string", "number", "boolean", "null")


ANY = Type("any")
STRING = Type("string")
NUMBER = Type("number")
BOOLEAN = Type("boolean")
NULL = Type("null")
_COLLECTIONS: dict[str, TypeKind] = {"set": "set", "array": "array", "object": "object"}
_PRIMS = {"any": ANY, "string": STRING, "number": NUMBER, "boolean": BOOLEAN, "null": NULL}


def parse_type(text: str, records: Mapping[str, object] = {}) -> Type:
    """Parse `set<string>`, `array<Statement>`, `Sql | null`, … into a `Type`."""
    text = text.strip()
    nullable = False
    if "|" in text and "<" not in text.split("|")[0]:
        parts = [p.strip() for p in text.split("|")]
        nullable = "null" in parts
        parts = [p for p in parts if p != "null"] or ["null"]
        text = parts[0] if len(parts) == 1 else "any"
    if text.endswith(">") and "<" in text:
        outer, inner = text.split("<", 1)
        elem = parse_type(inner[:-1], records)
        collection = _COLLECTIONS.get(outer.strip())
        if collection is None:
            raise ValueError(f"unknown type `{outer.strip()}`")
        return Type(collection, elem, nullable=nullable)
    if text in _PRIMS:
        base = _PRIMS[text]
        return attrs.evolve(base, nullable=nullable) if nullable else base
    if text in records:
        return Type("record", record=text, nullable=nullable)
    raise ValueError(f"unknown type `{text}`")


@attrs.frozen
class Schema:
    """The input document's schema: named records of field → type; `data`, when the
    policy declares it, types the `data` document (else `data` is dynamic)."""

    records: Mapping[str, Mapping[str, Type]]
    root: Type
    data: Type | None = None

    @classmethod
    def from_strings(
        cls, records: Mapping[str, Mapping[str, str]], root: str, data: str | None = None
    ) -> Schema:
        parsed = {
            name: {field: parse_type(t, records) for field, t in fields.items()}
            for name, fields in records.items()
        }
        return cls(
            parsed, Type("record", record=root), Type("record", record=data) if data else None
        )

    def fields(self, t: Type) -> Mapping[str, Type]:
        return self.records.get(t.record or "", {})


def conform(value: Any, t: Type, schema: Schema) -> Any:
    """A JSON-shaped value (arrays as tuples) with every field the schema types as a set
    turned into a frozenset, so raw input documents behave like analysed ones."""
    if t.kind == "set" and isinstance(value, tuple | list | frozenset | set):
        elem = t.elem or ANY
        items = (conform(v, elem, schema) for v in value)
        try:
            return frozenset(items)
        except TypeError:
            return frozenset(freeze(conform(v, elem, schema)) for v in value)
    if t.kind == "array" and isinstance(value, tuple | list):
        elem = t.elem or ANY
        return tuple(conform(v, elem, schema) for v in value)
    if t.kind == "record" and isinstance(value, Mapping):
        fields = schema.fields(t)
        return {k: conform(v, fields[k], schema) if k in fields else v for k, v in value.items()}
    if t.kind == "object" and isinstance(value, Mapping):
        elem = t.elem or ANY
        return {k: conform(v, elem, schema) for k, v in value.items()}
    return value
