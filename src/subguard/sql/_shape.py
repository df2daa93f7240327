"""Whether a statement's facts are the same for every value of its literals.

A text's facts can be reused for another text of the same shape (the same tokens with
other literal values) only when no fact depends on a literal's value. A wrong reuse is a
bypass, so this test is a short allow-list, checked on the parsed tree before any step
runs, and anything it does not recognise makes the text be analysed on its own:

- the statement is a plain query or DML (`SELECT`, set operations, `INSERT`, `UPDATE`,
  `DELETE`); settings, DDL, GRANT, COPY, EXECUTE, commands and everything else read
  literal values (setting values, file names, SQL in strings) and are never shared;
- every literal token of the statement is one `Literal` node of the tree, with the same
  text (a literal the parser consumed into something else, or a literal it synthesised
  from raw text, makes the counts differ);
- every `Literal` sits in a value position whose value no step reads: an operand of a
  comparison (`=`, `<>`, `<`, `IN`, `BETWEEN`, `LIKE` …) whose other side holds a column,
  inside a WHERE, HAVING or JOIN … ON made of AND/OR/NOT; a row of `INSERT … VALUES`; the
  value of `UPDATE … SET col = …`; a LIMIT or OFFSET count. Between the literal and that
  position only arithmetic and parentheses are allowed (`abalance + -4012`).

So `WHERE 1 = 1` (no column), `ORDER BY 1` (a position), `INTERVAL '1 day'`,
`data->>'key'`, `query_to_xml('…')`, `SELECT 'x'` (an output name) and `SET x = 'y'`
are all analysed per text.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any, Final

from sqlglot import exp
from sqlglot.tokenizer_core import TokenType

from subguard.sql._tokens import LITERAL_TYPES

#: Statement roots whose facts may be shared by shape.
_ROOTS: Final = (exp.Select, exp.SetOperation, exp.Insert, exp.Update, exp.Delete)

#: Statement roots shared only when they hold no literal at all (BEGIN, COMMIT, …).
_LITERAL_FREE_ROOTS: Final = (exp.Transaction, exp.Commit, exp.Rollback)

#: Nodes allowed between a literal and its comparison, row or SET position.
_ARITHMETIC: Final = (exp.Paren, exp.Neg, exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod)

#: Binary comparisons: the literal's side is free, the other side must hold a column.
_BINARY: Final = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Like, exp.ILike)

#: Boolean structure allowed between a comparison and its WHERE / HAVING / ON.
_BOOLEAN: Final = (exp.And, exp.Or, exp.Not, exp.Paren)


def literal_free(chunk: Sequence[Any]) -> bool:
    """A statement (read without a tree, e.g. BEGIN or COMMIT) without literal tokens."""
    return not any(t.token_type in LITERAL_TYPES for t in chunk)


def shape_safe(node: Any, chunk: Sequence[Any]) -> bool:
    """True when no fact of the statement `node` (parsed from `chunk`) reads a literal."""
    if isinstance(node, _LITERAL_FREE_ROOTS):
        return literal_free(chunk) and node.find(exp.Literal) is None
    if not isinstance(node, _ROOTS):
        return False
    tokens: Counter[tuple[bool, str]] = Counter()
    for tok in chunk:
        ttype = tok.token_type
        if ttype in LITERAL_TYPES:
            if ttype == TokenType.STRING:
                tokens[(True, str(tok.text))] += 1
            elif ttype == TokenType.NUMBER:
                tokens[(False, str(tok.text))] += 1
            else:
                return False  # national, hex, bit, byte, raw, heredoc: never shared
    nodes: Counter[tuple[bool, str]] = Counter()
    for lit in node.find_all(exp.Literal):
        if not _value_position(lit):
            return False
        nodes[(bool(lit.args.get("is_string")), str(lit.this))] += 1
    return nodes == tokens


def _value_position(lit: exp.Expr) -> bool:
    child: exp.Expr = lit
    parent = lit.parent
    while isinstance(parent, _ARITHMETIC):
        child, parent = parent, parent.parent
    if parent is None:
        return False
    key = child.arg_key
    if isinstance(parent, _BINARY):
        other = parent.expression if key == "this" else parent.this
        return key in ("this", "expression") and _has_column(other) and _in_condition(parent)
    if isinstance(parent, exp.In):
        return key == "expressions" and _has_column(parent.this) and _in_condition(parent)
    if isinstance(parent, exp.Between):
        return key in ("low", "high") and _has_column(parent.this) and _in_condition(parent)
    if isinstance(parent, exp.Tuple):
        values = parent.parent
        return (
            child.arg_key == "expressions"
            and parent.arg_key == "expressions"
            and isinstance(values, exp.Values)
            and isinstance(values.parent, exp.Insert)
            and values.arg_key == "expression"
        )
    if isinstance(parent, (exp.Limit, exp.Offset)):
        return key == "expression" and isinstance(parent.parent, _ROOTS)
    return False


def _has_column(node: Any) -> bool:
    return isinstance(node, exp.Expr) and (
        isinstance(node, exp.Column) or node.find(exp.Column) is not None
    )


def _in_condition(comparison: exp.Expr) -> bool:
    """The comparison is a term of a WHERE, HAVING or JOIN … ON, or an UPDATE's SET item."""
    node: exp.Expr = comparison
    parent = comparison.parent
    if isinstance(comparison, exp.EQ) and isinstance(parent, exp.Update):
        return comparison.arg_key == "expressions" and isinstance(comparison.this, exp.Column)
    while isinstance(parent, _BOOLEAN):
        node, parent = parent, parent.parent
    if isinstance(parent, (exp.Where, exp.Having)):
        return node.arg_key == "this"
    if isinstance(parent, exp.Join):
        return node.arg_key == "on"
    return False
