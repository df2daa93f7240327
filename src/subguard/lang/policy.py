"""The compiled policy: checked rules as Python functions, and how their entrypoint
definitions run for one input.

The language does not know what an entrypoint means (the engine decides with them).
It runs each entrypoint definition, or — when its caller built an index over the
definitions' `requires` and handed it over as a `Selector` — the unconditional
definitions inlined in one generated function plus the indexed ones the selector picks
for this input, and reports which produced values and which failed.
"""

from __future__ import annotations

import io
import operator
import tokenize
from collections.abc import Callable, Sequence
from typing import Any, Final, NamedTuple, Protocol

import attrs

from subguard.lang import ast, budget, runtime
from subguard.lang.bodies import constant, render
from subguard.lang.builtins import BuiltinError
from subguard.lang.program import Line, Program
from subguard.lang.requirements import EACH, Requirement, names_mentioned, requirements
from subguard.lang.types import conform
from subguard.lang.values import from_json

__all__ = ["CompiledPolicy", "Default", "Definition", "Fault", "Results", "Selector"]


class Definition(NamedTuple):
    """One definition of an entrypoint rule, in source order (its position in
    `CompiledPolicy.definitions` is its number), with what it requires of `input`."""

    package: str
    rule: str
    location: str
    requires: tuple[Requirement, ...]


class Default(NamedTuple):
    """An entrypoint rule's `default` value."""

    package: str
    rule: str
    location: str
    value: Any


@attrs.frozen
class Fault:
    """A runtime error inside an entrypoint definition."""

    code: str
    message: str
    package: str
    rule: str
    location: str


class Results(NamedTuple):
    """What the entrypoint definitions did for one input: `(definition number, values)`
    for each that produced values, in definition order, and the faults."""

    hits: list[tuple[int, list[Any]]]
    faults: list[Fault]


class Selector(Protocol):
    """Which entrypoint definitions can fire for an input (by definition number): an
    index its caller built from the definitions' `requires`."""

    @property
    def always(self) -> Sequence[int]:
        """The definitions run for every input (in order)."""
        ...

    def extra(self, input: Any) -> Sequence[int]:
        """The other definitions that can fire for this input, in order."""
        ...


