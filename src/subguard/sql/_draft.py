"""The state every step of the description shares: the `Context` (dialect, schema, the way
to analyse nested SQL text, and how deep we are) and the `Draft` the steps fill in."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

from sqlglot import exp

from subguard.sql._columns import Src, table_parts
from subguard.sql._facts import (
    Column,
    ColumnFlow,
    Grant,
    OutputColumn,
    Statement,
    Table,
    merge_columns,
)
from subguard.sql._kinds import node_kind
from subguard.sql._schema import Schema

#: How deep dynamic SQL may nest (EXECUTE of an EXECUTE of …). SQL text nested deeper is
#: not analysed: it stands as an unparseable, opaque statement, never as nothing.
MAX_DEPTH: Final = 4


class Context:
    """What every step needs: dialect, schema, and a way to analyse nested SQL text.

    `columns` false: the column steps (`columns`, `flows`) do not run (see `analyze`)."""

    __slots__ = ("analyse_text", "columns", "depth", "dialect", "schema")

    def __init__(
        self,
        dialect: str,
        schema: Schema | None,
        analyse_text: Callable[[str, str, Context], list[Statement]],
        depth: int = 0,
        columns: bool = True,
    ) -> None:
        self.dialect = dialect
        self.schema = schema
        self.analyse_text = analyse_text
        self.depth = depth
        self.columns = columns

    def deeper(self) -> Context:
        return Context(self.dialect, self.schema, self.analyse_text, self.depth + 1, self.columns)

    def nested_text(self, text: str, path: str) -> list[Statement]:
        if not text.strip():
            return []
        if self.depth >= MAX_DEPTH:
            return [Statement(kind="unparseable", path=path, nested=True, opaque_code=True)]
        return self.analyse_text(text, path, self.deeper())


class Draft:
    """The facts of one statement while the steps fill them in."""

    def __init__(self, node: Any, tokens: Sequence[Any], path: str, nested: bool) -> None:
        self.node = node
        self.tokens = tokens
        self.path = path
        self.nested = nested
        self.kind = node_kind(node) or "other"
        self.object_type: str | None = None
        self.target: str | None = None
        self.read: set[str] = set()
        self.written: set[str] = set()
        self.tables: dict[str, Table] = {}
        self.columns: list[Column] = []
        self.outputs: tuple[OutputColumn, ...] = ()
        self.has_where = False
        self.has_limit = False
        self.upsert = False
        self.temporary = False
        self.functions: set[str] = set()
        self.copy_program = False
        self.into_outfile = False
        self.grants: list[Grant] = []
        self.opaque_code = False
        self.settings: list[str] = []
        self.setting_scope: str | None = None
        self.privilege_change = False
        self.alter_actions: set[str] = set()
        self.external_io: set[str] = set()
        self.flows: list[ColumnFlow] = []
        self.query_outputs: tuple[OutputColumn, ...] | None = None
        self.value_outputs: list[tuple[str, frozenset[Src]]] | None = None
        self.set_flows: list[tuple[str, frozenset[Src]]] = []
        self.children: list[Statement] = []
        self.table_nodes: list[exp.Table] = []
        self.cte_names: set[str] = set()
        self.dml_ctes: dict[str, str | None] = {}
        self.not_tables: set[int] = set()
        self.accounted: set[int] = set()

    # helpers used by several steps
    def add_table(
        self,
        ctx: Context,
        node: exp.Table,
        *,
        written: bool,
        parts: tuple[str | None, str | None, str | None] | None = None,
    ) -> str | None:
        self.accounted.add(id(node))
        name, schema, catalog = parts if parts is not None else table_parts(ctx.dialect, node)
        if name is None:
            return None
        if schema is None and name in self.cte_names:
            return None
        qualified = ".".join(p for p in (catalog, schema, name) if p)
        self.tables.setdefault(qualified, Table(name, schema, catalog, qualified))
        (self.written if written else self.read).add(name)
        return name

    def adopt(self, children: list[Statement]) -> None:
        self.children.extend(children)

    def finish(self) -> list[Statement]:
        # The draft is dropped after this, so its collections are extended in place.
        read, written = self.read, self.written
        tables = self.tables
        columns = self.columns
        functions = self.functions
        for child in self.children:
            read |= child.tables_read
            written |= child.tables_written
            for t in child.tables:
                tables.setdefault(t.qualified, t)
            columns.extend(child.columns_read)
            functions |= child.functions
        stmt = Statement(
            kind=self.kind,
            path=self.path,
            object_type=self.object_type,
            target=self.target,
            tables_read=frozenset(read),
            tables_written=frozenset(written),
            # by qualified name: the steps place tables in an order that depends on
            # which of them ran (column resolution or not), the facts must not
            tables=tuple([tables[k] for k in sorted(tables)]),
            columns_read=merge_columns(columns),
            output_columns=self.outputs,
            has_where=self.has_where,
            has_limit=self.has_limit,
            functions=frozenset(functions),
            copy_program=self.copy_program or any([c.copy_program for c in self.children]),
            into_outfile=self.into_outfile or any([c.into_outfile for c in self.children]),
            grants=tuple(self.grants),
            nested=self.nested,
            upsert=self.upsert,
            temporary=self.temporary,
            opaque_code=self.opaque_code,
            setting=self.settings[0] if self.settings else None,
            settings=frozenset(self.settings),
            setting_scope=self.setting_scope,
            privilege_change=self.privilege_change,
            alter_actions=frozenset(self.alter_actions),
            external_io=frozenset(self.external_io).union(*[c.external_io for c in self.children]),
            columns_written_from=tuple(self.flows),
        )
        return [stmt, *self.children]
