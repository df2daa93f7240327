"""The bounded count an adapter runs to estimate how many rows a write touches, where the
database has no planner estimate it can ask for without running the write (SQLite).

`count_query` builds `SELECT count(*) FROM (SELECT 1 FROM <target> WHERE <where> LIMIT
bound + 1)` from the parsed statement (never by pasting text), or says it cannot be
built soundly: the count must read exactly the rows the write would, and must do nothing
else. So it refuses (returns `None`) for anything it cannot vouch for:

- a statement that is not one UPDATE or DELETE of one plain table, or has a `WITH`, a
  `FROM`/`USING` or joins (the rows it touches depend on more than its WHERE);
- a WHERE calling any function outside a short list of pure builtins, or an operator
  that SQLite runs as an overridable function (`LIKE`, `GLOB`, `REGEXP`, `MATCH`), or a
  collation other than the builtin ones: a function or collation registered on the
  connection runs arbitrary code, and the count would call it;
- placeholders the count could not bind as the write does (mixed positional and named
  ones, `@name`, `$name`, or a count of them that does not match the text's tokens).

The tables the count reads are returned so the adapter can check each is a base table
(a view's query may call anything).
"""

from __future__ import annotations

from typing import Any, Final

import attrs
import sqlglot
from sqlglot import exp
from sqlglot.tokenizer_core import TokenType

from subguard.sql._dialects import UnknownDialect, canonical_dialect, dialect_object

__all__ = ["CountQuery", "count_query"]


@attrs.frozen
class CountQuery:
    """A bounded count of the rows a write's WHERE selects.

    `text` binds the write's named parameters as they are, or — when `positional` is set
    — the slice `parameters[start:stop]` of its positional ones. `tables` are the lower-case
    names of every table it reads.
    """

    text: str
    positional: tuple[int, int] | None
    tables: frozenset[str]


def _classes(*names: str) -> tuple[type[exp.Expression], ...]:
    return tuple(c for n in names if isinstance(c := getattr(exp, n, None), type))


#: Functions a WHERE may call for the count to be built: pure builtins (and the
#: connectives sqlglot models as functions).
_SAFE_FUNCTIONS: Final = _classes(
    "And",
    "Or",
    "Xor",
    "Lower",
    "Upper",
    "Length",
    "Abs",
    "Coalesce",
    "Trim",
    "Substring",
    "Cast",
    "Nullif",
    "Round",
    "CurrentDate",
    "CurrentTime",
    "CurrentTimestamp",
    "Collate",
)

#: Operators SQLite runs through functions an application may override.
_OVERRIDABLE: Final = _classes(
    "Like", "ILike", "Glob", "RegexpLike", "RegexpILike", "SimilarTo", "Match"
)

#: Collations SQLite defines itself; any other one is application code.
_BUILTIN_COLLATIONS: Final = frozenset({"binary", "nocase", "rtrim"})


#: Built counts by (dialect, bound, text): an agent repeats its statements' shapes, and
#: parsing is most of an estimate's cost. Bounded; cleared when full.
_BUILT: Final[dict[tuple[str, int, str], CountQuery | None]] = {}
_BUILT_MAX: Final = 1024
_BUILT_TEXT_MAX: Final = 4096


def count_query(text: str, dialect: str, *, bound: int) -> CountQuery | None:
    """The bounded count for a single UPDATE or DELETE in `text`, or `None` when it
    cannot be built soundly (see the module). Never raises."""
    key = (dialect, bound, text)
    if key in _BUILT:
        return _BUILT[key]
    try:
        built = _count_query(text, canonical_dialect(dialect), bound)
    except UnknownDialect:
        built = None
    except Exception:  # a parse failure or an unexpected tree: no estimate, never a crash
        built = None
    if len(text) <= _BUILT_TEXT_MAX:
        if len(_BUILT) >= _BUILT_MAX:
            _BUILT.clear()
        _BUILT[key] = built
    return built


def _count_query(text: str, dialect: str, bound: int) -> CountQuery | None:
    if bound < 0:
        return None
    nodes = [n for n in sqlglot.parse(text, read=dialect) if n is not None]
    if len(nodes) != 1 or not isinstance(nodes[0], exp.Update | exp.Delete):
        return None
    node = nodes[0]
    for key in ("with", "with_", "from", "from_", "joins", "using"):
        value = node.args.get(key)
        if value and value is not True:
            return None
        if value is True:  # `DELETE … USING` flag in some dialect versions
            return None
    target = node.this
    if (
        not isinstance(target, exp.Table)
        or not isinstance(target.this, exp.Identifier)
        or target.args.get("db")
    ):
        return None
    where = node.args.get("where")
    if where is not None and not _safe(where):
        return None
    tables = _tables(target, where)
    if tables is None:
        return None
    positional = _positional(text, dialect, node, where)
    if positional is False:
        return None
    inner = exp.select(exp.Literal.number(1)).from_(target.copy())
    if where is not None:
        inner = inner.where(where.this.copy())
    inner = inner.limit(bound + 1)
    query = exp.select(exp.Count(this=exp.Star())).from_(inner.subquery("subguard_estimate"))
    return CountQuery(query.sql(dialect=dialect), positional or None, tables)


def _safe(where: exp.Expression) -> bool:
    for node in where.walk():
        if isinstance(node, _OVERRIDABLE):
            return False
        if isinstance(node, exp.Func) and not isinstance(node, _SAFE_FUNCTIONS):
            return False
        if isinstance(node, exp.Collate):
            name = node.expression
            if (
                not isinstance(name, exp.Column | exp.Identifier | exp.Var)
                or name.name.lower() not in _BUILTIN_COLLATIONS
            ):
                return False
        if isinstance(node, exp.With | exp.Parameter):
            return False
        if isinstance(node, exp.Identifier) and str(node.this).startswith("$"):
            return False  # `$name` reads as a column here, as a parameter in SQLite
    return True


def _tables(target: exp.Table, where: exp.Expression | None) -> frozenset[str] | None:
    found = {target.name.lower()}
    for table in where.find_all(exp.Table) if where is not None else ():
        if not isinstance(table.this, exp.Identifier) or table.args.get("db"):
            return None
        found.add(table.name.lower())
    return frozenset(found)


def _positional(text: str, dialect: str, node: exp.Expression, where: exp.Expression | None) -> Any:
    """`(start, stop)` of the WHERE's positional parameters, `None` when there are none
    (named ones bind by name), or `False` when they cannot be placed."""
    placeholders = list(node.find_all(exp.Placeholder))
    unnamed = [p for p in placeholders if not p.this]
    if not unnamed:
        return None
    if len(unnamed) != len(placeholders):
        return False  # mixed styles: a driver binds them one way only
    tokens = dialect_object(dialect).tokenize(text)
    if sum(1 for t in tokens if t.token_type == TokenType.PLACEHOLDER) != len(unnamed):
        return False
    # In an UPDATE or DELETE without WITH or FROM, only the SET list comes before WHERE.
    before = sum(1 for e in node.expressions for p in e.find_all(exp.Placeholder))
    inside = sum(1 for _ in where.find_all(exp.Placeholder)) if where is not None else 0
    return (before, before + inside)
