"""Modules → checked, compiled policy: named stages that collect errors, then Python code.

Each rule definition becomes one generated Python function over plain values (see
`runtime`): a body is flat code in which `some` opens a `for` loop and a failing literal
`continue`s to the next binding (or `return`s when no loop is open), which is Rego's
backtracking without an interpreter. Generated source is compiled with `compile()` once;
policy text never reaches `eval`: only code this module writes, from checked AST nodes,
with every user string embedded through `repr`.
"""

from __future__ import annotations

import difflib
import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, NamedTuple

import attrs

from subguard.errors import PolicyError, PolicyErrors
from subguard.lang import ast, runtime
from subguard.lang.builtins import BUILTINS, Builtin, BuiltinError, plain_text
from subguard.lang.types import (
    ANY,
    BOOLEAN,
    NULL,
    NUMBER,
    STRING,
    Schema,
    Type,
    conform,
    parse_type,
)
from subguard.lang.values import freeze, from_json

__all__ = ["DECISION_RULES", "MAX_ERRORS", "STAGES", "CompiledPolicy", "Fired", "Outputs", "compile_policy"]

#: Errors collected before the compiler gives up on reporting more.
MAX_ERRORS: Final = 50

#: Rule names with a fixed meaning in every package, and the kinds they may have.
DECISION_RULES: Final = {
    "terminate": (ast.SET,),
    "deny": (ast.SET,),
    "approve": (ast.SET,),
    "allow": (ast.COMPLETE, ast.DEFAULT),
    "mask": (ast.SET, ast.OBJECT),
}

_IGNORED_IMPORTS = ("rego.v1", "future.keywords")
_PLAIN_VERB = re.compile(r"%[sv]")


@attrs.define
class RuleGroup:
    """All definitions of one rule name in one package."""

    index: int
    package: str
    name: str
    kind: str
    definitions: list[ast.Rule] = attrs.Factory(list)
    default: ast.Rule | None = None
    depends: set[int] = attrs.Factory(set)

    @property
    def qualified(self) -> str:
        return f"{self.package}.{self.name}"

    @property
    def loc(self) -> ast.Location:
        first = self.definitions[0] if self.definitions else self.default
        return first.loc if first is not None else ast.NOWHERE


class Fired(NamedTuple):
    """One decision-rule definition that produced values for an input (a named tuple:
    one is built per firing rule on the hot path)."""

    package: str
    rule: str
    location: str
    values: tuple[Any, ...]


@attrs.frozen
class Fault:
    """A runtime error inside a decision rule."""

    code: str
    message: str
    package: str
    rule: str
    location: str


class Outputs(NamedTuple):
    """Everything the decision rules produced for one input (a named tuple: one per
    decision)."""

    fired: tuple[Fired, ...]
    faults: tuple[Fault, ...]


class _Errors:
    """The error collector shared by the stages."""

    def __init__(self) -> None:
        self.items: list[PolicyError] = []

    def add(self, code: str, message: str, loc: ast.Location, hint: str | None = None) -> None:
        if len(self.items) < MAX_ERRORS:
            self.items.append(
                PolicyError(code, message, path=loc.path, line=loc.line, col=loc.col, hint=hint)
            )

    def __bool__(self) -> bool:
        return bool(self.items)


def _did_you_mean(name: str, candidates: Sequence[str] | Any) -> str | None:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else None


# ── the compiler's state, shared by the stages ──────────────────────────────────────


@attrs.define
class _Program:
    modules: list[ast.Module]
    schema: Schema | None
    errors: _Errors
    groups: dict[str, dict[str, RuleGroup]] = attrs.Factory(dict)  # package → name → group
    by_index: list[RuleGroup] = attrs.Factory(list)
    imports: dict[int, dict[str, ast.Ref]] = attrs.Factory(dict)  # module id → alias → ref
    source: list[str] = attrs.Factory(list)
    constants: dict[str, Any] = attrs.Factory(dict)
    def_functions: dict[int, list[str]] = attrs.Factory(dict)  # group → def function names
    namespace: dict[str, Any] = attrs.Factory(dict)
    #: Decision-rule bodies again, indented to be inlined: def function name → lines.
    inline_code: dict[str, list[str]] = attrs.Factory(dict)
    #: Builtins beyond the standard library (e.g. `subguard test`'s request builders).
    extra_builtins: Mapping[str, Builtin] = attrs.Factory(dict)


# ── stage 1: rules ───────────────────────────────────────────────────────────────────


def collect_rules(program: _Program) -> None:
    """Group definitions by package and name; one name has one kind; decision rules have
    the kind their meaning needs."""
    for module in program.modules:
        package = module.package_name
        table = program.groups.setdefault(package, {})
        for rule in module.rules:
            kind = ast.COMPLETE if rule.kind == ast.DEFAULT else rule.kind
            group = table.get(rule.name)
            if group is None:
                group = RuleGroup(len(program.by_index), package, rule.name, kind)
                table[rule.name] = group
                program.by_index.append(group)
            elif group.kind != kind:
                program.errors.add(
                    "conflict",
                    f"`{rule.name}` is defined as a {group.kind} rule and as a {kind} rule",
                    rule.loc,
                )
                continue
            if rule.kind == ast.DEFAULT:
                if group.default is not None:
                    program.errors.add("conflict", f"`{rule.name}` has more than one default", rule.loc)
                group.default = rule
            else:
                group.definitions.append(rule)
            allowed = DECISION_RULES.get(rule.name)
            if (
                rule.name == "allow"
                and rule.kind in (ast.COMPLETE, ast.DEFAULT)
                and not (isinstance(rule.value, ast.Scalar) and isinstance(rule.value.value, bool))
            ):
                program.errors.add("type_error", "`allow` is a boolean rule: its value must be `true` or `false`", rule.loc)
            if allowed is not None and rule.kind not in allowed:
                shape = {
                    "allow": "a boolean rule (`allow if …`)",
                    "mask": "a set or object rule (`mask contains col if …`)",
                }.get(rule.name, f"a set rule (`{rule.name} contains msg if …`)")
                program.errors.add(
                    "type_error", f"`{rule.name}` is a decision rule and must be {shape}", rule.loc
                )


# ── stage 2: imports ─────────────────────────────────────────────────────────────────


def resolve_imports(program: _Program) -> None:
    """Imports bind a name to a path under `input` or `data`."""
    for module in program.modules:
        table: dict[str, ast.Ref] = {}
        for imp in module.imports:
            dotted = imp.path.dotted()
            if dotted in _IGNORED_IMPORTS or (dotted or "").startswith("future.keywords"):
                continue
            if imp.path.head.name not in ("input", "data"):
                program.errors.add(
                    "import_error",
                    f"cannot import `{dotted or imp.path.head.name}`: imports start with `input` or `data`",
                    imp.loc,
                )
                continue
            if imp.name in table:
                program.errors.add("import_error", f"`{imp.name}` is imported twice", imp.loc)
            table[imp.name] = imp.path
        program.imports[id(module)] = table


# ── stage 3: bodies (references, types, safety, unused variables, calls) ────────────


@attrs.define
class _Var:
    py: str
    type: Type
    loc: ast.Location
    used: bool = False
    declared_only: bool = False  # `some x` without a binding yet


