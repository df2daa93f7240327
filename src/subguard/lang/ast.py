"""The policy AST: frozen attrs nodes, one per grammar rule, each carrying its source span.

Locations never take part in equality or hashing, so two parses of the same policy
formatted differently compare equal.
"""

from __future__ import annotations

from typing import Any, Final
from typing import Literal as _Literal

import attrs

from subguard.errors import Location

__all__ = [
    "Array",
    "ArrayCompr",
    "Assign",
    "BinOp",
    "Call",
    "Deref",
    "Else",
    "Every",
    "Expr",
    "ExprLiteral",
    "Import",
    "Literal",
    "Location",
    "Member",
    "Module",
    "Neg",
    "NotLiteral",
    "Object",
    "ObjectCompr",
    "Ref",
    "Rule",
    "RuleKind",
    "Scalar",
    "SetCompr",
    "SetLit",
    "SomeDecl",
    "SomeIn",
    "Var",
    "With",
]


NOWHERE = Location("<policy>", 0, 0)


def _loc() -> Any:
    return attrs.field(default=NOWHERE, eq=False, repr=False, kw_only=True)


# ── expressions ──────────────────────────────────────────────────────────────────────


@attrs.frozen
class Scalar:
    """A string, number, boolean or null constant."""

    value: str | int | float | bool | None
    loc: Location = _loc()


@attrs.frozen
class Var:
    name: str
    loc: Location = _loc()


@attrs.frozen
class Ref:
    """`head.a[b].c`: the head is a variable (`input`, `data`, a rule, a local); each
    step is a Scalar (from `.name` or a constant index) or any expression."""

    head: Var
    path: tuple[Expr, ...]
    loc: Location = _loc()

    def dotted(self) -> str | None:
        """`a.b.c` when every step is a `.name`, else None."""
        parts = [self.head.name]
        for step in self.path:
            if not (
                isinstance(step, Scalar)
                and isinstance(step.value, str)
                and step.value.isidentifier()
            ):
                return None
            parts.append(step.value)
        return ".".join(parts)


@attrs.frozen
class Call:
    name: str
    args: tuple[Expr, ...]
    loc: Location = _loc()


@attrs.frozen
class BinOp:
    """An infix operator: comparison (`==` `!=` `<` `<=` `>` `>=`), arithmetic
    (`+` `-` `*` `/` `%`) or set (`|` `&`)."""

    op: str
    left: Expr
    right: Expr
    loc: Location = _loc()


@attrs.frozen
class Neg:
    operand: Expr
    loc: Location = _loc()


@attrs.frozen
class Member:
    """`x in collection`, or `k, x in collection` when `key` is set (the collection has
    `x` at key or index `k`)."""

    element: Expr
    collection: Expr
    loc: Location = _loc()
    key: Expr | None = attrs.field(default=None, kw_only=True)


@attrs.frozen
class Deref:
    """A reference that starts from a value other than a name: `[1, 2][0]`,
    `{"a": 1}.a`, `f(x)[0]`. Each step is like a `Ref` step."""

    base: Expr
    path: tuple[Expr, ...]
    loc: Location = _loc()


@attrs.frozen
class Array:
    items: tuple[Expr, ...]
    loc: Location = _loc()


@attrs.frozen
class SetLit:
    items: tuple[Expr, ...]
    loc: Location = _loc()


@attrs.frozen
class Object:
    pairs: tuple[tuple[Expr, Expr], ...]
    loc: Location = _loc()


@attrs.frozen
class ArrayCompr:
    term: Expr
    body: tuple[Literal, ...]
    loc: Location = _loc()


@attrs.frozen
class SetCompr:
    term: Expr
    body: tuple[Literal, ...]
    loc: Location = _loc()


@attrs.frozen
class ObjectCompr:
    key: Expr
    value: Expr
    body: tuple[Literal, ...]
    loc: Location = _loc()


