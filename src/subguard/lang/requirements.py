"""What a rule definition requires of `input`, read from its body: the hook an index uses.

A definition's top-level literals are conjuncts: each must hold for the definition to
produce anything. Some of them compare a path under `input` with constants:

    some s in input.sql.statements      # s ranges over input.sql.statements[*]
    s.kind == "drop"                    # requires input.sql.statements[*].kind ∈ {"drop"}
    "users" in s.tables_read            # requires input.sql.statements[*].tables_read[*] ∈ {"users"}

Each such literal is a `Requirement`: a necessary condition, stated over a path whose
`EACH` steps mean "some element of". The language knows nothing of what the paths
mean; a caller that does (the engine knows where statements and tables are) builds an
index from them and hands the compiled policy a selector (`CompiledPolicy.select`), as
OPA's `ast/index.go` indexes rules by the constants their bodies compare with. A
definition using `with` states no requirement (it could evaluate on another input), nor
does one with `else`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Final, NamedTuple

import attrs

from subguard.lang import ast

__all__ = ["EACH", "Requirement", "names_mentioned", "requirements"]

#: A path step meaning "some element of the collection here".
EACH: Final = "[*]"

Path = tuple[str, ...]


class Requirement(NamedTuple):
    """The definition produces nothing unless the value at `path` (rooted at `input`;
    `EACH` steps range over elements) equals one of `values`."""

    path: Path
    values: frozenset[str]
    #: Whether every literal before the one stating it evaluates without a rule error
    #: (only to true, false or undefined): then a definition skipped because its input
    #: cannot meet the requirement would not have failed either.
    after_plain: bool = True


def requirements(rule: ast.Rule, imports: Mapping[str, ast.Ref]) -> tuple[Requirement, ...]:
    """The requirements stated by the top-level literals of one definition, in order."""
    if rule.elses or any(getattr(lit, "withs", ()) for lit in rule.body):
        return ()  # an `else` produces a value exactly when the body does not hold
    binders: dict[str, Path] = {}  # iteration variable → the path it ranges over
    found: list[Requirement] = []
    plain = True  # every literal so far evaluates without a rule error
    for lit in rule.body:
        if isinstance(lit, ast.SomeIn):
            path = _path(lit.collection, binders, imports) if lit.key is None else None
            if path is not None:
                binders[lit.value] = (*path, EACH)
            plain = plain and path is not None
            continue
        if isinstance(lit, ast.SomeDecl):
            continue
        if not isinstance(lit, ast.ExprLiteral | ast.NotLiteral):
            plain = False
            continue
        if isinstance(lit, ast.ExprLiteral):
            requirement = _requirement(lit.expr, binders, imports)
            if requirement is not None:
                found.append(requirement if plain else requirement._replace(after_plain=False))
        plain = plain and _plain(lit.expr, binders, imports)
    return tuple(found)


def _plain(e: ast.Expr, binders: Mapping[str, Path], imports: Mapping[str, ast.Ref]) -> bool:
    """Whether evaluating `e` can only give a value or be undefined, never fail with a
    rule error: constants, paths under `input`, `==`/`!=` and `in` over them. Calls,
    arithmetic, orderings, other rules and comprehensions may fail."""
    if isinstance(e, ast.Scalar):
        return True
    if isinstance(e, ast.Var | ast.Ref):
        return _path(e, binders, imports) is not None
    if isinstance(e, ast.BinOp):
        return e.op in ("==", "!=") and all(_plain(x, binders, imports) for x in (e.left, e.right))
    if isinstance(e, ast.Member):
        return e.key is None and all(_plain(x, binders, imports) for x in (e.element, e.collection))
    if isinstance(e, ast.SetLit | ast.Array):
        return all(_plain(i, binders, imports) for i in e.items)
    return False


def _requirement(
    e: ast.Expr, binders: Mapping[str, Path], imports: Mapping[str, ast.Ref]
) -> Requirement | None:
    subject: ast.Expr | None = None
    values: frozenset[str] | None = None
    if isinstance(e, ast.BinOp) and e.op == "==":
        for a, b in ((e.left, e.right), (e.right, e.left)):
            if isinstance(b, ast.Scalar) and isinstance(b.value, str):
                subject, values = a, frozenset((b.value,))
    elif isinstance(e, ast.Member):
        if isinstance(e.collection, ast.SetLit | ast.Array):
            subject, values = e.element, _strings(e.collection)
        elif isinstance(e.element, ast.Scalar) and isinstance(e.element.value, str):
            path = _path(e.collection, binders, imports)
            return Requirement((*path, EACH), frozenset((e.element.value,))) if path else None
    if subject is None or values is None:
        return None
    path = _path(subject, binders, imports)
    return Requirement(path, values) if path else None


def _strings(e: ast.SetLit | ast.Array) -> frozenset[str] | None:
    if all(isinstance(i, ast.Scalar) and isinstance(i.value, str) for i in e.items):
        return frozenset(i.value for i in e.items)  # type: ignore[union-attr, misc]
    return None


def _path(e: ast.Expr, binders: Mapping[str, Path], imports: Mapping[str, ast.Ref]) -> Path | None:
    """`input.a.b`, `s.c` (s an iteration variable) or an import alias's path, as a
    tuple of steps from `input`; None for anything else."""
    if isinstance(e, ast.Var):
        e = ast.Ref(e, ())
    if not isinstance(e, ast.Ref):
        return None
    dotted = e.dotted()
    if dotted is None:
        return None
    head, *steps = dotted.split(".")
    if head in binders:
        return (*binders[head], *steps)
    if head in imports:
        imported = imports[head].dotted()
        if imported is None:
            return None
        head, *more = imported.split(".")
        steps = [*more, *steps]
    return ("input", *steps) if head == "input" else None


def names_mentioned(modules: Iterable[ast.Module]) -> frozenset[str]:
    """Every string constant in the modules: field steps (`s.kind`), string keys
    (`s["kind"]`, `object.get(s, "kind", …)`) and literals alike. A rule can read a field
    by name only if its name is here (or it reaches fields by computed keys, which the
    compiler notes apart: `Program.computed_fields`)."""
    found: set[str] = set()
    stack: list[object] = list(modules)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Scalar):
            if isinstance(node.value, str):
                found.add(node.value)
            continue
        if isinstance(node, tuple | list):
            stack.extend(node)
        elif attrs.has(type(node)) and not isinstance(node, ast.Location):
            stack.extend(getattr(node, f.name) for f in attrs.fields(type(node)))  # type: ignore[arg-type]
    return frozenset(found)
