"""The half of the body compiler that resolves names: references (`input`, `data`,
rules, packages, locals, imports), their steps (fields, indexes, iteration), calls of
functions and builtins, and `with` (documents, rules and functions replaced).
`BodyCompiler` (`bodies`) inherits it; the two halves call each other."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from subguard.lang import ast, budget
from subguard.lang.builtins import BUILTINS
from subguard.lang.builtins_text import constant_pattern_error, plain_text
from subguard.lang.emit import CHARGE, CHECK
from subguard.lang.program import RuleGroup, did_you_mean, find_group, function_key
from subguard.lang.typecheck import check_argument, check_iterable, elem_type, field_type
from subguard.lang.types import ANY, NUMBER, STRING, Type

if TYPE_CHECKING:
    from subguard.lang.emit import Fn, Var
    from subguard.lang.program import Errors, Program

__all__ = ["References"]

_PLAIN_VERB = re.compile(r"%[sv]")


class References:
    """Name resolution and calls, for `BodyCompiler`."""

    if TYPE_CHECKING:
        program: Program
        package: str
        errors: Errors
        imports: dict[str, ast.Ref]
        group: RuleGroup
        fn: Fn

        def expr(self, e: ast.Expr, cx: str) -> tuple[str, Type]: ...
        def tmp(self, prefix: str = "t") -> str: ...
        def lookup(self, name: str) -> Var | None: ...
        def bind(self, name: str, type_: Type, loc: ast.Location) -> str: ...
        def bound(self, name: str) -> bool: ...
        def lookup_global(self, name: str) -> str | None: ...
        def names_in_scope(self) -> set[str]: ...
        def has_unbound(self, e: ast.Expr) -> bool: ...
        def match(self, pattern: ast.Expr, code: str) -> None: ...
        def note_computed(self, t: Type) -> None: ...

        _bare_ok: ast.Expr | None

    def withs(self, withs: Sequence[ast.With]) -> str:
        parts = []
        for w in withs:
            root = w.target.head.name
            dotted = w.target.dotted()
            key = function_key(self.program, self.package, dotted) if dotted is not None else None
            if key is not None:
                parts.append(f"('fn', (), {key!r}, {self.replacement(w.value)})")
                continue
            path: list[Any] = []
            for step in w.target.path:
                if not isinstance(step, ast.Scalar):
                    self.errors.add("type_error", "`with` needs a constant path", w.loc)
                    return "ctx"
                path.append(step.value)
            if root not in ("input", "data"):
                self.errors.add(
                    "type_error",
                    "`with` replaces `input`, `data`, a rule under `data` or a function",
                    w.loc,
                )
                return "ctx"
            rule_index = None
            if root == "data":
                group, rest = self.find_rule(tuple(str(p) for p in path))
                if group is not None and not rest:
                    rule_index = group.index
                    self.group.depends.add(group.index)
            if root == "input" and self.typed_records(path):
                # in place of a part of the input that holds records (`with input.sql as
                # input.command.sql`): rules read it as they read that part, by field names
                self._bare_ok = w.value
            value, _ = self.expr(w.value, "ctx")
            self._bare_ok = None
            parts.append(f"({root!r}, {tuple(path)!r}, {rule_index!r}, {value})")
        cx = self.tmp("w")
        self.fn.emit("try:")
        self.fn.emit(f"    {cx} = _with_(ctx, ({', '.join(parts)},))")
        self.fn.emit_failing("except _U: ")
        return cx

    def typed_records(self, path: list[Any]) -> bool:
        """Whether `input` at `path` is declared to hold records (`input.sql`)."""
        schema = self.program.schema
        if schema is None:
            return False
        t = schema.root
        for step in path:
            if t.kind != "record" or not isinstance(step, str):
                return False
            found = schema.fields(t).get(step)
            if found is None:
                return False
            t = found
        while t.kind != "record":
            if t.elem is None:
                return False
            t = t.elem
        return True

    def replacement(self, value: ast.Expr) -> str:
        """What `with f as value` puts in place of `f`: another function (a function of
        the policy or a builtin, called with the context and the arguments) or a value
        that every call returns."""
        name = (
            value.name
            if isinstance(value, ast.Var)
            else value.dotted()
            if isinstance(value, ast.Ref)
            else None
        )
        if name is not None and self.lookup(name) is None:
            key = function_key(self.program, self.package, name)
            if isinstance(key, int):
                self.group.depends.add(key)
                return f"_g{key}"
            if isinstance(key, str):
                builtin = self.program.extra_builtins.get(key) or BUILTINS[key]
                fname = "_bc_" + key.replace(".", "_")
                self.program.namespace[fname] = _with_context(builtin.fn)
                return fname
        code, _t = self.expr(value, "ctx")
        return code

    def call(self, e: ast.Call, cx: str) -> tuple[str, Type]:
        fast = self.fast_sprintf(e, cx)
        if fast is not None:
            return fast, STRING
        if e.name == "object.get" and len(e.args) == 3 and isinstance(e.args[1], ast.Scalar):
            self._bare_ok = e.args[0]  # reads the one field named (see below)
        elif e.name == "count" and len(e.args) == 1:
            self._bare_ok = e.args[0]  # the length of an array shows no element's field
        args = [self.expr(a, cx) for a in e.args]
        self._bare_ok = None
        arg_code = ", ".join(c for c, _ in args)
        # a user function: local name, or data.<package>.<name>
        group: RuleGroup | None = None
        head, dot, tail = e.name.partition(".")
        if dot and head in self.imports:
            # `import data.lib` then `lib.f(x)`: the function `f` of package `lib`
            imported = self.imports[head]
            steps = [
                s.value
                for s in imported.path
                if isinstance(s, ast.Scalar) and isinstance(s.value, str)
            ]
            if imported.head.name == "data" and len(steps) == len(imported.path):
                group, rest = self.find_rule((*steps, *tail.split(".")))
                if rest:
                    group = None
        if group is not None:
            pass
        elif "." not in e.name:
            group = self.program.groups.get(self.package, {}).get(e.name)
        elif e.name.startswith("data."):
            group, rest = self.find_rule(tuple(e.name.split(".")[1:]))
            if rest:
                group = None
        elif e.name not in BUILTINS and e.name not in self.program.extra_builtins:
            group = find_group(self.program, self.package, e.name)
        if group is not None:
            if group.kind != ast.FUNCTION:
                self.errors.add("type_error", f"`{e.name}` is a rule, not a function", e.loc)
                return "None", ANY
            arity = (
                len(group.definitions[0].args)
                if group.definitions
                else len(group.default.args)
                if group.default
                else 0
            )
            if arity != len(args):
                self.errors.add(
                    "arity",
                    f"`{e.name}` takes {arity} argument{'s' * (arity != 1)}, not {len(args)}",
                    e.loc,
                )
            self.group.depends.add(group.index)
            if group.index in self.program.mocked:
                return (
                    f"_call_mock({cx}, {group.index}, _g{group.index}{', ' if args else ''}{arg_code})",
                    ANY,
                )
            return f"_g{group.index}({cx}{', ' if args else ''}{arg_code})", ANY
        builtin = self.program.extra_builtins.get(e.name) or BUILTINS.get(e.name)
        if builtin is None:
            local_functions = [
                n
                for n, g in self.program.groups.get(self.package, {}).items()
                if g.kind == ast.FUNCTION
            ]
            self.errors.add(
                "unknown_function",
                f"`{e.name}` is not a builtin or a function of this package",
                e.loc,
                did_you_mean(
                    e.name, list(BUILTINS) + list(self.program.extra_builtins) + local_functions
                ),
            )
            return "None", ANY
        named_key = (
            e.name == "object.get" and len(e.args) == 3 and isinstance(e.args[1], ast.Scalar)
        )
        if named_key and args[0][1].kind == "record" and self.program.schema is not None:
            # the named field's value is handed on whole, its type lost (`any`): when it
            # holds a record, any of that record's fields may be read
            key = e.args[1].value  # type: ignore[union-attr]
            field = (
                self.program.schema.fields(args[0][1]).get(key) if isinstance(key, str) else None
            )
            if field is not None:
                self.note_computed(field)
        counted = e.name == "count" and len(args) == 1 and args[0][1].kind == "array"
        for _code, actual in args[1:] if named_key else () if counted else args:
            self.note_computed(actual)  # `object.get(s, "field", d)` reads a named field
        if builtin.arity != len(args):
            self.errors.add(
                "arity",
                f"`{e.name}` takes {builtin.arity} argument{'s' * (builtin.arity != 1)}, not {len(args)}",
                e.loc,
            )
        elif builtin.args is not None:
            for position, (declared, (_code, actual), arg) in enumerate(
                zip(builtin.args, args, e.args), 1
            ):
                check_argument(self.errors, e.name, position, declared, actual, arg.loc)
        if e.name not in self.program.extra_builtins:
            constants = tuple(a.value if isinstance(a, ast.Scalar) else None for a in e.args)
            bad_pattern = constant_pattern_error(e.name, constants)
            if bad_pattern is not None:
                self.errors.add("invalid_regex", bad_pattern[1], e.args[bad_pattern[0]].loc)
        fname = "_b_" + e.name.replace(".", "_")
        self.program.namespace[fname] = builtin.fn
        if e.name in self.program.mocked:
            self.program.namespace["_bc_" + e.name.replace(".", "_")] = _with_context(builtin.fn)
            return (
                f"_call_mock({cx}, {e.name!r}, _bc_{e.name.replace('.', '_')}{', ' if args else ''}{arg_code})",
                builtin.result,
            )
        if e.name == "count" and len(args) == 1 and e.name not in self.program.extra_builtins:
            # what a person writes: the `len` of a small array, set, object or string,
            # which is what the builtin returns for it, charging nothing; anything
            # else (larger, another type) goes through the builtin, as before
            q = self.tmp("q")
            small = f"type({q} := {arg_code}) in _COUNTED and len({q}) <= {budget.FREE_SIZE}"
            return f"(len({q}) if {small} else {fname}({q}))", builtin.result
        return f"{fname}({arg_code})", builtin.result

    def fast_sprintf(self, e: ast.Call, cx: str) -> str | None:
        """`sprintf` with a constant format of plain `%s`/`%v` and an array literal of as
        many values compiles to string concatenation: deny messages are on the hot path."""
        if (
            e.name != "sprintf"
            or len(e.args) != 2
            or "sprintf" in self.program.groups.get(self.package, {})
        ):
            return None
        fmt, values = e.args
        if not (
            isinstance(fmt, ast.Scalar)
            and isinstance(fmt.value, str)
            and isinstance(values, ast.Array)
        ):
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
                q = self.tmp("q")  # a string prints as itself: no call for it
                parts.append(f"({q} if type({q} := {code}) is str else _plain({q}))")
        self.program.namespace["_plain"] = plain_text
        return "(" + " + ".join(parts or ["''"]) + ")"

    def find_rule(self, path: tuple[str, ...]) -> tuple[RuleGroup | None, tuple[str, ...]]:
        """The rule that `data.<path>` names, and the steps left after it."""
        for cut in range(len(path) - 1, 0, -1):
            package = ".".join(path[:cut])
            if package in self.program.groups:
                group = self.program.groups[package].get(path[cut])
                return group, path[cut + 1 :]
        return None, path

    def ref(self, e: ast.Ref, cx: str) -> tuple[str, Type]:
        name = e.head.name
        path = list(e.path)
        local = self.lookup(name)
        if local is not None and not local.declared_only:
            local.used = True
            return self.steps(local.py, local.type, path, cx)
        if local is not None and local.declared_only:
            self.errors.add(
                "unsafe_var", f"var `{name}` is declared but not bound before use", e.head.loc
            )
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
            groups = self.program.groups
            for cut in range(len(consts), 0, -1):
                package = ".".join(consts[:cut])
                if cut < len(consts) and consts[cut] in groups.get(package, {}):
                    return self.rule_value(groups[package][consts[cut]], path[cut + 1 :], cx, e.loc)
                if any(p == package or p.startswith(package + ".") for p in groups):
                    # a package, or a prefix of packages: its document
                    return self.package_document(consts[:cut], path[cut:], cx)
                if package in groups:
                    group = groups[package].get(consts[cut])
                    if group is None:
                        self.errors.add(
                            "unknown_rule",
                            f"package `{package}` has no rule `{consts[cut]}`",
                            e.loc,
                            did_you_mean(consts[cut], self.program.groups[package]),
                        )
                        return "None", ANY
                    return self.rule_value(group, path[cut + 1 :], cx, e.loc)
            data_root = self.program.schema.data if self.program.schema is not None else None
            return self.steps(f"{cx}.data", data_root or ANY, path, cx)
        group = self.program.groups.get(self.package, {}).get(name)
        if group is not None:
            return self.rule_value(group, path, cx, e.loc)
        sub = f"{self.package}.{name}"
        if any(p == sub or p.startswith(sub + ".") for p in self.program.groups):
            # rules of a sub-package, defined by heads of several parts (`p.q.r := 1`)
            steps = tuple(ast.Scalar(part, loc=e.head.loc) for part in sub.split("."))
            return self.ref(
                ast.Ref(ast.Var("data", loc=e.head.loc), steps + tuple(path), loc=e.loc), cx
            )
        if name == "_":
            self.errors.add("unsafe_var", "`_` cannot be used as a value", e.head.loc)
            return "None", ANY
        candidates = (
            list(self.names_in_scope())
            + list(self.program.groups.get(self.package, {}))
            + ["input", "data"]
        )
        self.errors.add(
            "unsafe_var",
            f"var `{name}` is unsafe: it is not bound before use",
            e.head.loc,
            did_you_mean(name, candidates),
        )
        return "None", ANY

    def package_document(
        self, parts: Sequence[str], path: Sequence[ast.Expr], cx: str
    ) -> tuple[str, Type]:
        """`data.a.b` where `a.b` is a package (or leads to packages): the object of its
        rules' values, sub-packages nested, merged over the `data` document there."""
        prefix = ".".join(parts)
        entries = []
        for group in self.program.by_index:
            if group.kind == ast.FUNCTION or not (
                group.package == prefix or group.package.startswith(prefix + ".")
            ):
                continue
            self.group.depends.add(group.index)
            relative = tuple(group.package.split(".")[len(parts) :])
            entries.append(f"({relative!r}, {group.name!r}, _g{group.index})")
        below = tuple(
            tuple(p.split(".")[len(parts) :])
            for p in self.program.groups
            if p == prefix or p.startswith(prefix + ".")
        )
        code = f"_package_doc({cx}, {tuple(parts)!r}, {below!r}, ({''.join(e + ', ' for e in entries)}))"
        return self.steps(code, Type("object", ANY), list(path), cx)

    def rule_value(
        self, group: RuleGroup, path: Sequence[ast.Expr], cx: str, loc: ast.Location
    ) -> tuple[str, Type]:
        if group.kind == ast.FUNCTION:
            self.errors.add(
                "type_error", f"`{group.name}` is a function: call it with arguments", loc
            )
            return "None", ANY
        self.group.depends.add(group.index)
        t = (
            Type("set", ANY)
            if group.kind == ast.SET
            else Type("object", ANY)
            if group.kind == ast.OBJECT
            else ANY
        )
        return self.steps(f"_g{group.index}({cx})", t, list(path), cx)

    def steps(
        self, code: str, type_: Type, path: list[ast.Expr], cx: str, typed_from: str | None = None
    ) -> tuple[str, Type]:
        for step in path:
            if isinstance(step, ast.Array | ast.Object) and self.has_unbound(step):
                # a composite key with unbound variables (`s[[1, x]]`): iterate the keys
                # and match each against it
                check_iterable(self.errors, type_, step.loc)
                self.note_computed(type_)
                coll, key, value = self.tmp("c"), self.tmp("k"), self.tmp("e")
                fn = self.fn
                fn.emit("try:")
                fn.emit(f"    {coll} = {code}")
                fn.emit_failing("except _U: ")
                fn.emit(CHARGE.format(coll))
                fn.emit(CHECK)
                fn.emit(f"for {key}, {value} in _items({coll}):")
                fn.indent += 1
                fn.loops += 1
                self.match(step, key)
                code, type_ = value, elem_type(type_)
                continue
            if (
                isinstance(step, ast.Var)
                and (step.name == "_" or not self.bound(step.name))
                and self.lookup_global(step.name) is None
            ):
                # iteration: bind the index variable over the collection's keys
                check_iterable(self.errors, type_, step.loc)
                self.note_computed(type_)
                coll = self.tmp("c")
                value = self.tmp("e")
                fn = self.fn
                fn.emit("try:")
                fn.emit(f"    {coll} = {code}")
                fn.emit_failing("except _U: ")
                fn.emit(CHARGE.format(coll))
                fn.emit(CHECK)
                key_type = (
                    NUMBER
                    if type_.kind == "array"
                    else STRING
                    if type_.kind in ("object", "record")
                    else elem_type(type_)
                )
                key = (
                    self.bind(step.name, key_type, step.loc) if step.name != "_" else self.tmp("w")
                )
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


def _with_context(fn: Callable[..., Any]) -> Callable[..., Any]:
    """A builtin called like a policy function: with the evaluation context first."""

    def call(ctx: Any, *args: Any) -> Any:
        return fn(*args)

    return call
