"""The facts `analyze` returns: frozen records that map one to one onto `input.sql`."""

from __future__ import annotations

import functools
from typing import Any, Final

import attrs


@attrs.frozen
class Table:
    """A real table a statement touches (never a CTE name or a derived-table alias)."""

    name: str
    schema: str | None = None
    catalog: str | None = None
    qualified: str = ""

    def to_input(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "schema": self.schema,
            "catalog": self.catalog,
            "qualified": self.qualified or self.name,
        }


@attrs.frozen
class Column:
    """A source column read: `table` is the bare normalized name, None when unresolved."""

    table: str | None
    column: str
    tags: frozenset[str] = frozenset()
    in_output: bool = False
    resolved: bool = True
    roles: frozenset[str] = frozenset()

    def to_input(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "column": self.column,
            "tags": self.tags,
            "in_output": self.in_output,
            "resolved": self.resolved,
            "roles": self.roles,
        }


@attrs.frozen
class ColumnFlow:
    """Source columns whose values a statement writes into `table.column` (`*`: unknown)."""

    table: str
    column: str
    tags: frozenset[str] = frozenset()
    sources: tuple[Column, ...] = ()

    def to_input(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "column": self.column,
            "tags": self.tags,
            "sources": tuple(c.to_input() for c in self.sources),
        }


@attrs.frozen
class OutputColumn:
    """One column of a query's result and the source columns its value derives from."""

    name: str
    sources: tuple[Column, ...] = ()

    def to_input(self) -> dict[str, Any]:
        return {"name": self.name, "sources": tuple(c.to_input() for c in self.sources)}


@attrs.frozen
class Grant:
    """What a GRANT or REVOKE gives or takes: privileges on objects to principals."""

    action: str
    privileges: frozenset[str] = frozenset()
    object_type: str | None = None
    objects: frozenset[str] = frozenset()
    principals: frozenset[str] = frozenset()

    def to_input(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "privileges": self.privileges,
            "object_type": self.object_type,
            "objects": self.objects,
            "principals": self.principals,
        }


@attrs.frozen
class Statement:
    """One statement the text would execute, top-level or nested (then `nested` is true)."""

    kind: str
    path: str
    object_type: str | None = None
    target: str | None = None
    tables_read: frozenset[str] = frozenset()
    tables_written: frozenset[str] = frozenset()
    tables: tuple[Table, ...] = ()
    columns_read: tuple[Column, ...] = ()
    output_columns: tuple[OutputColumn, ...] = ()
    has_where: bool = False
    has_limit: bool = False
    functions: frozenset[str] = frozenset()
    copy_program: bool = False
    into_outfile: bool = False
    grants: tuple[Grant, ...] = ()
    nested: bool = False
    upsert: bool = False
    temporary: bool = False
    opaque_code: bool = False
    setting: str | None = None
    settings: frozenset[str] = frozenset()
    setting_scope: str | None = None
    privilege_change: bool = False
    alter_actions: frozenset[str] = frozenset()
    external_io: frozenset[str] = frozenset()
    columns_written_from: tuple[ColumnFlow, ...] = ()

    def to_input(self, columns: bool = True) -> dict[str, Any]:
        """The `Statement` record; without `columns`, its column fields (`COLUMN_FIELDS`)
        are left out: not computed, which no rule may read as "no columns"."""
        document = {
            "kind": self.kind,
            "object_type": self.object_type,
            "target": self.target,
            "tables_read": self.tables_read,
            "tables_written": self.tables_written,
            "tables": tuple(t.to_input() for t in self.tables),
            "columns_read": tuple(c.to_input() for c in self.columns_read),
            "output_columns": tuple(o.to_input() for o in self.output_columns),
            "has_where": self.has_where,
            "has_limit": self.has_limit,
            "functions": self.functions,
            "copy_program": self.copy_program,
            "into_outfile": self.into_outfile,
            "grants": tuple(g.to_input() for g in self.grants),
            "nested": self.nested,
            "path": self.path,
            "upsert": self.upsert,
            "temporary": self.temporary,
            "opaque_code": self.opaque_code,
            "setting": self.setting,
            "settings": self.settings,
            "setting_scope": self.setting_scope,
            "privilege_change": self.privilege_change,
            "alter_actions": self.alter_actions,
            "external_io": self.external_io,
            "columns_written_from": tuple(f.to_input() for f in self.columns_written_from),
            # a live fact: the adapter holding the connection may estimate it (engine)
            "estimated_rows": None,
        }
        if not columns:
            for field in COLUMN_FIELDS:
                del document[field]
        return document


#: The fields of a statement that column resolution computes (with `Sql.columns_read`).
COLUMN_FIELDS: Final = ("columns_read", "output_columns", "columns_written_from")


@attrs.frozen
class SqlFacts:
    """Everything `analyze` learned from one text; `to_input()` is the `input.sql` document.

    `redacted` is the literal-free text the decision log stores; `fingerprint` hashes it
    (one shape, many literal values); `exact_hash` hashes the normalized text with its
    literals (one exact statement). The text itself is never kept.

    `column_facts` is false when the analysis skipped column resolution (`analyze(…,
    columns=False)`): the column tuples are then empty, and `to_input()` leaves the
    column fields out of `input.sql` and of each statement rather than report them empty.
    """

    dialect: str | None
    statements: tuple[Statement, ...]
    tables_read: frozenset[str]
    tables_written: frozenset[str]
    columns_read: tuple[Column, ...]
    functions: frozenset[str]
    parse_error: str | None
    redacted: str
    fingerprint: str
    exact_hash: str
    column_facts: bool = True

    @functools.cached_property
    def _input(self) -> dict[str, Any]:
        if not self.column_facts:
            return {
                "dialect": self.dialect,
                "statements": tuple(s.to_input(False) for s in self.statements),
                "tables_read": self.tables_read,
                "tables_written": self.tables_written,
                "functions": self.functions,
                "parse_error": self.parse_error,
            }
        return {
            "dialect": self.dialect,
            "statements": tuple(s.to_input() for s in self.statements),
            "tables_read": self.tables_read,
            "tables_written": self.tables_written,
            "columns_read": tuple(c.to_input() for c in self.columns_read),
            "functions": self.functions,
            "parse_error": self.parse_error,
        }

    def to_input(self) -> dict[str, Any]:
        """The `Sql` record of the input document, built once per facts object.

        The same dict is returned on every call: treat it as read-only.
        """
        return self._input


def merge_columns(columns: Any) -> tuple[Column, ...]:
    """Deduplicate columns by (table, column, resolved), OR-ing `in_output`, joining tags
    and roles."""
    merged: dict[tuple[str | None, str, bool], Column] = {}
    for col in columns:
        key = (col.table, col.column, col.resolved)
        prev = merged.get(key)
        if prev is None:
            merged[key] = col
        elif (
            (col.in_output and not prev.in_output)
            or not col.tags <= prev.tags
            or not col.roles <= prev.roles
        ):
            merged[key] = Column(
                col.table,
                col.column,
                prev.tags | col.tags,
                prev.in_output or col.in_output,
                col.resolved,
                prev.roles | col.roles,
            )
    return tuple(merged.values())
