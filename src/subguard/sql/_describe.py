"""Facts of one parsed statement, built by small steps listed in order in `STEPS`.

Each step reads the node and fills part of a `Draft`; nested statements (data-modifying
CTEs, INSERT … SELECT, PREPARE bodies, literal dynamic SQL, function bodies) become
child statements whose reads and writes also count for their parent, so a rule that
looks only at top-level statements still sees what they hide.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

from sqlglot import exp

from subguard.sql._columns import Resolver, Src, table_parts
from subguard.sql._dialects import normalize_identifier
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
from subguard.sql._tokens import tokenize_flat
from subguard.sql._where import bounds_rows

#: How deep dynamic SQL may nest (EXECUTE of an EXECUTE of …) before we stop following it.
MAX_DEPTH: Final = 4

#: Object types whose names are tables (a function or schema name is not).
TABLE_OBJECTS: Final = frozenset(
    {"table", "view", "materialized view", "index", "dictionary", "stream", "dynamic table"}
)

_DML: Final = (exp.Insert, exp.Update, exp.Delete, exp.Merge)


class Context:
    """What every step needs: dialect, schema, and a way to analyse nested SQL text."""

    __slots__ = ("analyse_text", "depth", "dialect", "schema")

    def __init__(
        self,
        dialect: str,
        schema: Schema | None,
        analyse_text: Callable[[str, str, Context], list[Statement]],
        depth: int = 0,
    ) -> None:
        self.dialect = dialect
        self.schema = schema
        self.analyse_text = analyse_text
        self.depth = depth

    def deeper(self) -> Context:
        return Context(self.dialect, self.schema, self.analyse_text, self.depth + 1)

    def nested_text(self, text: str, path: str) -> list[Statement]:
        if self.depth >= MAX_DEPTH or not text.strip():
            return []
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
            tables=tuple(tables.values()),
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


# --------------------------------------------------------------------------------------
# steps


def walk_tree(d: Draft, ctx: Context) -> None:
    """One pass over the tree: functions called, table nodes, CTE names, writing CTEs."""
    kinds = _WALK_KINDS
    functions = d.functions
    for child in d.node.walk():
        cls = type(child)
        kind = kinds.get(cls, _UNSEEN)
        if kind is _UNSEEN:
            kind = _walk_kind(cls)
        if kind is None:
            continue
        if kind is _ANONYMOUS:
            functions.add(str(child.name).lower())
        elif kind is _TABLE:
            d.table_nodes.append(child)
        elif kind is _CTE:
            _walk_cte(d, ctx, child)
        elif kind is _UDF:
            if isinstance(child.this, exp.Table):
                # A user-defined function's name is parsed as a table node; it is not one.
                d.not_tables.add(id(child.this))
                functions.add(str(child.this.name).lower())
        else:
            functions.add(kind)


def _walk_cte(d: Draft, ctx: Context, child: exp.CTE) -> None:
    if not child.alias:
        return
    name = normalize_identifier(ctx.dialect, child.args["alias"].this)
    d.cte_names.add(name)
    body = child.this
    if isinstance(body, _DML):
        target = _dml_target(body)
        d.dml_ctes[name] = table_parts(ctx.dialect, target)[0] if target is not None else None
        d.adopt(describe(body, (), f"{d.path}.cte[{name}]", ctx, nested=True))


# What `walk_tree` does with a node, by its type: a function's lowercased name, one of
# these markers, or None (nothing). Kept per type so each node costs one lookup.
_UNSEEN: Final = object()
_ANONYMOUS: Final = object()
_TABLE: Final = object()
_CTE: Final = object()
_UDF: Final = object()
_WALK_KINDS: Final[dict[type, Any]] = {}


def _walk_kind(cls: type) -> Any:
    kind: Any = None
    if issubclass(cls, exp.Func):
        kind = _ANONYMOUS if issubclass(cls, exp.Anonymous) else cls.sql_name().lower()
    elif issubclass(cls, exp.Table):
        kind = _TABLE
    elif issubclass(cls, exp.CTE):
        kind = _CTE
    elif issubclass(cls, exp.UserDefinedFunction):
        kind = _UDF
    _WALK_KINDS[cls] = kind
    return kind


def targets(d: Draft, ctx: Context) -> None:
    """What the statement writes, creates, alters or drops, its object type and target."""
    node = d.node
    if isinstance(node, exp.Select):
        into = node.args.get("into")
        if isinstance(into, exp.Into) and isinstance(into.this, exp.Table):
            # SELECT … INTO new_table creates and fills a table: it is CREATE TABLE AS.
            d.kind, d.object_type = "create", "table"
            d.temporary = bool(into.args.get("temporary"))
            d.target = d.add_table(ctx, into.this, written=True)
        return
    if isinstance(node, _DML):
        target = _dml_target(node)
        if target is not None:
            d.target = d.add_table(ctx, target, written=True)
        for extra in node.args.get("tables") or ():
            if isinstance(extra, exp.Table):
                d.add_table(ctx, extra, written=True)
        return
    if isinstance(node, (exp.Create, exp.Drop, exp.Alter)):
        kind = str(node.args.get("kind") or "").lower() or None
        if kind == "view" and isinstance(node, exp.Create) and _has_property(node, "Materialized"):
            kind = "materialized view"
        d.temporary = isinstance(node, exp.Create) and _has_property(node, "Temporary")
        d.object_type = kind
        objects: list[Any] = []
        if isinstance(node, exp.Drop):
            objects = list(node.args.get("tables") or ()) or [node.this]
        else:
            objects = [node.this]
        table_like = kind in TABLE_OBJECTS or kind is None
        for obj in objects:
            if isinstance(obj, exp.Schema):
                obj = obj.this
            if isinstance(obj, exp.Index):
                d.target = normalize_identifier(ctx.dialect, obj.this) if obj.this else None
                table = obj.args.get("table")
                if isinstance(table, exp.Table):
                    d.add_table(ctx, table, written=True)
                continue
            if isinstance(obj, exp.UserDefinedFunction):
                obj = obj.this
            if not isinstance(obj, exp.Table):
                continue
            if table_like:
                name = d.add_table(ctx, obj, written=True)
            else:
                d.not_tables.add(id(obj))
                name, db, _ = table_parts(ctx.dialect, obj)
                name = name or db
            if d.target is None:
                d.target = name
        if isinstance(node, exp.Alter):
            for action in node.args.get("actions") or ():
                if isinstance(action, exp.AlterRename) and isinstance(action.this, exp.Table):
                    d.add_table(ctx, action.this, written=True)
        return
    if isinstance(node, exp.TruncateTable):
        d.object_type = "table"
        for table in node.expressions:
            if isinstance(table, exp.Table):
                name = d.add_table(ctx, table, written=True)
                d.target = d.target or name
        return
    if isinstance(node, exp.Copy):
        this = node.this
        if isinstance(this, exp.Table):
            d.target = d.add_table(ctx, this, written=bool(node.args.get("kind")))
        files = node.args.get("files") or ()
        # sqlglot 30 reads `TO PROGRAM 'cmd'` as a file named PROGRAM and hides the command
        # in a parameter; an unquoted PROGRAM identifier in the file slot is that shape.
        d.copy_program = any(
            isinstance(f, exp.Identifier) and not f.quoted and f.name.upper() == "PROGRAM"
            for f in files
        )
        return
    if isinstance(node, (exp.Use, exp.Pragma, exp.Set)):
        for table in d.table_nodes:
            d.not_tables.add(id(table))
        return


def nested_queries(d: Draft, ctx: Context) -> None:
    """Queries a statement runs as part of itself: INSERT … SELECT, CTAS, COPY (query)."""
    node = d.node
    query: Any = None
    if isinstance(node, (exp.Insert, exp.Create)):
        query = node.expression
    elif isinstance(node, exp.Copy):
        query = node.this
        for place in node.args.get("files") or ():
            if isinstance(place, exp.Subquery):
                query = place  # Snowflake COPY INTO <location> FROM (query)
    elif isinstance(node, exp.Export):
        query = node.this
    if isinstance(query, exp.Subquery) and not isinstance(node, exp.Insert):
        query = query.this
    if not isinstance(query, exp.Query):
        return
    children = describe(query, (), f"{d.path}.query", ctx, nested=True)
    d.query_outputs = children[0].output_columns
    if isinstance(node, exp.Create) and d.object_type != "table":
        # A view's query is stored, not run: it counts as what the view reads, not as a
        # statement executed now.
        head = children[0]
        d.read |= head.tables_read
        d.columns.extend(head.columns_read)
        for table in head.tables:
            d.tables.setdefault(table.qualified, table)
        d.adopt(children[1:])
    else:
        d.adopt(children)
    for node_table in query.find_all(exp.Table):
        d.accounted.add(id(node_table))


def columns(d: Draft, ctx: Context) -> None:
    """Source columns read and output-column provenance, on sqlglot's scopes."""
    node = d.node
    resolver = Resolver(ctx.dialect, ctx.schema, d.dml_ctes)
    outputs: list[tuple[str, frozenset[Src]]] = []
    if isinstance(node, exp.Query):
        outputs = resolver.run_query(node)
    elif isinstance(node, exp.Values):
        # `VALUES ((SELECT ssn FROM users))` returns what its subqueries read.
        outputs = resolver.run_values(node)
    elif isinstance(node, exp.Copy) and not node.args.get("kind"):
        # `COPY users [(cols)] TO STDOUT` reads and returns every column (or those listed).
        this = node.this
        listed = this.expressions if isinstance(this, exp.Schema) else []
        table = this.this if isinstance(this, exp.Schema) else this
        if isinstance(table, exp.Table) and isinstance(table.this, exp.Identifier):
            projections: list[Any] = [exp.column(c.copy()) for c in listed] or ["*"]
            select = exp.select(*projections)
            outputs = resolver.run_query(select.from_(table.copy()))
    if isinstance(node, exp.Insert) and isinstance(node.expression, exp.Values):
        d.value_outputs = resolver.run_values(node.expression)
    if isinstance(node, (exp.Update, exp.Delete, exp.Merge)) or (
        isinstance(node, exp.Insert) and node.args.get("returning")
    ):
        target = _dml_target(node)
        extra = [t for t in node.args.get("tables") or () if isinstance(t, exp.Table)]
        outputs = resolver.run_dml(node, ([target] if target is not None else []) + extra)
    if isinstance(node, exp.Update):
        for eq in node.expressions:
            if isinstance(eq, exp.EQ) and isinstance(eq.this, exp.Column):
                srcs: set[Src] = set()
                for col in eq.expression.find_all(exp.Column):
                    srcs |= resolver.resolved.get(id(col), frozenset())
                d.set_flows.append((eq.this.name, frozenset(srcs)))
    if not resolver.nodes and not outputs and not resolver.reads:
        return
    for table in resolver.tables:
        if id(table) in d.accounted:
            continue
        parts = resolver.table_parts(table)
        if parts[0] is not None and parts[1] is None and parts[0] in d.dml_ctes:
            d.accounted.add(id(table))
            continue
        d.add_table(ctx, table, written=False, parts=parts)
    in_output = {src for _, srcs in outputs for src in srcs}
    roles = _column_roles(resolver, node)
    made: dict[Src, Column] = {}
    for src in set(resolver.reads):
        made[src] = _column(ctx, src, src in in_output, roles.get(src, frozenset()))
    d.columns.extend(made.values())

    def output_source(src: Src) -> Column:
        col = made.get(src)
        return (
            col
            if col is not None and col.in_output
            else _column(ctx, src, True, roles.get(src, frozenset()))
        )

    d.outputs = tuple(
        [
            OutputColumn(
                name,
                (output_source(next(iter(srcs))),)
                if len(srcs) == 1
                else tuple([output_source(s) for s in sorted(srcs, key=_src_key)]),
            )
            for name, srcs in outputs
        ]
    )