class _Fn:
    """Code being generated for one Python function: lines, indentation, loop depth."""

    def __init__(self, indent: int) -> None:
        self.lines: list[str] = []
        self.indent = indent
        self.loops = 0
        #: What a function returns when its body fails outside any loop (a
        #: comprehension returns what it collected: an empty collection, not undefined).
        self.result = ""
        #: A body inlined into the fused decision function leaves with `break`.
        self.depth0 = ""

    def emit(self, line: str) -> None:
        self.lines.append("    " * self.indent + line)

    @property
    def fail(self) -> str:
        if self.loops:
            return "continue"
        if self.depth0:
            return self.depth0
        return f"return {self.result}" if self.result else "return"


class _BodyCompiler:
    """Checks and generates one rule definition's body (and nested bodies)."""

    def __init__(self, program: _Program, module: ast.Module, group: RuleGroup, counter: Any) -> None:
        self.program = program
        self.module = module
        self.group = group
        self.package = module.package_name
        self.errors = program.errors
        self.imports = program.imports.get(id(module), {})
        self.scopes: list[dict[str, _Var]] = [{}]
        self.counter = counter
        self.fn = _Fn(1)

    # names and scopes
    def tmp(self, prefix: str = "t") -> str:
        return f"_{prefix}{next(self.counter)}"

    def lookup(self, name: str) -> _Var | None:
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        return None

    def bind(self, name: str, type_: Type, loc: ast.Location) -> str:
        if name == "_":
            return self.tmp("w")
        existing = self.scopes[-1].get(name)
        if existing is not None and existing.declared_only:
            existing.declared_only = False
            existing.type = type_
            return existing.py
        if existing is not None or self.lookup(name) is not None:
            self.errors.add("rego_compile_error" if False else "redeclared_var", f"var `{name}` is already bound", loc)
        py = f"v_{name}_{next(self.counter)}"
        self.scopes[-1][name] = _Var(py, type_, loc)
        return py

    def bound(self, name: str) -> bool:
        var = self.lookup(name)
        return var is not None and not var.declared_only

    def const(self, value: Any) -> str:
        name = f"_k{next(self.counter)}"
        self.program.constants[name] = value
        return name

    def end_scope_check(self, scope: dict[str, _Var]) -> None:
        for name, var in scope.items():
            if not var.used and not name.startswith("_"):
                self.errors.add("unused_var", f"var `{name}` is bound but never used", var.loc)

    # bodies
    def body(self, literals: Sequence[ast.Literal]) -> None:
        for literal in literals:
            self.literal(literal)

    def literal(self, lit: ast.Literal) -> None:
        fn = self.fn
        if isinstance(lit, ast.SomeDecl):
            for name in lit.names:
                if name != "_":
                    self.scopes[-1][name] = _Var(f"v_{name}_{next(self.counter)}", ANY, lit.loc, declared_only=True)
            return
        if isinstance(lit, ast.SomeIn):
            coll, ctype = self.expr(lit.collection, "ctx")
            tmp = self.tmp("c")
            fn.emit("try:")
            fn.emit(f"    {tmp} = {coll}")
            fn.emit(f"except _U: {fn.fail}")
            self.check_iterable(ctype, lit.collection.loc)
            elem = _elem_type(ctype)
            if lit.key is None:
                value = self.bind(lit.value, elem, lit.loc)
                source = tmp if ctype.kind in ("array", "set") else f"_values({tmp})"
                fn.emit(f"for {value} in {source}:")
            else:
                key = self.bind(lit.key, STRING if ctype.kind in ("object", "record") else NUMBER if ctype.kind == "array" else elem, lit.loc)
                value = self.bind(lit.value, elem, lit.loc)
                fn.emit(f"for {key}, {value} in _items({tmp}):")
            fn.indent += 1
            fn.loops += 1
            return
        if isinstance(lit, ast.Every):
            self.every(lit)
            return
        if isinstance(lit, ast.NotLiteral):
            self.not_literal(lit)
            return
        cx = self.withs(lit.withs) if lit.withs else "ctx"
        if isinstance(lit, ast.Assign):
            self.assign(lit, cx)
            return
        assert isinstance(lit, ast.ExprLiteral)
        code, _type = self.expr(lit.expr, cx)
        fn.emit("try:")
        if _is_boolean_expr(lit.expr):
            fn.emit(f"    if not ({code}): {fn.fail}")
        else:
            fn.emit(f"    if ({code}) is False: {fn.fail}")
        fn.emit(f"except _U: {fn.fail}")

    def withs(self, withs: Sequence[ast.With]) -> str:
        parts = []
        for w in withs:
            root = w.target.head.name
            path: list[Any] = []
            for step in w.target.path:
                if not isinstance(step, ast.Scalar):
                    self.errors.add("type_error", "`with` needs a constant path", w.loc)
                    return "ctx"
                path.append(step.value)
            if root not in ("input", "data"):
                self.errors.add("type_error", "`with` replaces `input` or `data` only", w.loc)
                return "ctx"
            rule_index = None
            if root == "data":
                group, rest = self.find_rule(tuple(str(p) for p in path))
                if group is not None and not rest:
                    rule_index = group.index
                    self.group.depends.add(group.index)
            value, _ = self.expr(w.value, "ctx")
            parts.append(f"({root!r}, {tuple(path)!r}, {rule_index!r}, {value})")
        cx = self.tmp("w")
        self.fn.emit("try:")
        self.fn.emit(f"    {cx} = _with_(ctx, ({', '.join(parts)},))")
        self.fn.emit(f"except _U: {self.fn.fail}")
        return cx

    def assign(self, lit: ast.Assign, cx: str) -> None:
        fn = self.fn
        target, value = lit.target, lit.value
        if (
            lit.op == "="
            and not (isinstance(target, ast.Var) and not self.bound(target.name))
            and isinstance(value, ast.Var)
            and not self.bound(value.name)
            and value.name not in self.names_in_scope()
        ):
            target, value = value, target
        if isinstance(target, ast.Var) and (lit.op == ":=" or not self.bound(target.name)) and not self._is_global(target.name):
            code, type_ = self.expr(value, cx)
            tmp = self.tmp()
            fn.emit("try:")
            fn.emit(f"    {tmp} = {code}")
            fn.emit(f"except _U: {fn.fail}")
            py = self.bind(target.name, type_, target.loc)
            fn.emit(f"{py} = {tmp}")
            return
        if isinstance(target, ast.Array) and lit.op == ":=" and all(isinstance(i, ast.Var) for i in target.items):
            code, _ = self.expr(value, cx)
            tmp = self.tmp()
            fn.emit("try:")
            fn.emit(f"    {tmp} = {code}")
            fn.emit(f"    if type({tmp}) is not tuple or len({tmp}) != {len(target.items)}: {fn.fail}")
            fn.emit(f"except _U: {fn.fail}")
            for i, item in enumerate(target.items):
                assert isinstance(item, ast.Var)
                py = self.bind(item.name, ANY, item.loc)
                fn.emit(f"{py} = {tmp}[{i}]")
            return
        if lit.op == ":=":
            self.errors.add("type_error", "`:=` needs a variable on its left", lit.loc)
            return
        left, lt = self.expr(target, cx)
        right, rt = self.expr(value, cx)
        self.check_comparable("==", lt, rt, lit.loc)
        fn.emit("try:")
        fn.emit(f"    if not _eq({left}, {right}): {fn.fail}")
        fn.emit(f"except _U: {fn.fail}")

    def names_in_scope(self) -> set[str]:
        return {n for s in self.scopes for n, v in s.items() if not v.declared_only}

    def _is_global(self, name: str) -> bool:
        return name in ("input", "data")

    def nested(self, params: Sequence[tuple[str, Type, ast.Location]], build: Callable[[list[str]], None]) -> str:
        """Generate a closure `def _fN(params): …` at the current point; returns its name."""
        name = self.tmp("f")
        outer = self.fn
        self.fn = _Fn(outer.indent + 1)
        self.scopes.append({})
        pys = [self.bind(n, t, loc) for n, t, loc in params]
        build(pys)
        scope = self.scopes.pop()
        self.end_scope_check(scope)
        inner = self.fn
        self.fn = outer
        outer.emit(f"def {name}({', '.join(pys)}):")
        outer.lines.extend(inner.lines or ["    " * (outer.indent + 1) + "pass"])
        return name

    def every(self, lit: ast.Every) -> None:
        fn = self.fn
        dom, dtype = self.expr(lit.domain, "ctx")
        self.check_iterable(dtype, lit.domain.loc)
        elem = _elem_type(dtype)
        params = ([(lit.key, ANY, lit.loc)] if lit.key else []) + [(lit.value, elem, lit.loc)]

        def build(pys: list[str]) -> None:
            for p in params:
                self.lookup(p[0]).used = True  # type: ignore[union-attr]
            self.body(lit.body)
            self.fn.emit("return True")

        check = self.nested(params, build)
        tmp = self.tmp("d")
        fn.emit("try:")
        fn.emit(f"    {tmp} = {dom}")
        if lit.key:
            fn.emit(f"    if not all({check}(_a, _b) for _a, _b in _items({tmp})): {fn.fail}")
        else:
            fn.emit(f"    if not all({check}(_a) for _a in _values({tmp})): {fn.fail}")
        fn.emit(f"except _U: {fn.fail}")

    def not_literal(self, lit: ast.NotLiteral) -> None:
        fn = self.fn
        cx = self.withs(lit.withs) if lit.withs else "ctx"
        if self.iterates(lit.expr):
            def build(pys: list[str]) -> None:
                self.literal(ast.ExprLiteral(lit.expr, loc=lit.loc))
                self.fn.emit("return True")

            check = self.nested([], build)
            fn.emit(f"if {check}(): {fn.fail}")
            return
        code, _ = self.expr(lit.expr, cx)
        fn.emit("try:")
        if _is_boolean_expr(lit.expr):
            fn.emit(f"    if {code}: {fn.fail}")
        else:
            fn.emit(f"    if ({code}) is not False: {fn.fail}")
        fn.emit("except _U: pass")

    def iterates(self, expr: ast.Expr) -> bool:
        """Does evaluating `expr` bind variables (a ref indexed by an unbound variable)?"""
        found = False

        def visit(e: Any) -> None:
            nonlocal found
            if isinstance(e, ast.Ref):
                for step in e.path:
                    if isinstance(step, ast.Var) and (step.name == "_" or not self.bound(step.name)) and self.lookup_global(step.name) is None:
                        found = True
                    visit(step)
            elif isinstance(e, ast.Call):
                for a in e.args:
                    visit(a)
            elif isinstance(e, ast.BinOp):
                visit(e.left)
                visit(e.right)
            elif isinstance(e, ast.Member):
                visit(e.element)
                visit(e.collection)
            elif isinstance(e, ast.Neg):
                visit(e.operand)
            elif isinstance(e, ast.Array | ast.SetLit):
                for i in e.items:
                    visit(i)
            elif isinstance(e, ast.Object):
                for k, v in e.pairs:
                    visit(k)
                    visit(v)

        visit(expr)
        return found

    def lookup_global(self, name: str) -> str | None:
        if name in ("input", "data") or name in self.imports:
            return name
        if name in self.program.groups.get(self.package, {}):
            return name
        return None

    # expressions: (python code, static type)
    def expr(self, e: ast.Expr, cx: str) -> tuple[str, Type]:
        if isinstance(e, ast.Scalar):
            return repr(e.value), _scalar_type(e.value)
        if isinstance(e, ast.Var):
            return self.ref(ast.Ref(e, (), loc=e.loc), cx)
        if isinstance(e, ast.Ref):
            return self.ref(e, cx)
        if isinstance(e, ast.Call):
            return self.call(e, cx)
        if isinstance(e, ast.BinOp):
            return self.binop(e, cx)
        if isinstance(e, ast.Neg):
            code, t = self.expr(e.operand, cx)
            if t.kind not in ("number", "any"):
                self.errors.add("type_error", f"`-` needs a number, not a {t}", e.loc)
            return f"_neg({code})", NUMBER
        if isinstance(e, ast.Member):
            elem, et = self.expr(e.element, cx)
            coll, ct = self.expr(e.collection, cx)
            self.check_member(et, ct, e)
            if ct.kind == "set" and et.kind == "string":
                return f"({elem} in {coll})", BOOLEAN
            return f"_member({elem}, {coll})", BOOLEAN
        if isinstance(e, ast.Array):
            items = [self.expr(i, cx) for i in e.items]
            array_type = Type("array", _join([t for _c, t in items]))
            if all(isinstance(i, ast.Scalar) for i in e.items):
                return self.const(tuple(_constant(i) for i in e.items)), array_type
            return f"({''.join(c + ', ' for c, _t in items)})", array_type
        if isinstance(e, ast.SetLit):
            items = [self.expr(i, cx) for i in e.items]
            set_type = Type("set", _join([t for _c, t in items]))
            if all(isinstance(i, ast.Scalar) for i in e.items):
                return self.const(frozenset(_constant(i) for i in e.items)), set_type
            return f"_to_set([{', '.join(c for c, _t in items)}])", set_type
        if isinstance(e, ast.Object):
            keys = [self.expr(k, cx)[0] for k, _ in e.pairs]
            vals = [self.expr(v, cx) for _, v in e.pairs]
            body = ", ".join(f"_freeze({k}): {v}" for k, (v, _t) in zip(keys, vals))
            return "{" + body + "}", Type("object", _join([t for _c, t in vals]))
        if isinstance(e, ast.ArrayCompr | ast.SetCompr | ast.ObjectCompr):
            return self.comprehension(e)
        raise AssertionError(f"unknown expression {e!r}")

    def comprehension(self, e: ast.ArrayCompr | ast.SetCompr | ast.ObjectCompr) -> tuple[str, Type]:
        out = self.tmp("o")
        result_type: Type = ANY

        def build(pys: list[str]) -> None:
            nonlocal result_type
            self.fn.emit(f"{out} = []")
            self.fn.result = out
            self.body(e.body)
            if isinstance(e, ast.ObjectCompr):
                k, _ = self.expr(e.key, "ctx")
                v, vt = self.expr(e.value, "ctx")
                self.fn.emit("try:")
                self.fn.emit(f"    {out}.append(({k}, {v}))")
                self.fn.emit(f"except _U: {self.fn.fail}")
                result_type = Type("object", vt)
            else:
                t, tt = self.expr(e.term, "ctx")
                self.fn.emit("try:")
                self.fn.emit(f"    {out}.append({t})")
                self.fn.emit(f"except _U: {self.fn.fail}")
                result_type = Type("array" if isinstance(e, ast.ArrayCompr) else "set", tt)
            self.fn.lines.append("    " * (self.fn.indent - self.fn.loops) + f"return {out}")

        name = self.nested([], build)
        if isinstance(e, ast.ArrayCompr):
            return f"tuple({name}())", result_type
        if isinstance(e, ast.SetCompr):
            return f"_to_set({name}())", result_type
        return f"_build_object({name}(), 'object comprehension')", result_type

    def binop(self, e: ast.BinOp, cx: str) -> tuple[str, Type]:
        left, lt = self.expr(e.left, cx)
        right, rt = self.expr(e.right, cx)
        op = e.op
        if op in ("==", "!="):
            self.check_comparable(op, lt, rt, e.loc)
            if lt.kind == rt.kind == "string" or ("string" in (lt.kind, rt.kind) and isinstance(e.left, ast.Scalar | ast.Ref | ast.Var) and isinstance(e.right, ast.Scalar | ast.Ref | ast.Var) and (isinstance(e.left, ast.Scalar) or isinstance(e.right, ast.Scalar))):
                return f"({left} {op} {right})", BOOLEAN
            return f"{'_eq' if op == '==' else '_ne'}({left}, {right})", BOOLEAN
        if op in ("<", "<=", ">", ">="):
            if lt.is_scalar and rt.is_scalar and lt.kind != rt.kind and "null" not in (lt.kind, rt.kind):
                self.errors.add("type_error", f"`{op}` compares a {lt} with a {rt}", e.loc)
            if lt.kind == rt.kind and lt.kind in ("number", "string"):
                return f"({left} {op} {right})", BOOLEAN
            if op == "<":
                return f"_less({left}, {right})", BOOLEAN
            if op == ">":
                return f"_less({right}, {left})", BOOLEAN
            if op == "<=":
                return f"(not _less({right}, {left}))", BOOLEAN
            return f"(not _less({left}, {right}))", BOOLEAN
        if op in ("|", "&"):
            for t, side in ((lt, e.left), (rt, e.right)):
                if t.kind not in ("set", "any"):
                    self.errors.add("type_error", f"`{op}` needs sets, not a {t}", side.loc)
            return f"{'_union' if op == '|' else '_intersect'}({left}, {right})", Type("set", _join([lt.elem or ANY, rt.elem or ANY]))
        helper = {"+": "_add", "-": "_sub", "*": "_mul", "/": "_div", "%": "_mod"}[op]
        for t, side in ((lt, e.left), (rt, e.right)):
            if t.kind not in ("number", "any") and not (op == "-" and t.kind == "set"):
                self.errors.add("type_error", f"`{op}` needs numbers, not a {t}", side.loc)
        if op == "-" and "set" in (lt.kind, rt.kind):
            result = lt if lt.kind == "set" else rt
        elif lt.kind == rt.kind == "number" or op != "-":
            result = NUMBER
        else:
            result = ANY  # `-` of unknowns: numbers or sets
        return f"{helper}({left}, {right})", result

    def call(self, e: ast.Call, cx: str) -> tuple[str, Type]:
        fast = self.fast_sprintf(e, cx)
        if fast is not None:
            return fast, STRING
        args = [self.expr(a, cx) for a in e.args]
        arg_code = ", ".join(c for c, _ in args)
        # a user function: local name, or data.<package>.<name>
        group: RuleGroup | None = None
        if "." not in e.name:
            group = self.program.groups.get(self.package, {}).get(e.name)
        elif e.name.startswith("data."):
            group, rest = self.find_rule(tuple(e.name.split(".")[1:]))
            if rest:
                group = None
        if group is not None:
            if group.kind != ast.FUNCTION:
                self.errors.add("type_error", f"`{e.name}` is a rule, not a function", e.loc)
                return "None", ANY
            arity = len(group.definitions[0].args) if group.definitions else 0
            if arity != len(args):
                self.errors.add(
                    "arity", f"`{e.name}` takes {arity} argument{'s' * (arity != 1)}, not {len(args)}", e.loc
                )
            self.group.depends.add(group.index)
            return f"_g{group.index}(ctx{', ' if args else ''}{arg_code})".replace("(ctx", f"({cx}", 1), ANY
        builtin = self.program.extra_builtins.get(e.name) or BUILTINS.get(e.name)
        if builtin is None:
            local_functions = [n for n, g in self.program.groups.get(self.package, {}).items() if g.kind == ast.FUNCTION]
            self.errors.add(
                "unknown_function",
                f"`{e.name}` is not a builtin or a function of this package",
                e.loc,
                _did_you_mean(e.name, list(BUILTINS) + list(self.program.extra_builtins) + local_functions),
            )
            return "None", ANY
        if builtin.arity != len(args):
            self.errors.add(
                "arity",
                f"`{e.name}` takes {builtin.arity} argument{'s' * (builtin.arity != 1)}, not {len(args)}",
                e.loc,
            )
        fname = "_b_" + e.name.replace(".", "_")
        self.program.namespace[fname] = builtin.fn
        try:
            rtype = parse_type(builtin.result)
        except ValueError:
            rtype = ANY
        return f"{fname}({arg_code})", rtype

    def fast_sprintf(self, e: ast.Call, cx: str) -> str | None:
        """`sprintf` with a constant format of plain `%s`/`%v` and an array literal of as
        many values compiles to string concatenation: deny messages are on the hot path."""
        if e.name != "sprintf" or len(e.args) != 2 or "sprintf" in self.program.groups.get(self.package, {}):
            return None
        fmt, values = e.args
        if not (isinstance(fmt, ast.Scalar) and isinstance(fmt.value, str) and isinstance(values, ast.Array)):
            return None
        pieces = _PLAIN_VERB.split(fmt.value)
        if len(pieces) != len(values.items) + 1 or "%" in "".join(pieces):
            return None
        parts: list[str] = []
        for i, piece in enumerate(pieces):
            if piece:
                parts.append(repr(piece))
            if i < len(values.items):
                code, _t = self.expr(values.items[i], cx)
                parts.append(f"_plain({code})")
        self.program.namespace["_plain"] = plain_text
        return "(" + " + ".join(parts or ["''"]) + ")"

    def find_rule(self, path: tuple[str, ...]) -> tuple[RuleGroup | None, tuple[str, ...]]:
        """The rule that `data.<path>` names, and the steps left after it."""
        for cut in range(len(path) - 1, 0, -1):
            package = ".".join(path[:cut])
            if package in self.program.groups:
                group = self.program.groups[package].get(path[cut])
                return group, path[cut + 1:]
        return None, path

    def ref(self, e: ast.Ref, cx: str) -> tuple[str, Type]:
        name = e.head.name
        path = list(e.path)
        local = self.lookup(name)
        if local is not None and not local.declared_only:
            local.used = True
            return self.steps(local.py, local.type, path, cx)
        if local is not None and local.declared_only:
            self.errors.add("unsafe_var", f"var `{name}` is declared but not bound before use", e.head.loc)
            return "None", ANY
        if name in self.imports:
            imported = self.imports[name]
            return self.ref(ast.Ref(imported.head, imported.path + tuple(path), loc=e.loc), cx)
        if name == "input":
            root = self.program.schema.root if self.program.schema is not None else ANY
            return self.steps(f"{cx}.input", root, path, cx, typed_from="input")
        if name == "data":
            consts: list[str] = []
            for step in path:
                if isinstance(step, ast.Scalar) and isinstance(step.value, str):
                    consts.append(step.value)
                else:
                    break
            for cut in range(len(consts), 0, -1):
                package = ".".join(consts[:cut])
                if package in self.program.groups:
                    if cut == len(consts):
                        self.errors.add("type_error", f"`data.{package}` is a package: name one of its rules", e.loc)
                        return "None", ANY
                    group = self.program.groups[package].get(consts[cut])
                    if group is None:
                        self.errors.add(
                            "unknown_rule",
                            f"package `{package}` has no rule `{consts[cut]}`",
                            e.loc,
                            _did_you_mean(consts[cut], self.program.groups[package]),
                        )
                        return "None", ANY
                    return self.rule_value(group, path[cut + 1:], cx, e.loc)
            data_root = self.program.schema.data if self.program.schema is not None else None
            return self.steps(f"{cx}.data", data_root or ANY, path, cx)
        group = self.program.groups.get(self.package, {}).get(name)
        if group is not None:
            return self.rule_value(group, path, cx, e.loc)
        if name == "_":
            self.errors.add("unsafe_var", "`_` cannot be used as a value", e.head.loc)
            return "None", ANY
        candidates = list(self.names_in_scope()) + list(self.program.groups.get(self.package, {})) + ["input", "data"]
        self.errors.add("unsafe_var", f"var `{name}` is unsafe: it is not bound before use", e.head.loc, _did_you_mean(name, candidates))
        return "None", ANY

    def rule_value(self, group: RuleGroup, path: Sequence[ast.Expr], cx: str, loc: ast.Location) -> tuple[str, Type]:
        if group.kind == ast.FUNCTION:
            self.errors.add("type_error", f"`{group.name}` is a function: call it with arguments", loc)
            return "None", ANY
        self.group.depends.add(group.index)
        t = Type("set", ANY) if group.kind == ast.SET else Type("object", ANY) if group.kind == ast.OBJECT else ANY
        return self.steps(f"_g{group.index}({cx})", t, list(path), cx)

    def steps(self, code: str, type_: Type, path: list[ast.Expr], cx: str, typed_from: str | None = None) -> tuple[str, Type]:
        for step in path:
            if isinstance(step, ast.Var) and (step.name == "_" or not self.bound(step.name)) and self.lookup_global(step.name) is None:
                # iteration: bind the index variable over the collection's keys
                self.check_iterable(type_, step.loc)
                coll = self.tmp("c")
                value = self.tmp("e")
                fn = self.fn
                fn.emit("try:")
                fn.emit(f"    {coll} = {code}")
                fn.emit(f"except _U: {fn.fail}")
                key_type = NUMBER if type_.kind == "array" else STRING if type_.kind in ("object", "record") else _elem_type(type_)
                key = self.bind(step.name, key_type, step.loc) if step.name != "_" else self.tmp("w")
                if step.name != "_":
                    var = self.lookup(step.name)
                    if var is not None:
                        var.used = True  # an iteration index is used by the iteration itself
                fn.emit(f"for {key}, {value} in _items({coll}):")
                fn.indent += 1
                fn.loops += 1
                code, type_ = value, _elem_type(type_)
                continue
            if isinstance(step, ast.Scalar) and isinstance(step.value, str):
                field_type = self.field(type_, step.value, step.loc)
                if type_.kind in ("record", "object"):
                    code = f"{code}[{step.value!r}]"
                else:
                    code = f"_get({code}, {step.value!r})"
                type_ = field_type
                continue
            key, _key_type = self.expr(step, cx)
            if type_.kind == "record":
                type_ = ANY
            elif type_.is_scalar:
                self.errors.add("type_error", f"a {type_} cannot be indexed", step.loc)
                type_ = ANY
            else:
                type_ = _elem_type(type_)
            code = f"_get({code}, {key})"
        return code, type_

    def field(self, t: Type, name: str, loc: ast.Location) -> Type:
        if t.kind == "record" and self.program.schema is not None:
            fields = self.program.schema.fields(t)
            if name not in fields:
                self.errors.add(
                    "unknown_field",
                    f"`{name}` is not a field of {_article(t.record or '')}",
                    loc,
                    _did_you_mean(name, fields),
                )
                return ANY
            return fields[name]
        if t.kind in ("string", "number", "boolean", "null"):
            self.errors.add("type_error", f"a {t} has no field `{name}`", loc)
            return ANY
        if t.kind in ("array", "set"):
            self.errors.add("type_error", f"an {t.kind} is indexed by position, not by `{name}`" if t.kind == "array" else f"a set has no field `{name}`", loc)
            return ANY
        if t.kind == "object":
            return t.elem or ANY
        return ANY

    # type checks
    def check_iterable(self, t: Type, loc: ast.Location) -> None:
        if t.is_scalar:
            self.errors.add("type_error", f"a {t} cannot be iterated", loc)

    def check_member(self, et: Type, ct: Type, e: ast.Member) -> None:
        if ct.is_scalar:
            self.errors.add("type_error", f"`in` needs a collection, not a {ct}", e.collection.loc)
            return
        elem = ct.elem if ct.kind in ("set", "array", "object") else None
        if elem is not None and elem.is_scalar and et.is_scalar and elem.kind != et.kind and "null" not in (elem.kind, et.kind):
            self.errors.add("type_error", f"a {et} is never in a {ct}", e.loc)

    def check_comparable(self, op: str, lt: Type, rt: Type, loc: ast.Location) -> None:
        if op == "!=":
            return  # values of different types are always unequal: that can hold
        if lt.kind == "any" or rt.kind == "any" or lt.kind == rt.kind:
            return
        if (lt.kind == "null" and rt.nullable) or (rt.kind == "null" and lt.nullable):
            return
        if (lt.kind == "record" and rt.kind == "object") or (rt.kind == "record" and lt.kind == "object"):
            return
        self.errors.add("type_error", f"`{op}` compares a {lt} with a {rt}: it can never hold", loc)


