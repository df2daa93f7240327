"""Testing policies: the `subguard test` runner, Hypothesis strategies for requests, and
assertions about what a policy may never allow.

A property test of your own policy (the `subguard_policy` fixture comes with the pytest
plugin; point it at your rules with `--subguard-rules` or the `subguard_rules` ini)::

    from subguard import testing as sgt

    def test_agents_never_write_audit_tables(subguard_policy):
        sgt.check(
            subguard_policy,
            sgt.requests(sgt.sql(["insert", "update", "delete"]), subjects=sgt.subjects(["agents"])),
            never="allow",
            when=sgt.writes_to("audit_*"),
        )

The strategies and assertions need Hypothesis (`pip install 'subguard[test]'`); the
runner does not.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from subguard.testing.runner import (
    Coverage,
    DecisionTrace,
    TestReport,
    TestResult,
    is_test_file,
    policy_files,
    run_tests,
    test_builtins,
)

if TYPE_CHECKING:
    from subguard.testing.assertions import (
        PolicyPropertyError,
        Predicate,
        all_of,
        assert_at_least,
        assert_effect,
        assert_never,
        assert_never_allowed,
        check,
        decide,
        from_group,
        kind_in,
        reads_column_tagged,
        unbounded_write,
        writes_to,
    )
    from subguard.testing.strategies import (
        ALL_KINDS,
        DEFAULT_SCHEMA,
        Case,
        commands,
        requests,
        resources,
        sql,
        subjects,
    )

__all__ = [
    "ALL_KINDS",
    "DEFAULT_SCHEMA",
    "Case",
    "Coverage",
    "DecisionTrace",
    "PolicyPropertyError",
    "Predicate",
    "TestReport",
    "TestResult",
    "all_of",
    "assert_at_least",
    "assert_effect",
    "assert_never",
    "assert_never_allowed",
    "check",
    "commands",
    "decide",
    "from_group",
    "is_test_file",
    "kind_in",
    "policy_files",
    "reads_column_tagged",
    "requests",
    "resources",
    "run_tests",
    "sql",
    "subjects",
    "test_builtins",
    "unbounded_write",
    "writes_to",
]

#: Names that need Hypothesis, imported on first use so that the pytest plugin and
#: `subguard test` work without it.
_LAZY = {
    **{
        n: "subguard.testing.strategies"
        for n in (
            "ALL_KINDS",
            "DEFAULT_SCHEMA",
            "Case",
            "commands",
            "requests",
            "resources",
            "sql",
            "subjects",
        )
    },
    **{
        n: "subguard.testing.assertions"
        for n in (
            "PolicyPropertyError",
            "Predicate",
            "all_of",
            "assert_at_least",
            "assert_effect",
            "assert_never",
            "assert_never_allowed",
            "check",
            "decide",
            "from_group",
            "kind_in",
            "reads_column_tagged",
            "unbounded_write",
            "writes_to",
        )
    },
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'subguard.testing' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