def flows(d: Draft, ctx: Context) -> None:
    """`columns_written_from`: which source columns a statement copies into which target
    columns (INSERT … SELECT/VALUES, CREATE TABLE/VIEW … AS, SELECT … INTO, UPDATE … SET),
    with the target column's own tags from the schema (none for an untagged object)."""
    node = d.node
    target = d.target
    if target is None:
        return
    pairs: list[tuple[str, tuple[Column, ...]]] = []
    if isinstance(node, exp.Select) and d.kind == "create":
        pairs = [(o.name, o.sources) for o in d.outputs]
    elif isinstance(node, exp.Create) and d.query_outputs is not None:
        pairs = [(o.name, o.sources) for o in d.query_outputs]
    elif isinstance(node, exp.Insert):
        names = _insert_columns(ctx, node, target)
        positional: list[tuple[Column, ...]] = []
        if d.query_outputs is not None:
            positional = [o.sources for o in d.query_outputs]
        elif d.value_outputs is not None:
            positional = [
                tuple(_column(ctx, s, False) for s in srcs) for _, srcs in d.value_outputs
            ]
        for i, srcs in enumerate(positional):
            pairs.append((names[i] if i < len(names) else "*", srcs))
    elif isinstance(node, exp.Update):
        pairs = [
            (normalize_identifier(ctx.dialect, name), tuple(_column(ctx, s, False) for s in srcs))
            for name, srcs in d.set_flows
        ]
    cols = ctx.schema.columns(target) if ctx.schema is not None else None
    for name, sources in pairs:
        if not sources:
            continue
        tags = cols.get(name, frozenset()) if cols is not None else frozenset()
        d.flows.append(ColumnFlow(target, name, tags, tuple(sources)))


