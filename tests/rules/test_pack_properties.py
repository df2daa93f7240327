"""Property tests of the bundled packs with `subguard.testing`: generated SQL and
commands, evasive forms included, never get past the packs. These are the examples to
copy for your own policy."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings

from subguard import testing as sgt
from subguard.engine import Engine, load_policy

RULES = Path(__file__).resolve().parents[2] / "rules"
EXAMPLES = settings(max_examples=60, deadline=None)


@pytest.fixture(scope="module")
def packs() -> Engine:
    return Engine(load_policy(sgt.policy_files(RULES)))


agents = sgt.subjects(["agents"], extra_groups=["ops", "analysts"])


@EXAMPLES
@given(sgt.requests(sgt.sql(["update", "delete"]), subjects=agents))
def test_every_unbounded_write_is_at_least_held(packs: Engine, case: sgt.Case) -> None:
    sgt.assert_at_least(packs, case, "approve", when=sgt.unbounded_write)


@EXAMPLES
@given(sgt.requests(sgt.sql(["drop", "truncate", "grant", "revoke"]), subjects=sgt.subjects()))
def test_destructive_and_privilege_statements_never_pass(packs: Engine, case: sgt.Case) -> None:
    sgt.assert_never_allowed(packs, case)


@EXAMPLES
@given(sgt.requests(sgt.sql(["alter"]), subjects=agents))
def test_alter_drop_is_denied(packs: Engine, case: sgt.Case) -> None:
    if " drop " in f" {case.text.lower()} ":
        sgt.assert_at_least(packs, case, "deny")


@EXAMPLES
@given(sgt.requests(sgt.sql(["copy"]), subjects=agents))
def test_copy_to_program_terminates(packs: Engine, case: sgt.Case) -> None:
    if "program" in case.text.lower():
        sgt.assert_effect(packs, case, "terminate")


@EXAMPLES
@given(sgt.requests(sgt.sql(["select"]), subjects=sgt.subjects(extra_groups=["agents", "analysts"])))
def test_pii_never_reaches_a_result_unmasked(packs: Engine, case: sgt.Case) -> None:
    decision = sgt.assert_never(packs, case, "allow", when=sgt.reads_column_tagged("pii", in_output=True))
    if decision.effect.value == "mask":
        assert all(m.split(".")[-1] in ("email", "ssn") for m in decision.masks)


@EXAMPLES
@given(sgt.requests(sgt.sql(["select"]), subjects=sgt.subjects(["pii-readers"])))
def test_pii_readers_read_unmasked(packs: Engine, case: sgt.Case) -> None:
    sgt.assert_never(packs, case, "mask")


@EXAMPLES
@given(sgt.requests(commands=sgt.commands(["rm"]), subjects=agents))
def test_recursive_rm_outside_tmp_is_at_least_held(packs: Engine, case: sgt.Case) -> None:
    argv = case.text.split()
    recursive = any(a.startswith("-") and "r" in a.lower() and not a.startswith("--f") for a in argv)
    path = argv[-1].rstrip("'")
    if recursive and not (path.startswith(("/tmp/", "/var/tmp/")) and ".." not in path):
        sgt.assert_at_least(packs, case, "approve")


@EXAMPLES
@given(sgt.requests(commands=sgt.commands(["psql"], sql_texts=sgt.sql(["drop", "truncate", "grant"])), subjects=agents))
def test_psql_never_runs_what_the_sql_packs_refuse(packs: Engine, case: sgt.Case) -> None:
    sgt.assert_at_least(packs, case, "deny")


@EXAMPLES
@given(sgt.requests(sgt.sql(), commands=sgt.commands(), subjects=sgt.subjects()))
def test_the_packs_compose_without_runtime_errors(packs: Engine, case: sgt.Case) -> None:
    decision = sgt.decide(packs, case)
    assert decision.errors == (), decision.errors
    assert decision.reasons, "every decision names its rules"


def test_check_runs_the_loop_for_you(packs: Engine) -> None:
    sgt.check(
        packs,
        sgt.requests(sgt.sql(["delete", "update", "merge"]), subjects=agents),
        at_least="approve",
        when=sgt.kind_in("merge"),
        max_examples=30,
    )


def test_session_escalation_terminates_whatever_the_request(packs: Engine) -> None:
    from hypothesis import strategies as st

    sgt.check(
        packs,
        sgt.requests(sgt.sql(["select"]), commands=sgt.commands(["ls"]), denied=st.integers(3, 50)),
        at_least="terminate",
        max_examples=20,
    )
