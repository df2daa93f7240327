"""Table schemas for column resolution: table → column → type or `{type, tags}`."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Mapping
from typing import Any

import attrs

from subguard.sql._dialects import normalize_name


@attrs.frozen
class Schema:
    """Columns and their tags per bare, normalized table name, for one dialect.

    `version` is a content hash: two mappings with the same tables, columns and tags
    share cached analyses, and a changed mapping never reuses a stale one.
    """

    dialect: str
    tables: Mapping[str, Mapping[str, frozenset[str]]]
    version: str

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any], dialect: str = "") -> Schema:
        """Build from `{table: {column: type | {"type": ..., "tags": [...]}}}`.

        Table keys may be qualified (`public.users`); the bare name is what rules match.
        Names are folded like unquoted identifiers of `dialect`.
        """
        tables: dict[str, dict[str, frozenset[str]]] = {}
        for raw_table, columns in mapping.items():
            bare = normalize_name(dialect, str(raw_table).rsplit(".", 1)[-1], False)
            cols = tables.setdefault(bare, {})
            if not isinstance(columns, Mapping):
                continue
            for raw_col, spec in columns.items():
                tags: frozenset[str] = frozenset()
                if isinstance(spec, Mapping):
                    raw_tags = spec.get("tags") or ()
                    if isinstance(raw_tags, str):
                        raw_tags = (raw_tags,)
                    tags = frozenset(str(t) for t in raw_tags)
                cols[normalize_name(dialect, str(raw_col), False)] = tags
        h = hashlib.blake2b(digest_size=12)
        h.update(dialect.encode() + b"\0")
        for table in sorted(tables):
            h.update(b"T" + table.encode() + b"\0")
            for col in sorted(tables[table]):
                h.update(b"C" + col.encode() + b"\0")
                for tag in sorted(tables[table][col]):
                    h.update(b"G" + tag.encode() + b"\0")
        return cls(dialect, tables, h.hexdigest())

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