def _article(name: str) -> str:
    word = name[:1].lower() + "".join(" " + c.lower() if c.isupper() else c for c in name[1:])
    return ("an " if word[:1] in "aeiou" else "a ") + word


def _scalar_type(value: Any) -> Type:
    if value is None:
        return NULL
    if isinstance(value, bool):
        return BOOLEAN
    if isinstance(value, int | float):
        return NUMBER
    return STRING


def _elem_type(t: Type) -> Type:
    if t.kind in ("set", "array", "object"):
        return t.elem or ANY
    return ANY


def _join(types: Sequence[Type]) -> Type:
    kinds = {t.kind for t in types}
    if len(kinds) == 1:
        return types[0]
    return ANY


def _is_boolean_expr(e: ast.Expr) -> bool:
    return isinstance(e, ast.Member) or (isinstance(e, ast.BinOp) and e.op in ("==", "!=", "<", "<=", ">", ">="))


def check_bodies(program: _Program) -> None:
    """Resolve every name, type-check `input` references, check safety and unused
    variables, resolve calls; generate each definition's Python function."""
    counter = itertools.count()
    for module in program.modules:
        table = program.groups.get(module.package_name, {})
        for rule in module.rules:
            group = table.get(rule.name)
            if group is None or rule.kind == ast.DEFAULT:
                continue  # defaults are constants, compiled by `_compile_defaults`
            _compile_definition(program, module, group, rule, counter)


