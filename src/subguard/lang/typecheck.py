"""The type rules the code generator applies while it walks a body: what may be
iterated, compared, indexed or looked up as a field, and the types results have.

The checker is a safety net for typos, not a proof system (`subguard.lang.types`):
anything it cannot know is `ANY`, and `ANY` never produces an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from subguard.lang import ast
from subguard.lang.program import Errors, did_you_mean
from subguard.lang.types import ANY, BOOLEAN, NULL, NUMBER, STRING, Schema, Type

__all__ = [
    "check_argument",
    "check_comparable",
    "check_iterable",
    "check_member",
    "check_truth_test",
    "elem_type",
    "field_type",
    "is_boolean_expr",
    "join",
    "scalar_type",
]


def check_argument(
    errors: Errors, name: str, position: int, declared: Type, actual: Type, loc: ast.Location
) -> None:
    """A builtin's argument of a known type other than the one it declares (a number
    given to `lower`) can only fail at run time: report it now."""
    if declared.kind == "any" or actual.kind == "any" or actual.kind == declared.kind:
        return
    if actual.kind == "null" or (declared.kind == "object" and actual.kind == "record"):
        return
    errors.add(
        "type_error", f"`{name}` argument {position} must be a {declared}, not a {actual}", loc
    )


def check_iterable(errors: Errors, t: Type, loc: ast.Location) -> None:
    if t.is_scalar:
        errors.add("type_error", f"a {t} cannot be iterated", loc)


def check_member(errors: Errors, et: Type, ct: Type, e: ast.Member) -> None:
    if ct.is_scalar:
        errors.add("type_error", f"`in` needs a collection, not a {ct}", e.collection.loc)
        return
    elem = ct.elem if ct.kind in ("set", "array", "object") else None
    if (
        elem is not None
        and elem.is_scalar
        and et.is_scalar
        and elem.kind != et.kind
        and "null" not in (elem.kind, et.kind)
    ):
        errors.add("type_error", f"a {et} is never in a {ct}", e.loc)


def check_truth_test(errors: Errors, e: ast.Expr, t: Type, *, negated: bool) -> None:
    """A bare reference (or `not`) to a fact that may be `null` tests nothing: `null` is
    not `false`, so `deny if input.sql.parse_error` would hold for every request that has
    SQL, and `not input.sql.parse_error` for none. Refused at load, with the test meant."""
    if not t.nullable or not isinstance(e, ast.Ref | ast.Var):
        return
    text = e.name if isinstance(e, ast.Var) else e.dotted() or "the value"
    hint = f"write `{text} == null`" if negated else f"write `{text} != null`"
    hint += ", or compare it with a value"
    errors.add(
        "type_error",
        f"`{text}` may be null, and null is not false: {'`not` of it never holds' if negated else 'a bare reference to it holds even when it is null'}",
        e.loc,
        hint,
    )


def check_comparable(errors: Errors, op: str, lt: Type, rt: Type, loc: ast.Location) -> None:
    if op == "!=":
        return  # values of different types are always unequal: that can hold
    if lt.kind == "any" or rt.kind == "any" or lt.kind == rt.kind:
        return
    if (lt.kind == "null" and rt.nullable) or (rt.kind == "null" and lt.nullable):
        return
    if (lt.kind == "record" and rt.kind == "object") or (
        rt.kind == "record" and lt.kind == "object"
    ):
        return
    errors.add("type_error", f"`{op}` compares a {lt} with a {rt}: it can never hold", loc)


def field_type(
    errors: Errors, schema: Schema | None, t: Type, name: str, loc: ast.Location
) -> Type:
    """The type of field `name` of a value of type `t`."""
    if t.kind == "record" and schema is not None:
        fields = schema.fields(t)
        if name not in fields:
            hint = did_you_mean(name, fields)
            if schema.data is not None and t.record == schema.data.record and hint is None:
                # The root of `data` is open: a field no schema declares stays dynamic,
                # unless it is a near miss of one that is declared (a typo, then).
                return ANY
            errors.add(
                "unknown_field",
                f"`{name}` is not a field of {_article(t.record or '')}",
                loc,
                hint,
            )
            return ANY
        return fields[name]
    if t.kind in ("string", "number", "boolean", "null"):
        errors.add("type_error", f"a {t} has no field `{name}`", loc)
        return ANY
    if t.kind in ("array", "set"):
        errors.add(
            "type_error",
            f"an {t.kind} is indexed by position, not by `{name}`"
            if t.kind == "array"
            else f"a set has no field `{name}`",
            loc,
        )
        return ANY
    if t.kind == "object":
        return t.elem or ANY
    return ANY


def _article(name: str) -> str:
    word = name[:1].lower() + "".join(" " + c.lower() if c.isupper() else c for c in name[1:])
    return ("an " if word[:1] in "aeiou" else "a ") + word


def scalar_type(value: Any) -> Type:
    if value is None:
        return NULL
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, int | float):
        return NUMBER
    return STRING


def elem_type(t: Type) -> Type:
    if t.kind in ("set", "array", "object"):
        return t.elem or ANY
    return ANY


def join(types: Sequence[Type]) -> Type:
    kinds = {t.kind for t in types}
    if len(kinds) == 1:
        return types[0]
    return ANY


def is_boolean_expr(e: ast.Expr) -> bool:
    return isinstance(e, ast.Member) or (
        isinstance(e, ast.BinOp) and e.op in ("==", "!=", "<", "<=", ">", ">=")
    )
