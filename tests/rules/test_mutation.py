"""The pack tests really assert: removing any one decision rule from `rules/` makes at
least one pack test fail. Each mutant is a temporary copy of `rules/` with one rule's
text cut out, run through the same runner as `subguard test`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from subguard.engine import DECISION_RULES, load_policy
from subguard.errors import PolicyErrors
from subguard.testing import policy_files, run_tests

RULES = Path(__file__).resolve().parents[2] / "rules"


def _decision_rules() -> list[tuple[str, str, int, int]]:
    """(relative path, rule name, first line, last line) of each decision rule."""
    policy = load_policy(policy_files(RULES))
    found = []
    for module in policy.modules:
        relative = Path(module.path).relative_to(RULES).as_posix()
        for rule in module.rules:
            if rule.name in DECISION_RULES:
                found.append((relative, rule.name, rule.loc.line, rule.loc.end_line or rule.loc.line))
    return sorted(found)


DECISION_RULE_SPANS = _decision_rules()


def test_the_packs_pass_unmutated() -> None:
    report = run_tests(RULES, coverage=True)
    assert report.ok, [r.name for r in report.results if r.status != "pass"]
    assert report.coverage is not None and report.coverage.percent == 100.0, report.coverage.missed
    assert len(DECISION_RULE_SPANS) >= 20


@pytest.mark.parametrize(
    ("path", "rule", "first", "last"),
    DECISION_RULE_SPANS,
    ids=[f"{p}:{first}:{rule}" for p, rule, first, _ in DECISION_RULE_SPANS],
)
def test_removing_a_rule_fails_a_pack_test(tmp_path: Path, path: str, rule: str, first: int, last: int) -> None:
    copy = tmp_path / "rules"
    shutil.copytree(RULES, copy)
    target = copy / path
    lines = target.read_text(encoding="utf-8").splitlines(keepends=True)
    removed = "".join(lines[first - 1:last])
    assert removed.startswith(rule), removed
    target.write_text("".join(lines[: first - 1] + lines[last:]), encoding="utf-8")
    try:
        report = run_tests(copy)
    except PolicyErrors as exc:  # a test names the removed rule: `subguard test` fails too
        assert any(e.code == "unknown_rule" for e in exc.errors), str(exc)
        return
    failed = [r.name for r in report.results if r.status in ("fail", "error")]
    assert failed, f"no pack test fails without {path}:{first} ({rule}):\n{removed}"

