"""Code generation: the stages that write each checked rule definition as one Python
function (`bodies` writes the body), each rule's function over its definitions (memo,
default, conflicts), and compile the whole source once.

Policy text never reaches `eval`: only code this package writes, from checked AST
nodes, with every user string embedded through `repr`.
"""

from __future__ import annotations

import itertools
from typing import Any

import attrs

from subguard.lang import ast, budget, runtime
from subguard.lang.bodies import BodyCompiler, Fn, constant, render
from subguard.lang.program import Line, Program, RuleGroup, function_key, rule_home
from subguard.lang.types import ANY
from subguard.lang.values import freeze

__all__ = ["assemble", "compile_bodies", "compile_defaults"]


def compile_bodies(program: Program) -> None:
    """Resolve every name, type-check `input` references, check safety and unused
    variables, resolve calls; generate each definition's Python function. Entrypoint
    definitions' bodies are generated once and kept (`Program.entry_bodies`) so the
    fused function can inline them."""
    counter = itertools.count()
    program.mocked = set(_mocked_functions(program))
    for module in program.modules:
        for rule in module.rules:
            package, name = rule_home(module, rule)
            group = program.groups.get(package, {}).get(name)
            if group is None or rule.kind == ast.DEFAULT:
                continue  # defaults are constants: `compile_defaults`
            _compile_definition(program, module, group, rule, counter)


def _mocked_functions(program: Program) -> Any:
    """The functions some `with` replaces (rule group index, or builtin name): calls to
    them look for a replacement in the context; calls to the others stay direct."""
    for module in program.modules:
        for rule in module.rules:
            for w in _withs_in(rule):
                name = w.target.dotted()
                if name is None or (
                    w.target.head.name in ("input", "data") and not name.startswith("data.")
                ):
                    continue
                key = function_key(program, module.package_name, name)
                if key is not None:
                    yield key


def _withs_in(node: Any) -> Any:
    """Every `with` in a rule, nested bodies included."""
    if isinstance(node, ast.With):
        yield node
    if isinstance(node, tuple):
        for item in node:
            yield from _withs_in(item)
    elif attrs.has(type(node)):
        for field in attrs.fields(type(node)):
            if field.name != "loc":
                yield from _withs_in(getattr(node, field.name))


def _compile_definition(
    program: Program, module: ast.Module, group: RuleGroup, rule: ast.Rule, counter: Any
) -> None:
    fname = f"_d{group.index}_{next(counter)}"
    params = (
        ["ctx", "out", *(f"_a{i}" for i in range(len(rule.args)))]
        if rule.kind == ast.FUNCTION
        else ["ctx", "out"]
    )
    entrypoint = group.name in program.entrypoints
    if rule.elses:
        lines = _else_chain(program, module, group, rule, counter, params)
    else:
        lines = _definition_lines(program, module, group, rule, counter, leaves=entrypoint)
    program.source.append(f"def {fname}({', '.join(params)}):")
    if entrypoint:
        # kept for the fused function, which inlines this same body (`policy._fuse`)
        program.entry_bodies[fname] = lines
    program.source.extend(render(lines, 1, "return") or ["    pass"])
    program.source.append("")
    program.def_functions.setdefault(group.index, []).append(fname)


def _else_chain(
    program: Program,
    module: ast.Module,
    group: RuleGroup,
    rule: ast.Rule,
    counter: Any,
    params: list[str],
) -> list[Line]:
    """A definition with `else` clauses: each clause (the body first) is a function of
    its own; the definition calls them in order until one produces a value. The lines
    only call, so they can be inlined like any entrypoint body."""
    clauses = [attrs.evolve(rule, elses=())] + [
        attrs.evolve(rule, value=clause.value, body=clause.body, elses=(), loc=clause.loc)
        for clause in rule.elses
    ]
    names = []
    for clause in clauses:
        cname = f"_c{group.index}_{next(counter)}"
        program.source.append(f"def {cname}({', '.join(params)}):")
        lines = _definition_lines(program, module, group, clause, counter, leaves=False)
        program.source.extend(render(lines, 1) or ["    pass"])
        program.source.append("")
        names.append(cname)
    size = f"_n{next(counter)}"
    chain: list[Line] = [(0, f"{size} = len(out)", False)]
    for i, cname in enumerate(names):
        call = f"{cname}({', '.join(params)})"
        chain.append((0, call if i == 0 else f"if len(out) == {size}: {call}", False))
    return chain