def _insert_columns(ctx: Context, node: exp.Insert, target: str) -> list[str]:
    this = node.this
    if isinstance(this, exp.Schema) and this.expressions:
        return [normalize_identifier(ctx.dialect, c) for c in this.expressions]
    cols = ctx.schema.columns(target) if ctx.schema is not None else None
    return list(cols) if cols is not None else []


def where_and_limit(d: Draft, ctx: Context) -> None:
    """`has_where`: a WHERE that soundly bounds the target's rows (see `_where`); `has_limit`.

    An upsert (`INSERT … ON CONFLICT DO UPDATE`, `ON DUPLICATE KEY UPDATE`, `REPLACE`)
    is bounded when its rows are listed (`VALUES`) or its query has a bounding WHERE.
    """
    node = d.node
    if isinstance(node, exp.Merge):
        d.upsert = True
        return
    if isinstance(node, exp.Insert):
        d.upsert = _is_upsert(node)
        if d.upsert:
            d.has_where = _insert_source_bounded(node.expression)
        return
    where = node.args.get("where")
    if isinstance(where, exp.Where) and not isinstance(node, exp.Query):
        # Only what writes has rows to bound; a query's WHERE is not judged here.
        d.has_where = bounds_rows(where.this, _where_targets(ctx, node))
    d.has_limit = bool(node.args.get("limit") or node.args.get("fetch"))


