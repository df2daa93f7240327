"""The body compiler: one rule definition's body (and the bodies nested in it) as lines
of Python, checked as they are written.

A body is flat code in which `some` opens a `for` loop and a failing literal
`continue`s to the next binding (or leaves the function when no loop is open), which is
Rego's backtracking without an interpreter. While it walks a body the generator also
resolves names and applies the type rules of `typecheck` (the static type of each
expression decides the code written for it), reporting into the program's errors.
Policy text never reaches `eval`: only code this module writes, from checked AST nodes,
with every user string embedded through `repr`.

`BodyCompiler` is one walk whose literal and expression halves call each other (a
comprehension holds a body, `not` and `every` nest bodies in expressions); resolving
names and calls is its other half (`references`), what it writes into is `emit`, the
type rules it applies live in `typecheck`, the stages that drive it in `codegen`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from subguard.lang import ast, runtime
from subguard.lang.emit import CHARGE, CHECK, Fn, Var, render
from subguard.lang.program import Program, RuleGroup
from subguard.lang.references import References
from subguard.lang.typecheck import (
    check_comparable,
    check_iterable,
    check_member,
    check_truth_test,
    elem_type,
    is_boolean_expr,
    join,
    scalar_type,
)
from subguard.lang.types import ANY, BOOLEAN, NUMBER, STRING, Type
from subguard.lang.values import freeze

__all__ = ["BodyCompiler", "Fn", "constant", "render"]


class BodyCompiler(References):
    """Checks and generates one rule definition's body (and nested bodies)."""

    def __init__(
        self, program: Program, module: ast.Module, group: RuleGroup, counter: Any
    ) -> None:
        self.program = program
        self.module = module
        self.group = group
        self.package = module.package_name
        self.errors = program.errors
        self.imports = program.imports.get(id(module), {})
        self.scopes: list[dict[str, Var]] = [{}]
        self.counter = counter
        self.fn = Fn(0)
        #: the one expression whose value may hold a record without counting as read
        #: whole (see `whole`)
        self._bare_ok: ast.Expr | None = None

    # names and scopes
    def tmp(self, prefix: str = "t") -> str:
        return f"_{prefix}{next(self.counter)}"

    def lookup(self, name: str) -> Var | None:
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
            self.errors.add("redeclared_var", f"var `{name}` is already bound", loc)
        py = f"v_{name}_{next(self.counter)}"
        self.scopes[-1][name] = Var(py, type_, loc)
        return py

    def bound(self, name: str) -> bool:
        var = self.lookup(name)
        return var is not None and not var.declared_only

    def const(self, value: Any) -> str:
        name = f"_k{next(self.counter)}"
        self.program.constants[name] = value
        return name

    def end_scope_check(self, scope: dict[str, Var]) -> None:
        if not self.program.check_unused:
            return
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
                    self.scopes[-1][name] = Var(
                        f"v_{name}_{next(self.counter)}", ANY, lit.loc, declared_only=True
                    )
            return
        if isinstance(lit, ast.SomeIn):
            withs = self.withs(lit.withs) if lit.withs else "ctx"
            self._bare_ok = lit.collection  # iterated: each element bound to a variable
            coll, ctype = self.expr(lit.collection, withs)
            self._bare_ok = None
            tmp = self.tmp("c")
            fn.emit("try:")
            fn.emit(f"    {tmp} = {coll}")
            fn.emit_failing("except _U: ")
            fn.emit(CHARGE.format(tmp))
            fn.emit(CHECK)
            check_iterable(self.errors, ctype, lit.collection.loc)
            elem = elem_type(ctype)
            if lit.key is None:
                value = self.bind(lit.value, elem, lit.loc)
                source = tmp if ctype.kind in ("array", "set") else f"_values({tmp})"
                fn.emit(f"for {value} in {source}:")
            else:
                self.note_computed(ctype)
                key = self.bind(
                    lit.key,
                    STRING
                    if ctype.kind in ("object", "record")
                    else NUMBER
                    if ctype.kind == "array"
                    else elem,
                    lit.loc,
                )
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
        self._bare_ok = lit.expr  # a truth test: only whether it is false or undefined
        code, type_ = self.expr(lit.expr, cx)
        self._bare_ok = None
        check_truth_test(self.errors, lit.expr, type_, negated=False)
        fn.emit("try:")
        if is_boolean_expr(lit.expr):
            fn.emit_failing(f"    if not ({code}): ")
        else:
            fn.emit_failing(f"    if ({code}) is False: ")
        fn.emit_failing("except _U: ")

    def assign(self, lit: ast.Assign, cx: str) -> None:
        fn = self.fn
        target, value = lit.target, lit.value
        if lit.op == "=" and not self.has_unbound(target) and self.has_unbound(value):
            target, value = value, target
        if (
            isinstance(target, ast.Var)
            and (lit.op == ":=" or not self.bound(target.name))
            and not self._is_global(target.name)
        ):
            self._bare_ok = value  # bound whole to a variable, read through it
            code, type_ = self.expr(value, cx)
            self._bare_ok = None
            tmp = self.tmp()
            fn.emit("try:")
            fn.emit(f"    {tmp} = {code}")
            fn.emit_failing("except _U: ")
            py = self.bind(target.name, type_, target.loc)
            fn.emit(f"{py} = {tmp}")
            return
        if isinstance(target, ast.Array | ast.Object) and (
            lit.op == ":=" or self.has_unbound(target)
        ):
            # destructuring: `[a, b] := xs`, `{"k": v} = obj`
            code, _ = self.expr(value, cx)
            tmp = self.tmp()
            fn.emit("try:")
            fn.emit(f"    {tmp} = {code}")
            fn.emit_failing("except _U: ")
            self.match(target, tmp)
            return
        if lit.op == ":=":
            self.errors.add("type_error", "`:=` needs a variable on its left", lit.loc)
            return
        left, lt = self.expr(target, cx)
        right, rt = self.expr(value, cx)
        check_comparable(self.errors, "==", lt, rt, lit.loc)
        fn.emit("try:")
        fn.emit_failing(f"    if not _eq({left}, {right}): ")
        fn.emit_failing("except _U: ")

    def has_unbound(self, e: ast.Expr) -> bool:
        """Does `e` hold a variable not bound yet (so that `=` binds it)?"""
        if isinstance(e, ast.Var):
            return e.name == "_" or (not self.bound(e.name) and self.lookup_global(e.name) is None)
        if isinstance(e, ast.Array):
            return any(self.has_unbound(i) for i in e.items)
        if isinstance(e, ast.Object):
            return any(self.has_unbound(v) for _k, v in e.pairs)
        return False

    def match(self, pattern: ast.Expr, code: str) -> None:
        """Match the value in the variable `code` against `pattern`, binding the pattern's
        unbound variables (Rego's unification of a term with a value): an array of the
        same length, an object with the same keys, or a value equal to it."""
        fn = self.fn
        if isinstance(pattern, ast.Var) and pattern.name == "_":
            return
        if isinstance(pattern, ast.Var) and self.has_unbound(pattern):
            py = self.bind(pattern.name, ANY, pattern.loc)
            fn.emit(f"{py} = {code}")
            return
        if isinstance(pattern, ast.Array) and self.has_unbound(pattern):
            fn.emit_failing(
                f"if type({code}) is not tuple or len({code}) != {len(pattern.items)}: "
            )
            for i, item in enumerate(pattern.items):
                element = self.tmp("m")
                fn.emit(f"{element} = {code}[{i}]")
                self.match(item, element)
            return
        if isinstance(pattern, ast.Object) and self.has_unbound(pattern):
            fn.emit_failing(
                f"if not isinstance({code}, dict) or len({code}) != {len(pattern.pairs)}: "
            )
            for key, item in pattern.pairs:
                key_code, _t = self.expr(key, "ctx")
                element = self.tmp("m")
                fn.emit("try:")
                fn.emit(f"    {element} = _get({code}, _freeze({key_code}))")
                fn.emit_failing("except _U: ")
                self.match(item, element)
            return
        value, _t = self.expr(pattern, "ctx")
        fn.emit("try:")
        fn.emit_failing(f"    if not _eq({code}, {value}): ")
        fn.emit_failing("except _U: ")

    def names_in_scope(self) -> set[str]:
        return {n for s in self.scopes for n, v in s.items() if not v.declared_only}

    def _is_global(self, name: str) -> bool:
        return name in ("input", "data")

    def nested(
        self, params: Sequence[tuple[str, Type, ast.Location]], build: Callable[[list[str]], None]
    ) -> str:
        """Generate a closure `def _fN(params): …` at the current point; returns its name."""
        name = self.tmp("f")
        outer = self.fn
        self.fn = Fn(outer.indent + 1)
        self.scopes.append({})
        pys = [self.bind(n, t, loc) for n, t, loc in params]
        build(pys)
        scope = self.scopes.pop()
        self.end_scope_check(scope)
        inner = self.fn
        self.fn = outer
        outer.emit(f"def {name}({', '.join(pys)}):")
        outer.lines.extend(inner.lines or [(outer.indent + 1, "pass", False)])
        return name

    def note_computed(self, t: Type) -> None:
        """A record reached by a computed key (or handed whole to a builtin, alone or in
        a collection): any of its fields may be read."""
        if _holds_record(t):
            self.program.computed_fields = True

    def whole(self, e: ast.Expr, result: tuple[str, Type]) -> tuple[str, Type]:
        """A reference's value used whole. A value holding a record (`s`, `input.sql`,
        `input.sql.statements`) used other than by naming its fields may show any field:
        compared (`s == t`), passed to a function of the policy, returned by a rule,
        put in a collection or a message. Only binding it to a variable (`s := …`),
        iterating it by value (`some s in …`, `every`) or comparing it with null keeps
        what is read to the fields named, as do a truth test (`not input.sql.statements`)
        and `count` of an array (see `CompiledPolicy.reads`)."""
        if e is not self._bare_ok:
            self.note_computed(result[1])
        return result

    def every(self, lit: ast.Every) -> None:
        fn = self.fn
        self._bare_ok = lit.domain
        dom, dtype = self.expr(lit.domain, "ctx")
        self._bare_ok = None
        check_iterable(self.errors, dtype, lit.domain.loc)
        elem = elem_type(dtype)
        if lit.key:
            self.note_computed(dtype)
        params = ([(lit.key, ANY, lit.loc)] if lit.key else []) + [(lit.value, elem, lit.loc)]

        def build(pys: list[str]) -> None:
            for p in params:
                var = self.lookup(p[0]) if p[0] != "_" else None
                if var is not None:
                    var.used = True  # an `every` variable is used by the iteration itself
            self.body(lit.body)
            self.fn.emit("return True")

        check = self.nested(params, build)
        tmp = self.tmp("d")
        fn.emit("try:")
        fn.emit(f"    {tmp} = {dom}")
        fn.emit(f"    {CHARGE.format(tmp)}")
        fn.emit(f"    {CHECK}")
        if lit.key:
            fn.emit_failing(f"    if not all({check}(_a, _b) for _a, _b in _items({tmp})): ")
        else:
            fn.emit_failing(f"    if not all({check}(_a) for _a in _values({tmp})): ")
        fn.emit_failing("except _U: ")

    def not_literal(self, lit: ast.NotLiteral) -> None:
        fn = self.fn
        cx = self.withs(lit.withs) if lit.withs else "ctx"
        if self.iterates(lit.expr):

            def build(pys: list[str]) -> None:
                self.literal(ast.ExprLiteral(lit.expr, loc=lit.loc))
                self.fn.emit("return True")

            check = self.nested([], build)
            fn.emit_failing(f"if {check}(): ")
            return
        self._bare_ok = lit.expr
        code, type_ = self.expr(lit.expr, cx)
        self._bare_ok = None
        check_truth_test(self.errors, lit.expr, type_, negated=True)
        fn.emit("try:")
        if is_boolean_expr(lit.expr):
            fn.emit_failing(f"    if {code}: ")
        else:
            fn.emit_failing(f"    if ({code}) is not False: ")
        fn.emit("except _U: pass")

    def iterates(self, expr: ast.Expr) -> bool:
        """Does evaluating `expr` bind variables (a ref indexed by an unbound variable)?"""
        found = False

        def visit(e: Any) -> None:
            nonlocal found
            if isinstance(e, ast.Ref):
                for step in e.path:
                    if (
                        isinstance(step, ast.Var)
                        and (step.name == "_" or not self.bound(step.name))
                        and self.lookup_global(step.name) is None
                    ):
                        found = True
                    if isinstance(step, ast.Array | ast.Object) and self.has_unbound(step):
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
                if e.key is not None:
                    visit(e.key)
            elif isinstance(e, ast.Deref):
                visit(ast.Ref(ast.Var("input"), e.path))
                visit(e.base)
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
            if isinstance(e.value, float) and not math.isfinite(e.value):
                return self.const(e.value), NUMBER  # `repr` would write `inf`, no name
            return repr(e.value), scalar_type(e.value)
        if isinstance(e, ast.Var):
            return self.whole(e, self.ref(ast.Ref(e, (), loc=e.loc), cx))
        if isinstance(e, ast.Ref):
            return self.whole(e, self.ref(e, cx))
        if isinstance(e, ast.Call):
            return self.call(e, cx)
        if isinstance(e, ast.BinOp):
            return self.binop(e, cx)
        if isinstance(e, ast.Neg):
            code, t = self.expr(e.operand, cx)
            if t.kind not in ("number", "any"):
                self.errors.add("type_error", f"`-` needs a number, not a {t}", e.loc)
            return f"_neg({code})", NUMBER
        if isinstance(e, ast.Deref):
            base, base_type = self.expr(e.base, cx)
            return self.whole(e, self.steps(base, base_type, list(e.path), cx))
        if isinstance(e, ast.Member) and e.key is not None:
            key, _kt = self.expr(e.key, cx)
            elem, _et = self.expr(e.element, cx)
            coll, ct = self.expr(e.collection, cx)
            if ct.is_scalar and not isinstance(e.collection, ast.Scalar):
                self.errors.add(
                    "type_error", f"`in` needs a collection, not a {ct}", e.collection.loc
                )
            return f"_member_kv({key}, {elem}, {coll})", BOOLEAN
        if isinstance(e, ast.Member):
            elem, et = self.expr(e.element, cx)
            coll, ct = self.expr(e.collection, cx)
            if not isinstance(e.collection, ast.Scalar):
                # a typed value that is never a collection is a mistake the schema proves;
                # a literal (`1 in "foo"`) is simply false, as in OPA
                check_member(self.errors, et, ct, e)
            # never Python's `in`: on a string it tests substrings, on a dict its keys.
            # A string in a set is the hot path: Python's `in` when the values have the
            # types the checker expects, Rego's `_member` otherwise
            if et.kind == "string" and _string_constants(e.collection):
                tv = self.tmp("q")  # the collection is a constant of strings
                return (
                    f"({tv} in {coll} if type({tv} := {elem}) is str else _member({tv}, {coll}))",
                    BOOLEAN,
                )
            if _string_constant(e.element) and ct.kind == "set":
                cv = self.tmp("q")  # a string constant needs no test of its type
                return (
                    f"({elem} in {cv} if type({cv} := {coll}) is frozenset else _member({elem}, {cv}))",
                    BOOLEAN,
                )
            if et.kind == "string" and ct.kind == "set":
                tv, cv = self.tmp("q"), self.tmp("q")
                fast = f"{tv} in {cv} if (type({tv} := {elem}) is str) & (type({cv} := {coll}) is frozenset)"
                return f"({fast} else _member({tv}, {cv}))", BOOLEAN
            return f"_member({elem}, {coll})", BOOLEAN
        if isinstance(e, ast.Array):
            items = [self.expr(i, cx) for i in e.items]
            array_type = Type("array", join([t for _c, t in items]))
            if all(isinstance(i, ast.Scalar) for i in e.items):
                return self.const(tuple(constant(i) for i in e.items)), array_type
            return f"({''.join(c + ', ' for c, _t in items)})", array_type
        if isinstance(e, ast.SetLit):
            items = [self.expr(i, cx) for i in e.items]
            set_type = Type("set", join([t for _c, t in items]))
            if all(isinstance(i, ast.Scalar) for i in e.items):
                return self.const(frozenset(constant(i) for i in e.items)), set_type
            return f"_to_set([{', '.join(c for c, _t in items)}])", set_type
        if isinstance(e, ast.Object):
            keys = [self.expr(k, cx)[0] for k, _ in e.pairs]
            vals = [self.expr(v, cx) for _, v in e.pairs]
            body = ", ".join(f"_freeze({k}): {v}" for k, (v, _t) in zip(keys, vals))
            return "{" + body + "}", Type("object", join([t for _c, t in vals]))
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
                self.fn.emit_failing("except _U: ")
                result_type = Type("object", vt)
            else:
                t, tt = self.expr(e.term, "ctx")
                self.fn.emit("try:")
                self.fn.emit(f"    {out}.append({t})")
                self.fn.emit_failing("except _U: ")
                result_type = Type("array" if isinstance(e, ast.ArrayCompr) else "set", tt)
            self.fn.lines.append((self.fn.indent - self.fn.loops, f"return {out}", False))

        name = self.nested([], build)
        if isinstance(e, ast.ArrayCompr):
            return f"tuple({name}())", result_type
        if isinstance(e, ast.SetCompr):
            return f"_to_set({name}())", result_type
        return f"_build_object({name}(), 'object comprehension')", result_type

    def binop(self, e: ast.BinOp, cx: str) -> tuple[str, Type]:
        if e.op in ("==", "!=") and _null(e.right):
            self._bare_ok = e.left  # `input.sql != null` shows no field
        left, lt = self.expr(e.left, cx)
        if e.op in ("==", "!=") and _null(e.left):
            self._bare_ok = e.right
        right, rt = self.expr(e.right, cx)
        self._bare_ok = None
        op = e.op
        if op in ("==", "!="):
            check_comparable(self.errors, op, lt, rt, e.loc)
            # Python's `==` agrees with Rego's only when one side is a string constant
            # (`True == 1` holds in Python): anything else compares by Rego's rules
            if _string_constant(e.left) or _string_constant(e.right):
                return f"({left} {op} {right})", BOOLEAN
            return f"{'_eq' if op == '==' else '_ne'}({left}, {right})", BOOLEAN
        if op in ("<", "<=", ">", ">="):
            if (
                lt.is_scalar
                and rt.is_scalar
                and lt.kind != rt.kind
                and "null" not in (lt.kind, rt.kind)
            ):
                self.errors.add("type_error", f"`{op}` compares a {lt} with a {rt}", e.loc)
            a, b = (
                (self.tmp("q"), self.tmp("q"))
                if lt.kind == rt.kind and lt.kind in ("number", "string")
                else (left, right)
            )
            slow = {
                "<": f"_less({a}, {b})",
                ">": f"_less({b}, {a})",
                "<=": f"(not _less({b}, {a}))",
                ">=": f"(not _less({a}, {b}))",
            }[op]
            if a is left:
                return slow, BOOLEAN
            # two numbers or two strings compare as in Python; anything else (a boolean
            # is no number) by Rego's order of types. A constant side needs no test.
            test = "in _NUMS" if lt.kind == "number" else "is str"
            if _plain_constant(e.right):
                return (
                    f"({a} {op} {right} if type({a} := {left}) {test} else {slow.replace(b, right)})",
                    BOOLEAN,
                )
            if _plain_constant(e.left):
                return (
                    f"({left} {op} {b} if type({b} := {right}) {test} else {slow.replace(a, left)})",
                    BOOLEAN,
                )
            return (
                f"({a} {op} {b} if (type({a} := {left}) {test}) & (type({b} := {right}) {test}) else {slow})",
                BOOLEAN,
            )
        if op in ("|", "&"):
            for t, side in ((lt, e.left), (rt, e.right)):
                if t.kind not in ("set", "any"):
                    self.errors.add("type_error", f"`{op}` needs sets, not a {t}", side.loc)
            return f"{'_union' if op == '|' else '_intersect'}({left}, {right})", Type(
                "set", join([lt.elem or ANY, rt.elem or ANY])
            )
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


