"""`subguard fmt`: print a policy AST back as canonical policy text.

The output parses back to an equal AST (locations aside) and formatting it again changes
nothing. Comments are kept: each full-line or trailing comment is printed on its own
line above the rule or body literal it stood before or beside, at that item's indentation.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import TypeAlias

import attrs

from subguard.lang import ast
from subguard.lang.parser import parse_module

__all__ = ["format_module", "format_text"]

INDENT = "    "

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")

# Binding strength of each operator, low to high; a term binds tightest of all.
_MEMBER = 0
_REL = 1
_OR = 2
_AND = 3
_ARITH = 4
_FACTOR = 5
_UNARY = 6
_TERM = 7

_BINOP_LEVEL = {
    "==": _REL,
    "!=": _REL,
    "<": _REL,
    "<=": _REL,
    ">": _REL,
    ">=": _REL,
    "|": _OR,
    "&": _AND,
    "+": _ARITH,
    "-": _ARITH,
    "*": _FACTOR,
    "/": _FACTOR,
    "%": _FACTOR,
}

Item: TypeAlias = ast.Import | ast.Rule | ast.Literal


def format_text(text: str, path: str = "<policy>") -> str:
    """Parse `text` and return it formatted; raises `PolicyError` when it does not parse."""
    return format_module(parse_module(text, path))


def format_module(module: ast.Module) -> str:
    """The canonical text of `module`, ending in one newline."""
    return _Printer(module.comments).module(module)


# ── expressions ──────────────────────────────────────────────────────────────────────


#: `k, v in xs` stands alone only as a literal; anywhere else it is parenthesized.
_KV = -1


def _level(expr: ast.Expr) -> int:
    if isinstance(expr, ast.Member):
        return _KV if expr.key is not None else _MEMBER
    if isinstance(expr, ast.BinOp):
        return _BINOP_LEVEL[expr.op]
    if isinstance(expr, ast.Neg):
        return _UNARY
    return _TERM


def _string(value: str) -> str:
    text = json.dumps(value, ensure_ascii=False)
    if any("\ud800" <= ch <= "\udfff" for ch in text):
        # a lone surrogate cannot be written as UTF-8: escape everything instead
        text = json.dumps(value)
    return text


def _number(value: int | float) -> str:
    if isinstance(value, int):
        text = str(value)
        if abs(value) >= 2**53:
            # an exact integer written with an exponent (`1e30`) is written so again
            digits = text.rstrip("0")
            if len(text) - len(digits) >= 3:
                return f"{digits}e{len(text) - len(digits)}"
        return text
    if math.isinf(value):
        # the grammar has no infinity, but a literal too large for any number reads as one
        return "1e99999" if value > 0 else "-1e99999"
    if value.is_integer() and abs(value) >= 2**53:
        return _number(int(value))  # read back as the exact integer it is
    return repr(value)


def _scalar(value: str | int | float | bool | None) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return _string(value)
    return _number(value)


def expr_text(expr: ast.Expr, least: int = _MEMBER, bracket: bool = False) -> str:
    """`expr` as text, in parentheses when it binds less tightly than `least` allows.

    `bracket` says the nearest enclosing bracket is `[` or `{`, where a bare `|` would
    read as a comprehension bar, so a set union there is parenthesized.
    """
    level = _level(expr)
    if level < least or (bracket and isinstance(expr, ast.BinOp) and expr.op == "|"):
        return "(" + expr_text(expr, _KV, False) + ")"
    return _expr(expr, bracket)


def _expr(expr: ast.Expr, bracket: bool) -> str:
    if isinstance(expr, ast.Scalar):
        return _scalar(expr.value)
    if isinstance(expr, ast.Var):
        return expr.name
    if isinstance(expr, ast.Ref):
        return _ref(expr)
    if isinstance(expr, ast.Call):
        return expr.name + "(" + ", ".join(expr_text(a) for a in expr.args) + ")"
    if isinstance(expr, ast.Member):
        key = "" if expr.key is None else expr_text(expr.key, _REL, bracket) + ", "
        return (
            key
            + expr_text(expr.element, _REL, bracket)
            + " in "
            + expr_text(expr.collection, _REL, bracket)
        )
    if isinstance(expr, ast.BinOp):
        level = _BINOP_LEVEL[expr.op]
        left = expr_text(expr.left, level, bracket)
        right = expr_text(expr.right, level + 1, bracket)
        return f"{left} {expr.op} {right}"
    if isinstance(expr, ast.Neg):
        return "-" + expr_text(expr.operand, _UNARY, bracket)
    if isinstance(expr, ast.Array):
        return "[" + ", ".join(expr_text(i, bracket=True) for i in expr.items) + "]"
    if isinstance(expr, ast.SetLit):
        if not expr.items:
            return "set()"
        return "{" + ", ".join(expr_text(i, bracket=True) for i in expr.items) + "}"
    if isinstance(expr, ast.Object):
        pairs = (
            expr_text(k, _REL, True) + ": " + expr_text(v, bracket=True) for k, v in expr.pairs
        )
        return "{" + ", ".join(pairs) + "}"
    if isinstance(expr, ast.ArrayCompr):
        return "[" + expr_text(expr.term, bracket=True) + " | " + _inline_body(expr.body) + "]"
    if isinstance(expr, ast.SetCompr):
        return "{" + expr_text(expr.term, bracket=True) + " | " + _inline_body(expr.body) + "}"
    if isinstance(expr, ast.ObjectCompr):
        head = expr_text(expr.key, _REL, True) + ": " + expr_text(expr.value, bracket=True)
        return "{" + head + " | " + _inline_body(expr.body) + "}"
    if isinstance(expr, ast.Deref):
        base = _expr(expr.base, bracket)
        if not isinstance(expr.base, _PRIMARY):
            base = "(" + expr_text(expr.base, _KV) + ")"
        return base + _steps(expr.path)
    raise TypeError(f"not an expression: {expr!r}")


#: What a `Deref` may start from without parentheses (the grammar's `primary`).
_PRIMARY = (
    ast.Call,
    ast.Array,
    ast.SetLit,
    ast.Object,
    ast.ArrayCompr,
    ast.SetCompr,
    ast.ObjectCompr,
)


def _ref(ref: ast.Ref) -> str:
    return ref.head.name + _steps(ref.path)


def _steps(path: Sequence[ast.Expr]) -> str:
    parts: list[str] = []
    for step in path:
        if isinstance(step, ast.Scalar) and isinstance(step.value, str) and _NAME.match(step.value):
            parts.append("." + step.value)
        else:
            parts.append("[" + expr_text(step, bracket=True) + "]")
    return "".join(parts)


# ── literals ─────────────────────────────────────────────────────────────────────────


def _withs(withs: Sequence[ast.With]) -> str:
    return "".join(f" with {_ref(w.target)} as {expr_text(w.value, _REL)}" for w in withs)


def _names(key: str | None, value: str) -> str:
    return value if key is None else f"{key}, {value}"


#: The variables the parser makes up for `some` with a constant or a pattern.
_FRESH = re.compile(r"__some[0-9]+__")


@attrs.frozen
class _SomePattern:
    """`some <pattern> in xs` as written: the parser's `some __someN__ in xs` followed by
    `<pattern> = __someN__`, put back together for printing."""

    some: ast.SomeIn
    patterns: tuple[tuple[str, ast.Expr], ...]
    end: int

    @property
    def loc(self) -> ast.Location:
        return attrs.evolve(self.some.loc, end_line=max(self.end, self.some.loc.end_line))

    def text(self) -> str:
        found = dict(self.patterns)

        def part(name: str | None) -> str | None:
            if name is None:
                return None
            return expr_text(found[name], _REL) if name in found else name

        key, value = part(self.some.key), part(self.some.value)
        names = value if key is None else f"{key}, {value}"
        return f"some {names} in {expr_text(self.some.collection, _REL)}" + _withs(self.some.withs)


def _sugared(body: Sequence[ast.Literal]) -> list[ast.Literal | _SomePattern]:
    out: list[ast.Literal | _SomePattern] = []
    i = 0
    while i < len(body):
        literal = body[i]
        if isinstance(literal, ast.SomeIn):
            fresh = [
                n for n in (literal.key, literal.value) if n is not None and _FRESH.fullmatch(n)
            ]
            patterns: list[tuple[str, ast.Expr]] = []
            j = i + 1
            while j < len(body) and len(patterns) < len(fresh):
                match = body[j]
                if not (
                    isinstance(match, ast.Assign)
                    and match.op == "="
                    and not match.withs
                    and isinstance(match.value, ast.Var)
                    and match.value.name in fresh
                ):
                    break
                patterns.append((match.value.name, match.target))
                j += 1
            if fresh and len(patterns) == len(fresh):
                out.append(_SomePattern(literal, tuple(patterns), _end_line(body[j - 1].loc)))
                i = j
                continue
        out.append(literal)
        i += 1
    return out


def literal_head(literal: ast.Literal | _SomePattern) -> str:
    """A literal's text; for `every`, only its header up to the opening brace."""
    if isinstance(literal, _SomePattern):
        return literal.text()
    if isinstance(literal, ast.ExprLiteral):
        return expr_text(literal.expr, _KV) + _withs(literal.withs)
    if isinstance(literal, ast.NotLiteral):
        return "not " + expr_text(literal.expr, _KV) + _withs(literal.withs)
    if isinstance(literal, ast.Assign):
        return f"{expr_text(literal.target)} {literal.op} {expr_text(literal.value)}" + _withs(
            literal.withs
        )
    if isinstance(literal, ast.SomeDecl):
        return "some " + ", ".join(literal.names)
    if isinstance(literal, ast.SomeIn):
        return (
            f"some {_names(literal.key, literal.value)} in {expr_text(literal.collection, _REL)}"
            + _withs(literal.withs)
        )
    if isinstance(literal, ast.Every):
        return f"every {_names(literal.key, literal.value)} in {expr_text(literal.domain, _REL)} {{"
    raise TypeError(f"not a body literal: {literal!r}")