def _compile_definition(program: _Program, module: ast.Module, group: RuleGroup, rule: ast.Rule, counter: Any) -> None:
    fname = f"_d{group.index}_{next(counter)}"
    lines = _definition_lines(program, module, group, rule, counter, inline=False)
    params = ["ctx", "out", *(f"_a{i}" for i in range(len(rule.args)))] if rule.kind == ast.FUNCTION else ["ctx", "out"]
    program.source.append(f"def {fname}({', '.join(params)}):")
    program.source.extend(lines or ["    pass"])
    program.source.append("")
    program.def_functions.setdefault(group.index, []).append(fname)
    if group.name in DECISION_RULES and not program.errors:
        # the same body again, to be inlined into the fused decision function: errors
        # were reported by the first pass, so this one's go nowhere
        reported = program.errors
        program.errors = _Errors()
        try:
            program.inline_code[fname] = _definition_lines(program, module, group, rule, counter, inline=True)
        finally:
            program.errors = reported


def _definition_lines(
    program: _Program, module: ast.Module, group: RuleGroup, rule: ast.Rule, counter: Any, *, inline: bool
) -> list[str]:
    bc = _BodyCompiler(program, module, group, counter)
    if inline:
        bc.fn = _Fn(3)
        bc.fn.depth0 = "break"
    if rule.kind == ast.FUNCTION:
        for i, arg in enumerate(rule.args):
            pname = f"_a{i}"
            if isinstance(arg, ast.Var) and arg.name != "_":
                py = bc.bind(arg.name, ANY, arg.loc)
                bc.fn.emit(f"{py} = {pname}")
            elif isinstance(arg, ast.Scalar):
                bc.fn.emit(f"if not _eq({pname}, {arg.value!r}): return")
            elif not (isinstance(arg, ast.Var) and arg.name == "_"):
                program.errors.add("type_error", "function parameters are variables or constants", arg.loc)
    bc.body(rule.body)
    fn = bc.fn
    if rule.kind == ast.OBJECT:
        assert rule.key is not None and rule.value is not None
        key, _ = bc.expr(rule.key, "ctx")
        value, _ = bc.expr(rule.value, "ctx")
        fn.emit("try:")
        fn.emit(f"    out.append(({key}, {value}))")
        fn.emit(f"except _U: {fn.fail}")
    else:
        assert rule.value is not None
        value, _ = bc.expr(rule.value, "ctx")
        fn.emit("try:")
        fn.emit(f"    out.append({value})")
        fn.emit(f"except _U: {fn.fail}")
        if rule.kind in (ast.COMPLETE, ast.FUNCTION) and isinstance(rule.value, ast.Scalar) and fn.loops and not inline:
            # one solution decides a constant-valued rule: stop searching
            fn.emit("return")
    for scope in bc.scopes:
        bc.end_scope_check(scope)
    return fn.lines


