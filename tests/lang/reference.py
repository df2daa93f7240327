"""A small tree-walking evaluator of the policy AST with Rego v1 semantics.

It is written to be obviously right rather than fast, as the oracle the compiled
evaluator is checked against: a body is evaluated left to right as a generator of every
binding environment that satisfies it; an expression is either a value or *undefined*
(the `Undefined` exception); runtime errors (conflicts, failing builtins) are `EvalError`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import attrs

from subguard.lang import ast
from subguard.lang.builtins import BUILTINS, BuiltinError, BuiltinUndefined
from subguard.lang.values import compare, equal, freeze, from_json

__all__ = ["ERROR", "EvalError", "Evaluator", "Undefined", "evaluate_all"]

#: What `evaluate_all` reports for a rule whose evaluation raised a runtime error.
ERROR = "<error>"

Env = dict[str, Any]


class Undefined(Exception):
    """The expression has no value."""


class EvalError(Exception):
    """A runtime error: conflicting rule values, a failing builtin, bad operands."""


def evaluate_all(
    modules: list[ast.Module], input: dict[str, Any], data: dict[str, Any]
) -> dict[str, object]:
    """`"<package>.<rule>"` → value for every defined non-function rule, or `ERROR`.

    `input` and `data` may be decoded JSON (lists) or values of the value model."""
    evaluator = Evaluator(modules, from_json(input), from_json(data))
    results: dict[str, object] = {}
    for package, name in evaluator.rule_names():
        try:
            results[f"{package}.{name}"] = evaluator.rule_value(package, name)
        except Undefined:
            pass
        except EvalError:
            results[f"{package}.{name}"] = ERROR
    return results


def _key(value: Any) -> Any:
    """A value as a set element or object key."""
    return freeze(value)


def _member(value: Any, collection: Any) -> bool:
    if isinstance(collection, dict):
        items: Any = collection.values()
    elif isinstance(collection, tuple | frozenset):
        items = collection
    else:
        return False
    return any(equal(value, item) for item in items)


def _pairs(collection: Any) -> list[tuple[Any, Any]]:
    """(key, value) pairs of a collection; a scalar has none."""
    if isinstance(collection, tuple):
        return list(enumerate(collection))
    if isinstance(collection, frozenset):
        return [(item, item) for item in collection]
    if isinstance(collection, dict):
        return list(collection.items())
    return []


def _is_number(value: Any) -> bool:
    return type(value) is int or type(value) is float


def _arith(op: str, left: Any, right: Any) -> Any:
    if op == "-" and isinstance(left, frozenset) and isinstance(right, frozenset):
        return left - right
    if op in ("|", "&"):
        if not (isinstance(left, frozenset) and isinstance(right, frozenset)):
            raise EvalError(f"`{op}` needs two sets")
        return left | right if op == "|" else left & right
    if not (_is_number(left) and _is_number(right)):
        raise EvalError(f"`{op}` needs two numbers")
    if op == "+":
        return left + right
    if op == "-":
        return left - right
    if op == "*":
        return left * right
    if op == "/":
        if right == 0:
            raise EvalError("divide by zero")
        if type(left) is int and type(right) is int and left % right == 0:
            return left // right
        return left / right
    if op == "%":
        if right == 0:
            raise EvalError("modulo by zero")
        if not (float(left).is_integer() and float(right).is_integer()):
            raise EvalError("modulo on floating-point number")
        a, b = int(left), int(right)
        remainder = abs(a) % abs(b)  # Go's remainder takes the dividend's sign
        return -remainder if a < 0 else remainder
    raise EvalError(f"unknown operator `{op}`")


def _compare(op: str, left: Any, right: Any) -> bool:
    if op == "==":
        return equal(left, right)
    if op == "!=":
        return not equal(left, right)
    order = compare(left, right)
    return {"<": order < 0, "<=": order <= 0, ">": order > 0, ">=": order >= 0}[op]


def _step(value: Any, key: Any) -> Any:
    if isinstance(value, dict):
        for k, v in value.items():
            if equal(k, key):
                return v
        raise Undefined
    if isinstance(value, tuple):
        if _is_number(key) and float(key).is_integer() and 0 <= key < len(value):
            return value[int(key)]
        raise Undefined
    if isinstance(value, frozenset):
        for item in value:
            if equal(item, key):
                return item
        raise Undefined
    raise Undefined


def _replace(document: Any, path: list[Any], value: Any) -> Any:
    if not path:
        return value
    base = dict(document) if isinstance(document, dict) else {}
    base[path[0]] = _replace(base.get(path[0]), path[1:], value)
    return base


class Evaluator:
    """Rules grouped by package, evaluated on demand and memoized per (package, rule)."""

    def __init__(self, modules: list[ast.Module], input: Any, data: Any, mocks: dict[str, Any] | None = None) -> None:
        self.modules = modules
        self.input = input
        self.data = data
        # `with f as …`: function key → ("function", key) or ("value", value)
        self.mocks: dict[str, Any] = mocks or {}
        # package → rule name → [(module, rule)]
        self.rules: dict[str, dict[str, list[tuple[ast.Module, ast.Rule]]]] = {}
        for module in modules:
            self.rules.setdefault(module.package_name, {})
            for rule in module.rules:
                # `p.q.r := 1` is rule `r` of the sub-package `<package>.p.q`
                prefix, _, name = rule.name.rpartition(".")
                package = f"{module.package_name}.{prefix}" if prefix else module.package_name
                self.rules.setdefault(package, {}).setdefault(name, []).append((module, rule))
        self.memo: dict[tuple[str, str], Any] = {}
        self.active: set[tuple[str, str]] = set()

    def rule_names(self) -> list[tuple[str, str]]:
        return [
            (package, name)
            for package, group in self.rules.items()
            for name, defs in group.items()
            if not any(rule.kind == ast.FUNCTION or rule.args for _, rule in defs)
        ]

    # ── rules ──

    def rule_value(self, package: str, name: str) -> Any:
        """The rule's value; raises Undefined or EvalError."""
        key = (package, name)
        if key not in self.memo:
            if key in self.active:
                raise EvalError(f"recursion through `{name}`")
            self.active.add(key)
            try:
                self.memo[key] = ("value", self._compute(package, name))
            except Undefined:
                self.memo[key] = ("undefined", None)
            except EvalError as err:
                self.memo[key] = ("error", err)
            finally:
                self.active.discard(key)
        state, value = self.memo[key]
        if state == "undefined":
            raise Undefined
        if state == "error":
            raise value
        return value

    def _compute(self, package: str, name: str) -> Any:
        defs = self.rules[package][name]
        kinds = {rule.kind for _, rule in defs} - {ast.DEFAULT}
        if kinds == {ast.SET}:
            elements: set[Any] = set()
            for module, rule, env in self._satisfied(defs):
                try:
                    assert rule.value is not None
                    elements.add(_key(self.expr(rule.value, env, module)))
                except Undefined:
                    pass
            return frozenset(elements)
        if kinds == {ast.OBJECT}:
            result: dict[Any, Any] = {}
            for module, rule, env in self._satisfied(defs):
                try:
                    assert rule.key is not None and rule.value is not None
                    k = _key(self.expr(rule.key, env, module))
                    v = self.expr(rule.value, env, module)
                except Undefined:
                    continue
                if k in result and not equal(result[k], v):
                    raise EvalError(f"object keys must be unique: `{name}`")
                result[k] = v
            return result
        if kinds - {ast.COMPLETE}:
            raise EvalError(f"`{name}` mixes rule kinds")
        values: list[Any] = []
        for module, rule in defs:
            if rule.kind == ast.DEFAULT:
                continue
            for value in self._clause_values(rule, {}, module):
                if values and not equal(values[0], value):
                    raise EvalError(f"complete rule `{name}` has conflicting values")
                values.append(value)
        if values:
            return values[0]
        for module, rule in defs:
            if rule.kind == ast.DEFAULT:
                assert rule.value is not None
                return self.expr(rule.value, {}, module)
        raise Undefined

    def _clause_values(self, rule: ast.Rule, env: Env, module: ast.Module) -> list[Any]:
        """The values of the first of a definition's clauses (its body, then each `else`)
        that has any."""
        assert rule.value is not None
        clauses = [(rule.value, rule.body)] + [(c.value, c.body) for c in rule.elses]
        for value_expr, body in clauses:
            values = []
            for env2 in self.body(body, env, module):
                try:
                    values.append(self.expr(value_expr, env2, module))
                except Undefined:
                    continue
            if values:
                return values
        return []

    def _satisfied(
        self, defs: list[tuple[ast.Module, ast.Rule]]
    ) -> Iterator[tuple[ast.Module, ast.Rule, Env]]:
        for module, rule in defs:
            if rule.kind == ast.DEFAULT:
                continue
            for env in self.body(rule.body, {}, module):
                yield module, rule, env

    def call_function(self, package: str, name: str, args: list[Any]) -> Any:
        defs = [
            (module, rule)
            for module, rule in self.rules[package][name]
            if rule.kind == ast.FUNCTION and len(rule.args) == len(args)
        ]
        default = [(m, r) for m, r in self.rules[package][name] if r.kind == ast.DEFAULT and len(r.args) == len(args)]
        if not defs and not default:
            raise EvalError(f"no definition of `{name}` takes {len(args)} arguments")
        values: list[Any] = []
        for module, rule in defs:
            for env in self._bind_params(rule.args, args, {}, module):
                for value in self._clause_values(rule, env, module):
                    if values and not equal(values[0], value):
                        raise EvalError(f"function `{name}` has conflicting values")
                    values.append(value)
        if not values and default:
            module, rule = default[0]
            assert rule.value is not None
            return self.expr(rule.value, {}, module)
        if not values:
            raise Undefined
        return values[0]

    def _bind_params(
        self, params: tuple[ast.Expr, ...], args: list[Any], env: Env, module: ast.Module
    ) -> Iterator[Env]:
        if not params:
            yield env
            return
        for env2 in self.unify(params[0], args[0], env, module):
            yield from self._bind_params(params[1:], args[1:], env2, module)

    # ── bodies ──

    def body(
        self, literals: tuple[ast.Literal, ...], env: Env, module: ast.Module
    ) -> Iterator[Env]:
        if not literals:
            yield env
            return
        for env2 in self.literal(literals[0], env, module):
            yield from self.body(literals[1:], env2, module)

    def literal(self, lit: ast.Literal, env: Env, module: ast.Module) -> Iterator[Env]:
        withs = getattr(lit, "withs", ())
        if withs:
            yield from self._with(lit, withs, env, module)
            return
        if isinstance(lit, ast.ExprLiteral):
            try:
                value = self.expr(lit.expr, env, module)
            except Undefined:
                return
            if value is not False:
                yield env
        elif isinstance(lit, ast.NotLiteral):
            if not any(True for _ in self.literal(ast.ExprLiteral(lit.expr), env, module)):
                yield env
        elif isinstance(lit, ast.Assign):
            if lit.op == ":=":
                try:
                    value = self.expr(lit.value, env, module)
                except Undefined:
                    return
                yield from self.unify(lit.target, value, env, module)
            else:
                yield from self._unify_exprs(lit.target, lit.value, env, module)
        elif isinstance(lit, ast.SomeDecl):
            yield {k: v for k, v in env.items() if k not in lit.names}
        elif isinstance(lit, ast.SomeIn):
            try:
                collection = self.expr(lit.collection, env, module)
            except Undefined:
                return
            for k, v in _pairs(collection):
                env2 = dict(env)
                env2[lit.value] = v
                if lit.key is not None:
                    env2[lit.key] = k
                yield env2
        elif isinstance(lit, ast.Every):
            try:
                domain = self.expr(lit.domain, env, module)
            except Undefined:
                return
            for k, v in _pairs(domain):
                env2 = dict(env)
                env2[lit.value] = v
                if lit.key is not None:
                    env2[lit.key] = k
                if not any(True for _ in self.body(lit.body, env2, module)):
                    return
            yield env
        else:
            raise TypeError(lit)

    def _with(
        self, lit: ast.Literal, withs: tuple[ast.With, ...], env: Env, module: ast.Module
    ) -> Iterator[Env]:
        document = {"input": self.input, "data": self.data}
        mocks = dict(self.mocks)
        for w in withs:
            target = self._function_key(w.target.dotted() or "", module)
            if target is not None:
                replacement = w.value.name if isinstance(w.value, ast.Var) else w.value.dotted() if isinstance(w.value, ast.Ref) else None
                replaced_by = self._function_key(replacement or "", module) if replacement not in env else None
                if replaced_by is not None:
                    mocks[target] = ("function", replaced_by)
                else:
                    try:
                        mocks[target] = ("value", self.expr(w.value, env, module))
                    except Undefined:
                        return
                continue
            try:
                value = self.expr(w.value, env, module)
                path = [self.expr(step, env, module) for step in w.target.path]
            except Undefined:
                return
            root = w.target.head.name
            document[root] = _replace(document[root], path, value)
        inner = Evaluator(self.modules, document["input"], document["data"], mocks)
        bare = attrs.evolve(lit, withs=())
        yield from list(inner.literal(bare, env, module))

    # ── unification ──

    def unify(self, target: ast.Expr, value: Any, env: Env, module: ast.Module) -> Iterator[Env]:
        """Bind the variables of `target` so that it equals `value`."""
        if (
            isinstance(target, ast.Var)
            and target.name not in env
            and not self._is_global(target.name, module)
        ):
            if target.name == "_":
                yield env
                return
            env2 = dict(env)
            env2[target.name] = value
            yield env2
            return
        if isinstance(target, ast.Array):
            if not isinstance(value, tuple) or len(value) != len(target.items):
                return
            yield from self._unify_all(list(zip(target.items, value)), env, module)
            return
        if isinstance(target, ast.Object) and self._has_unbound(target, env, module):
            if not isinstance(value, dict) or len(value) != len(target.pairs):
                return
            pairs = []
            for key_expr, value_expr in target.pairs:
                try:
                    k = self.expr(key_expr, env, module)
                    pairs.append((value_expr, _step(value, k)))
                except Undefined:
                    return
            yield from self._unify_all(pairs, env, module)
            return
        try:
            actual = self.expr(target, env, module)
        except Undefined:
            return
        if equal(actual, value):
            yield env

    def _unify_all(
        self, pairs: list[tuple[ast.Expr, Any]], env: Env, module: ast.Module
    ) -> Iterator[Env]:
        if not pairs:
            yield env
            return
        (target, value), rest = pairs[0], pairs[1:]
        for env2 in self.unify(target, value, env, module):
            yield from self._unify_all(rest, env2, module)

    def _unify_exprs(self, a: ast.Expr, b: ast.Expr, env: Env, module: ast.Module) -> Iterator[Env]:
        if not self._has_unbound(a, env, module):
            try:
                value = self.expr(a, env, module)
            except Undefined:
                return
            yield from self.unify(b, value, env, module)
        else:
            try:
                value = self.expr(b, env, module)
            except Undefined:
                return
            yield from self.unify(a, value, env, module)

    def _has_unbound(self, e: ast.Expr, env: Env, module: ast.Module) -> bool:
        if isinstance(e, ast.Var):
            return e.name not in env and not self._is_global(e.name, module)
        if isinstance(e, ast.Array):
            return any(self._has_unbound(i, env, module) for i in e.items)
        if isinstance(e, ast.Object):
            return any(self._has_unbound(v, env, module) for _, v in e.pairs)
        return False

    def _is_global(self, name: str, module: ast.Module) -> bool:
        return (
            name in ("input", "data")
            or any(i.name == name for i in module.imports)
            or name in self.rules.get(module.package_name, {})
        )

    # ── expressions ──

    def expr(self, e: ast.Expr, env: Env, module: ast.Module) -> Any:
        """The value of `e`; raises Undefined or EvalError."""
        if isinstance(e, ast.Scalar):
            return e.value
        if isinstance(e, ast.Var):
            return self._var(e.name, env, module)
        if isinstance(e, ast.Ref):
            return self._ref(e, env, module)
        if isinstance(e, ast.Call):
            return self._call(e, env, module)
        if isinstance(e, ast.BinOp):
            left = self.expr(e.left, env, module)
            right = self.expr(e.right, env, module)
            if e.op in ("==", "!=", "<", "<=", ">", ">="):
                return _compare(e.op, left, right)
            return _arith(e.op, left, right)
        if isinstance(e, ast.Neg):
            operand = self.expr(e.operand, env, module)
            if not _is_number(operand):
                raise EvalError("`-` needs a number")
            return -operand
        if isinstance(e, ast.Member):
            element = self.expr(e.element, env, module)
            collection = self.expr(e.collection, env, module)
            if e.key is not None:
                key = self.expr(e.key, env, module)
                return any(equal(k, key) and equal(v, element) for k, v in _pairs(collection))
            return _member(element, collection)
        if isinstance(e, ast.Deref):
            value = self.expr(e.base, env, module)
            for step in e.path:
                value = _step(value, self.expr(step, env, module))
            return value
        if isinstance(e, ast.Array):
            return tuple(self.expr(i, env, module) for i in e.items)
        if isinstance(e, ast.SetLit):
            return frozenset(_key(self.expr(i, env, module)) for i in e.items)
        if isinstance(e, ast.Object):
            result: dict[Any, Any] = {}
            for k, v in e.pairs:
                result[_key(self.expr(k, env, module))] = self.expr(v, env, module)
            return result
        if isinstance(e, ast.ArrayCompr):
            return tuple(self._collect(e.term, e.body, env, module))
        if isinstance(e, ast.SetCompr):
            return frozenset(_key(v) for v in self._collect(e.term, e.body, env, module))
        if isinstance(e, ast.ObjectCompr):
            obj: dict[Any, Any] = {}
            for env2 in self.body(e.body, env, module):
                try:
                    k = _key(self.expr(e.key, env2, module))
                    v = self.expr(e.value, env2, module)
                except Undefined:
                    continue
                if k in obj and not equal(obj[k], v):
                    raise EvalError("object comprehension keys must be unique")
                obj[k] = v
            return obj
        raise TypeError(e)

    def _collect(
        self, term: ast.Expr, body: tuple[ast.Literal, ...], env: Env, module: ast.Module
    ) -> Iterator[Any]:
        for env2 in self.body(body, env, module):
            try:
                yield self.expr(term, env2, module)
            except Undefined:
                continue

    def _var(self, name: str, env: Env, module: ast.Module) -> Any:
        if name in env:
            return env[name]
        if name == "input":
            if self.input is None:
                raise Undefined
            return self.input
        if name == "data":
            return self._data_path([])
        for imp in module.imports:
            if imp.name == name:
                return self._ref(imp.path, env, module)
        if name in self.rules.get(module.package_name, {}):
            return self.rule_value(module.package_name, name)
        sub = f"{module.package_name}.{name}"
        if any(p == sub or p.startswith(sub + ".") for p in self.rules):
            return self._data_path(sub.split("."))
        raise EvalError(f"unbound variable `{name}`")

    def _ref(self, ref: ast.Ref, env: Env, module: ast.Module) -> Any:
        steps = [self.expr(step, env, module) for step in ref.path]
        if ref.head.name == "data" and ref.head.name not in env:
            return self._data_path(steps)
        sub = f"{module.package_name}.{ref.head.name}"
        if ref.head.name not in env and not self._is_global(ref.head.name, module) and any(p == sub or p.startswith(sub + ".") for p in self.rules):
            return self._data_path([*sub.split("."), *steps])
        value = self._var(ref.head.name, env, module)
        for step in steps:
            value = _step(value, step)
        return value

    def _data_path(self, steps: list[Any]) -> Any:
        """`data.a.b…`: a rule when the steps name a package and one of its rules."""
        for size in range(len(steps), 0, -1):
            if not all(type(s) is str for s in steps[:size]):
                continue
            package = ".".join(steps[:size])
            if package in self.rules and size == len(steps):
                return self._package_document(package)
            if package in self.rules:
                name = steps[size]
                if name not in self.rules[package]:
                    raise Undefined
                value = self.rule_value(package, name)
                for step in steps[size + 1 :]:
                    value = _step(value, step)
                return value
        value = self.data
        for step in steps:
            value = _step(value, step)
        return value

    def _package_document(self, package: str) -> dict[str, Any]:
        document = {}
        for name, defs in self.rules[package].items():
            if any(rule.kind == ast.FUNCTION or rule.args for _, rule in defs):
                continue
            with contextlib.suppress(Undefined):
                document[name] = self.rule_value(package, name)
        return document

    def _function_key(self, name: str, module: ast.Module) -> str | None:
        """`package.name` of a policy function, a builtin's name, or None."""
        head, dot, tail = name.partition(".")
        for imp in module.imports if dot else ():
            if imp.name == head and imp.path.head.name == "data":
                steps = [s.value for s in imp.path.path if isinstance(s, ast.Scalar)]
                name = "data." + ".".join([*map(str, steps), tail])
        package, _, rule = name.rpartition(".")
        if package.startswith("data.") and any(r.kind == ast.FUNCTION or r.args for _, r in self.rules.get(package[5:], {}).get(rule, [])):
            return f"{package[5:]}.{rule}"
        if any(r.kind == ast.FUNCTION or r.args for _, r in self.rules.get(module.package_name, {}).get(name, [])):
            return f"{module.package_name}.{name}"
        if package and not package.startswith("data.") and any(
            r.kind == ast.FUNCTION or r.args for _, r in self.rules.get(f"{module.package_name}.{package}", {}).get(rule, [])
        ):
            return f"{module.package_name}.{package}.{rule}"
        if name in BUILTINS:
            return name
        return None

    def _call(self, call: ast.Call, env: Env, module: ast.Module) -> Any:
        args = [self.expr(a, env, module) for a in call.args]
        key = self._function_key(call.name, module)
        if key is not None and key in self.mocks:
            kind, replacement = self.mocks[key]
            if kind == "value":
                return replacement
            rest = {k: v for k, v in self.mocks.items() if k != key}
            return Evaluator(self.modules, self.input, self.data, rest)._call_key(replacement, args)
        return self._call_key(key or call.name, args)

    def _call_key(self, key: str, args: list[Any]) -> Any:
        package, _, name = key.rpartition(".")
        if package in self.rules and name in self.rules[package]:
            return self.call_function(package, name, args)
        return self._builtin(key, args)

    def _builtin(self, name: str, args: list[Any]) -> Any:
        builtin = BUILTINS.get(name)
        if builtin is None:
            raise EvalError(f"unknown function `{name}`")
        if builtin.arity != len(args):
            raise EvalError(f"`{name}` takes {builtin.arity} arguments")
        try:
            return builtin.fn(*args)
        except BuiltinUndefined:
            raise Undefined from None
        except BuiltinError as err:
            raise EvalError(str(err)) from None