class CompiledPolicy:
    """Checked rules compiled to Python functions: evaluate many inputs, fast."""

    def __init__(self, program: Program) -> None:
        self._groups = program.by_index
        self._schema = program.schema
        ns = program.namespace
        self._namespace = ns
        self._entry_bodies = program.entry_bodies
        self._rule_fns: dict[str, Callable[[runtime.Ctx], Any]] = {
            g.qualified: ns[f"_g{g.index}"] for g in self._groups if g.kind != ast.FUNCTION
        }
        definitions: list[Definition] = []
        functions: list[Callable[..., Any]] = []
        defaults: list[Default] = []
        for g in self._groups:
            if g.name not in program.entrypoints:
                continue
            for rule, fname in zip(g.definitions, program.def_functions.get(g.index, [])):
                imports = program.imports.get(id(program.module_of.get(id(rule))), {})
                definitions.append(
                    Definition(g.package, g.name, rule.loc.short, requirements(rule, imports))
                )
                functions.append(ns[fname])
            if g.default is not None and g.default.value is not None:
                defaults.append(
                    Default(g.package, g.name, g.default.loc.short, constant(g.default.value))
                )
        #: Every entrypoint definition, in source order.
        self.definitions = tuple(definitions)
        #: The entrypoint rules' default values.
        self.defaults = tuple(defaults)
        self._functions = tuple(functions)
        self._all = tuple(range(len(definitions)))
        self._selector: Selector | None = None
        self._fused: Callable[..., None] | None = None
        self._watched = False
        self.packages = tuple(sorted(program.groups))
        #: Units one evaluation may spend (see `budget`); exceeding them fails the rule.
        self.budget = budget.DEFAULT_BUDGET
        self.source = "\n".join(program.source)
        self.rules = tuple(g.qualified for g in self._groups)
        self._names = names_mentioned(program.modules)
        self._computed_fields = program.computed_fields

    def reads(self, path: Sequence[str]) -> bool:
        """Whether some rule may read the value at `path` (steps from `input`, `EACH` for
        "an element of"): its field is named in the policy (`s.estimated_rows`,
        `object.get(s, "estimated_rows", …)`), or some rule reaches a record's fields by a
        computed key or uses a record whole (hands it to a builtin or a function, compares
        it, returns it, puts it in a collection: see `BodyCompiler.whole`).
        Over-approximate: a caller may skip producing a costly value only when this is
        false."""
        fields = [step for step in path if step != EACH]
        if not fields:
            return True
        return self._computed_fields or fields[-1] in self._names

    def select(self, selector: Selector) -> None:
        """Run only the definitions `selector` picks for each input from now on; its
        `always` ones inlined in one generated function."""
        self._selector = selector
        if not self._watched:
            self._fused = self._fuse(selector.always)

    def run(self, input: Any, data: Any) -> Results:
        """Run the entrypoint definitions that can fire for `input`. A runtime error
        inside a definition is a `Fault`, never an exception."""
        # the context built through its slots: `Ctx.__init__` is a Python-level call
        ctx = _new_ctx(_Ctx)
        ctx.input = input
        ctx.data = data
        ctx.memo = {}
        ctx.meter = budget.start(self.budget)
        ctx.mocks = {}
        hits: list[tuple[int, list[Any]]] = []
        faults: list[Fault] = []
        definitions = self.definitions
        fns = self._functions
        selector = self._selector
        candidates: Sequence[int]
        if self._fused is not None and selector is not None:
            # the unconditional definitions run inlined in one function; the indexed
            # ones that can fire for this input are called one by one
            # what it raised comes back as (definition, exception) in `faults`
            self._fused(ctx, hits, faults)
            if faults:
                raised: list[Any] = faults
                faults = [_fault(exc, definitions[i]) for i, exc in raised]
            candidates = selector.extra(input)
            fused = True
        elif selector is not None:
            extra = selector.extra(input)
            candidates = sorted({*selector.always, *extra}) if extra else selector.always
            fused = False
        else:
            candidates = self._all
            fused = False
        for i in candidates:
            out: list[Any] = []
            try:
                fns[i](ctx, out)
            except Exception as exc:  # fail closed on anything a rule throws
                faults.append(_fault(exc, definitions[i]))
                continue
            if out:
                hits.append((i, out))
        if fused and candidates and hits:
            hits.sort(key=_first)  # definition order, as the unfused path gives
        return _new_tuple(Results, (hits, faults))  # type: ignore[no-any-return]

    def watch_definitions(self, fired: Callable[[str], None]) -> None:
        """Call `fired(location)` whenever an entrypoint definition produces a value,
        however it is reached (directly, or through another rule). For coverage tools:
        it slows evaluation, so use it on a policy loaded for testing."""
        wrapped: list[Callable[..., Any]] = []
        for definition, fn in zip(self.definitions, self._functions):

            def traced(
                ctx: Any, out: list[Any], *args: Any, _fn: Any = fn, _loc: str = definition.location
            ) -> None:
                before = len(out)
                _fn(ctx, out, *args)
                if len(out) > before:
                    fired(_loc)

            self._namespace[fn.__name__] = traced
            wrapped.append(traced)
        self._functions = tuple(wrapped)
        self._fused = None  # inlined bodies would not report
        self._watched = True

    def conform(self, input: Any) -> Any:
        """A JSON input document in the value model, its schema-typed sets as sets."""
        value = from_json(input)
        return (
            conform(value, self._schema.root, self._schema) if self._schema is not None else value
        )

    def evaluate_rule(self, name: str, input: Any, data: Any) -> Any:
        """The value of one rule (`package.rule`) for an input; raises `Undefined` when
        it has none, `EvalFault`/`BuiltinError` when it fails."""
        fn = self._rule_fns.get(name)
        if fn is None:
            raise KeyError(name)
        ctx = runtime.Ctx(self.conform(input), from_json(data), None, budget.start(self.budget))
        return fn(ctx)

    def document(self, path: Sequence[str], input: Any, data: Any) -> Any:
        """The value of `data.<path>` (like `opa eval data.a.b`): a rule's value, or a
        package's document — its rules' values, its sub-packages' and the `data`
        document's values at that path, merged into one object. Raises `Undefined` when
        there is none, `EvalFault`/`BuiltinError` when a rule fails."""
        ctx = runtime.Ctx(self.conform(input), from_json(data))
        return self._document(tuple(path), ctx)

    def _document(self, path: tuple[str, ...], ctx: runtime.Ctx) -> Any:
        for cut in range(len(path) - 1, -1, -1):
            package = ".".join(path[:cut])
            fn = self._rule_fns.get(f"{package}.{path[cut]}") if package else None
            if fn is not None:
                value = fn(ctx)
                for step in path[cut + 1 :]:
                    value = runtime.get(value, step)
                return value
        base: Any = ctx.data
        for step in path:
            try:
                base = runtime.get(base, step)
            except runtime.UNDEFINED_ERRORS:
                base = runtime.MISSING
                break
        prefix = ".".join(path)
        below = [
            p for p in self.packages if p == prefix or not prefix or p.startswith(prefix + ".")
        ]
        if not below:
            if base is runtime.MISSING:
                raise runtime.Undefined
            return base
        document: dict[str, Any] = dict(base) if isinstance(base, dict) else {}
        for package in below:
            rest = package.split(".")[len(path) :] if prefix else package.split(".")
            node = document
            for step in rest:
                child = node.get(step)
                node[step] = dict(child) if isinstance(child, dict) else {}
                node = node[step]
            for group in self._groups:
                if group.package != package or group.kind == ast.FUNCTION:
                    continue
                try:
                    node[group.name] = self._rule_fns[group.qualified](ctx)
                except runtime.UNDEFINED_ERRORS:
                    continue
        return document

    def rule_locations(self) -> dict[str, list[str]]:
        """`package.rule` → the `file:line` of each of its definitions."""
        return {
            g.qualified: [r.loc.short for r in g.definitions]
            + ([g.default.loc.short] if g.default else [])
            for g in self._groups
        }

    def evaluate_all(self, input: Any, data: Any) -> dict[str, Any]:
        """Every non-function rule's value (absent when undefined; `"<error>"` when it
        raised). For tests and tools; decisions run the entrypoints (`run`)."""
        ctx = runtime.Ctx(self.conform(input), from_json(data), None, budget.start(self.budget))
        result: dict[str, Any] = {}
        for name, fn in self._rule_fns.items():
            try:
                result[name] = fn(ctx)
            except runtime.UNDEFINED_ERRORS:
                continue
            except Exception:
                result[name] = "<error>"
        return result

    def _fuse(self, always: Sequence[int]) -> Callable[..., None] | None:
        """One generated function that runs the given entrypoint definitions inline, in
        order: no call, no list hand-off per definition. Each body is the one its own
        function runs, generated once, placed in a one-pass loop that a failing literal
        `break`s out of where the function `return`s (and that ends with a `break`),
        inside its own `try`, so a runtime error is caught per definition, as when
        called."""
        if not always:
            return None
        lines: list[Line] = [
            (0, "def _decide_always(ctx, hits, raised):", False),
            (1, "out = []", False),
        ]
        for i in always:
            body = self._entry_bodies[self._functions[i].__name__] or [(0, "pass", False)]
            # a body `continue`s only inside the loops its `some`s open: at its top
            # level a failing literal leaves. Then `while True:` … `break` is its
            # one-pass loop, with no iterator made per definition
            once = not any(indent == 0 and text.endswith("continue") for indent, text, _l in body)
            # `out` is empty as each body starts: a new list only after one was kept
            # (or a body failed part-way), not one per definition
            lines += [
                (1, "try:", False),
                (2, "while True:" if once else "for _once in _ONCE:", False),
                *((3 + indent, text, leaves) for indent, text, leaves in body),
                *([(3, "break", False)] if once else []),
                (1, "except Exception as exc:", False),
                (2, f"raised.append(({i}, exc))", False),
                (2, "out = []", False),
                (1, "else:", False),
                (2, "if out:", False),
                (3, f"hits.append(({i}, out))", False),
                (3, "out = []", False),
            ]
        namespace = self._namespace
        # inlined, a body leaves its one-pass loop where its own function returns
        source = hoist_context("\n".join(render(lines, 0, "break")))
        exec(compile(source, "<subguard policy: fused>", "exec"), namespace)
        fused: Callable[..., None] = namespace["_decide_always"]
        return fused