Expr = (
    Scalar
    | Var
    | Ref
    | Call
    | BinOp
    | Neg
    | Member
    | Array
    | SetLit
    | Object
    | ArrayCompr
    | SetCompr
    | ObjectCompr
    | Deref
)

# ── body literals ────────────────────────────────────────────────────────────────────


@attrs.frozen
class With:
    """`with input.x as value`: replaces part of `input` or `data` for one literal."""

    target: Ref
    value: Expr
    loc: Location = _loc()


@attrs.frozen
class ExprLiteral:
    """An expression that must be defined and not `false`."""

    expr: Expr
    withs: tuple[With, ...] = ()
    loc: Location = _loc()


@attrs.frozen
class NotLiteral:
    expr: Expr
    withs: tuple[With, ...] = ()
    loc: Location = _loc()


@attrs.frozen
class Assign:
    """`target := value` (declares) or `target = value` (unifies)."""

    op: str
    target: Expr
    value: Expr
    withs: tuple[With, ...] = ()
    loc: Location = _loc()


@attrs.frozen
class SomeDecl:
    names: tuple[str, ...]
    loc: Location = _loc()


@attrs.frozen
class SomeIn:
    """`some v in xs` or `some k, v in xs`."""

    key: str | None
    value: str
    collection: Expr
    loc: Location = _loc()
    withs: tuple[With, ...] = attrs.field(default=(), kw_only=True)


@attrs.frozen
class Every:
    key: str | None
    value: str
    domain: Expr
    body: tuple[Literal, ...]
    loc: Location = _loc()


Literal = ExprLiteral | NotLiteral | Assign | SomeDecl | SomeIn | Every

# ── rules and modules ────────────────────────────────────────────────────────────────

#: What a rule definition's head makes of it.
RuleKind = _Literal["complete", "set", "object", "function", "default"]
COMPLETE: Final = "complete"
SET: Final = "set"
OBJECT: Final = "object"
FUNCTION: Final = "function"
DEFAULT: Final = "default"


@attrs.frozen
class Else:
    """`else := value if { body }`: the value of a complete rule or function when the
    bodies before it have no solution (the value is `true` when not written)."""

    value: Expr
    body: tuple[Literal, ...] = ()
    loc: Location = _loc()


@attrs.frozen
class Rule:
    """One rule definition. `kind` is complete, set, object, function or default.

    `value` is the head's value (complete/function/default, or the element of a set
    rule); `key` the key of an object rule; `args` a function's parameters. `body` is
    empty for a rule without `if`. `boolean` marks `name if …`, written without a value.
    A `default` rule with `args` is a default function (`default f(_) := 0`).
    """

    kind: RuleKind
    name: str
    value: Expr | None
    body: tuple[Literal, ...] = ()
    key: Expr | None = None
    args: tuple[Expr, ...] = ()
    boolean: bool = False
    one_line: bool = attrs.field(default=False, eq=False)
    loc: Location = _loc()
    #: `else` clauses, in order (complete rules and functions).
    elses: tuple[Else, ...] = attrs.field(default=(), kw_only=True)


@attrs.frozen
class Import:
    path: Ref
    alias: str | None = None
    loc: Location = _loc()

    @property
    def name(self) -> str:
        """The name the import binds: the alias, or the path's last step."""
        if self.alias:
            return self.alias
        if self.path.path:
            last = self.path.path[-1]
            if isinstance(last, Scalar) and isinstance(last.value, str):
                return last.value
        return self.path.head.name


@attrs.frozen
class Module:
    package: tuple[str, ...]
    imports: tuple[Import, ...]
    rules: tuple[Rule, ...]
    path: str = attrs.field(default="<policy>", eq=False)
    #: Full-line comments with the line they stand on, kept for `fmt`.
    comments: tuple[tuple[int, str], ...] = attrs.field(default=(), eq=False, repr=False)
    loc: Location = _loc()

    @property
    def package_name(self) -> str:
        return ".".join(self.package)