def grants(d: Draft, ctx: Context) -> None:
    """GRANT / REVOKE: privileges, object type, objects and principals."""
    node = d.node
    if not isinstance(node, (exp.Grant, exp.Revoke)):
        return
    action = "grant" if isinstance(node, exp.Grant) else "revoke"
    privileges = frozenset(
        str(p.this.name if isinstance(p, exp.GrantPrivilege) else p.name).lower()
        for p in node.args.get("privileges") or ()
    )
    kind = str(node.args.get("kind") or "").lower() or None
    objects: set[str] = set()
    securable = node.args.get("securable")
    if isinstance(securable, exp.Table):
        if kind in (None, "table", "view"):
            name = d.add_table(ctx, securable, written=False)
            d.read.discard(name or "")
        else:
            d.not_tables.add(id(securable))
            name = table_parts(ctx.dialect, securable)[0]
        if name:
            objects.add(name)
    principals = frozenset(
        normalize_identifier(ctx.dialect, p.this if isinstance(p, exp.GrantPrincipal) else p)
        for p in node.args.get("principals") or ()
    )
    d.object_type = kind or ("table" if objects else None)
    d.target = next(iter(objects)) if len(objects) == 1 else None
    d.grants.append(Grant(action, privileges, d.object_type, frozenset(objects), principals))


def executes(d: Draft, ctx: Context) -> None:
    """T-SQL `EXEC('…')`: the string is run as SQL, so analyse it as a nested statement."""
    node = d.node
    if not isinstance(node, exp.Execute):
        return
    for i, text in enumerate(_strings_of(node)):
        d.adopt(ctx.nested_text(text, f"{d.path}.execute" if i == 0 else f"{d.path}.execute[{i}]"))
    for table in d.table_nodes:
        d.not_tables.add(id(table))


def function_body(d: Draft, ctx: Context) -> None:
    """CREATE FUNCTION/PROCEDURE bodies in SQL or PL/pgSQL run later as statements."""
    node = d.node
    if not isinstance(node, exp.Create) or d.object_type not in ("function", "procedure"):
        return
    body = node.expression
    text: str | None = None
    if isinstance(body, (exp.Heredoc, exp.Literal)) and (
        isinstance(body, exp.Heredoc) or body.is_string
    ):
        text = str(body.this)
    language = ""
    for prop in node.find_all(exp.LanguageProperty):
        language = str(prop.name).lower()
    from subguard.sql._commands import READ_LANGUAGES, routine_body

    path = f"{d.path}.function_body"
    if text is None and isinstance(body, exp.Expr) and language in READ_LANGUAGES:
        # A body sqlglot parsed (BigQuery `AS (x + 1)`, T-SQL `AS BEGIN … END`): its
        # statements are listed, its expressions were walked with the rest of the tree.
        statements = [n for n in body.walk() if node_kind(n) not in (None, "select")]
        for i, stmt in enumerate(statements):
            if isinstance(stmt.parent, exp.Subquery) or (stmt is body and node_kind(body) is None):
                continue
            d.adopt(describe(stmt, (), f"{path}[{i}]", ctx, nested=True))
        return
    routine_body(d, ctx, text, language, path)