# ── stage 4: recursion ───────────────────────────────────────────────────────────────


def check_recursion(program: _Program) -> None:
    """Rules may not depend on themselves, directly or through others (as in Rego)."""
    state: dict[int, int] = {}  # 1 visiting, 2 done
    reported: set[int] = set()

    def visit(index: int, stack: list[int]) -> None:
        state[index] = 1
        stack.append(index)
        for dep in sorted(program.by_index[index].depends):
            if state.get(dep) == 1:
                cycle = stack[stack.index(dep):]
                if not reported.intersection(cycle):
                    reported.update(cycle)
                    names = " → ".join(f"`{program.by_index[i].name}`" for i in [*cycle, dep])
                    program.errors.add("recursion", f"rules depend on themselves: {names}", program.by_index[dep].loc)
            elif dep not in state:
                visit(dep, stack)
        stack.pop()
        state[index] = 2

    for group in program.by_index:
        if group.index not in state:
            visit(group.index, [])


# ── stage 5: assembly ────────────────────────────────────────────────────────────────


def assemble(program: _Program) -> None:
    """Generate each rule group's function (memo, defaults, conflicts) and compile."""
    src = program.source
    for group in program.by_index:
        defs = program.def_functions.get(group.index, [])
        what = repr(f"rule `{group.qualified}`")
        i = group.index
        if group.kind == ast.FUNCTION:
            params = ", ".join(f"_a{n}" for n in range(len(group.definitions[0].args))) if group.definitions else ""
            src.append(f"def _g{i}(ctx{', ' if params else ''}{params}):")
            src.append("    out = []")
            for d in defs:
                src.append(f"    {d}(ctx, out{', ' if params else ''}{params})")
            src.append("    if not out: raise _Undefined")
            src.append(f"    return _single(out, {what})")
            src.append("")
            continue
        src.append(f"def _g{i}(ctx):")
        src.append("    memo = ctx.memo")
        src.append(f"    if {i} in memo:")
        src.append(f"        value = memo[{i}]")
        src.append("        if value is _MISSING: raise _Undefined")
        src.append("        return value")
        src.append("    out = []")
        for d in defs:
            src.append(f"    {d}(ctx, out)")
        if group.kind == ast.SET:
            src.append("    value = _to_set(out)")
        elif group.kind == ast.OBJECT:
            src.append(f"    value = _build_object(out, {what})")
        else:
            src.append("    if out:")
            src.append(f"        value = _single(out, {what})")
            if group.default is not None:
                default_fn = f"_d{i}_default"
                src.append("    else:")
                src.append("        dv = []")
                src.append(f"        {default_fn}(ctx, dv)")
                src.append("        value = dv[0]")
            else:
                src.append("    else:")
                src.append(f"        memo[{i}] = _MISSING")
                src.append("        raise _Undefined")
        src.append(f"    memo[{i}] = value")
        src.append("    return value")
        src.append("")
    if program.errors:
        return
    namespace = program.namespace
    namespace.update(program.constants)
    namespace.update(
        _U=runtime.UNDEFINED_ERRORS,
        _Undefined=runtime.Undefined,
        _MISSING=runtime.MISSING,
        _get=runtime.get,
        _values=runtime.values_of,
        _items=runtime.items_of,
        _member=runtime.member,
        _eq=runtime.eq,
        _ne=runtime.ne,
        _add=runtime.add,
        _sub=runtime.sub,
        _mul=runtime.mul,
        _div=runtime.div,
        _mod=runtime.mod,
        _neg=runtime.neg,
        _union=runtime.union,
        _intersect=runtime.intersect,
        _less=runtime.less,
        _to_set=runtime.to_set,
        _single=runtime.single,
        _build_object=runtime.build_object,
        _with_=runtime.with_,
        _freeze=freeze,
    )
    code = compile("\n".join(src), "<subguard policy>", "exec")
    exec(code, namespace)


