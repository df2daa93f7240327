"""Modules → checked, compiled policy, through the named stages of `STAGES`.

The stages share one `Program` (`program`) and add to its errors; none stops the others,
so one run reports every error it can find. The checker's stages (`check`) only collect
errors; the code generator's (`codegen`) write each definition's Python function and,
last, `assemble` compiles the source of an error-free program (`compile()` once; policy
text never reaches `eval`). The compiled policy (`policy`) runs it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Final, NamedTuple

from subguard.errors import PolicyErrors
from subguard.lang import ast
from subguard.lang.builtins import Builtin
from subguard.lang.check import check_defaults, check_recursion, collect_rules, resolve_imports
from subguard.lang.codegen import assemble, compile_bodies, compile_defaults
from subguard.lang.policy import CompiledPolicy
from subguard.lang.program import Entrypoint, Errors, Program
from subguard.lang.types import Schema

__all__ = ["STAGES", "Stage", "compile_policy"]


class Stage(NamedTuple):
    """One step of the compiler: a name (for people) and what it does to the program."""

    name: str
    run: Callable[[Program], None]


#: The compiler's stages, in order. Each takes the program and adds to its errors.
STAGES: Final[tuple[Stage, ...]] = (
    Stage("collect rules", collect_rules),
    Stage("resolve imports", resolve_imports),
    Stage("check defaults", check_defaults),
    Stage("compile bodies", compile_bodies),
    Stage("compile defaults", compile_defaults),
    Stage("check recursion", check_recursion),
    Stage("assemble", assemble),
)


def compile_policy(
    modules: Sequence[ast.Module],
    *,
    schema: Schema | None = None,
    builtins: Mapping[str, Builtin] | None = None,
    entrypoints: Mapping[str, Entrypoint] | None = None,
    stages: Sequence[Stage] = STAGES,
) -> CompiledPolicy:
    """Check and compile modules; raises `PolicyErrors` carrying every error found.

    `builtins` adds functions callable from policy text (by dotted name), checked for
    arity like the standard ones. `entrypoints` names the rules the caller evaluates
    definition by definition (`CompiledPolicy.definitions`), with the kinds they may have."""
    program = Program(
        list(modules),
        schema,
        Errors(),
        entrypoints=dict(entrypoints or {}),
        extra_builtins=dict(builtins or {}),
    )
    try:
        for stage in stages:
            stage.run(program)
    except RecursionError:
        loc = program.modules[0].loc if program.modules else ast.NOWHERE
        program.errors.add("too_deep", "policy nests too deeply to compile", loc)
    if program.errors:
        raise PolicyErrors(sorted(program.errors.items, key=lambda e: (e.path, e.line, e.col)))
    return CompiledPolicy(program)