#: Functions that reach outside the database, and how.
FUNCTION_IO: Final = {
    **dict.fromkeys(
        ("pg_read_file", "pg_read_binary_file", "pg_ls_dir", "pg_stat_file", "pg_file_write",
         "pg_file_rename", "pg_file_unlink", "pg_file_sync", "pg_logdir_ls", "pg_ls_logdir",
         "pg_ls_waldir", "pg_ls_tmpdir", "pg_ls_archive_statusdir", "pg_ls_logicalsnapdir",
         "pg_ls_logicalmapdir", "pg_ls_replslotdir", "lo_import", "lo_export", "load_file",
         "readfile", "writefile", "read_csv", "read_csv_auto", "read_parquet", "read_json",
         "read_json_auto", "read_text", "read_blob", "pg_current_logfile"),
        "server_file",
    ),
    **dict.fromkeys(
        ("dblink", "dblink_exec", "dblink_connect", "dblink_connect_u", "dblink_send_query",
         "dblink_open", "dblink_fetch", "dblink_close", "dblink_get_result", "dblink_get_notify",
         "dblink_get_connections", "dblink_is_busy", "dblink_cancel_query", "dblink_error_message",
         "dblink_disconnect", "dblink_build_sql_insert", "dblink_build_sql_update",
         "dblink_build_sql_delete", "openquery", "openrowset", "opendatasource"),
        "other_server",
    ),
    **dict.fromkeys(("sys_exec", "sys_eval", "xp_cmdshell", "load_extension", "edit"), "program"),
}  # fmt: skip

#: Functions whose string arguments the database runs as SQL: name → which arguments
#: (indexes; -1 is the last string argument).
SQL_ARGUMENT_FUNCTIONS: Final = {
    "query_to_xml": (0,), "query_to_xmlschema": (0,), "query_to_xml_and_xmlschema": (0,),
    "crosstab": (0, 1), "dblink": (-1,), "dblink_exec": (-1,), "dblink_send_query": (-1,),
    "dblink_open": (-1,), "openquery": (-1,), "openrowset": (-1,),
}  # fmt: skip

#: Functions that read a whole table named by a string argument (the first).
TABLE_ARGUMENT_FUNCTIONS: Final = frozenset(
    {"table_to_xml", "table_to_xmlschema", "table_to_xml_and_xmlschema"}
)

#: Functions that read what the analysis cannot enumerate (whole schemas, a cursor).
OPAQUE_FUNCTIONS: Final = frozenset(
    {"schema_to_xml", "schema_to_xmlschema", "schema_to_xml_and_xmlschema", "database_to_xml",
     "database_to_xmlschema", "database_to_xml_and_xmlschema", "cursor_to_xml",
     "cursor_to_xmlschema", "dblink_fetch"}
)  # fmt: skip


def external_io(d: Draft, ctx: Context) -> None:
    """Where the statement reaches outside the database: files, programs, other places.

    `server_file` (files on the database host), `program` (a command run there),
    `remote` (object stores, stages), `other_server` (dblink, linked servers).
    """
    node = d.node
    for name in d.functions:
        io = FUNCTION_IO.get(name)
        if io is not None:
            d.external_io.add(io)
    if d.copy_program:
        d.external_io.add("program")
    if d.into_outfile:
        d.external_io.add("server_file")
    if isinstance(node, exp.Copy):
        this = node.this
        if isinstance(this, exp.Schema):
            this = this.this
        places = [this.this] if isinstance(this, exp.Table) else []
        places += list(node.args.get("files") or ())
        for place in places:
            d.external_io |= _place_io(place)
    elif isinstance(node, (exp.Export, exp.Put, exp.Get)):
        d.external_io.add("remote")
    elif isinstance(node, exp.LoadData):
        # MySQL LOAD DATA INFILE, BigQuery LOAD DATA … FROM FILES (uris = ['gs://…']).
        uris = [str(n.this) for n in node.find_all(exp.Literal) if n.is_string]
        d.external_io.add("remote" if any("://" in u for u in uris) else "server_file")
    elif isinstance(node, exp.Pragma):
        target = node.this
        name = target.this if isinstance(target, exp.EQ) else target
        if isinstance(name, (exp.Var, exp.Column, exp.Identifier, exp.Anonymous)):
            d.settings.append(str(name.name).lower())
    elif isinstance(node, exp.Attach):
        d.external_io.add("server_file")
    elif isinstance(node, exp.Select) and isinstance(node.args.get("into"), exp.Into):
        into = node.args["into"]
        if not isinstance(into.this, exp.Table):
            d.external_io.add("server_file")


