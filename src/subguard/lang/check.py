"""The checker: stages over the program's rules that only collect errors (OPA's
`ast/check.go` and the rule-level passes of `compile.go`). Bodies are checked as they
are generated (`codegen`), since each expression's static type decides its code."""

from __future__ import annotations

from subguard.lang import ast
from subguard.lang.program import Program, RuleGroup, rule_home

__all__ = ["check_defaults", "check_recursion", "collect_rules", "resolve_imports"]

_IGNORED_IMPORTS = ("rego.v1", "future.keywords")


def collect_rules(program: Program) -> None:
    """Group definitions by package and name; one name has one kind; an entrypoint's
    definitions have the kinds (and values) its caller declared."""
    for module in program.modules:
        program.groups.setdefault(module.package_name, {})
        for rule in module.rules:
            package, name = rule_home(module, rule)
            table = program.groups.setdefault(package, {})
            program.module_of[id(rule)] = module
            if rule.kind == ast.DEFAULT:
                kind: ast.RuleKind = ast.FUNCTION if rule.args else ast.COMPLETE
            else:
                kind = rule.kind
            if rule.elses and not rule.body:
                program.errors.add(
                    "type_error",
                    "`else` follows a body: this rule has none to fall back from",
                    rule.elses[0].loc,
                )
            group = table.get(name)
            if group is None:
                group = RuleGroup(len(program.by_index), package, name, kind)
                table[name] = group
                program.by_index.append(group)
            elif group.kind != kind:
                program.errors.add(
                    "conflict",
                    f"`{name}` is defined as a {group.kind} rule and as a {kind} rule",
                    rule.loc,
                )
                continue
            if rule.kind == ast.DEFAULT:
                if group.default is not None:
                    program.errors.add("conflict", f"`{name}` has more than one default", rule.loc)
                group.default = rule
            else:
                group.definitions.append(rule)
            entrypoint = program.entrypoints.get(name)
            if entrypoint is None:
                continue
            if (
                entrypoint.boolean_error is not None
                and rule.kind in (ast.COMPLETE, ast.DEFAULT)
                and not (isinstance(rule.value, ast.Scalar) and isinstance(rule.value.value, bool))
            ):
                program.errors.add("type_error", entrypoint.boolean_error, rule.loc)
            if rule.kind not in entrypoint.kinds:
                program.errors.add("type_error", entrypoint.kind_error, rule.loc)


def resolve_imports(program: Program) -> None:
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


def check_recursion(program: Program) -> None:
    """Rules may not depend on themselves, directly or through others (as in Rego)."""
    state: dict[int, int] = {}  # 1 visiting, 2 done
    reported: set[int] = set()

    def visit(index: int, stack: list[int]) -> None:
        state[index] = 1
        stack.append(index)
        for dep in sorted(program.by_index[index].depends):
            if state.get(dep) == 1:
                cycle = stack[stack.index(dep) :]
                if not reported.intersection(cycle):
                    reported.update(cycle)
                    names = " → ".join(f"`{program.by_index[i].name}`" for i in [*cycle, dep])
                    program.errors.add(
                        "recursion",
                        f"rules depend on themselves: {names}",
                        program.by_index[dep].loc,
                    )
            elif dep not in state:
                visit(dep, stack)
        stack.pop()
        state[index] = 2

    for group in program.by_index:
        if group.index not in state:
            visit(group.index, [])


def check_defaults(program: Program) -> None:
    """A default value is a constant; a default function's parameters are variables, as
    many as its definitions take."""
    for group in program.by_index:
        default = group.default
        if default is None:
            continue
        if not _is_constant(default.value):
            program.errors.add("type_error", "a default value must be a constant", default.loc)
        if group.kind != ast.FUNCTION:
            continue
        if not all(isinstance(a, ast.Var) for a in default.args):
            program.errors.add(
                "type_error", "a default function's parameters are variables", default.loc
            )
        if group.definitions and len(group.definitions[0].args) != len(default.args):
            arity = len(group.definitions[0].args)
            program.errors.add(
                "arity",
                f"`{group.name}` takes {arity} argument{'s' * (arity != 1)}, its default {len(default.args)}",
                default.loc,
            )


def _is_constant(e: ast.Expr | None) -> bool:
    if isinstance(e, ast.Scalar):
        return True
    if isinstance(e, ast.Array | ast.SetLit):
        return all(_is_constant(i) for i in e.items)
    if isinstance(e, ast.Object):
        return all(_is_constant(k) and _is_constant(v) for k, v in e.pairs)
    return False
