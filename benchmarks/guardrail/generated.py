"""The generated 1,000-rule policy: the 20 guardrail rules plus 980 rules that each
discriminate on a statement kind and a table name, e.g.

    deny contains "t123: delete blocked (rule 57)" if {
        some s in input.sql.statements
        s.kind == "delete"
        "t123" in s.tables_written
    }

The benchmark inputs touch tables `t0` … `t499` now and then, so some of these rules fire.
"""

from __future__ import annotations

import random
from pathlib import Path

__all__ = ["GeneratedRule", "generated_rules", "policy_text", "write_policy"]

HERE = Path(__file__).resolve().parent

#: (effect, statement kind, "written" | "read", table, message)
GeneratedRule = tuple[str, str, str, str, str]

_WRITE_KINDS = ("insert", "update", "delete", "truncate", "alter")
_READ_KINDS = ("select", "copy")


def generated_rules(n: int = 980, seed: int = 1000) -> list[GeneratedRule]:
    rng = random.Random(seed)
    rules: list[GeneratedRule] = []
    for i in range(n):
        table = f"t{rng.randrange(500)}"
        if rng.random() < 0.6:
            where, kind = "written", rng.choice(_WRITE_KINDS)
        else:
            where, kind = "read", rng.choice(_READ_KINDS)
        effect = "deny" if rng.random() < 0.5 else "approve"
        rules.append((effect, kind, where, table, f"{table}: {kind} blocked (rule {i})"))
    return rules


def _rule_text(rule: GeneratedRule) -> str:
    effect, kind, where, table, message = rule
    return (
        f'{effect} contains "{message}" if {{\n'
        f"    some s in input.sql.statements\n"
        f'    s.kind == "{kind}"\n'
        f'    "{table}" in s.tables_{where}\n'
        f"}}\n"
    )


def policy_text(base: str, rules: list[GeneratedRule]) -> str:
    """`base` (policy.guard or policy.rego text) followed by the generated rules."""
    return base.rstrip("\n") + "\n\n# Generated rules.\n\n" + "\n".join(map(_rule_text, rules))


def write_policy(directory: Path, rules: list[GeneratedRule], suffix: str = ".guard") -> Path:
    """Write the 1,000-rule policy (`policy.guard` + `rules`) into `directory`."""
    base = (HERE / f"policy{suffix}").read_text()
    path = directory / f"policy_1000{suffix}"
    path.write_text(policy_text(base, rules))
    return path