def _place_io(place: Any) -> set[str]:
    if isinstance(place, exp.Table):
        place = place.this
    if isinstance(place, exp.Identifier) and not place.quoted:
        word = str(place.this).upper()
        if word in ("STDOUT", "STDIN"):
            return set()
        if word == "PROGRAM":
            return {"program"}
        return set()  # a table name
    if isinstance(place, exp.Var) and str(place.this).startswith("@"):
        return {"remote"}
    if isinstance(place, exp.Literal) and place.is_string:
        return {"remote"} if "://" in str(place.this) else {"server_file"}
    if isinstance(place, (exp.Identifier, exp.Var, exp.Literal)):
        return {"server_file"}
    return set()


_LITERAL_FUNCTIONS: Final = (
    frozenset(SQL_ARGUMENT_FUNCTIONS) | TABLE_ARGUMENT_FUNCTIONS | OPAQUE_FUNCTIONS
)


def literal_sql(d: Draft, ctx: Context) -> None:
    """SQL in string arguments the database runs (`query_to_xml('…')`, `crosstab('…')`,
    `dblink(conn, '…')`), analysed as nested statements; a computed argument is opaque."""
    if not d.functions & _LITERAL_FUNCTIONS:
        return
    count = 0
    for call in d.node.find_all(exp.Anonymous):
        name = str(call.name).lower()
        args = list(call.expressions)
        if name in OPAQUE_FUNCTIONS:
            d.opaque_code = True
            continue
        texts: list[str] = []
        if name in TABLE_ARGUMENT_FUNCTIONS and args:
            first = args[0]
            if isinstance(first, exp.Literal) and first.is_string:
                texts.append(f"SELECT * FROM {first.this}")
            else:
                d.opaque_code = True
        positions = SQL_ARGUMENT_FUNCTIONS.get(name)
        if positions is not None:
            strings = [a for a in args if not isinstance(a, (exp.Boolean, exp.Null))]
            if name.startswith("dblink") and len(strings) == 1:
                positions = (0,)
            for pos in positions:
                if not strings or pos >= len(strings):
                    continue
                arg = strings[pos]
                if isinstance(arg, exp.Literal) and arg.is_string:
                    texts.append(str(arg.this))
                else:
                    d.opaque_code = True
        for text in texts:
            found = ctx.nested_text(text, f"{d.path}.literal[{count}]")
            count += 1
            if not found:
                d.opaque_code = True
            d.adopt(found)


def session_facts(d: Draft, ctx: Context) -> None:
    """Settings (SET, USE ROLE, `set_config`), privilege changes and ALTER actions.

    Read from the statement's tokens by the same code as for commands, so `SET "role"`,
    `SET session_authorization = …` and `SET ROLE` all name the setting `role`-wise alike.
    """
    if "set_config" in d.functions:
        for call in d.node.find_all(exp.Anonymous):
            if str(call.name).lower() == "set_config":
                first = call.expressions[0] if call.expressions else None
                if isinstance(first, exp.Literal) and first.is_string:
                    d.settings.append(str(first.this).strip().lower())
                else:
                    d.settings.append("*")  # a computed name: any setting at all
    if d.kind not in _TOKEN_FACT_KINDS:
        return
    from subguard.sql._commands import token_facts

    tokens = d.tokens
    if not tokens:
        try:
            tokens = tokenize_flat(d.node.sql(dialect=ctx.dialect or None), ctx.dialect)
        except Exception:
            tokens = []
    token_facts(d, ctx, tokens, "")


_TOKEN_FACT_KINDS: Final = frozenset(
    {"set", "create", "alter", "drop", "grant", "revoke", "execute"}
)


def unaccounted_tables(d: Draft, ctx: Context) -> None:
    """Any table node no step placed is still reported as read, never silently dropped."""
    for table in d.table_nodes:
        if id(table) in d.accounted or id(table) in d.not_tables:
            continue
        d.add_table(ctx, table, written=False)


#: The steps for a parsed statement, in order.
STEPS: Final = (walk_tree, targets, nested_queries, columns, flows, where_and_limit, grants, executes,
                function_body, session_facts, literal_sql, external_io,
                unaccounted_tables)  # fmt: skip


