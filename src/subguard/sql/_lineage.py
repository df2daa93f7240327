"""Per-output-position lineage for masking result rows: which source columns each column
of a statement's result may carry, and whether that can be told at all.

`statement.output_columns` answers "what does this column derive from" for the policy;
masking needs a stricter answer, because a wrong one returns a masked value in clear.
So this pass is conservative where the analysis is generous:

- a star inside an expression (`to_json(users.*)`, `json_object(*)`) carries every
  column of what it stars, not nothing;
- a source that is not a known column of a known table (a whole-row reference such as
  PostgreSQL's `SELECT u FROM users u`, a table without schema, an unresolved name) makes
  the position *opaque*: the gate cannot place a mask there and refuses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
from sqlglot import exp

from subguard.sql._cache import LRUCache
from subguard.sql._columns import Frame, Resolver, Src
from subguard.sql._dialects import canonical_dialect, dialect_object
from subguard.sql._schema import Schema, as_schema

__all__ = ["OutputLineage", "ResultLineage", "output_lineage"]


@attrs.frozen
class OutputLineage:
    """One result column: its name, the `(table, column)` pairs it may carry, and whether
    some of what it carries could not be identified (`opaque`)."""

    name: str
    sources: frozenset[tuple[str, str]] = frozenset()
    opaque: bool = False
    #: The value is a source column's value as stored (a bare column or a star at the
    #: top, and no computed column in any query feeding it): only then may a mask keep
    #: part of it (`partial:N`, `email`); otherwise the whole value is masked.
    direct: bool = False


@attrs.frozen
class ResultLineage:
    """The lineage of a text's result rows.

    `columns` is one entry per result position, or None when the positions cannot be
    known (`problem` says why: several statements, a star without schema, a statement
    that returns rows the analysis does not model). `returns_rows` is false for texts
    whose statements produce no result set (plain INSERT, UPDATE, DDL).
    """

    columns: tuple[OutputLineage, ...] | None
    returns_rows: bool
    problem: str = ""


class _StarResolver(Resolver):
    """The analysis' resolver, with stars inside expressions counted as reads."""

    def expression_sources(self, frame: Frame, expression: exp.Expr) -> frozenset[Src]:
        found = super().expression_sources(frame, expression)
        extra: set[Src] = set()
        columns = (
            [expression] if type(expression) is exp.Column else expression.find_all(exp.Column)
        )
        for col in columns:
            # A name that is no column but a table or alias in scope is the whole row
            # (PostgreSQL: `SELECT u FROM users u`, `row_to_json(u)`): it carries every column.
            if isinstance(col.this, exp.Star) or col.args.get("table") is not None:
                continue
            name = self.norm(col.this)
            got = self.resolved.get(id(col))
            if got is None or any(ok for _, _, ok in got):
                continue
            # The name may be a table of the column's own (nested) query, not of `frame`:
            # any query level that has a source by that name counts (over-approximating).
            for level in (frame, *self.frames.values()):
                source = level.sources.get(name)
                if source is not None:
                    for _, srcs in self.expand(source):
                        extra |= srcs
        if type(expression) is exp.Column and not isinstance(expression.this, exp.Star):
            return found | frozenset(extra) if extra else found
        for star in expression.find_all(exp.Star):
            parent = star.parent
            if isinstance(parent, exp.Count):
                continue  # count(*) carries no column's value
            if isinstance(parent, exp.Column):
                qualifier = parent.args.get("table")
                source = frame.sources.get(self.norm(qualifier)) if qualifier else None
                if source is None:
                    extra.add((None, "*", False))
                    continue
                expanded = self.expand(source)
            else:
                expanded = [
                    e
                    for key in frame.selected
                    if key in frame.sources
                    for e in self.expand(frame.sources[key])
                ]
                if not expanded:
                    extra.add((None, "*", False))
            for _, srcs in expanded:
                extra |= srcs
        return found | frozenset(extra) if extra else found


