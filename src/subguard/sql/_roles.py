"""The roles a column plays in a statement (filter, join, group, order, output, …) and the
shared, immutable `Column` facts built from a resolved source."""

from __future__ import annotations

from typing import Final

from sqlglot import exp

from subguard.sql._columns import Resolver, Src
from subguard.sql._draft import Context
from subguard.sql._facts import Column

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


def column_roles(resolver: Resolver, root: exp.Expr) -> dict[Src, frozenset[str]]:
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


def column_fact(
    ctx: Context, src: Src, in_output: bool, roles: frozenset[str] = frozenset()
) -> Column:
    # Column facts are immutable and repeat across statements: share one per schema,
    # source and output flag. The schema object is part of the key as well as its version,
    # so a hand-made `Schema` reusing a version string still gets its own tags.
    schema = ctx.schema
    key = (schema.version if schema is not None else "", id(schema), src, in_output, roles)
    col = _COLUMNS.get(key)
    if col is None:
        if len(_COLUMNS) >= _COLUMNS_LIMIT:
            _COLUMNS.clear()
        col = _COLUMNS[key] = _newcolumn_fact(ctx, src, in_output, roles)
    return col


_COLUMNS: Final[dict[tuple[str, int, Src, bool, frozenset[str]], Column]] = {}
_COLUMNS_LIMIT: Final = 4096


def _newcolumn_fact(ctx: Context, src: Src, in_output: bool, roles: frozenset[str]) -> Column:
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


def src_key(src: Src) -> tuple[str, str, bool]:
    return (src[0] or "", src[1], src[2])