def describe(
    node: Any, tokens: Sequence[Any], path: str, ctx: Context, *, nested: bool
) -> list[Statement]:
    """The statement for `node` followed by every statement nested in it, flattened."""
    if isinstance(node, exp.Command):
        from subguard.sql._commands import describe_command

        return describe_command(node, tokens, path, ctx, nested=nested)
    d = Draft(node, tokens, path, nested)
    for step in STEPS:
        step(d, ctx)
    return d.finish()


def procedural_body(text: str, path: str, ctx: Context) -> list[Statement]:
    from subguard.sql._commands import procedural_body as run

    return run(text, path, ctx)


# --------------------------------------------------------------------------------------
# helpers


def _dml_target(node: Any) -> exp.Table | None:
    this = node.this
    if isinstance(this, exp.Schema):
        this = this.this
    return this if isinstance(this, exp.Table) else None


def _has_property(node: exp.Expr, name: str) -> bool:
    props = node.args.get("properties")
    cls = getattr(exp, f"{name}Property", None)
    return bool(props and cls and any(isinstance(p, cls) for p in props.expressions))


def _where_targets(ctx: Context, node: exp.Expr) -> frozenset[str] | None:
    """Names a qualified WHERE column may use to count as the target's; None: any column.

    UPDATE … FROM, DELETE … USING and joined targets read other tables: a condition on
    those (`USING orders o WHERE o.id = 1`) leaves every target row in play.
    """
    if not isinstance(node, (exp.Update, exp.Delete)):
        return None
    target = node.this
    extra = node.args.get("from_") or node.args.get("from") or node.args.get("using")
    joins = target.args.get("joins") if isinstance(target, exp.Table) else None
    if not (extra or joins or node.args.get("tables") or node.args.get("joins")):
        return None
    names: set[str] = set()
    if isinstance(target, exp.Table):
        names.add(str(target.name).lower())
        if target.alias:
            names.add(str(target.alias).lower())
    for t in node.args.get("tables") or ():
        if isinstance(t, exp.Table):
            names.add(str(t.name).lower())
    if node.args.get("tables") and len(node.args["tables"]) > 1:
        return frozenset()  # several targets: each would need its own bound
    return frozenset(names)


def _is_upsert(node: exp.Insert) -> bool:
    conflict = node.args.get("conflict")
    if isinstance(conflict, exp.OnConflict):
        action = str(conflict.args.get("action") or "").upper()
        if conflict.args.get("duplicate") or "UPDATE" in action:
            return True
    return str(node.args.get("alternative") or "").upper() == "REPLACE"


def _insert_source_bounded(source: Any) -> bool:
    if isinstance(source, exp.Values):
        return True
    if isinstance(source, exp.Subquery):
        source = source.unnest()
    if isinstance(source, exp.Select):
        where = source.args.get("where")
        joins = source.args.get("joins")
        return isinstance(where, exp.Where) and not joins and bounds_rows(where.this, None)
    return False


#: Where a column sits (the argument of its clause) → the role it plays.
_CLAUSE_ROLES: Final = {
    "where": "filter", "qualify": "filter", "prewhere": "filter", "connect": "filter",
    "having": "having", "group": "group", "order": "order", "returning": "returning",
}  # fmt: skip


_EMPTY: Final[frozenset[str]] = frozenset()
_ROLE_SETS: Final = {
    r: frozenset({r})
    for r in ("filter", "having", "group", "order", "returning", "window", "join", "write-source")
}


def _edge_roles(child: exp.Expr, parent: exp.Expr) -> frozenset[str]:
    """The roles a column gets from sitting under `child` in `parent`.

    A column under a predicate or a CASE condition anywhere (`SELECT 1/(CASE WHEN ssn
    LIKE '1%' …)`) answers a question about its value, so it plays `filter` too; so does
    one in a divisor, which can raise an error.
    """
    key = child.arg_key
    if isinstance(parent, exp.Window):
        return _ROLE_SETS["window"] if key in ("partition_by", "order") else _EMPTY
    if isinstance(parent, exp.Join):
        return _ROLE_SETS["join"] if key in ("on", "using") else _EMPTY
    if isinstance(parent, exp.Predicate):
        if isinstance(parent, exp.EQ) and isinstance(parent.parent, (exp.Update, exp.OnConflict)):
            return _EMPTY  # `SET col = <value>`: an assignment, not a comparison
        return _ROLE_SETS["filter"]
    if (isinstance(parent, (exp.If, exp.Case)) and key == "this") or (
        isinstance(parent, exp.Div) and key == "expression"
    ):
        return _ROLE_SETS["filter"]
    if isinstance(parent, (exp.Update, exp.Insert, exp.Values)) and key in (
        "expressions",
        "expression",
    ):
        return _ROLE_SETS["write-source"]
    role = _CLAUSE_ROLES.get(key) if key is not None else None
    return _ROLE_SETS[role] if role is not None else _EMPTY