def _inline_literal(literal: ast.Literal | _SomePattern) -> str:
    if isinstance(literal, ast.Every):
        return literal_head(literal) + " " + _inline_body(literal.body) + " }"
    return literal_head(literal)


def _inline_body(body: Sequence[ast.Literal]) -> str:
    return "; ".join(_inline_literal(lit) for lit in _sugared(body))


# ── rules, comments and layout ───────────────────────────────────────────────────────


def _rule_head(rule: ast.Rule) -> str:
    value = rule.value
    if rule.kind == ast.DEFAULT:
        assert value is not None
        args = "(" + ", ".join(expr_text(a) for a in rule.args) + ")" if rule.args else ""
        return f"default {rule.name}{args} := {expr_text(value)}"
    if rule.kind == ast.SET:
        assert value is not None
        return f"{rule.name} contains {expr_text(value)}"
    if rule.kind == ast.OBJECT:
        assert value is not None and rule.key is not None
        return f"{rule.name}[{expr_text(rule.key, bracket=True)}] := {expr_text(value)}"
    if rule.kind == ast.FUNCTION:
        head = rule.name + "(" + ", ".join(expr_text(a) for a in rule.args) + ")"
        if rule.boolean or value is None:
            return head
        return f"{head} := {expr_text(value)}"
    if rule.boolean or value is None:
        return rule.name
    return f"{rule.name} := {expr_text(value)}"


