"""The schema the gate judges against, read from a live database (SQLite `PRAGMA
table_info`, PostgreSQL catalogs) or given, with column tags (`{"users.email": ["pii"]}`)
applied."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def introspect(
    raw: Any, dialect: str, tags: Mapping[str, Sequence[str]] | None = None
) -> dict[str, Any]:
    """`{table: {column: {"type": …, "tags": […]}}}` read from the live database (SQLite
    `PRAGMA table_info`, PostgreSQL catalogs), in column order, with `tags` (keys
    `table.column`) applied."""
    if dialect == "sqlite":
        columns = _sqlite_columns(raw)
    elif dialect == "postgres":
        columns = _postgres_columns(raw)
    else:
        raise ValueError(f"cannot introspect a `{dialect}` database; give resource.schema")
    return with_tags(columns, tags or {})


def with_tags(
    columns: list[tuple[str, str, str]], tags: Mapping[str, Sequence[str]]
) -> dict[str, Any]:
    wanted = {
        k.lower(): [str(t) for t in ([v] if isinstance(v, str) else v)] for k, v in tags.items()
    }
    schema: dict[str, dict[str, Any]] = {}
    for table, column, type_ in columns:
        spec: dict[str, Any] = {"type": type_}
        found = wanted.get(f"{table}.{column}".lower())
        if found:
            spec["tags"] = found
        schema.setdefault(table, {})[column] = spec
    return schema


def _sqlite_columns(raw: Any) -> list[tuple[str, str, str]]:
    cur = raw.cursor()
    try:
        cur.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view') ORDER BY name")
        tables = [str(r[0]) for r in cur.fetchall()]
        out: list[tuple[str, str, str]] = []
        for table in tables:
            quoted = '"' + table.replace('"', '""') + '"'
            cur.execute(f"PRAGMA table_info({quoted})")
            out.extend((table, str(r[1]), str(r[2] or "")) for r in cur.fetchall())
        return out
    finally:
        cur.close()


PG_COLUMNS = """
SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), array_position(current_schemas(false), n.nspname::text)
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f') AND a.attnum > 0 AND NOT a.attisdropped
  AND n.nspname = ANY (current_schemas(false))
ORDER BY c.relname, 4, a.attnum
"""


def _postgres_columns(raw: Any) -> list[tuple[str, str, str]]:
    info = getattr(raw, "info", None)
    idle = info is not None and int(getattr(info, "transaction_status", 0)) == 0
    cur = raw.cursor()
    try:
        cur.execute(PG_COLUMNS)
        rows = cur.fetchall()
    finally:
        cur.close()
        if idle and not getattr(raw, "autocommit", False):
            raw.rollback()  # leave the caller's connection as it was: no open transaction
    first_schema: dict[str, Any] = {}
    out: list[tuple[str, str, str]] = []
    for table, column, type_, rank in rows:
        # The table an unqualified name resolves to: the first schema on the search path.
        if first_schema.setdefault(table, rank) != rank:
            continue
        out.append((str(table), str(column), str(type_)))
    return out


def tag_given(schema: Mapping[str, Any], tags: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for table, columns in schema.items():
        cols: dict[str, Any] = {}
        for column, spec in (columns or {}).items():
            entry = dict(spec) if isinstance(spec, Mapping) else {"type": spec}
            extra = tags.get(f"{table}.{column}")
            if extra:
                entry["tags"] = sorted(
                    {*(entry.get("tags") or ()), *([extra] if isinstance(extra, str) else extra)}
                )
            cols[column] = entry
        out[table] = cols
    return out
