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
        return st.dictionaries(
            st.sampled_from(["team", "role"]), st.sampled_from(WORDS), max_size=2
        )
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


# ── flavour (b): well-typed, safe policies ───────────────────────────────────────────
#
# Types are written as the input schema writes them: `string`, `number`, `boolean`,
# `set<T>`, `array<T>`, `object<T>`, or a record name. Every variable is bound before it
# is used and used after it is bound; rules only read rules defined before them.

#: `input` refs a safe policy may read, with their types.
INPUT_REFS: dict[str, str] = {
    "input.subject.id": "string",
    "input.subject.groups": "set<string>",
    "input.subject.claims.team": "string",
    "input.resource.name": "string",
    "input.resource.kind": "string",
    "input.resource.env": "string",
    "input.session.requests": "number",
    "input.session.denied": "number",
    "input.session.tables_touched": "set<string>",
    "input.request.kind": "string",
    "input.request.time_ns": "number",
    "input.sql.statements": "array<Statement>",
    "input.sql.tables_read": "set<string>",
    "input.sql.tables_written": "set<string>",
    "input.sql.columns_read": "array<Column>",
    "input.command.program": "string",
    "input.command.argv": "array<string>",
    "input.http.method": "string",
}
DATA_REFS: dict[str, str] = {
    "data.config.blocked": "array<string>",
    "data.config.max_rows": "number",
    "data.config.envs": "object<boolean>",
    "data.config.admins": "set<string>",
}
#: Fields of records a variable may hold, with their types (non-null ones only).
RECORD_FIELDS: dict[str, dict[str, str]] = {
    name: {
        f: t
        for f, t in fields.items()
        if ("null" not in t and "<" in t) or t in ("string", "number", "boolean")
    }
    for name, fields in RECORDS.items()
    if name in ("Statement", "Column", "Table")
}

_COLLECTIONS = ("set<", "array<", "object<")


def _element(kind: str) -> str:
    return kind[kind.index("<") + 1 : -1]


def _key_type(kind: str) -> str:
    if kind.startswith("array<"):
        return "number"
    if kind.startswith("object<"):
        return "string"
    return _element(kind)


def _has_record(kind: str) -> bool:
    while kind.startswith(_COLLECTIONS):
        kind = _element(kind)
    return kind in RECORDS


def _ref(dotted: str) -> ast.Ref:
    head, *path = dotted.split(".")
    return ast.Ref(ast.Var(head), tuple(ast.Scalar(p) for p in path))


def _call(name: str, *args: ast.Expr) -> ast.Call:
    return ast.Call(name, tuple(args))


