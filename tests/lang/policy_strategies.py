"""Hypothesis strategies for policies: random ASTs and input documents.

Two flavours:

* `modules()` – any module the grammar can express (for the formatter's round trip and
  the parser's robustness), with no regard to meaning;
* `safe_policies()` – well-typed, safe policies (every variable bound before use and
  used, no recursion, real builtins with their arity, `input` refs that follow the
  input schema) with `inputs()` and `DATA` to evaluate them on, for differential tests.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from subguard.engine.schema import INPUT_TYPE, RECORDS
from subguard.lang import ast

KEYWORDS = frozenset(
    {
        "package",
        "import",
        "as",
        "default",
        "if",
        "contains",
        "some",
        "in",
        "every",
        "not",
        "with",
        "true",
        "false",
        "null",
    }
)
REL_OPS = ("==", "!=", "<", "<=", ">", ">=")
BIN_OPS = (*REL_OPS, "|", "&", "+", "-", "*", "/", "%")

# ── flavour (a): anything the grammar can express ────────────────────────────────────

names = st.sampled_from(
    ["x", "y", "z", "s", "k", "v", "input", "data", "set", "count", "a_1", "_", "xs"]
)
field_names = st.one_of(
    st.sampled_from(["kind", "sql", "statements", "default", "contains", "if", "a_b"]),
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,6}", fullmatch=True),
)
call_names = st.sampled_from(
    ["count", "lower", "sprintf", "regex.match", "data.p.f", "f", "contains", "object.get"]
)

strings = st.one_of(
    st.sampled_from(["", "a", "drop", 'quo"te', "back\\slash", "new\nline", "tab\t", "é", "😀"]),
    st.text(max_size=8),
)
numbers = st.one_of(
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(allow_nan=False),
)
scalars = st.builds(ast.Scalar, st.one_of(strings, numbers, st.booleans(), st.none()))


def _not_folded(e: ast.Expr) -> bool:
    # `-5` reads back as the constant -5, never as a negation of 5
    return not (
        isinstance(e, ast.Scalar)
        and isinstance(e.value, int | float)
        and not isinstance(e.value, bool)
    )


def _small_tuple(
    elements: st.SearchStrategy[Any], min_size: int = 0
) -> st.SearchStrategy[tuple[Any, ...]]:
    return st.lists(elements, min_size=min_size, max_size=3).map(tuple)


def _expressions(literals: st.SearchStrategy[ast.Literal]) -> st.SearchStrategy[ast.Expr]:
    body = _small_tuple(literals, min_size=1)

    def extend(inner: st.SearchStrategy[ast.Expr]) -> st.SearchStrategy[ast.Expr]:
        step = st.one_of(field_names.map(ast.Scalar), inner)
        return st.one_of(
            st.builds(ast.Ref, st.builds(ast.Var, names), _small_tuple(step, min_size=1)),
            st.builds(ast.Call, call_names, _small_tuple(inner)).filter(
                lambda c: not (c.name == "set" and not c.args)
            ),
            st.builds(ast.BinOp, st.sampled_from(BIN_OPS), inner, inner),
            st.builds(ast.Neg, inner.filter(_not_folded)),
            st.builds(ast.Member, inner, inner),
            st.builds(ast.Array, _small_tuple(inner)),
            st.builds(ast.SetLit, _small_tuple(inner)),
            st.builds(ast.Object, _small_tuple(st.tuples(inner, inner))),
            st.builds(ast.ArrayCompr, inner, body),
            st.builds(ast.SetCompr, inner, body),
            st.builds(ast.ObjectCompr, inner, inner, body),
        )

    return st.recursive(st.one_of(scalars, st.builds(ast.Var, names)), extend, max_leaves=8)


def _with_targets() -> st.SearchStrategy[ast.Ref]:
    return st.builds(
        ast.Ref,
        st.builds(ast.Var, st.sampled_from(["input", "data"])),
        _small_tuple(field_names.map(ast.Scalar)),
    )


literals: st.SearchStrategy[ast.Literal] = st.deferred(
    lambda: st.one_of(
        st.builds(ast.ExprLiteral, expressions, withs),
        st.builds(ast.NotLiteral, expressions, withs),
        st.builds(ast.Assign, st.sampled_from([":=", "="]), expressions, expressions, withs),
        st.builds(ast.SomeDecl, _small_tuple(names, min_size=1)),
        st.builds(ast.SomeIn, st.none() | names, names, expressions),
        st.builds(
            ast.Every, st.none() | names, names, expressions, _small_tuple(literals, min_size=1)
        ),
    )
)
expressions: st.SearchStrategy[ast.Expr] = _expressions(literals)
withs = st.lists(st.builds(ast.With, _with_targets(), expressions), max_size=2).map(tuple)
bodies = st.lists(literals, max_size=3).map(tuple)
rule_names = st.sampled_from(["allow", "deny", "mask", "r", "f", "g_2"])


@st.composite
def rules(draw: st.DrawFn) -> ast.Rule:
    kind = draw(st.sampled_from([ast.COMPLETE, ast.SET, ast.OBJECT, ast.FUNCTION, ast.DEFAULT]))
    name = draw(rule_names)
    if kind == ast.DEFAULT:
        return ast.Rule(kind, name, draw(expressions))
    body = draw(bodies)
    one_line = len(body) == 1 and draw(st.booleans())
    boolean = kind in (ast.COMPLETE, ast.FUNCTION) and draw(st.booleans())
    value = ast.Scalar(True) if boolean else draw(expressions)
    key = draw(expressions) if kind == ast.OBJECT else None
    args = draw(_small_tuple(expressions)) if kind == ast.FUNCTION else ()
    return ast.Rule(kind, name, value, body, key=key, args=args, boolean=boolean, one_line=one_line)


imports = st.builds(
    ast.Import,
    st.builds(
        ast.Ref,
        st.builds(ast.Var, st.sampled_from(["input", "data"])),
        _small_tuple(field_names.map(ast.Scalar)),
    ),
    st.none() | names,
)
packages = st.tuples(names, st.lists(field_names, max_size=2)).map(lambda t: (t[0], *t[1]))


def modules() -> st.SearchStrategy[ast.Module]:
    """Any module the grammar can express."""
    return st.builds(
        ast.Module,
        packages,
        st.lists(imports, max_size=2).map(tuple),
        st.lists(rules(), max_size=4).map(tuple),
    )


# ── the input document ───────────────────────────────────────────────────────────────

WORDS = ("drop", "select", "delete", "prod", "dev", "agents", "admins", "users", "a", "")
STATEMENT_KINDS = ("select", "insert", "update", "delete", "drop", "truncate", "copy")


def _value_of(kind: str) -> st.SearchStrategy[Any]:
    """Values of one schema type, written as the schema writes it."""
    kind = kind.strip()
    if kind.endswith("| null"):
        return st.none() | _value_of(kind[: -len("| null")])
    if kind == "string":
        return st.sampled_from(WORDS)
    if kind == "number":
        return st.integers(min_value=-3, max_value=10)
    if kind == "boolean":
        return st.booleans()
    if kind == "any":
        return st.dictionaries(st.sampled_from(WORDS[:4]), st.sampled_from(WORDS), max_size=2)
    if kind.startswith("set<"):
        return st.frozensets(_value_of(kind[4:-1]), max_size=3)
    if kind.startswith("array<"):
        return st.lists(_value_of(kind[6:-1]), max_size=3).map(tuple)
    if kind.startswith("object<"):
        return st.dictionaries(st.sampled_from(WORDS), _value_of(kind[7:-1]), max_size=2)
    record = RECORDS[kind]
    fields = {}
    for field, field_kind in record.items():
        if kind == "Statement" and field == "kind":
            fields[field] = st.sampled_from(STATEMENT_KINDS)
        elif kind == "Statement" and field in ("grants", "output_columns"):
            fields[field] = st.just(())
        else:
            fields[field] = _value_of(field_kind)
    return st.fixed_dictionaries(fields)


def inputs() -> st.SearchStrategy[dict[str, Any]]:
    """Input documents that follow the input schema (sets as frozensets, arrays as tuples)."""
    return _value_of(INPUT_TYPE)  # type: ignore[no-any-return]


#: The data document safe policies may read.
DATA: dict[str, Any] = {
    "config": {
        "blocked": ("drop", "truncate"),
        "max_rows": 5,
        "envs": {"prod": True, "dev": False},
        "admins": frozenset({"admins"}),
    }
}