def _definition_lines(
    program: Program,
    module: ast.Module,
    group: RuleGroup,
    rule: ast.Rule,
    counter: Any,
    *,
    leaves: bool,
) -> list[Line]:
    bc = BodyCompiler(program, module, group, counter)
    bc.fn = Fn(0, leaves)
    if rule.kind == ast.FUNCTION:
        for i, arg in enumerate(rule.args):
            pname = f"_a{i}"
            if isinstance(arg, ast.Var) and arg.name != "_":
                py = bc.bind(arg.name, ANY, arg.loc)
                var = bc.lookup(arg.name)
                if var is not None:
                    var.used = True  # a parameter is part of the signature, used or not
                bc.fn.emit(f"{py} = {pname}")
            elif not (isinstance(arg, ast.Var) and arg.name == "_"):
                # a constant or a pattern (`f([a, b])`, `f({"k": v})`) the argument must match
                bc.match(arg, pname)
    bc.body(rule.body)
    fn = bc.fn
    if rule.kind == ast.OBJECT:
        assert rule.key is not None and rule.value is not None
        key, _ = bc.expr(rule.key, "ctx")
        value, _ = bc.expr(rule.value, "ctx")
        fn.emit("try:")
        fn.emit(f"    out.append(({key}, {value}))")
        fn.emit_failing("except _U: ")
    else:
        assert rule.value is not None
        value, _ = bc.expr(rule.value, "ctx")
        fn.emit("try:")
        fn.emit(f"    out.append({value})")
        fn.emit_failing("except _U: ")
        if (
            rule.kind in (ast.COMPLETE, ast.FUNCTION)
            and isinstance(rule.value, ast.Scalar)
            and fn.loops
            and not leaves
        ):
            # one solution decides a constant-valued rule: stop searching
            fn.emit("return")
    for scope in bc.scopes:
        bc.end_scope_check(scope)
    return fn.lines


def assemble(program: Program) -> None:
    """Generate each rule group's function (memo, defaults, conflicts) and compile."""
    src = program.source
    for group in program.by_index:
        defs = program.def_functions.get(group.index, [])
        what = repr(f"rule `{group.qualified}`")
        i = group.index
        if group.kind == ast.FUNCTION:
            arity = (
                len(group.definitions[0].args)
                if group.definitions
                else len(group.default.args)
                if group.default
                else 0
            )
            params = ", ".join(f"_a{n}" for n in range(arity))
            src.append(f"def _g{i}(ctx{', ' if params else ''}{params}):")
            src.append("    out = []")
            for d in defs:
                src.append(f"    {d}(ctx, out{', ' if params else ''}{params})")
            if group.default is not None:
                src.append(f"    if not out: _d{i}_default(ctx, out)")
            else:
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
        _over=budget.exceeded,
        _SIZED=runtime.SIZED,
        _COUNTED=frozenset({tuple, frozenset, dict, str}),
        _items=runtime.items_of,
        _member=runtime.member,
        _member_kv=runtime.member_kv,
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
        _package_doc=runtime.package_document,
        _call_mock=runtime.call_mockable,
        _freeze=freeze,
        _ONCE=(None,),
        _NUMS=(int, float),
    )
    code = compile("\n".join(src), "<subguard policy>", "exec")
    exec(code, namespace)


def compile_defaults(program: Program) -> None:
    """Each `default` value (a constant, checked by `check.check_defaults`) becomes a
    function the group's function calls when no definition produced a value."""
    for group in program.by_index:
        if group.default is None or not _is_constant(group.default.value):
            continue
        const_name = f"_kdefault{group.index}"
        program.constants[const_name] = constant(group.default.value)  # type: ignore[arg-type]
        program.source.append(f"def _d{group.index}_default(ctx, out):")
        program.source.append(f"    out.append({const_name})")
        program.source.append("")


def _is_constant(e: ast.Expr | None) -> bool:
    return isinstance(e, ast.Scalar | ast.Array | ast.SetLit | ast.Object)