class _SafeRule:
    """The generator's state while it writes one rule: the typed variables in scope and
    whether each has been used yet."""

    def __init__(
        self,
        draw: st.DrawFn,
        rules: dict[str, str],
        functions: dict[str, int],
        package: str,
        counter: list[int],
    ) -> None:
        self.draw = draw
        self.rules = rules  # rule name (or data.pkg.name) → type, readable here
        self.functions = functions  # function name → arity (string → string)
        self.package = package
        self.counter = counter
        self.scopes: list[dict[str, str]] = [{}]
        self.used: set[str] = set()

    def fresh(self, kind: str) -> str:
        self.counter[0] += 1
        name = f"v{self.counter[0]}"
        self.scopes[-1][name] = kind
        return name

    def variables(self, kind: str) -> list[str]:
        return [n for scope in self.scopes for n, t in scope.items() if t == kind]

    def use(self, name: str) -> ast.Var:
        self.used.add(name)
        return ast.Var(name)

    # expressions of a given type

    def sources(self, kind: str) -> list[ast.Expr]:
        """Refs and variables that hold a `kind` value."""
        found: list[ast.Expr] = []
        found += [ast.Var(n) for n in self.variables(kind)]
        found += [_ref(r) for r, t in {**INPUT_REFS, **DATA_REFS}.items() if t == kind]
        found += [
            ast.Var(r) if "." not in r else _ref(r) for r, t in self.rules.items() if t == kind
        ]
        for scope in self.scopes:
            for name, record in scope.items():
                for field, t in RECORD_FIELDS.get(record, {}).items():
                    if t == kind:
                        found.append(ast.Ref(ast.Var(name), (ast.Scalar(field),)))
        return found

    def source(self, kind: str) -> ast.Expr | None:
        found = self.sources(kind)
        if not found:
            return None
        chosen = self.draw(st.sampled_from(found))
        head = chosen.head if isinstance(chosen, ast.Ref) else chosen
        if isinstance(head, ast.Var):
            self.used.add(head.name)
        return chosen

    def expr(self, kind: str, depth: int = 2) -> ast.Expr:
        draw = self.draw
        if _has_record(kind):
            # records and arrays of records only come from the input
            found = self.source(kind)
            assert found is not None, kind
            return found
        options = ["const", "source", "source"] + (["compound"] * 2 if depth > 0 else [])
        how = draw(st.sampled_from(options))
        if how == "source":
            found = self.source(kind)
            if found is not None:
                return found
            how = "compound" if depth > 0 else "const"
        if how == "compound":
            made = self.compound(kind, depth - 1)
            if made is not None:
                return made
        return self.const(kind)

    def const(self, kind: str) -> ast.Expr:
        draw = self.draw
        if kind == "string":
            return ast.Scalar(draw(st.sampled_from(WORDS + STATEMENT_KINDS[:3])))
        if kind == "number":
            return ast.Scalar(draw(st.integers(min_value=-2, max_value=6)))
        if kind == "boolean":
            return ast.Scalar(draw(st.booleans()))
        if kind.startswith("set<"):
            items = draw(st.lists(st.just(0), max_size=3))
            return ast.SetLit(tuple(self.const(_element(kind)) for _ in items))
        if kind.startswith("array<"):
            items = draw(st.lists(st.just(0), max_size=3))
            return ast.Array(tuple(self.const(_element(kind)) for _ in items))
        if kind.startswith("object<"):
            keys = draw(st.lists(st.sampled_from(WORDS[:4]), max_size=2, unique=True))
            return ast.Object(tuple((ast.Scalar(k), self.const(_element(kind))) for k in keys))
        raise ValueError(kind)

    def collection(self, depth: int) -> tuple[ast.Expr, str] | None:
        kinds = sorted(
            {
                t
                for t in [*INPUT_REFS.values(), *DATA_REFS.values(), *self.rules.values()]
                if t.startswith(_COLLECTIONS)
            }
            | {"set<string>", "array<string>", "array<number>"}
        )
        kind = self.draw(st.sampled_from(kinds))
        return self.expr(kind, depth), kind

    def compound(self, kind: str, depth: int) -> ast.Expr | None:
        draw = self.draw
        if kind == "string":
            choice = draw(
                st.sampled_from(["lower", "upper", "concat", "sprintf", "replace", "call"])
            )
            if choice in ("lower", "upper"):
                return _call(choice, self.expr("string", depth))
            if choice == "concat":
                coll = draw(st.sampled_from(["set<string>", "array<string>"]))
                return _call("concat", ast.Scalar(","), self.expr(coll, depth))
            if choice == "sprintf":
                return _call(
                    "sprintf",
                    ast.Scalar("%v-%v"),
                    ast.Array((self.expr("string", depth), self.expr("number", depth))),
                )
            if choice == "replace":
                return _call(
                    "replace", self.expr("string", depth), ast.Scalar("a"), ast.Scalar("b")
                )
            if self.functions:
                name = draw(st.sampled_from(sorted(self.functions)))
                args = [self.expr("string", depth) for _ in range(self.functions[name])]
                return _call(name, *args)
            return None
        if kind == "number":
            choice = draw(st.sampled_from(["count", "+", "-", "*", "/", "%", "neg"]))
            if choice == "count":
                found = self.collection(depth)
                assert found is not None
                return _call("count", found[0])
            if choice in ("/", "%"):
                divisor = ast.Scalar(draw(st.sampled_from([1, 2, 3, -2])))
                return ast.BinOp(choice, self.expr("number", depth), divisor)
            if choice == "neg":
                inner = self.source("number")
                return ast.Neg(inner) if inner is not None else None
            return ast.BinOp(choice, self.expr("number", depth), self.expr("number", depth))
        if kind == "boolean":
            choice = draw(
                st.sampled_from(["cmp", "cmp", "in", "startswith", "endswith", "contains", "every"])
            )
            if choice == "cmp":
                operand = draw(st.sampled_from(["string", "number", "boolean"]))
                ops = ("==", "!=") if operand == "boolean" else REL_OPS
                op = draw(st.sampled_from(ops))
                return ast.BinOp(op, self.expr(operand, depth), self.expr(operand, depth))
            if choice == "in":
                coll = draw(st.sampled_from(["set<string>", "array<string>", "array<number>"]))
                if coll.startswith("array") and draw(st.booleans()):
                    # `i, x in xs`: xs has x at index i
                    index = self.expr("number", depth)
                    return ast.Member(self.expr(_element(coll), depth), self.expr(coll, depth), key=index)
                return ast.Member(self.expr(_element(coll), depth), self.expr(coll, depth))
            if choice in ("startswith", "endswith", "contains"):
                return _call(choice, self.expr("string", depth), self.expr("string", depth))
            return None
        if kind.startswith("set<"):
            element = _element(kind)
            choice = draw(st.sampled_from(["|", "&", "-", "compr", "union"]))
            if choice in ("|", "&", "-"):
                return ast.BinOp(choice, self.expr(kind, depth), self.expr(kind, depth))
            if choice == "union":
                return _call("union", ast.SetLit((self.expr(kind, depth), self.expr(kind, depth))))
            return self.comprehension(ast.SetCompr, element, depth)
        if kind.startswith("array<"):
            element = _element(kind)
            choice = draw(st.sampled_from(["compr", "sort"]))
            if choice == "sort" and element in ("string", "number"):
                return _call("sort", self.expr(f"set<{element}>", depth))
            return self.comprehension(ast.ArrayCompr, element, depth)
        if kind.startswith("object<"):
            element = _element(kind)
            self.scopes.append({})
            body = self.body(depth, size=2)
            key = self.expr("string", depth)
            value = self.expr(element, depth)
            body += self.uses()
            self.scopes.pop()
            # a comprehension whose key repeats with different values is an error: fine
            return ast.ObjectCompr(key, value, body)
        return None

    def comprehension(self, node: Any, element: str, depth: int) -> ast.Expr:
        self.scopes.append({})
        body = self.body(depth, size=2)
        term = self.expr(element, depth)
        body += self.uses()
        self.scopes.pop()
        return node(term, body)  # type: ignore[no-any-return]

    # body literals

    def body(self, depth: int, size: int = 4, first: bool = True) -> tuple[ast.Literal, ...]:
        count = self.draw(st.integers(min_value=1, max_value=size))
        literals = []
        if first:
            literals.append(self.binding(depth))
            count -= 1
        for _ in range(count):
            literals.append(self.literal(depth))
        return tuple(literals)

    def binding(self, depth: int) -> ast.Literal:
        draw = self.draw
        if draw(st.booleans()):
            found = self.collection(depth)
            assert found is not None
            collection, kind = found
            with_key = draw(st.booleans())
            key = self.fresh(_key_type(kind)) if with_key else None
            value = self.fresh(_element(kind))
            return ast.SomeIn(key, value, collection)
        kind = draw(
            st.sampled_from(["string", "number", "boolean", "set<string>", "array<string>"])
        )
        value_expr = self.expr(kind, depth)
        name = self.fresh(kind)
        return ast.Assign(draw(st.sampled_from([":=", ":=", "="])), ast.Var(name), value_expr)

    def literal(self, depth: int) -> ast.Literal:
        draw = self.draw
        choice = draw(st.sampled_from(["bind", "test", "test", "not", "every"]))
        if choice == "bind":
            return self.binding(depth)
        if choice == "not":
            return ast.NotLiteral(self.expr("boolean", depth))
        if choice == "every":
            found = self.collection(max(depth - 1, 0))
            assert found is not None
            domain, kind = found
            self.scopes.append({})
            key = self.fresh(_key_type(kind)) if draw(st.booleans()) else None
            value = self.fresh(_element(kind))
            body = (ast.ExprLiteral(self.expr("boolean", max(depth - 1, 0))), *self.uses())
            self.scopes.pop()
            return ast.Every(key, value, domain, body)
        return ast.ExprLiteral(self.expr("boolean", depth))

    def uses(self) -> tuple[ast.Literal, ...]:
        """A test for each variable of the innermost scope not used yet."""
        literals: list[ast.Literal] = []
        for name, kind in list(self.scopes[-1].items()):
            if name in self.used:
                continue
            var = self.use(name)
            if kind == "string":
                literals.append(ast.ExprLiteral(ast.BinOp("!=", var, self.const("string"))))
            elif kind == "number":
                literals.append(ast.ExprLiteral(ast.BinOp(">=", var, self.const("number"))))
            elif kind == "boolean":
                literals.append(ast.ExprLiteral(ast.BinOp("==", var, self.const("boolean"))))
            elif kind.startswith(_COLLECTIONS):
                literals.append(
                    ast.ExprLiteral(ast.BinOp(">=", _call("count", var), ast.Scalar(1)))
                )
            else:
                field = self.draw(
                    st.sampled_from(
                        sorted(f for f, t in RECORD_FIELDS[kind].items() if t == "string")
                    )
                )
                value = ast.Ref(var, (ast.Scalar(field),))
                literals.append(ast.ExprLiteral(ast.BinOp("!=", value, self.const("string"))))
        return tuple(literals)


