"""The assertion API on a user's own policy: a property that holds, and one that does
not, reported as Hypothesis's smallest counterexample in SQL text."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings

from subguard import testing as sgt
from subguard.engine import Effect, Policy, load_policy

AUDIT_POLICY = """package mine

import input.sql.statements

deny contains msg if {
    "agents" in input.subject.groups
    some s in statements
    some t in s.tables_written
    startswith(t, "audit_")
    msg := sprintf("agents may not write %s", [t])
}

default allow := true
"""


@pytest.fixture(scope="module")
def audit_policy(tmp_path_factory: pytest.TempPathFactory) -> Policy:
    path = tmp_path_factory.mktemp("mine") / "mine.guard"
    path.write_text(AUDIT_POLICY)
    return load_policy(path)


def test_a_property_that_holds(audit_policy: Policy) -> None:
    sgt.check(
        audit_policy,
        sgt.requests(sgt.sql(["insert", "update", "delete"], tables=["audit_log"]), subjects=sgt.subjects(["agents"])),
        never="allow",
        when=sgt.writes_to("audit_*"),
        max_examples=40,
    )


def test_a_broken_property_reports_the_smallest_sql(audit_policy: Policy) -> None:
    with pytest.raises(sgt.PolicyPropertyError) as failure:
        sgt.check(audit_policy, sgt.requests(sgt.sql(["delete"])), at_least="approve", when=sgt.unbounded_write, max_examples=50)
    message = str(failure.value)
    assert "that runs an update or delete without a bounding where was decided `allow`" in message.lower()
    assert "expected `approve` or stronger" in message
    assert "  request: DELETE FROM users\n" in message
    assert "reason: mine.allow: allowed" in message


@settings(max_examples=30, deadline=None)
@given(sgt.requests(sgt.sql(["select"]), subjects=sgt.subjects(["agents"])))
def test_assertions_inside_given(audit_policy: Policy, case: sgt.Case) -> None:
    decision = sgt.assert_effect(audit_policy, case, Effect.ALLOW)
    assert decision.effect is Effect.ALLOW


def test_case_repr_is_the_request_text() -> None:
    from subguard.engine import Resource, SqlRequest, Subject

    case = sgt.Case(SqlRequest("DELETE FROM t"), Subject("ci-bot", {"agents"}), Resource(kind="postgres"))
    assert repr(case) == "<sql 'DELETE FROM t' from 'ci-bot' (agents)>"


@pytest.mark.parametrize("dialect", ["postgres", "mysql", "sqlite"])
def test_strategies_draw_parseable_sql_in_each_dialect(dialect: str) -> None:
    from subguard.sql import analyze

    kinds = sgt.ALL_KINDS if dialect == "postgres" else [k for k in sgt.ALL_KINDS if k not in ("merge", "copy")]

    @settings(max_examples=40, deadline=None)
    @given(sgt.sql(kinds, dialect=dialect))
    def parses(text: str) -> None:
        assert analyze(text, dialect=dialect).parse_error is None, text

    parses()


def test_the_public_surface() -> None:
    assert sorted(sgt.__all__) == sorted(set(sgt.__all__))
    for name in sgt.__all__:
        assert getattr(sgt, name) is not None


def test_plugin_fixture_loads_rules_without_tests(subguard_policy: Policy) -> None:
    assert not any(f.endswith("_test.guard") for f in subguard_policy.files)
    assert "guard.base" in subguard_policy.packages


def test_readme_example_runs(tmp_path: Path) -> None:
    # the ten-line example of docs/testing.md, against the bundled packs
    policy = load_policy(sgt.policy_files(Path(__file__).resolve().parents[2] / "rules"))
    sgt.check(
        policy,
        sgt.requests(sgt.sql(["update", "delete"]), subjects=sgt.subjects(["agents"])),
        at_least="approve",
        when=sgt.unbounded_write,
        max_examples=25,
    )