#: The context's fields the fused function reads once, into locals of these names.
_HOISTED: Final = {"input": "_fused_input", "meter": "_fused_meter"}


def hoist_context(source: str) -> str:
    """`source`, one generated function of a context `ctx`, reading `ctx.input` and
    `ctx.meter` once, into locals, rather than at each use: the bodies the fused
    function inlines read them dozens of times. Rewritten on Python's tokens, so a
    string literal that reads `ctx.input` stays as it is. `source` comes back unchanged
    unless its shape is the one recognised: one `def` first, `ctx` its first parameter,
    neither `ctx` nor those fields ever assigned, the local names unused (`with` makes
    contexts of other names: `runtime.with_`)."""
    lines = source.split("\n")
    if not lines or not lines[0].startswith("def ") or "(ctx," not in lines[0]:
        return source
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        return source
    names = [t for t in tokens if t.type == tokenize.NAME]
    if any(t.string in _HOISTED.values() for t in names):
        return source
    for i, token in enumerate(tokens):
        if token.type == tokenize.NAME and token.string in ("def", "lambda") and token.start[0] > 1:
            for later in tokens[i + 1 :]:
                if later.type == tokenize.OP and later.string == ":":
                    break
                if later.type == tokenize.NAME and later.string == "ctx":
                    return source  # an inner function with a `ctx` of its own
    edits: list[tuple[int, int, int, str]] = []  # (row, start col, end col, local)
    for i, token in enumerate(tokens):
        if token.type != tokenize.NAME or token.string != "ctx":
            continue
        after = tokens[i + 1 : i + 4]
        if after and after[0].type == tokenize.OP and after[0].string in ("=", ":="):
            return source  # `ctx` rebound
        if len(after) < 2 or after[0].string != "." or after[1].type != tokenize.NAME:
            continue
        local = _HOISTED.get(after[1].string)
        if local is None:
            continue
        if len(after) > 2 and after[2].type == tokenize.OP and after[2].string == "=":
            return source  # a field assigned
        if (
            token.end != after[0].start
            or after[0].end != after[1].start
            or token.start[0] != after[1].end[0]
        ):
            return source  # `ctx . input` spread out: not code this package writes
        edits.append((token.start[0], token.start[1], after[1].end[1], local))
    if not edits:
        return source
    for row, start, end, local in reversed(edits):
        line = lines[row - 1]
        lines[row - 1] = line[:start] + local + line[end:]
    prologue = [f"    {local} = ctx.{field}" for field, local in _HOISTED.items()]
    return "\n".join([lines[0], *prologue, *lines[1:]])


#: One context per input, made without `Ctx.__init__` (`CompiledPolicy.run`).
_new_ctx: Final = object.__new__
_Ctx: Final = runtime.Ctx

#: One `Results` per input: `tuple.__new__` skips the named tuple's Python-level
#: `__new__` on the hot path.
_new_tuple: Any = tuple.__new__


#: A hit's definition number (what the fused path sorts its hits by).
_first: Final = operator.itemgetter(0)


def _fault(exc: Exception, definition: Definition) -> Fault:
    package, rule, location = definition.package, definition.rule, definition.location
    if isinstance(exc, runtime.EvalFault | budget.BudgetExceeded):
        return Fault(exc.code, str(exc), package, rule, location)
    if isinstance(exc, BuiltinError):
        return Fault("builtin_error", str(exc), package, rule, location)
    if isinstance(exc, RecursionError):
        return Fault("eval_error", "evaluation nested too deeply", package, rule, location)
    return Fault("eval_error", f"{type(exc).__name__}: {exc}", package, rule, location)
