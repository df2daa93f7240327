"""The compiler's state, shared by its stages: rule groups, imports, errors, generated code."""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from typing import Any, Final

import attrs

from subguard.errors import PolicyError
from subguard.lang import ast
from subguard.lang.builtins import BUILTINS, Builtin
from subguard.lang.types import Schema

__all__ = [
    "MAX_ERRORS",
    "Entrypoint",
    "Errors",
    "Line",
    "Program",
    "RuleGroup",
    "did_you_mean",
    "find_group",
    "function_key",
    "rule_home",
]

#: Errors collected before the compiler gives up on reporting more.
MAX_ERRORS: Final = 50


@attrs.frozen
class Entrypoint:
    """A rule name its caller evaluates definition by definition (OPA's entrypoints):
    the kinds its definitions may have and, when `boolean_error` is set, that each
    complete definition's value is `true` or `false`. The messages are the caller's:
    the language does not know what the rule means."""

    kinds: tuple[ast.RuleKind, ...]
    kind_error: str
    boolean_error: str | None = None


@attrs.define
class RuleGroup:
    """All definitions of one rule name in one package."""

    index: int
    package: str
    name: str
    kind: ast.RuleKind
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


class Errors:
    """The error collector shared by the stages."""

    def __init__(self) -> None:
        self.items: list[PolicyError] = []

    def add(self, code: str, message: str, loc: ast.Location, hint: str | None = None) -> None:
        if len(self.items) < MAX_ERRORS:
            self.items.append(PolicyError(code, message, loc, hint=hint))

    def __bool__(self) -> bool:
        return bool(self.items)


def did_you_mean(name: str, candidates: Sequence[str] | Any) -> str | None:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"did you mean `{close[0]}`?" if close else None


#: One line of generated code: its indentation level (relative to where the function
#: holding it is placed), its text, and whether it ends by leaving the body (the
#: statement that does is chosen where the body is placed: `bodies.render`).
Line = tuple[int, str, bool]


@attrs.define
class Program:
    modules: list[ast.Module]
    schema: Schema | None
    errors: Errors
    entrypoints: Mapping[str, Entrypoint] = attrs.Factory(dict)
    #: Builtins beyond the standard library (e.g. `subguard test`'s request builders).
    extra_builtins: Mapping[str, Builtin] = attrs.Factory(dict)
    #: Report variables bound and never used (off only for bodies cut short on purpose:
    #: `explain`'s prefixes of already checked bodies).
    check_unused: bool = True
    groups: dict[str, dict[str, RuleGroup]] = attrs.Factory(dict)  # package → name → group
    by_index: list[RuleGroup] = attrs.Factory(list)
    imports: dict[int, dict[str, ast.Ref]] = attrs.Factory(dict)  # module id → alias → ref
    module_of: dict[int, ast.Module] = attrs.Factory(dict)  # rule id → its module
    source: list[str] = attrs.Factory(list)
    constants: dict[str, Any] = attrs.Factory(dict)
    def_functions: dict[int, list[str]] = attrs.Factory(dict)  # group → def function names
    namespace: dict[str, Any] = attrs.Factory(dict)
    #: Entrypoint definitions' bodies (def function name → lines), written once: the
    #: function `def_functions` names runs them, and so does the fused function that
    #: inlines the unconditional ones (`CompiledPolicy.select`).
    entry_bodies: dict[str, list[Line]] = attrs.Factory(dict)
    #: Whether some rule reaches a record's fields by computed keys (`some k, v in s`,
    #: `s[k]`, a builtin given the record), so that any field may be read
    #: (`CompiledPolicy.reads`).
    computed_fields: bool = False
    #: The functions some `with` replaces (rule group index or builtin name).
    mocked: set[int | str] = attrs.Factory(set)


def function_key(program: Program, package: str, name: str) -> int | str | None:
    """What `with` replaces when its target is `name`, written in `package`: a function's
    rule group index, a builtin's name, or None when `name` is neither."""
    group = find_group(program, package, name)
    if group is not None:
        return group.index if group.kind == ast.FUNCTION else None
    if name in program.extra_builtins or name in BUILTINS:
        return name
    return None


def find_group(program: Program, package: str, name: str) -> RuleGroup | None:
    """The rule `name` names in `package`: a rule of the package, `data.<pkg>.<rule>`, or
    `p.q.r`, a rule of the sub-package `<package>.p.q` (a head of several parts)."""
    if "." not in name:
        return program.groups.get(package, {}).get(name)
    prefix, _, last = name.rpartition(".")
    if prefix.startswith("data."):
        return program.groups.get(prefix[5:], {}).get(last)
    if prefix == "data":
        return None
    return program.groups.get(f"{package}.{prefix}", {}).get(last)


def rule_home(module: ast.Module, rule: ast.Rule) -> tuple[str, str]:
    """The package and name a rule defines: `p.q.r := 1` in package `a` is rule `r` of
    package `a.p.q` (a rule head of several parts)."""
    prefix, _, name = rule.name.rpartition(".")
    return (f"{module.package_name}.{prefix}" if prefix else module.package_name), name
