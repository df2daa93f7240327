"""The bundled packs against a corpus of shell commands (tests/command/shell_corpus.txt):
harmful ones in every spelling an agent might try, and everyday harmless ones — through
the API and through `subguard eval --command`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from subguard.cli import main
from subguard.engine import CommandRequest, Engine, Subject, load_policy
from subguard.testing import policy_files

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "rules"
CORPUS = Path(__file__).with_name("shell_corpus.txt")


def _cases() -> list[tuple[str, str]]:
    cases = []
    for line in CORPUS.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        effect, _, command = line.partition("\t")
        cases.append((effect, command.replace("\\x00", "\x00").replace("\\n", "\n")))
    return cases


CASES = _cases()
AGENT = Subject("ci-bot", frozenset({"agents"}))


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(load_policy(policy_files(RULES)))


def _matches(expected: str, effect: str) -> bool:
    return effect in ("deny", "approve") if expected == "refused" else effect == expected


def test_the_corpus_is_large_and_balanced() -> None:
    effects = [e for e, _ in CASES]
    assert effects.count("deny") >= 150
    assert effects.count("allow") >= 50
    assert effects.count("approve") >= 15


@pytest.mark.parametrize(("expected", "command"), CASES, ids=[repr(c)[:60] for _, c in CASES])
def test_through_the_api(engine: Engine, expected: str, command: str) -> None:
    decision = engine.check(CommandRequest(command), subject=AGENT)
    assert _matches(expected, decision.effect.value), [r.message for r in decision.reasons]


def test_through_eval_command() -> None:
    runner = CliRunner()
    wrong = []
    for expected, command in CASES:
        if "\x00" in command:
            continue  # a NUL cannot travel in argv; the API test covers it
        result = runner.invoke(
            main,
            ["eval", "--rules", str(RULES), "--command", command, "--subject", "ci-bot", "--group", "agents", "--format", "json"],
        )
        effect = json.loads(result.output)["effect"] if result.output.startswith("{") else f"exit {result.exit_code}"
        if not _matches(expected, effect):
            wrong.append((command, expected, effect))
    assert not wrong