#: The compiler's stages, in order. Each takes the program and adds to its errors.
STAGES: Final[tuple[Callable[[_Program], None], ...]] = (
    collect_rules,
    resolve_imports,
    check_bodies,
    check_recursion,
    assemble,
)


def _first(hit: tuple[int, list[Any]]) -> int:
    return hit[0]


def _fuse(
    program: _Program,
    decisions: Sequence[tuple[str, str, str, Callable[..., Any]]],
    always: Sequence[int],
) -> Callable[..., None] | None:
    """One generated function that runs every unconditional decision definition inline,
    in order: no call, no list hand-off per definition. Each body is its own one-pass
    loop (a failing literal `break`s out of it) inside its own `try`, so a runtime error
    is caught per definition, as in the unfused path."""
    lines = ["def _decide_always(ctx, hits, raised):"]
    for i in always:
        body = program.inline_code.get(decisions[i][3].__name__)
        if body is None:
            return None
        lines += [
            "    out = []",
            "    try:",
            "        for _once in _ONCE:",
            *(body or ["            pass"]),
            "    except Exception as exc:",
            f"        raised.append(({i}, exc))",
            "    else:",
            "        if out:",
            f"            hits.append(({i}, out))",
        ]
    if len(lines) == 1:
        return None
    namespace = program.namespace
    namespace["_ONCE"] = (None,)
    exec(compile("\n".join(lines), "<subguard policy: fused>", "exec"), namespace)
    fused: Callable[..., None] = namespace["_decide_always"]
    return fused


