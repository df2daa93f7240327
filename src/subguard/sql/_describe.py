"""Facts of one parsed statement, built by small steps listed in order in `STEPS`.

Each step reads the node and fills part of a `Draft`; nested statements (data-modifying
CTEs, INSERT … SELECT, PREPARE bodies, literal dynamic SQL, function bodies) become
child statements whose reads and writes also count for their parent, so a rule that
looks only at top-level statements still sees what they hide.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from sqlglot import exp

from subguard.sql._columns import Resolver, Src, table_parts
from subguard.sql._dialects import normalize_identifier
from subguard.sql._draft import Context, Draft
from subguard.sql._facts import (
    Column,
    ColumnFlow,
    Grant,
    OutputColumn,
    Statement,
)
from subguard.sql._reach import executes, external_io, function_body, literal_sql
from subguard.sql._roles import column_fact, column_roles, src_key
from subguard.sql._tokens import tokenize_flat
from subguard.sql._where import bounds_rows

#: Object types whose names are tables (a function or schema name is not).
TABLE_OBJECTS: Final = frozenset(
    {"table", "view", "materialized view", "index", "dictionary", "stream", "dynamic table"}
)

_DML: Final = (exp.Insert, exp.Update, exp.Delete, exp.Merge)


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
    """Source columns read and output-column provenance, on sqlglot's scopes.

    Without column facts (`ctx.columns` false) only sqlglot's scopes are built, on the
    same trees, so a tree they refuse fails the analysis either way; the tables this
    step would place are then placed by `unaccounted_tables`, from the same nodes."""
    node = d.node
    resolver = Resolver(ctx.dialect, ctx.schema, d.dml_ctes, scopes_only=not ctx.columns)
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
    if not ctx.columns:
        return
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
    roles = column_roles(resolver, node)
    made: dict[Src, Column] = {}
    for src in set(resolver.reads):
        made[src] = column_fact(ctx, src, src in in_output, roles.get(src, frozenset()))
    d.columns.extend(made.values())

    def output_source(src: Src) -> Column:
        col = made.get(src)
        return (
            col
            if col is not None and col.in_output
            else column_fact(ctx, src, True, roles.get(src, frozenset()))
        )

    d.outputs = tuple(
        [
            OutputColumn(
                name,
                (output_source(next(iter(srcs))),)
                if len(srcs) == 1
                else tuple([output_source(s) for s in sorted(srcs, key=src_key)]),
            )
            for name, srcs in outputs
        ]
    )


def flows(d: Draft, ctx: Context) -> None:
    """`columns_written_from`: which source columns a statement copies into which target
    columns (INSERT … SELECT/VALUES, CREATE TABLE/VIEW … AS, SELECT … INTO, UPDATE … SET),
    with the target column's own tags from the schema (none for an untagged object)."""
    if not ctx.columns:
        return
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
                tuple(column_fact(ctx, s, False) for s in srcs) for _, srcs in d.value_outputs
            ]
        for i, srcs in enumerate(positional):
            pairs.append((names[i] if i < len(names) else "*", srcs))
    elif isinstance(node, exp.Update):
        pairs = [
            (
                normalize_identifier(ctx.dialect, name),
                tuple(column_fact(ctx, s, False) for s in srcs),
            )
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
    from subguard.sql._settings import token_facts

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
    from subguard.sql._procedural import procedural_body as run

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