def _column_roles(resolver: Resolver, root: exp.Expr) -> dict[Src, frozenset[str]]:
    found: dict[Src, set[str]] = {}
    memo: dict[int, frozenset[str]] = {}

    def above(node: exp.Expr) -> frozenset[str]:
        # The roles from every edge between `node` and the root, memoized per node.
        key = id(node)
        got = memo.get(key)
        if got is None:
            parent = node.parent
            if parent is None or node is root:
                got = _EMPTY
            else:
                here = _edge_roles(node, parent)
                rest = _EMPTY if parent is root else above(parent)
                got = here | rest if here and rest else (here or rest)
            memo[key] = got
        return got

    for key, column in resolver.nodes.items():
        srcs = resolver.resolved.get(key)
        if not srcs:
            continue
        roles = above(column)
        if not roles:
            continue
        for src in srcs:
            found.setdefault(src, set()).update(roles)
    # ORDER BY 2, GROUP BY 1: the projection at that position plays the role.
    for scope in resolver.scopes:
        select = scope.expression
        if not isinstance(select, exp.Select):
            continue
        for clause, role in (("order", "order"), ("group", "group")):
            holder = select.args.get(clause)
            if holder is None:
                continue
            for item in holder.expressions:
                value = item.this if isinstance(item, exp.Ordered) else item
                projection: exp.Expr | None = None
                if isinstance(value, exp.Literal) and not value.is_string:
                    n = int(value.this) if str(value.this).isdigit() else 0
                    if 0 < n <= len(select.selects):
                        projection = select.selects[n - 1]
                elif type(value) is exp.Column and not value.table:
                    # ORDER BY an output alias (`SELECT ssn AS s … ORDER BY s`).
                    name = value.name.lower()
                    for sel in select.selects:
                        if isinstance(sel, exp.Alias) and sel.alias.lower() == name:
                            projection = sel
                if projection is None:
                    continue
                for col in projection.find_all(exp.Column):
                    for src in resolver.resolved.get(id(col), ()):
                        found.setdefault(src, set()).add(role)
    return {src: frozenset(r) for src, r in found.items()}


def _column(ctx: Context, src: Src, in_output: bool, roles: frozenset[str] = frozenset()) -> Column:
    # Column facts are immutable and repeat across statements: share one per schema,
    # source and output flag. The schema object is part of the key as well as its version,
    # so a hand-made `Schema` reusing a version string still gets its own tags.
    schema = ctx.schema
    key = (schema.version if schema is not None else "", id(schema), src, in_output, roles)
    col = _COLUMNS.get(key)
    if col is None:
        if len(_COLUMNS) >= _COLUMNS_LIMIT:
            _COLUMNS.clear()
        col = _COLUMNS[key] = _new_column(ctx, src, in_output, roles)
    return col


_COLUMNS: Final[dict[tuple[str, int, Src, bool, frozenset[str]], Column]] = {}
_COLUMNS_LIMIT: Final = 4096


def _new_column(ctx: Context, src: Src, in_output: bool, roles: frozenset[str]) -> Column:
    table, name, resolved = src
    tags: frozenset[str] = frozenset()
    if ctx.schema is not None and table is not None:
        cols = ctx.schema.columns(table)
        if cols is not None:
            tags = cols.get(name, frozenset())
            if name == "*":
                # An unexpanded star reads every column: it carries every tag of the table.
                tags = frozenset().union(*cols.values()) if cols else frozenset()
    if in_output:
        roles = roles | {"output"}
    if ctx.schema is not None and table is not None and resolved:
        # Masks are reported in the schema's own spelling (`users.email`, not USERS.EMAIL).
        table, name = ctx.schema.spelling(table, name)
    return Column(table, name, tags, in_output, resolved, roles)


def _src_key(src: Src) -> tuple[str, str, bool]:
    return (src[0] or "", src[1], src[2])


def _strings_of(node: exp.Expr) -> list[str]:
    texts: list[str] = []
    for child in node.walk():
        if (
            (isinstance(child, exp.Literal) and child.is_string)
            or (isinstance(child, exp.Identifier) and child.quoted)
            or isinstance(child, (exp.National, exp.RawString))
        ):
            texts.append(str(child.this))
    return texts
