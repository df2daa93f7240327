"""Shell arithmetic as every shell might run it: `((…))` is nested subshells to dash,
and arithmetic expands array subscripts held in variable values (command substitutions
included). One test per way in, each checked against the bundled packs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from subguard.command import parse_command
from subguard.engine import CommandRequest, Effect, Engine, Subject, load_policy
from subguard.testing import policy_files

RULES = Path(__file__).resolve().parents[2] / "rules"
AGENT = Subject("ci-bot", frozenset({"agents"}))


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(load_policy(policy_files(RULES)))


def _programs(text: str) -> list[str]:
    return [inv.program for inv in parse_command(text).pipeline]


@pytest.mark.parametrize(
    "text",
    ["((rm -rf /etc))", "sh -c '((rm -rf /etc))'", "bash -c '((rm -rf /etc))'", "true && ((rm -rf /etc))"],
)
def test_double_parentheses_command_is_also_read_as_nested_subshells(engine: Engine, text: str) -> None:
    # dash runs `((rm -rf /etc))` as `( (rm -rf /etc) )`; bash as arithmetic: both are judged
    assert "rm" in _programs(text)
    assert engine.check(CommandRequest(text), subject=AGENT).effect is Effect.DENY


def test_dash_really_runs_double_parentheses_as_subshells(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    subprocess.run(["dash", "-c", f"((touch {marker}))"], check=False, capture_output=True)
    assert marker.exists()


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("x='a[$(rm -rf /)]'; echo $((x))", "x"),
        ("x='a[$(rm -rf /)]'; (( x ))", "x"),
        ("x='a[$(rm -rf /)]'; [[ $x -eq 1 ]]", "x"),
        ("x='a[`rm -rf /`]'; let y=x", "x"),
        ("declare -i n; n='a[$(rm -rf /)]'", "n"),
        ("read x; echo $((x + 1))", "x"),
        ("for f in *; do echo $((f)); done", "f"),
        ("n=$(cat /tmp/n); echo ${arr[n]}", "n"),
        ('x="$1"; echo $((x))', "x"),
    ],
)
def test_arithmetic_over_a_variable_of_unknown_value_is_malformed(engine: Engine, text: str, name: str) -> None:
    facts = parse_command(text)
    assert facts.parse_error is not None
    assert f"`{name}`" in facts.parse_error
    assert engine.check(CommandRequest(text), subject=AGENT).effect is Effect.DENY


def test_bash_runs_the_substitution_in_a_variable_read_by_arithmetic(tmp_path: Path) -> None:
    # the hazard is real: bash expands the subscript inside the variable's value
    marker = tmp_path / "ran"
    subprocess.run(["bash", "-c", f"x='a[$(touch {marker})]'; echo $((x))"], check=False, capture_output=True)
    assert marker.exists()


@pytest.mark.parametrize(
    "text",
    [
        "echo $((1 + 2))",
        "x=5; echo $((x + 1))",
        "for i in 1 2 3; do echo $((i * 2)); done",
        "for ((i = 0; i < 3; i++)); do echo $i; done",
        "echo $((rm -rf /etc))",  # arithmetic to every shell: a division by zero, nothing runs
    ],
)
def test_arithmetic_over_known_values_stays_allowed(engine: Engine, text: str) -> None:
    assert parse_command(text).parse_error is None
    assert engine.check(CommandRequest(text), subject=AGENT).effect is Effect.ALLOW