def _fault(exc: Exception, package: str, rule: str, location: str) -> Fault:
    if isinstance(exc, runtime.EvalFault):
        return Fault(exc.code, str(exc), package, rule, location)
    if isinstance(exc, BuiltinError):
        return Fault("builtin_error", str(exc), package, rule, location)
    if isinstance(exc, RecursionError):
        return Fault("eval_error", "evaluation nested too deeply", package, rule, location)
    return Fault("eval_error", f"{type(exc).__name__}: {exc}", package, rule, location)


class CompiledPolicy:
    """Checked rules compiled to Python functions: decide many inputs, fast."""

    def __init__(self, program: _Program) -> None:
        self._groups = program.by_index
        self._schema = program.schema
        ns = program.namespace
        self._rule_fns: dict[str, Callable[[runtime.Ctx], Any]] = {
            g.qualified: ns[f"_g{g.index}"] for g in self._groups if g.kind != ast.FUNCTION
        }
        decisions: list[tuple[str, str, str, Callable[..., Any]]] = []
        guards: list[tuple[frozenset[str] | None, frozenset[str] | None]] = []
        module_of = {id(rule): module for module in program.modules for rule in module.rules}
        for g in self._groups:
            if g.name not in DECISION_RULES:
                continue
            for rule, fname in zip(g.definitions, program.def_functions.get(g.index, [])):
                decisions.append((g.package, g.name, rule.loc.short, ns[fname]))
                guards.append(_guard(rule, program.imports.get(id(module_of.get(id(rule))), {})))
        self._decisions = tuple(decisions)
        self._decision_fns = tuple(d[3] for d in decisions)
        self._namespace = ns
        self._index = _GuardIndex(guards)
        self._fused = _fuse(program, self._decisions, self._index.always)
        #: package → location of its `default allow := true`
        self._open_defaults = {
            g.package: g.default.loc.short
            for g in self._groups
            if g.name == "allow" and g.default is not None
            and isinstance(g.default.value, ast.Scalar) and g.default.value.value is True
        }
        self.packages = tuple(sorted(program.groups))
        self.source = "\n".join(program.source)
        self.rules = tuple(g.qualified for g in self._groups)

    def decision_outputs(self, input: Any, data: Any) -> Outputs:
        """Run every decision-rule definition; each that produced values is `Fired`.

        A default `allow` fires only when no `allow` definition of its package did.
        A runtime error inside a definition is a `Fault`, never an exception.
        """
        ctx = runtime.Ctx(input, data)
        fired: list[Fired] = []
        faults: list[Fault] = []
        allowed_packages: set[str] = set()
        decisions = self._decisions
        fns = self._decision_fns
        hits: list[tuple[int, list[Any]]] = []
        if self._fused is not None:
            # the unconditional definitions run inlined in one function; the indexed
            # ones that can fire for this input are called one by one
            raised: list[tuple[int, Exception]] = []
            self._fused(ctx, hits, raised)
            for i, exc in raised:
                package, rule, location, _fn = decisions[i]
                faults.append(_fault(exc, package, rule, location))
            candidates: Sequence[int] = self._index.extra(input)
        else:
            candidates = self._index.candidates(input)
        for i in candidates:
            out: list[Any] = []
            try:
                fns[i](ctx, out)
            except Exception as exc:  # fail closed on anything a rule throws
                package, rule, location, _fn = decisions[i]
                faults.append(_fault(exc, package, rule, location))
                continue
            if out:
                hits.append((i, out))
        if self._fused is not None and candidates and hits:
            hits.sort(key=_first)  # definition order, as the unfused path gives
        for i, out in hits:
            package, rule, location, _fn = decisions[i]
            if rule == "allow":
                if out[0] is not True and not any(v is True for v in out):
                    continue
                allowed_packages.add(package)
            fired.append(Fired(package, rule, location, tuple(out)))
        for package, location in self._open_defaults.items():
            if package not in allowed_packages:
                fired.append(Fired(package, "allow", location, (True,)))
        return Outputs(tuple(fired), tuple(faults))

    def watch_definitions(self, fired: Callable[[str], None]) -> None:
        """Call `fired(location)` whenever a decision-rule definition produces a value,
        however it is reached (directly, or through another rule). For coverage tools:
        it slows evaluation, so use it on a policy loaded for testing."""
        wrapped: list[Callable[..., Any]] = []
        for _package, _rule, location, fn in self._decisions:

            def traced(ctx: Any, out: list[Any], *args: Any, _fn: Any = fn, _loc: str = location) -> None:
                before = len(out)
                _fn(ctx, out, *args)
                if len(out) > before:
                    fired(_loc)

            self._namespace[fn.__name__] = traced
            wrapped.append(traced)
        self._decision_fns = tuple(wrapped)
        self._fused = None  # inlined bodies would not report

    def conform(self, input: Any) -> Any:
        """A JSON input document in the value model, its schema-typed sets as sets."""
        value = from_json(input)
        return conform(value, self._schema.root, self._schema) if self._schema is not None else value

    def evaluate_rule(self, name: str, input: Any, data: Any) -> Any:
        """The value of one rule (`package.rule`) for an input; raises `Undefined` when
        it has none, `EvalFault`/`BuiltinError` when it fails."""
        fn = self._rule_fns.get(name)
        if fn is None:
            raise KeyError(name)
        return fn(runtime.Ctx(self.conform(input), from_json(data)))

    def rule_locations(self) -> dict[str, list[str]]:
        """`package.rule` → the `file:line` of each of its definitions."""
        return {
            g.qualified: [r.loc.short for r in g.definitions] + ([g.default.loc.short] if g.default else [])
            for g in self._groups
        }

    def evaluate_all(self, input: Any, data: Any) -> dict[str, Any]:
        """Every non-function rule's value (absent when undefined; `"<error>"` when it
        raised). For tests and tools; decisions use `decision_outputs`."""
        ctx = runtime.Ctx(self.conform(input), from_json(data))
        result: dict[str, Any] = {}
        for name, fn in self._rule_fns.items():
            try:
                result[name] = fn(ctx)
            except runtime.UNDEFINED_ERRORS:
                continue
            except Exception:
                result[name] = "<error>"
        return result


# ── indexing decision rules by the statement kinds and tables they need ─────────────

_STATEMENTS = ("input", "sql", "statements")
_TABLE_SETS = {("input", "sql", "tables_read"), ("input", "sql", "tables_written")}


def _path_of(e: ast.Expr, imports: Mapping[str, ast.Ref]) -> tuple[str, ...] | None:
    """`input.sql.statements` (through import aliases) as a tuple of names, else None."""
    if isinstance(e, ast.Var):
        e = ast.Ref(e, ())
    if not isinstance(e, ast.Ref):
        return None
    if e.head.name in imports:
        imported = imports[e.head.name]
        e = ast.Ref(imported.head, imported.path + e.path)
    dotted = e.dotted()
    return tuple(dotted.split(".")) if dotted else None


