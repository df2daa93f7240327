"""Whether a WHERE bounds the rows a statement touches: a sound, syntactic test.

A condition bounds rows only when every OR branch constrains a column of the statement's
target by a constant or a parameter: `col = 1`, `col IN (1, 2)`, `col BETWEEN 1 AND 9`,
or a range closed on both sides within one conjunction (`col >= 1 AND col < 9`). Nothing
else counts, because each of these can be made true for every row:

- a column compared with a column (`id = id`, SQLite `rowid = rowid`, `a.x = b.y` of one
  row), or an expression of columns (`id - id = 0`, `coalesce(id, 0) = coalesce(id, 0)`);
- `IS [NOT] NULL` (`total IS NULL OR total IS NOT NULL`), `<>`, `LIKE` (`LIKE '%'`);
- an open range (`id < 10 OR id >= 10` covers every non-NULL id);
- a subquery (`id IN (SELECT id FROM orders)`, `id = (SELECT …)` may be correlated);
- NOT, EXISTS, CASE, functions, boolean columns, anything else.

When unsure the answer is "unbounded": a false "bounded" lets a mass write through
unreviewed, a false "unbounded" only holds a statement for approval. For the same reason a
condition larger than `MAX_WHERE_NODES` is not examined at all: it counts as unbounded, so
that a hostile `(b0 = b0) OR (b1 = b1) OR …` costs a count, not a simplification.
"""

from __future__ import annotations

import itertools
from typing import Final

from sqlglot import exp

#: Node types a column-free constant may be built of (`DATE '…' - INTERVAL '3' DAY`,
#: `now()`, `-1.5`, `?`, `:id`, `$1`, `@p`).
_CONSTANT_NODES: Final = frozenset(
    getattr(exp, name)
    for name in (
        "Literal", "Neg", "Paren", "Add", "Sub", "Mul", "Div", "Cast", "DataType",
        "DataTypeParam", "Interval", "Var", "CurrentDate", "CurrentTimestamp", "CurrentTime",
        "Placeholder", "Parameter", "Identifier", "Boolean", "Null", "Tuple",
        "SessionParameter",
    )
    if hasattr(exp, name)
)  # fmt: skip

_LOWER: Final = (exp.GT, exp.GTE)
_UPPER: Final = (exp.LT, exp.LTE)

ColumnKey = tuple[str, str]

#: The largest condition (in expression nodes) the test examines; a larger one is unbounded.
MAX_WHERE_NODES: Final = 20_000


def bounds_rows(condition: exp.Expr, targets: frozenset[str] | None) -> bool:
    """True when `condition` provably restricts the rows of a target.

    `targets` holds the names (aliases and bare table names) a qualified column may use
    to count as a target column; None means every column counts (a one-table statement
    without joins). Unqualified columns count only then.
    """
    if _larger_than(condition, MAX_WHERE_NODES):
        return False
    return _bounds(condition, targets)


def _larger_than(node: exp.Expr, limit: int) -> bool:
    return next(itertools.islice(node.walk(), limit, None), None) is not None


def _bounds(condition: exp.Expr, targets: frozenset[str] | None) -> bool:
    branches = _flatten(condition, exp.Or)
    return bool(branches) and all(_conjunction_bounds(b, targets) for b in branches)


def _unparen(node: exp.Expr) -> exp.Expr:
    while isinstance(node, exp.Paren):
        node = node.this
    return node


def _flatten(node: exp.Expr, cls: type[exp.Expr]) -> list[exp.Expr]:
    """The operands of a chain of `cls` (AND or OR), left to right; iterative, because a
    chain of n terms is a tree n deep."""
    found: list[exp.Expr] = []
    stack = [node]
    while stack:
        current = _unparen(stack.pop())
        if isinstance(current, cls):
            stack.append(current.expression)
            stack.append(current.this)
        else:
            found.append(current)
    return found


def _conjunction_bounds(node: exp.Expr, targets: frozenset[str] | None) -> bool:
    terms = _flatten(node, exp.And)
    lower: set[ColumnKey] = set()
    upper: set[ColumnKey] = set()
    for term in terms:
        if isinstance(term, exp.Or):
            if _bounds(term, targets):
                return True
            continue
        if _pins(term, targets):
            return True
        if isinstance(term, (*_LOWER, *_UPPER)):
            side = _range_side(term, targets)
            if side is not None:
                key, is_lower = side
                (lower if is_lower else upper).add(key)
    return bool(lower & upper)


def _pins(term: exp.Expr, targets: frozenset[str] | None) -> bool:
    """`col = const`, `col IN (const, …)`, `col BETWEEN const AND const`."""
    if isinstance(term, exp.EQ):
        left, right = _unparen(term.this), _unparen(term.expression)
        return (_target_column(left, targets) is not None and _is_constant(right)) or (
            _target_column(right, targets) is not None and _is_constant(left)
        )
    if isinstance(term, exp.In):
        if term.args.get("query") is not None or term.args.get("unnest") or term.args.get("field"):
            return False
        items = term.expressions
        return (
            _target_column(_unparen(term.this), targets) is not None
            and bool(items)
            and all(_is_constant(e) for e in items)
        )
    if isinstance(term, exp.Between):
        return (
            _target_column(_unparen(term.this), targets) is not None
            and _is_constant(term.args.get("low"))
            and _is_constant(term.args.get("high"))
        )
    return False


def _range_side(term: exp.Expr, targets: frozenset[str] | None) -> tuple[ColumnKey, bool] | None:
    """For `col < const` and friends: the column and whether the bound is a lower one."""
    left, right = _unparen(term.this), _unparen(term.expression)
    is_lower = isinstance(term, _LOWER)
    key = _target_column(left, targets)
    if key is not None and _is_constant(right):
        return key, is_lower
    key = _target_column(right, targets)
    if key is not None and _is_constant(left):
        return key, not is_lower
    return None


def _target_column(node: exp.Expr, targets: frozenset[str] | None) -> ColumnKey | None:
    """The (qualifier, name) of a plain column of the target, else None."""
    if type(node) is not exp.Column or not isinstance(node.this, exp.Identifier):
        return None
    if node.args.get("db") is not None or node.args.get("catalog") is not None:
        return None
    qualifier = node.args.get("table")
    name = str(node.this.this).lower()
    if qualifier is None:
        return None if targets is not None else ("", name)
    qual = str(qualifier.name).lower()
    if targets is not None and qual not in targets:
        return None
    return ("", name) if targets is None else (qual, name)


def _is_constant(node: object) -> bool:
    if not isinstance(node, exp.Expr):
        return False
    return all(type(n) in _CONSTANT_NODES for n in node.walk())