RULE_KINDS = ("complete", "boolean", "set", "object", "function", "multi")
VALUE_TYPES = ("string", "number", "boolean", "set<string>", "array<string>")


@st.composite
def safe_modules(
    draw: st.DrawFn, package: str = "p0", readable: dict[str, str] | None = None
) -> tuple[ast.Module, dict[str, str]]:
    """One safe module, and the types of its rules as other packages read them."""
    counter = [0]
    rules: list[ast.Rule] = []
    types: dict[str, str] = dict(readable or {})
    functions: dict[str, int] = {}
    exported: dict[str, str] = {}
    for index in range(draw(st.integers(min_value=1, max_value=5))):
        name = f"r{index}"
        kind = draw(st.sampled_from(RULE_KINDS))
        g = _SafeRule(draw, types, functions, package, counter)
        if kind == "function":
            arity = draw(st.integers(min_value=1, max_value=2))
            fname = f"f{index}"
            if draw(st.booleans()):
                # constant parameters: a lookup table, possibly undefined for some inputs
                for word in draw(st.lists(st.sampled_from(WORDS[:5]), min_size=1, max_size=3)):
                    args = (ast.Scalar(word),) * arity
                    rules.append(ast.Rule(ast.FUNCTION, fname, g.const("string"), args=args))
            else:
                params = tuple(ast.Var(g.fresh("string")) for _ in range(arity))
                body = g.body(1, size=2, first=False) if draw(st.booleans()) else ()
                value = g.expr("string", 1)
                body += g.uses()
                rules.append(ast.Rule(ast.FUNCTION, fname, value, body, args=params))
            if draw(st.booleans()):
                # a default function: its value when no definition applies
                rules.append(ast.Rule(ast.DEFAULT, fname, g.const("string"), args=(ast.Var("_"),) * arity))
            functions[fname] = arity
            continue
        body = g.body(2)
        if kind == "boolean":
            body += g.uses()
            if draw(st.booleans()):
                rules.append(ast.Rule(ast.DEFAULT, name, ast.Scalar(False)))
            rules.append(ast.Rule(ast.COMPLETE, name, ast.Scalar(True), body, boolean=True))
            types[name] = "boolean"
        elif kind in ("complete", "multi"):
            vtype = draw(st.sampled_from(VALUE_TYPES))
            value = g.expr(vtype, 1)
            body += g.uses()
            if draw(st.booleans()):
                rules.append(ast.Rule(ast.DEFAULT, name, g.const(vtype)))
            elses: tuple[ast.Else, ...] = ()
            if body and draw(st.booleans()):
                # `else`: the next clause's value when the body has no solution
                g3 = _SafeRule(draw, types, functions, package, counter)
                body3 = g3.body(1)
                value3 = g3.expr(vtype, 1)
                body3 += g3.uses()
                elses = (ast.Else(value3, body3),)
            rules.append(ast.Rule(ast.COMPLETE, name, value, body, elses=elses))
            if kind == "multi":
                # a second definition: agreeing or conflicting, depending on the input
                g2 = _SafeRule(draw, types, functions, package, counter)
                body2 = g2.body(1)
                value2 = g2.expr(vtype, 1)
                body2 += g2.uses()
                rules.append(ast.Rule(ast.COMPLETE, name, value2, body2))
            types[name] = vtype
        elif kind == "set":
            vtype = draw(st.sampled_from(["string", "number"]))
            value = g.expr(vtype, 1)
            body += g.uses()
            rules.append(ast.Rule(ast.SET, name, value, body))
            types[name] = f"set<{vtype}>"
        else:
            vtype = draw(st.sampled_from(["string", "number", "boolean"]))
            key = g.expr("string", 1)
            value = g.expr(vtype, 1)
            body += g.uses()
            rules.append(ast.Rule(ast.OBJECT, name, value, body, key=key))
            types[name] = f"object<{vtype}>"
        exported[f"data.{package}.{name}"] = types[name]
    module = ast.Module((package,), (), tuple(rules))
    return module, exported


@st.composite
def safe_policies(draw: st.DrawFn) -> list[ast.Module]:
    """One or two safe modules; the second may read the first's rules through `data`."""
    first, exported = draw(safe_modules("p0"))
    if not draw(st.booleans()):
        return [first]
    second, _ = draw(safe_modules("p1", exported))
    return [first, second]