def _constants(e: ast.Expr) -> frozenset[str] | None:
    if isinstance(e, ast.Scalar) and isinstance(e.value, str):
        return frozenset((e.value,))
    if isinstance(e, ast.SetLit | ast.Array) and all(
        isinstance(i, ast.Scalar) and isinstance(i.value, str) for i in e.items
    ):
        return frozenset(i.value for i in e.items)  # type: ignore[union-attr, misc]
    return None


def _guard(rule: ast.Rule, imports: Mapping[str, ast.Ref]) -> tuple[frozenset[str] | None, frozenset[str] | None]:
    """Necessary conditions a definition states at its top level: some statement of one
    of these kinds exists; one of these tables is read or written. A definition whose
    conditions the input cannot meet is never run: that is what keeps 1,000 rules that
    each name a kind or a table close to the cost of 20."""
    if any(getattr(lit, "withs", ()) for lit in rule.body):
        return None, None
    statement_vars: set[str] = set()
    table_vars: set[str] = set()
    kinds: frozenset[str] | None = None
    tables: frozenset[str] | None = None
    for lit in rule.body:
        if isinstance(lit, ast.SomeIn) and lit.key is None:
            path = _path_of(lit.collection, imports)
            if path == _STATEMENTS:
                statement_vars.add(lit.value)
            elif path in _TABLE_SETS or (
                path is not None and len(path) == 2 and path[0] in statement_vars
                and path[1] in ("tables_read", "tables_written")
            ):
                table_vars.add(lit.value)
            continue
        if not isinstance(lit, ast.ExprLiteral):
            continue
        e = lit.expr
        subject: ast.Expr | None = None
        values: frozenset[str] | None = None
        if isinstance(e, ast.BinOp) and e.op == "==":
            for a, b in ((e.left, e.right), (e.right, e.left)):
                if _constants(b) is not None and isinstance(b, ast.Scalar):
                    subject, values = a, _constants(b)
        elif isinstance(e, ast.Member):
            if isinstance(e.collection, ast.SetLit | ast.Array):
                subject, values = e.element, _constants(e.collection)
            elif isinstance(e.element, ast.Scalar) and isinstance(e.element.value, str):
                path = _path_of(e.collection, {})
                if path is not None and len(path) == 2 and path[0] in statement_vars and path[1] in ("tables_read", "tables_written"):
                    found = frozenset((e.element.value,))
                    tables = found if tables is None else tables & found
                continue
        if subject is None or values is None:
            continue
        path = _path_of(subject, {})
        if path is not None and len(path) == 2 and path[0] in statement_vars and path[1] == "kind":
            kinds = values if kinds is None else kinds & values
        elif path is not None and len(path) == 1 and path[0] in table_vars:
            tables = values if tables is None else tables & values
    return kinds, tables


class _GuardIndex:
    """Which decision definitions can fire for an input, found by dictionary lookups."""

    def __init__(self, guards: Sequence[tuple[frozenset[str] | None, frozenset[str] | None]]) -> None:
        self.count = len(guards)
        always: list[int] = []
        by_kind: dict[str, list[int]] = {}
        by_table: dict[str, list[int]] = {}
        by_both: dict[tuple[str, str], list[int]] = {}
        for i, (kinds, tables) in enumerate(guards):
            if kinds is None and tables is None:
                always.append(i)
            elif tables is None:
                for k in kinds or ():
                    by_kind.setdefault(k, []).append(i)
            elif kinds is None:
                for t in tables:
                    by_table.setdefault(t, []).append(i)
            else:
                for k in kinds:
                    for t in tables:
                        by_both.setdefault((k, t), []).append(i)
        self.always = tuple(always)
        self.by_kind = {k: tuple(v) for k, v in by_kind.items()}
        self.by_table = {k: tuple(v) for k, v in by_table.items()}
        self.by_both = {k: tuple(v) for k, v in by_both.items()}
        self.indexed = bool(by_kind or by_table or by_both)

    def extra(self, input: Any) -> Sequence[int]:
        """The indexed definitions (not `always`) that can fire for this input."""
        if not self.indexed:
            return ()
        try:
            sql = input["sql"]
            statements = sql["statements"]
            kinds: Any = (statements[0]["kind"],) if len(statements) == 1 else {s["kind"] for s in statements}
            table_sets = (sql["tables_read"], sql["tables_written"]) if self.by_table or self.by_both else ()
        except (KeyError, TypeError, IndexError):
            return ()
        chosen: list[int] = []
        by_kind, by_table, by_both = self.by_kind, self.by_table, self.by_both
        for k in kinds:
            hit = by_kind.get(k)
            if hit:
                chosen.extend(hit)
        for table_set in table_sets:
            for t in table_set:
                hit = by_table.get(t)
                if hit:
                    chosen.extend(hit)
                if by_both:
                    for k in kinds:
                        hit = by_both.get((k, t))
                        if hit:
                            chosen.extend(hit)
        if len(chosen) > 1:
            return sorted(set(chosen))
        return chosen

    def candidates(self, input: Any) -> Sequence[int]:
        """Every definition that can fire for this input: `always` and `extra`, in
        definition order (the unfused path)."""
        extra = self.extra(input)
        if not extra:
            return self.always
        return sorted({*self.always, *extra})


def compile_policy(
    modules: Sequence[ast.Module],
    *,
    schema: Schema | None = None,
    builtins: Mapping[str, Builtin] | None = None,
    stages: Sequence[Callable[[_Program], None]] = STAGES,
) -> CompiledPolicy:
    """Check and compile modules; raises `PolicyErrors` carrying every error found.

    `builtins` adds functions callable from policy text (by dotted name), checked for
    arity like the standard ones."""
    program = _Program(list(modules), schema, _Errors(), extra_builtins=dict(builtins or {}))
    for stage in stages:
        try:
            stage(program)
        except RecursionError:
            loc = program.modules[0].loc if program.modules else ast.NOWHERE
            program.errors.add("too_deep", "policy nests too deeply to compile", loc)
            break
        if stage is check_bodies:
            _compile_defaults(program)
        if program.errors and stage in (check_recursion,):
            break
    if program.errors:
        raise PolicyErrors(sorted(program.errors.items, key=lambda e: (e.path, e.line, e.col)))
    return CompiledPolicy(program)


def _compile_defaults(program: _Program) -> None:
    for group in program.by_index:
        if group.default is None:
            continue
        value = group.default.value
        if not isinstance(value, ast.Scalar | ast.Array | ast.SetLit | ast.Object):
            program.errors.add("type_error", "a default value must be a constant", group.default.loc)
            continue
        const_name = f"_kdefault{group.index}"
        program.constants[const_name] = _constant(value)
        program.source.append(f"def _d{group.index}_default(ctx, out):")
        program.source.append(f"    out.append({const_name})")
        program.source.append("")


def _constant(e: ast.Expr) -> Any:
    if isinstance(e, ast.Scalar):
        return e.value
    if isinstance(e, ast.Array):
        return tuple(_constant(i) for i in e.items)
    if isinstance(e, ast.SetLit):
        return runtime.to_set([_constant(i) for i in e.items])
    if isinstance(e, ast.Object):
        return {freeze(_constant(k)): _constant(v) for k, v in e.pairs}
    raise ValueError("not a constant")


def schema_from(records: Mapping[str, Mapping[str, str]], root: str) -> Schema:
    return Schema.from_strings(records, root)