_CACHE: LRUCache[ResultLineage] = LRUCache(max_entries=2048, max_bytes=8 * 1024 * 1024)


def output_lineage(
    text: str, dialect: str | None = None, schema: Mapping[str, Any] | Schema | None = None
) -> ResultLineage:
    """The lineage of each result position of `text` (cached by text, dialect and schema).

    Never raises: text that does not parse yields `columns=None` with a problem.
    """
    try:
        name = canonical_dialect(dialect)
        resolved = as_schema(schema, name)
    except Exception:
        return ResultLineage(None, True, f"unknown dialect `{dialect}`")
    key = (name, resolved.version if resolved is not None else "", text)
    hit = _CACHE.get(key)
    if hit is not None:
        return hit
    try:
        result = _lineage(text, name, resolved)
    except Exception as exc:  # sqlglot raises plain errors on some input: fail closed
        result = ResultLineage(None, True, f"cannot analyse the result ({type(exc).__name__})")
    _CACHE.put(key, result, len(text) + 512)
    return result


def _lineage(text: str, dialect: str, schema: Schema | None) -> ResultLineage:
    nodes = [n for n in dialect_object(dialect).parse(text) if n is not None]
    if not nodes:
        return ResultLineage((), False)
    rows = [n for n in nodes if _returns_rows(n)]
    if not rows:
        return ResultLineage((), False)
    if len(nodes) > 1:
        return ResultLineage(None, True, "several statements in one request return rows")
    node = rows[0]
    if not isinstance(node, exp.Query):
        return ResultLineage(None, True, "the statement returns rows the analysis cannot place")
    resolver = _StarResolver(dialect, schema, {})
    outputs = resolver.run_query(node)
    direct = _direct_positions(resolver, node, len(outputs))
    columns = []
    for (out_name, srcs), is_direct in zip(outputs, direct):
        if out_name == "*":
            return ResultLineage(None, True, "`*` over a table without a known schema")
        placed: set[tuple[str, str]] = set()
        opaque = False
        for table, column, ok in srcs:
            cols = schema.columns(table) if (schema is not None and table is not None) else None
            if not ok or cols is None or column not in cols:
                opaque = True
                if table is not None:
                    placed.add((table, column))
            elif table is not None:
                placed.add((table, column))
        columns.append(OutputLineage(out_name, frozenset(placed), opaque, is_direct and not opaque))
    return ResultLineage(tuple(columns), True)


def _is_bare(projection: exp.Expr) -> bool:
    if isinstance(projection, exp.Alias):
        projection = projection.this
    return isinstance(projection, (exp.Star, exp.Column))


def _direct_positions(resolver: Resolver, node: exp.Query, count: int) -> list[bool]:
    """Which result positions carry a stored value unchanged (see `OutputLineage.direct`)."""
    none = [False] * count
    if not isinstance(node, exp.Select):
        return none
    for select in node.find_all(exp.Select):
        if select is not node and not all(_is_bare(p) for p in select.selects):
            return none
    root = next((s for s in resolver.scopes if s.expression is node), None)
    if root is None:
        return none
    frame = resolver.frame(root)
    flags: list[bool] = []
    for projection in node.selects:
        width = len(resolver.projection_outputs(frame, [projection]))
        flags.extend([_is_bare(projection)] * width)
    return flags if len(flags) == count else none


def _returns_rows(node: exp.Expr) -> bool:
    if isinstance(node, exp.Query):
        return True
    if isinstance(node, (exp.Insert, exp.Update, exp.Delete, exp.Merge)):
        return node.args.get("returning") is not None
    # PRAGMA, SHOW, EXPLAIN, DESCRIBE, commands: they may return rows the analysis does
    # not model; the gate refuses to return them when a mask is in force.
    return not isinstance(
        node,
        (
            exp.Create,
            exp.Drop,
            exp.Alter,
            exp.TruncateTable,
            exp.Transaction,
            exp.Commit,
            exp.Rollback,
            exp.Set,
        ),
    )