def _is_true(e: ast.Expr) -> bool:
    return isinstance(e, ast.Scalar) and e.value is True


def _end_line(loc: ast.Location) -> int:
    return max(loc.end_line, loc.line)


@attrs.define
class _Printer:
    comments: Sequence[tuple[int, str]]
    lines: list[str] = attrs.Factory(list)
    # Comments not yet printed, in line order; each goes out before the first item
    # it precedes or stands inside.
    pending: list[tuple[int, str]] = attrs.Factory(list)

    def __attrs_post_init__(self) -> None:
        self.pending = sorted(self.comments)

    def module(self, module: ast.Module) -> str:
        self._comments_before(module.loc.line, "", inside=0)
        self.lines.append("package " + ".".join(module.package))
        items: list[ast.Import | ast.Rule] = [*module.imports, *module.rules]
        previous: ast.Import | ast.Rule | None = None
        for item in items:
            if not (self._adjacent(previous, item)):
                self.lines.append("")
            self._item(item)
            previous = item
        self._comments_before(None, "", inside=0, blank=True)
        return "\n".join(self.lines) + "\n"

    @staticmethod
    def _adjacent(previous: ast.Import | ast.Rule | None, item: ast.Import | ast.Rule) -> bool:
        if isinstance(previous, ast.Import) and isinstance(item, ast.Import):
            return True
        return (
            isinstance(previous, ast.Rule)
            and isinstance(item, ast.Rule)
            and previous.kind == ast.DEFAULT
            and item.kind != ast.DEFAULT
            and item.name == previous.name
        )

    def _comments_before(
        self, line: int | None, indent: str, *, inside: int, blank: bool = False
    ) -> None:
        """Print the pending comments that stand before `line` (all, when None) or, with
        `inside`, on the lines up to the end of the item that starts there."""
        limit = max(line or 0, inside)
        taken = [c for c in self.pending if line is None or c[0] <= limit]
        if not taken:
            return
        self.pending = self.pending[len(taken) :]
        if blank and self.lines and self.lines[-1] != "":
            self.lines.append("")
        self.lines.extend(indent + text.rstrip() for _, text in taken)

    def _item(self, item: ast.Import | ast.Rule) -> None:
        if isinstance(item, ast.Import):
            self._comments_before(item.loc.line, "", inside=_end_line(item.loc))
            alias = f" as {item.alias}" if item.alias else ""
            self.lines.append(f"import {_ref(item.path)}{alias}")
            return
        self._rule(item)

    def _rule(self, rule: ast.Rule) -> None:
        # Comments on the rule's first line, or above it, go above it; comments inside
        # its body go to the literals they precede.
        self._comments_before(rule.loc.line, "", inside=rule.loc.line)
        head = _rule_head(rule)
        if rule.elses and rule.body:
            self._block(head, rule)
            return
        if not rule.body:
            self._comments_before(rule.loc.line, "", inside=_end_line(rule.loc))
            self.lines.append(head)
            return
        if rule.one_line and len(rule.body) == 1:
            literal = rule.body[0]
            inside = rule.loc.end_line if isinstance(literal, ast.Every) else _end_line(rule.loc)
            self._comments_before(rule.loc.line, "", inside=inside)
            text = literal_head(literal)
            if isinstance(literal, ast.Every):
                self.lines.append(f"{head} if {text}")
                self._body(literal.body, INDENT, _end_line(literal.loc))
                self.lines.append("}")
            elif text.startswith("{"):
                # after `if`, a brace opens a block body: write the block instead
                self._block(head, rule)
            else:
                self.lines.append(f"{head} if {text}")
            return
        self._block(head, rule)

    def _block(self, head: str, rule: ast.Rule) -> None:
        self.lines.append(f"{head} if {{")
        # each body's comments end where the next `else` starts
        ends = [clause.loc.line for clause in rule.elses] + [_end_line(rule.loc)]
        self._body(rule.body, INDENT, ends[0])
        closing = "}"
        for clause, end in zip(rule.elses, ends[1:]):
            value = "" if _is_true(clause.value) else f" := {expr_text(clause.value)}"
            if clause.body:
                self.lines.append(f"{closing} else{value} if {{")
                self._body(clause.body, INDENT, end)
                closing = "}"
            else:
                closing = f"{closing} else{value}"
        self.lines.append(closing)

    def _body(self, body: Sequence[ast.Literal], indent: str, end: int) -> None:
        for literal in _sugared(body):
            if isinstance(literal, ast.Every):
                self._comments_before(literal.loc.line, indent, inside=literal.loc.line)
                self.lines.append(indent + literal_head(literal))
                self._body(literal.body, indent + INDENT, _end_line(literal.loc))
                self.lines.append(indent + "}")
            else:
                self._comments_before(literal.loc.line, indent, inside=_end_line(literal.loc))
                self.lines.append(indent + literal_head(literal))
        # comments after the last literal, before the closing brace
        self._comments_before(end - 1 if end else 0, indent, inside=0)
