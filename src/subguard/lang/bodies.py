"""The body compiler: one rule definition's body (and the bodies nested in it) as lines
of Python, checked as they are written.

A body is flat code in which `some` opens a `for` loop and a failing literal
`continue`s to the next binding (or leaves the function when no loop is open), which is
Rego's backtracking without an interpreter. While it walks a body the generator also
resolves names and applies the type rules of `typecheck` (the static type of each
expression decides the code written for it), reporting into the program's errors.
Policy text never reaches `eval`: only code this module writes, from checked AST nodes,
with every user string embedded through `repr`.

The module is longer than most (about 650 lines) for one reason: `BodyCompiler` is one
walk whose literal and expression halves call each other (a comprehension holds a
body, `not` and `every` nest bodies in expressions); the type rules it applies live in
`typecheck`, the stages that drive it in `codegen`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from subguard.lang import ast, runtime
from subguard.lang.builtins import BUILTINS
from subguard.lang.builtins_text import constant_pattern_error, plain_text
from subguard.lang.program import Line, Program, RuleGroup, did_you_mean
from subguard.lang.typecheck import (
    check_argument,
    check_comparable,
    check_iterable,
    check_member,
    elem_type,
    field_type,
    is_boolean_expr,
    join,
    scalar_type,
)
from subguard.lang.types import ANY, BOOLEAN, NUMBER, STRING, Type
from subguard.lang.values import freeze

__all__ = ["BodyCompiler", "Fn", "constant", "render"]

_PLAIN_VERB = re.compile(r"%[sv]")

# What a loop charges the evaluation's budget as it starts (see `budget`): the size of
# what it iterates, inline (a call per loop would cost more than the check).
_CHARGE = "ctx.meter[0] -= len({0}) if type({0}) in _SIZED else 1"
_CHECK = "if ctx.meter[0] < 0: raise _over(ctx.meter)"



@attrs.define
class _Var:
    py: str
    type: Type
    loc: ast.Location
    used: bool = False
    declared_only: bool = False  # `some x` without a binding yet


class Fn:
    """Code being generated for one Python function: lines, indentation, loop depth."""

    def __init__(self, indent: int, leaves: bool = False) -> None:
        self.lines: list[Line] = []
        self.indent = indent
        self.loops = 0
        #: What a function returns when its body fails outside any loop (a
        #: comprehension returns what it collected: an empty collection, not undefined).
        self.result = ""
        #: A failure outside any loop ends the line with the statement `render` is
        #: given (an entrypoint body: `return` in its own function, `break` inlined).
        self.leaves = leaves

    def emit(self, line: str) -> None:
        self.lines.append((self.indent, line, False))

    def emit_failing(self, prefix: str) -> None:
        """`prefix` followed by what a failing literal does here: move on to the next
        binding, or leave."""
        if self.loops:
            self.lines.append((self.indent, prefix + "continue", False))
        elif self.leaves:
            self.lines.append((self.indent, prefix, True))
        else:
            self.lines.append((self.indent, prefix + (f"return {self.result}" if self.result else "return"), False))


def render(lines: Sequence[Line], base: int, leave: str = "") -> list[str]:
    """Generated lines as source text, the function holding them placed at `base`;
    `leave` ends the lines that leave the body."""
    rendered = []
    for indent, text, leaves in lines:
        if leaves:
            assert leave, "an entrypoint body is rendered with its leave statement"
            text += leave
        rendered.append("    " * (base + indent) + text)
    return rendered


class BodyCompiler:
    """Checks and generates one rule definition's body (and nested bodies)."""

    def __init__(self, program: Program, module: ast.Module, group: RuleGroup, counter: Any) -> None:
        self.program = program
        self.module = module
        self.group = group
        self.package = module.package_name
        self.errors = program.errors
        self.imports = program.imports.get(id(module), {})
        self.scopes: list[dict[str, _Var]] = [{}]
        self.counter = counter
        self.fn = Fn(0)

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
            self.errors.add("redeclared_var", f"var `{name}` is already bound", loc)
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
            fn.emit_failing("except _U: ")
            fn.emit(_CHARGE.format(tmp))
            fn.emit(_CHECK)
            check_iterable(self.errors, ctype, lit.collection.loc)
            elem = elem_type(ctype)
            if lit.key is None:
                value = self.bind(lit.value, elem, lit.loc)
                source = tmp if ctype.kind in ("array", "set") else f"_values({tmp})"
                fn.emit(f"for {value} in {source}:")
            else:
                self.note_computed(ctype)
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
        if is_boolean_expr(lit.expr):
            fn.emit_failing(f"    if not ({code}): ")
        else:
            fn.emit_failing(f"    if ({code}) is False: ")
        fn.emit_failing("except _U: ")

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
        self.fn.emit_failing("except _U: ")
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
            fn.emit_failing("except _U: ")
            py = self.bind(target.name, type_, target.loc)
            fn.emit(f"{py} = {tmp}")
            return
        if isinstance(target, ast.Array) and lit.op == ":=" and all(isinstance(i, ast.Var) for i in target.items):
            code, _ = self.expr(value, cx)
            tmp = self.tmp()
            fn.emit("try:")
            fn.emit(f"    {tmp} = {code}")
            fn.emit_failing(f"    if type({tmp}) is not tuple or len({tmp}) != {len(target.items)}: ")
            fn.emit_failing("except _U: ")
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
        check_comparable(self.errors, "==", lt, rt, lit.loc)
        fn.emit("try:")
        fn.emit_failing(f"    if not _eq({left}, {right}): ")
        fn.emit_failing("except _U: ")

    def names_in_scope(self) -> set[str]:
        return {n for s in self.scopes for n, v in s.items() if not v.declared_only}

    def _is_global(self, name: str) -> bool:
        return name in ("input", "data")

    def nested(self, params: Sequence[tuple[str, Type, ast.Location]], build: Callable[[list[str]], None]) -> str:
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
        """A record reached by a computed key (or handed whole to a builtin): any of its
        fields may be read."""
        if t.kind == "record":
            self.program.computed_fields = True

    def every(self, lit: ast.Every) -> None:
        fn = self.fn
        dom, dtype = self.expr(lit.domain, "ctx")
        check_iterable(self.errors, dtype, lit.domain.loc)
        elem = elem_type(dtype)
        if lit.key:
            self.note_computed(dtype)
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
        fn.emit(f"    {_CHARGE.format(tmp)}")
        fn.emit(f"    {_CHECK}")
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
        code, _ = self.expr(lit.expr, cx)
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
            return repr(e.value), scalar_type(e.value)
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
            check_member(self.errors, et, ct, e)
            if ct.kind == "set" and et.kind == "string":
                return f"({elem} in {coll})", BOOLEAN
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
        left, lt = self.expr(e.left, cx)
        right, rt = self.expr(e.right, cx)
        op = e.op
        if op in ("==", "!="):
            check_comparable(self.errors, op, lt, rt, e.loc)
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
            return f"{'_union' if op == '|' else '_intersect'}({left}, {right})", Type("set", join([lt.elem or ANY, rt.elem or ANY]))
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
            return f"_g{group.index}({cx}{', ' if args else ''}{arg_code})", ANY
        builtin = self.program.extra_builtins.get(e.name) or BUILTINS.get(e.name)
        if builtin is None:
            local_functions = [n for n, g in self.program.groups.get(self.package, {}).items() if g.kind == ast.FUNCTION]
            self.errors.add(
                "unknown_function",
                f"`{e.name}` is not a builtin or a function of this package",
                e.loc,
                did_you_mean(e.name, list(BUILTINS) + list(self.program.extra_builtins) + local_functions),
            )
            return "None", ANY
        named_key = e.name == "object.get" and len(e.args) == 3 and isinstance(e.args[1], ast.Scalar)
        for _code, actual in args[1:] if named_key else args:
            self.note_computed(actual)  # `object.get(s, "field", d)` reads a named field
        if builtin.arity != len(args):
            self.errors.add(
                "arity",
                f"`{e.name}` takes {builtin.arity} argument{'s' * (builtin.arity != 1)}, not {len(args)}",
                e.loc,
            )
        elif builtin.args is not None:
            for position, (declared, (_code, actual), arg) in enumerate(zip(builtin.args, args, e.args), 1):
                check_argument(self.errors, e.name, position, declared, actual, arg.loc)
        if e.name not in self.program.extra_builtins:
            constants = tuple(a.value if isinstance(a, ast.Scalar) else None for a in e.args)
            bad_pattern = constant_pattern_error(e.name, constants)
            if bad_pattern is not None:
                self.errors.add("invalid_regex", bad_pattern[1], e.args[bad_pattern[0]].loc)
        fname = "_b_" + e.name.replace(".", "_")
        self.program.namespace[fname] = builtin.fn
        return f"{fname}({arg_code})", builtin.result

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
                            did_you_mean(consts[cut], self.program.groups[package]),
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
        self.errors.add("unsafe_var", f"var `{name}` is unsafe: it is not bound before use", e.head.loc, did_you_mean(name, candidates))
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
                check_iterable(self.errors, type_, step.loc)
                self.note_computed(type_)
                coll = self.tmp("c")
                value = self.tmp("e")
                fn = self.fn
                fn.emit("try:")
                fn.emit(f"    {coll} = {code}")
                fn.emit_failing("except _U: ")
                fn.emit(_CHARGE.format(coll))
                fn.emit(_CHECK)
                key_type = NUMBER if type_.kind == "array" else STRING if type_.kind in ("object", "record") else elem_type(type_)
                key = self.bind(step.name, key_type, step.loc) if step.name != "_" else self.tmp("w")
                if step.name != "_":
                    var = self.lookup(step.name)
                    if var is not None:
                        var.used = True  # an iteration index is used by the iteration itself
                fn.emit(f"for {key}, {value} in _items({coll}):")
                fn.indent += 1
                fn.loops += 1
                code, type_ = value, elem_type(type_)
                continue
            if isinstance(step, ast.Scalar) and isinstance(step.value, str):
                of_field = field_type(self.errors, self.program.schema, type_, step.value, step.loc)
                if type_.kind in ("record", "object"):
                    code = f"{code}[{step.value!r}]"
                else:
                    code = f"_get({code}, {step.value!r})"
                type_ = of_field
                continue
            key, _key_type = self.expr(step, cx)
            self.note_computed(type_)
            if type_.kind == "record":
                type_ = ANY
            elif type_.is_scalar:
                self.errors.add("type_error", f"a {type_} cannot be indexed", step.loc)
                type_ = ANY
            else:
                type_ = elem_type(type_)
            code = f"_get({code}, {key})"
        return code, type_


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