def _null(e: ast.Expr) -> bool:
    return isinstance(e, ast.Scalar) and e.value is None


def _holds_record(t: Type) -> bool:
    """A record, or a collection that holds records (at any depth)."""
    while t.kind != "record":
        if t.elem is None:
            return False
        t = t.elem
    return True


def _string_constants(e: ast.Expr) -> bool:
    """A set or array literal of strings only (compiled to one constant)."""
    return (
        isinstance(e, ast.SetLit | ast.Array)
        and bool(e.items)
        and all(_string_constant(i) for i in e.items)
    )


def _plain_constant(e: ast.Expr) -> bool:
    """A number or string literal (not a boolean, whose type the fast paths test)."""
    return isinstance(e, ast.Scalar) and type(e.value) in (int, float, str)


def _string_constant(e: ast.Expr) -> bool:
    return isinstance(e, ast.Scalar) and type(e.value) is str


def constant(e: ast.Expr) -> Any:
    """The value of a constant expression (checked by the caller)."""
    if isinstance(e, ast.Scalar):
        return e.value
    if isinstance(e, ast.Array):
        return tuple(constant(i) for i in e.items)
    if isinstance(e, ast.SetLit):
        return runtime.to_set([constant(i) for i in e.items])
    if isinstance(e, ast.Object):
        return {freeze(constant(k)): constant(v) for k, v in e.pairs}
    raise ValueError("not a constant")
