"""Why a rule did or did not fire: for each definition of the rules asked about, whether
its body held and, when it did not, the first literal that failed (like `opa eval
--explain=fails`, reduced to what an author needs first).

A body is a conjunction evaluated left to right, so the literal that failed is the first
whose prefix of the body has no solution: `L1`, `L1; L2`, … are each compiled as a
boolean rule of the definition's package (unused-variable checks off: a prefix binds
variables the rest of the body uses) and evaluated on the same input. The policy must
already have compiled cleanly; a prefix adds no new way to fail.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

import attrs

from subguard.errors import Location, PolicyErrors
from subguard.lang import ast, runtime
from subguard.lang.builtins import Builtin
from subguard.lang.compiler import STAGES
from subguard.lang.fmt import literal_head
from subguard.lang.policy import CompiledPolicy
from subguard.lang.program import Errors, Program, rule_home
from subguard.lang.types import Schema

__all__ = ["Explanation", "explain"]


@attrs.frozen
class Explanation:
    """One definition: `fired` when its body held; otherwise the first literal that
    failed (`failed_at`, `failed_literal`), or neither when its value was undefined."""

    package: str
    rule: str
    location: Location
    fired: bool
    failed_at: Location | None = None
    failed_literal: str | None = None
    error: str | None = None


def explain(
    modules: Sequence[ast.Module],
    rules: Collection[str],
    input: Any,
    data: Any,
    *,
    schema: Schema | None = None,
    builtins: Mapping[str, Builtin] | None = None,
) -> list[Explanation]:
    """Explain every definition of the rules named in `rules` (bare names, in any
    package, as the engine's decision rules are, or `package.rule`)."""
    augmented: list[ast.Module] = []
    probes: list[tuple[str, str, ast.Rule, list[tuple[str, ast.Literal]]]] = []
    counter = 0
    for module in modules:
        extra: list[ast.Rule] = []
        for rule in module.rules:
            package, name = rule_home(module, rule)
            if rule.kind in (ast.DEFAULT, ast.FUNCTION) or not (
                name in rules or f"{package}.{name}" in rules
            ):
                continue
            prefixes = []
            for k in range(1, len(rule.body) + 1):
                probe = f"__why{counter}_{k}"
                head = f"{rule.name.rpartition('.')[0]}.{probe}" if "." in rule.name else probe
                extra.append(
                    ast.Rule(
                        ast.COMPLETE,
                        head,
                        ast.Scalar(True),
                        rule.body[:k],
                        boolean=True,
                        loc=rule.loc,
                    )
                )
                prefixes.append((f"{package}.{probe}", rule.body[k - 1]))
            counter += 1
            probes.append((package, name, rule, prefixes))
        augmented.append(attrs.evolve(module, rules=module.rules + tuple(extra)))
    program = Program(
        augmented, schema, Errors(), extra_builtins=dict(builtins or {}), check_unused=False
    )
    for stage in STAGES:
        stage.run(program)
    if program.errors:
        raise PolicyErrors(program.errors.items)
    compiled = CompiledPolicy(program)
    found: list[Explanation] = []
    for package, name, rule, prefixes in probes:
        failed: tuple[Location, str] | None = None
        error = None
        for probe, literal in prefixes:
            try:
                compiled.evaluate_rule(probe, input, data)
            except runtime.UNDEFINED_ERRORS:
                failed = (
                    literal.loc,
                    literal_head(literal) + (" … }" if isinstance(literal, ast.Every) else ""),
                )
                break
            except Exception as exc:  # a literal that raised: the error is the reason
                failed, error = (literal.loc, literal_head(literal)), f"{type(exc).__name__}: {exc}"
                break
        fired = failed is None
        found.append(
            Explanation(
                package,
                name,
                rule.loc,
                fired,
                failed[0] if failed else None,
                failed[1] if failed else None,
                error,
            )
        )
    return found
