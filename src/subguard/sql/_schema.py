"""Table schemas for column resolution: table → column → type or `{type, tags}`."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from typing import Any

import attrs

from subguard.errors import ConfigError
from subguard.sql._dialects import normalize_name

_TAG_LISTS = (list, tuple, set, frozenset)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, _TAG_LISTS):
        return "an array"
    return type(value).__name__


def _tags(spec: Any, where: str) -> frozenset[str]:
    """A column's tags from its spec: a type name (no tags) or `{type, tags}`."""
    if spec is None or isinstance(spec, str):
        return frozenset()
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where}: expected a type name or an object, got {_kind(spec)}")
    unknown = sorted(str(k) for k in spec if k not in ("type", "tags"))
    if unknown:
        raise ConfigError(f"{where}: unknown key `{unknown[0]}` (expected `type`, `tags`)")
    kind = spec.get("type")
    if kind is not None and not isinstance(kind, str):
        raise ConfigError(f"{where}.type: expected a string, got {_kind(kind)}")
    raw = spec.get("tags", ())
    if isinstance(raw, str):
        raw = (raw,)
    if raw is None:
        raw = ()
    if not isinstance(raw, _TAG_LISTS):
        raise ConfigError(f"{where}.tags: expected an array of strings, got {_kind(raw)}")
    for tag in raw:
        if not isinstance(tag, str) or not tag:
            raise ConfigError(f"{where}.tags: expected non-empty strings, got {_kind(tag)}")
    return frozenset(raw)


@attrs.frozen
class Schema:
    """Columns and their tags per bare, normalized table name, for one dialect.

    `version` is a content hash: two mappings with the same tables, columns and tags
    share cached analyses, and a changed mapping never reuses a stale one.
    """

    dialect: str
    tables: Mapping[str, Mapping[str, frozenset[str]]]
    version: str
    spellings: Mapping[str, tuple[str, Mapping[str, str]]] = attrs.field(factory=dict)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any], dialect: str = "") -> Schema:
        """Build from `{table: {column: type | {"type": ..., "tags": [...]}}}`.

        Table keys may be qualified (`public.users`); the bare name is what rules match.
        Names are folded like unquoted identifiers of `dialect`. Anything of another shape
        (a table that is not a mapping, `"tags": 5`, a tag that is not a string) raises
        `ConfigError` naming where: a schema is never read in part, since a dropped tag
        turns a mask into an allow.
        """
        if not isinstance(mapping, Mapping):
            raise ConfigError(f"schema: expected an object of tables, got {_kind(mapping)}")
        tables: dict[str, dict[str, frozenset[str]]] = {}
        spellings: dict[str, tuple[str, dict[str, str]]] = {}
        for raw_table, columns in mapping.items():
            if not isinstance(raw_table, str) or not raw_table.strip():
                raise ConfigError("schema: a table name must be a non-empty string")
            where = f"schema.{raw_table}"
            if not isinstance(columns, Mapping):
                raise ConfigError(f"{where}: expected an object of columns, got {_kind(columns)}")
            original = raw_table.rsplit(".", 1)[-1]
            bare = normalize_name(dialect, original, False)
            cols = tables.setdefault(bare, {})
            _, names = spellings.setdefault(bare, (original, {}))
            for raw_col, spec in columns.items():
                if not isinstance(raw_col, str) or not raw_col:
                    raise ConfigError(f"{where}: a column name must be a non-empty string")
                key = normalize_name(dialect, raw_col, False)
                cols[key] = _tags(spec, f"{where}.{raw_col}")
                names[key] = raw_col
        h = hashlib.blake2b(digest_size=12)
        h.update(dialect.encode() + b"\0")
        for table in sorted(tables):
            h.update(b"T" + table.encode() + b"\0" + spellings[table][0].encode() + b"\0")
            for col in sorted(tables[table]):
                h.update(b"C" + col.encode() + b"\0" + spellings[table][1][col].encode() + b"\0")
                for tag in sorted(tables[table][col]):
                    h.update(b"G" + tag.encode() + b"\0")
        return cls(dialect, tables, h.hexdigest(), spellings)

    def spelling(self, table: str, column: str) -> tuple[str, str]:
        """The schema's own spelling of a normalized table and column (for masks)."""
        found = self.spellings.get(table)
        if found is None:
            return table, column
        return found[0], found[1].get(column, column)

    def columns(self, table: str) -> Mapping[str, frozenset[str]] | None:
        return self.tables.get(table)


# Converting a mapping hashes all of it; an agent's proxy passes the same mapping object on
# every request, so remember the conversion by identity. The entry keeps the mapping alive,
# so its id cannot be reused by another object while it is remembered.
_BY_ID: dict[tuple[int, str], tuple[Mapping[str, Any], Schema]] = {}
_BY_ID_LIMIT = 64
_LOCK = threading.Lock()


def as_schema(schema: Mapping[str, Any] | Schema | None, dialect: str) -> Schema | None:
    """A `Schema` for `dialect` from a mapping or a `Schema` (mappings are treated as immutable)."""
    if schema is None:
        return None
    if isinstance(schema, Schema):
        return schema
    key = (id(schema), dialect)
    hit = _BY_ID.get(key)
    if hit is not None and hit[0] is schema:
        return hit[1]
    built = Schema.from_mapping(schema, dialect)
    with _LOCK:
        if len(_BY_ID) >= _BY_ID_LIMIT:
            _BY_ID.pop(next(iter(_BY_ID)))
        _BY_ID[key] = (schema, built)
    return built


def validate_schema(schema: Mapping[str, Any] | Schema | None) -> None:
    """Raise `ConfigError` when `schema` is not a valid schema mapping (cached by identity)."""
    as_schema(schema, "")


_TAGGED: dict[str, bool] = {}


def schema_tagged(schema: Mapping[str, Any] | Schema | None) -> bool:
    """Whether some column of `schema` has a tag; true for a schema that cannot be read
    (whoever asks then resolves columns, and the analysis reports the schema's error)."""
    try:
        built = as_schema(schema, "")
    except Exception:
        return True
    if built is None:
        return False
    found = _TAGGED.get(built.version)
    if found is None:
        found = any(tags for columns in built.tables.values() for tags in columns.values())
        if len(_TAGGED) >= _BY_ID_LIMIT:
            _TAGGED.clear()
        _TAGGED[built.version] = found
    return found
