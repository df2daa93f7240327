"""Column provenance on sqlglot scopes: which source columns each query reads and outputs.

A source is `(table, column, resolved)`: `table` is a bare normalized table name or None.
Scopes come from `sqlglot.optimizer.scope.traverse_scope`, which yields children before
parents, so a derived table's or CTE's outputs are known before the query reading them.
This deliberately avoids `qualify` and `lineage`: they rewrite and re-walk the tree and
cost several parses, while one pass over the scopes is a fraction of one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlglot import exp
from sqlglot.optimizer.scope import Scope, traverse_scope

from subguard.sql._dialects import normalize_identifier
from subguard.sql._schema import Schema

Src = tuple[str | None, str, bool]
Outputs = list[tuple[str, frozenset[Src]]]

# A frame source: ("table", bare name or None) or ("scope", Scope) or ("outputs", Outputs).
FrameSource = tuple[str, Any]


class Frame:
    """Name resolution context of one query level (a scope, or a DML statement's own clauses)."""

    __slots__ = ("_selected_sources", "aliases", "parent", "selected", "sources", "unqualified")

    def __init__(self, parent: Frame | None) -> None:
        self.sources: dict[str, FrameSource] = {}
        self.selected: list[str] = []
        self.aliases: dict[str, exp.Expr] = {}
        self.parent = parent
        self._selected_sources: list[FrameSource] | None = None
        # Unqualified names resolved in this frame's own scope, once all of its sources'
        # outputs are known (a subquery looking outward may come earlier and see less).
        self.unqualified: dict[str, frozenset[Src] | None] = {}

    def selected_sources(self) -> list[FrameSource]:
        """The sources unqualified names resolve against (fixed once resolution starts)."""
        found = self._selected_sources
        if found is None:
            sources = self.sources
            found = self._selected_sources = [sources[k] for k in self.selected if k in sources]
        return found


def table_parts(dialect: str, table: exp.Table) -> tuple[str | None, str | None, str | None]:
    """(name, schema, catalog) of a table node, normalized; name None for table functions."""
    this = table.this
    if not isinstance(this, exp.Identifier):
        return None, None, None
    db = table.args.get("db")
    catalog = table.args.get("catalog")
    return (
        normalize_identifier(dialect, this),
        normalize_identifier(dialect, db) if isinstance(db, exp.Expr) else None,
        normalize_identifier(dialect, catalog) if isinstance(catalog, exp.Expr) else None,
    )


class Resolver:
    """Resolves the columns of one statement tree against an optional schema."""

    def __init__(
        self,
        dialect: str,
        schema: Schema | None,
        dml_ctes: dict[str, str | None],
        scopes_only: bool = False,
    ):
        # `scopes_only`: build sqlglot's scopes (which refuses some trees: the analysis then
        # fails closed, with or without column facts) and resolve nothing.
        self.scopes_only = scopes_only
        self.dialect = dialect
        self.schema = schema
        # Data-modifying CTEs (`WITH x AS (DELETE FROM users RETURNING *)`) are no scopes to
        # sqlglot: a reference to `x` looks like a table. Map it to the DML's target instead.
        self.dml_ctes = dml_ctes
        self.outputs: dict[int, Outputs] = {}
        self.by_expression: dict[int, Outputs] = {}
        self.frames: dict[int, Frame] = {}
        self.resolved: dict[int, frozenset[Src]] = {}
        # The column nodes resolved, by id: where each sits says what role it plays.
        self.nodes: dict[int, exp.Column] = {}
        self.reads: list[Src] = []
        self.tables: list[exp.Table] = []
        self.scopes: list[Scope] = []
        self._parts: dict[int, tuple[str | None, str | None, str | None]] = {}

    # -- names ------------------------------------------------------------------------
    def norm(self, node: Any) -> str:
        return normalize_identifier(self.dialect, node)

    def table_parts(self, table: exp.Table) -> tuple[str | None, str | None, str | None]:
        """`table_parts`, once per node (the tree outlives the resolver, so ids are stable)."""
        parts = self._parts.get(id(table))
        if parts is None:
            parts = self._parts[id(table)] = table_parts(self.dialect, table)
        return parts

    def bare_table(self, table: exp.Table) -> str | None:
        name, schema_name, _ = self.table_parts(table)
        if name is not None and schema_name is None and name in self.dml_ctes:
            return self.dml_ctes[name]
        return name

    # -- frames -----------------------------------------------------------------------
    def frame(self, scope: Scope) -> Frame:
        frame = self.frames.get(id(scope))
        if frame is not None:
            return frame
        parent = self.frame(scope.parent) if scope.parent is not None else None
        frame = Frame(parent)
        for name, source in scope.sources.items():
            key = self.norm(name)
            if isinstance(source, exp.Table):
                frame.sources[key] = self.table_source(source)
            elif isinstance(source, Scope):
                frame.sources[key] = ("scope", source)
        frame.selected = [self.norm(n) for n in scope.selected_sources]
        expression = scope.expression
        if isinstance(expression, exp.Select):
            for sel in expression.selects:
                if isinstance(sel, exp.Alias):
                    frame.aliases.setdefault(self.norm(sel.args["alias"]), sel.this)
        self.frames[id(scope)] = frame
        return frame

    def table_source(self, table: exp.Table) -> FrameSource:
        """A table as a frame source; `users AS u (a, b)` renames its first columns."""
        bare = self.bare_table(table)
        alias = table.args.get("alias")
        renamed = (
            [self.norm(c) for c in alias.args.get("columns") or ()]
            if isinstance(alias, exp.TableAlias)
            else []
        )
        if not renamed:
            return ("table", bare)
        cols = self.schema.columns(bare) if (self.schema is not None and bare) else None
        if cols is None:
            # Which column each new name stands for is unknown: any of the table's.
            return ("outputs", [(n, frozenset({(bare, "*", False)})) for n in renamed])
        names = list(cols)
        outs: Outputs = []
        for i, new in enumerate(renamed):
            src = (bare, names[i], True) if i < len(names) else (bare, "*", False)
            outs.append((new, frozenset({src})))
        outs.extend((c, frozenset({(bare, c, True)})) for c in names[len(renamed) :])
        return ("outputs", outs)

    def whole_row(self, frame: Frame, name: str) -> frozenset[Src] | None:
        """`row_to_json(u)`, `SELECT u`, `u::text`: a table's name as a value is its whole row."""
        current: Frame | None = frame
        while current is not None:
            source = current.sources.get(name)
            if source is not None:
                return frozenset().union(*(srcs for _, srcs in self.expand(source)))
            current = current.parent
        return None

    # -- lookups ----------------------------------------------------------------------
    def source_outputs(self, source: FrameSource) -> Outputs | None:
        kind, value = source
        if kind == "scope":
            outs = self.outputs.get(id(value))
            if outs is None:
                return None
            renamed = self.alias_columns(value)
            if renamed and not any(n == "*" for n, _ in outs):
                # `(SELECT …) AS t (a, b)` and `WITH t (a, b) AS …` rename by position.
                return [
                    (renamed[i] if i < len(renamed) else n, srcs)
                    for i, (n, srcs) in enumerate(outs)
                ]
            return outs
        if kind == "outputs":
            return list(value)
        return None

    def alias_columns(self, scope: Scope) -> list[str]:
        holder = scope.expression.parent
        alias = holder.args.get("alias") if isinstance(holder, (exp.Subquery, exp.CTE)) else None
        if not isinstance(alias, exp.TableAlias):
            return []
        return [self.norm(c) for c in alias.args.get("columns") or ()]

    def has_column(self, source: FrameSource, name: str) -> bool | None:
        kind, value = source
        if kind == "table":
            cols = self.schema.columns(value) if (self.schema and value) else None
            return None if cols is None else name in cols
        outs = self.source_outputs(source)
        if outs is None:
            return None
        if any(n == name for n, _ in outs):
            return True
        return None if any(n == "*" for n, _ in outs) else False

    def from_source(self, source: FrameSource, name: str) -> frozenset[Src]:
        kind, value = source
        if kind == "table":
            return frozenset({(value, name, value is not None)})
        outs = self.source_outputs(source)
        if outs is None:
            return frozenset({(None, name, False)})
        found: set[Src] = set()
        matched = False
        for out_name, srcs in outs:
            if out_name == name:
                found |= srcs
                matched = True
        if matched:
            # A matched output may derive from no column at all (`'web' AS channel`).
            return frozenset(found)
        star_tables = {t for n, srcs in outs if n == "*" for t, _, _ in srcs}
        if len(star_tables) == 1 and None not in star_tables:
            return frozenset({(next(iter(star_tables)), name, True)})
        return frozenset({(None, name, False)})

    def resolve_in(self, frame: Frame, column: exp.Column, name: str) -> frozenset[Src] | None:
        qualifier = column.args.get("table")
        if qualifier is not None:
            source = frame.sources.get(self.norm(qualifier))
            return None if source is None else self.from_source(source, name)
        selected = frame.selected_sources()
        if len(selected) == 1:
            if self.has_column(selected[0], name) is not False:
                return self.from_source(selected[0], name)
            return None
        definite: list[FrameSource] = []
        unknown: list[FrameSource] = []
        schema = self.schema
        for source in selected:
            kind, value = source
            if kind == "table":  # `has_column` inlined: this loop runs per name and source
                cols = schema.columns(value) if (schema is not None and value) else None
                verdict = None if cols is None else name in cols
            else:
                verdict = self.has_column(source, name)
            if verdict:
                definite.append(source)
            elif verdict is None:
                unknown.append(source)
        if len(definite) == 1:
            return self.from_source(definite[0], name)
        if not definite and len(unknown) == 1:
            return self.from_source(unknown[0], name)
        if definite or unknown:
            return frozenset({(None, name, False)})
        return None

    def resolve(self, frame: Frame, column: exp.Column) -> frozenset[Src]:
        self.nodes[id(column)] = column
        name = self.norm(column.this)
        if column.args.get("table") is None:
            if name in frame.unqualified:
                found = frame.unqualified[name]
            else:
                found = frame.unqualified[name] = self.resolve_in(frame, column, name)
            whole = self.whole_row(frame, name)
            if whole is not None:
                # A table's (or alias's) name: its whole row, unless the name is a known
                # column of it; when unsure, both.
                return whole if found is None or not any(r for _, _, r in found) else found | whole
        else:
            found = self.resolve_in(frame, column, name)
        if found is not None:
            return found
        if column.args.get("table") is None:
            alias_expr = frame.aliases.get(name)
            if alias_expr is not None and column not in set(alias_expr.find_all(exp.Column)):
                return self.expression_sources(frame, alias_expr)
        outer = frame.parent
        while outer is not None:
            found = self.resolve_in(outer, column, name)
            if found is not None:
                return found
            outer = outer.parent
        return frozenset({(None, name, False)})

    def expression_sources(self, frame: Frame, expression: exp.Expr) -> frozenset[Src]:
        if type(expression) is exp.Column and not isinstance(expression.this, exp.Star):
            # The common projection, a bare column: its own sources.
            got = self.resolved.get(id(expression))
            if got is None:
                got = self.resolved[id(expression)] = self.resolve(frame, expression)
            return got
        found: set[Src] = set()
        for query in expression.find_all(exp.Select, exp.SetOperation):
            # A scalar subquery returns its own outputs (`(SELECT json_agg(u.*) FROM users
            # u)`): those of its scope, whole rows and stars expanded there.
            outs = self.by_expression.get(id(query))
            if outs is not None:
                for _, srcs in outs:
                    found |= srcs
        for star in expression.find_all(exp.Star):
            # A bare `*` inside an expression (`OBJECT_CONSTRUCT(*)`, `ROW(*)`) is every
            # column of every selected source; `count(*)` reads no column.
            parent = star.parent
            if isinstance(parent, (exp.Column, exp.Count)) or star is expression:
                continue
            owner = star.find_ancestor(exp.Select, exp.SetOperation)
            if owner is not None and _within(owner, expression):
                continue  # a star of a nested query: counted with that query's outputs
            for key in frame.selected:
                source = frame.sources.get(key)
                if source is not None:
                    for _, srcs in self.expand(source):
                        found |= srcs
        for col in expression.find_all(exp.Column):
            if isinstance(col.this, exp.Star):
                # `row_to_json(u.*)`, `count(t.*)`: every column of the source.
                qualifier = col.args.get("table")
                source = frame.sources.get(self.norm(qualifier)) if qualifier else None
                if source is not None:
                    for _, srcs in self.expand(source):
                        found |= srcs
                continue
            got = self.resolved.get(id(col))
            if got is None:
                got = self.resolve(frame, col)
                self.resolved[id(col)] = got
            found |= got
        return frozenset(found)

    # -- stars ------------------------------------------------------------------------
    def expand(self, source: FrameSource) -> Outputs:
        kind, value = source
        if kind == "table":
            cols = self.schema.columns(value) if (self.schema and value) else None
            if cols is None:
                return [("*", frozenset({(value, "*", False)}))]
            return [(c, frozenset({(value, c, True)})) for c in cols]
        outs = self.source_outputs(source)
        return outs if outs is not None else [("*", frozenset({(None, "*", False)}))]

    def projection_outputs(self, frame: Frame, selects: Iterable[exp.Expr]) -> Outputs:
        outs: Outputs = []
        for i, sel in enumerate(selects):
            if isinstance(sel, exp.Star):
                for key in frame.selected:
                    if key in frame.sources:
                        outs.extend(self.expand(frame.sources[key]))
                continue
            if isinstance(sel, exp.Column) and isinstance(sel.this, exp.Star):
                qualifier = sel.args.get("table")
                source = frame.sources.get(self.norm(qualifier)) if qualifier else None
                if source is None:
                    outs.append(("*", frozenset({(None, "*", False)})))
                else:
                    outs.extend(self.expand(source))
                continue
            if isinstance(sel, exp.Alias):
                name = self.norm(sel.args["alias"])
            elif isinstance(sel, exp.Column):
                name = self.norm(sel.this)
            else:
                name = f"_col_{i}"
            outs.append((name, self.expression_sources(frame, sel)))
        return outs

    # -- scopes -----------------------------------------------------------------------
    def run_query(self, root: exp.Expr) -> Outputs:
        """Resolve every scope under `root`; return the outputs of the root query."""
        result: Outputs = []
        if self.scopes_only:
            _build_scopes(root)
            return result
        for scope in traverse_scope(root):
            self.scopes.append(scope)
            for source in scope.sources.values():
                if isinstance(source, exp.Table):
                    self.tables.append(source)
            expression = scope.expression
            if isinstance(expression, exp.SetOperation) and scope.set_operation_scopes:
                outs = self.merge_branches(
                    [self.outputs.get(id(s), []) for s in scope.set_operation_scopes]
                )
            elif isinstance(expression, (exp.Select, exp.Subquery)):
                frame = self.frame(scope)
                for col in _scope_columns(scope):
                    if isinstance(col.this, exp.Star) or id(col) in self.resolved:
                        continue
                    self.resolved[id(col)] = self.resolve(frame, col)
                outs = self.projection_outputs(frame, expression.selects)
            elif isinstance(expression, exp.Lateral):
                outs = self.lateral_outputs(expression)
            else:
                continue
            self.outputs[id(scope)] = outs
            self.by_expression[id(expression)] = outs
            if scope.is_root:
                result = outs
        self.reads.extend(src for srcs in self.resolved.values() for src in srcs)
        for _, srcs in result:
            self.reads.extend(srcs)
        return result

    def lateral_outputs(self, lateral: exp.Lateral) -> Outputs:
        """`LATERAL (SELECT …) AS l (a, b)` / CROSS APPLY: its query's outputs, renamed."""
        inner = lateral.this
        while isinstance(inner, exp.Subquery):
            inner = inner.this
        outs = self.by_expression.get(id(inner))
        if outs is None:
            return [("*", frozenset({(None, "*", False)}))]
        alias = lateral.args.get("alias")
        renamed = (
            [self.norm(c) for c in alias.args.get("columns") or ()]
            if isinstance(alias, exp.TableAlias)
            else []
        )
        if renamed and not any(n == "*" for n, _ in outs):
            return [
                (renamed[i] if i < len(renamed) else n, srcs) for i, (n, srcs) in enumerate(outs)
            ]
        return outs

    def run_values(self, values: exp.Values) -> Outputs:
        """Outputs of a VALUES list: by position, what its (scalar) subqueries return."""
        positions: dict[int, set[Src]] = {}
        for row in values.expressions:
            items = row.expressions if isinstance(row, exp.Tuple) else [row]
            for i, item in enumerate(items):
                found = positions.setdefault(i, set())
                for sub in item.find_all(exp.Subquery):
                    if any(isinstance(a, exp.Subquery) for a in _ancestors(sub, item)):
                        continue
                    for _, srcs in self.run_query(sub.this):
                        found |= srcs
        return [(f"column{i + 1}", frozenset(positions[i])) for i in sorted(positions)]

    @staticmethod
    def merge_branches(branches: list[Outputs]) -> Outputs:
        # Positional merge, as UNION does; with an unexpanded star the positions are unknown,
        # so keep every branch's entries rather than guess an alignment.
        if (
            any(n == "*" for branch in branches for n, _ in branch)
            or len({len(b) for b in branches}) > 1
        ):
            return [entry for branch in branches for entry in branch]
        merged: Outputs = []
        for entries in zip(*branches):
            merged.append((entries[0][0], frozenset().union(*(s for _, s in entries))))
        return merged

    # -- DML --------------------------------------------------------------------------
    def run_dml(self, node: exp.Expr, targets: list[exp.Table]) -> Outputs:
        """Resolve the columns of a DML statement's own clauses (WHERE, SET, RETURNING, ON)."""
        if self.scopes_only:
            _build_scopes(node, node)
            return []
        frame = Frame(None)
        for table in targets:
            bare = self.bare_table(table)
            key = self.norm(table.args["alias"].this) if table.args.get("alias") else bare
            if key is not None:
                frame.sources[key] = ("table", bare)
                frame.selected.append(key)
        for scope in traverse_scope(node):
            self.scopes.append(scope)
            expression = scope.expression
            for source in scope.sources.values():
                if isinstance(source, exp.Table):
                    self.tables.append(source)
            if isinstance(expression, exp.Table) or (
                isinstance(expression, exp.Query) and _in_relation_position(expression, node)
            ):
                alias = expression.alias_or_name
                key = self.norm(alias) if alias else None
                if key is None:
                    continue
                if isinstance(expression, exp.Table):
                    frame.sources[key] = ("table", self.bare_table(expression))
                else:
                    frame.sources[key] = ("scope", scope)
                frame.selected.append(key)
        # Queries nested in the DML see its tables as an outer frame (correlation).
        for scope in self.scopes:
            if scope.parent is not None and scope.parent.expression is node:
                self.frames[id(scope.parent)] = frame
        result: Outputs = []
        for scope in self.scopes:
            expression = scope.expression
            if isinstance(expression, exp.SetOperation) and scope.set_operation_scopes:
                self.outputs[id(scope)] = self.merge_branches(
                    [self.outputs.get(id(s), []) for s in scope.set_operation_scopes]
                )
            elif isinstance(expression, (exp.Select, exp.Subquery)):
                sframe = self.frame(scope)
                for col in _scope_columns(scope):
                    if isinstance(col.this, exp.Star) or id(col) in self.resolved:
                        continue
                    self.resolved[id(col)] = self.resolve(sframe, col)
                self.outputs[id(scope)] = self.projection_outputs(sframe, expression.selects)
                self.by_expression[id(expression)] = self.outputs[id(scope)]
        written = _set_targets(node)
        for col in _own_columns(node):
            if id(col) in written or isinstance(col.this, exp.Star):
                continue
            if id(col) not in self.resolved:
                self.resolved[id(col)] = self.resolve(frame, col)
        returning = node.args.get("returning")
        if isinstance(returning, exp.Returning):
            result = self.projection_outputs(frame, returning.expressions)
        self.reads.extend(src for srcs in self.resolved.values() for src in srcs)
        for _, srcs in result:
            self.reads.extend(srcs)
        return result


def _build_scopes(root: exp.Expr, dml: exp.Expr | None = None) -> None:
    """The scopes of `root`, and the sources resolution would select in them: sqlglot
    raises on some trees (`Alias already used`) only then. The same scopes as `frame`
    reaches (a query's and its enclosing ones', a DML statement's own excepted)."""
    seen: set[int] = set()
    for scope in traverse_scope(root):
        if not isinstance(scope.expression, (exp.Select, exp.Subquery)):
            continue
        current: Scope | None = scope
        while current is not None and id(current) not in seen and current.expression is not dml:
            seen.add(id(current))
            current.selected_sources  # noqa: B018 (evaluated for its error)
            current = current.parent


def _within(node: exp.Expr, root: exp.Expr) -> bool:
    current: exp.Expr | None = node
    while current is not None:
        if current is root:
            return True
        current = current.parent
    return False


def _scope_columns(scope: Scope) -> list[exp.Column]:
    """The scope's columns, plus those of its HAVING, which sqlglot's scope leaves out
    (`HAVING max(ssn) > '5'` reads `ssn`)."""
    columns = list(scope.columns)
    having = scope.expression.args.get("having")
    if having is not None:
        seen = {id(c) for c in columns}
        columns.extend(c for c in _own_columns(having) if id(c) not in seen)
    return columns


def _ancestors(node: exp.Expr, stop: exp.Expr) -> list[exp.Expr]:
    found: list[exp.Expr] = []
    parent = node.parent
    while parent is not None and parent is not stop:
        found.append(parent)
        parent = parent.parent
    return found


def _in_relation_position(query: exp.Expr, node: exp.Expr) -> bool:
    parent = query.parent
    while isinstance(parent, (exp.Subquery, exp.Alias, exp.TableAlias)):
        parent = parent.parent
    return isinstance(parent, (exp.From, exp.Join)) or (parent is node and query.arg_key == "using")


def _own_columns(node: exp.Expr) -> Iterable[exp.Column]:
    """Columns of a DML statement outside its nested queries (those belong to their scopes)."""
    for child in node.walk(prune=lambda n: isinstance(n, exp.Query) and n is not node):
        if isinstance(child, exp.Column):
            yield child


def _set_targets(node: exp.Expr) -> set[int]:
    """Ids of `SET col = …` left-hand columns: written, not read."""
    ids: set[int] = set()
    for eq in node.find_all(exp.EQ):
        parent = eq.parent
        if isinstance(eq.this, exp.Column) and (
            isinstance(parent, exp.Update)
            or (isinstance(parent, exp.Set) if hasattr(exp, "Set") else False)
        ):
            ids.add(id(eq.this))
    return ids
