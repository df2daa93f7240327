"""Policy loading is bounded: total source size and rule count, refused at once with the
file and line where the limit was crossed."""

from __future__ import annotations

from pathlib import Path

import pytest

import subguard
from subguard.engine.policy import DEFAULT_MAX_POLICY_BYTES, DEFAULT_MAX_RULES

RULES = Path(__file__).resolve().parents[2] / "rules"


def _errors(paths: object, **limits: int) -> list[tuple[str, str, int]]:
    with pytest.raises(subguard.PolicyErrors) as info:
        subguard.load_policy(paths, **limits)  # type: ignore[arg-type]
    return [(e.code, Path(e.location.path).name, e.location.line) for e in info.value.errors]


def _constant_rules(n: int) -> str:
    return "package p\n\n" + "".join(f"r{i} := {i}\n" for i in range(n))


def test_4mb_policy_of_constant_rules_fails_fast(tmp_path: Path) -> None:
    # once 3 minutes and 11.6 GB to load; now refused before parsing
    (tmp_path / "big.guard").write_text(_constant_rules(230_000))
    assert _errors(tmp_path) == [("policy_too_large", "big.guard", 1)]


def test_constant_rules_under_the_size_limit_are_counted_before_parsing(tmp_path: Path) -> None:
    (tmp_path / "many.guard").write_text(_constant_rules(DEFAULT_MAX_RULES + 1))
    # the rule past the limit is on line 3 + DEFAULT_MAX_RULES
    assert _errors(tmp_path) == [("too_many_rules", "many.guard", DEFAULT_MAX_RULES + 3)]


def test_the_size_limit_is_over_every_file_together(tmp_path: Path) -> None:
    for name in ("a", "b", "c"):
        (tmp_path / f"{name}.guard").write_text(f"package {name}\n\n# {'x' * 400}\nr := 1\n")
    assert _errors(tmp_path, max_policy_bytes=1000) == [("policy_too_large", "c.guard", 1)]
    assert subguard.load_policy(tmp_path, max_policy_bytes=2000).packages == ("a", "b", "c")


def test_rules_laid_out_unusually_are_still_counted_exactly(tmp_path: Path) -> None:
    # indented heads escape the quick count; the count after parsing catches them
    text = "package p\n\n" + "".join(f"  r{i} := {i}\n" for i in range(12))
    (tmp_path / "p.guard").write_text(text)
    assert _errors(tmp_path, max_rules=10) == [("too_many_rules", "p.guard", 13)]
    assert len(subguard.load_policy(tmp_path, max_rules=12).compiled.rules) == 12


def test_limits_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "p.guard").write_text(_constant_rules(20))
    monkeypatch.setenv("SUBGUARD_MAX_RULES", "10")
    assert _errors(tmp_path) == [("too_many_rules", "p.guard", 13)]
    monkeypatch.setenv("SUBGUARD_MAX_RULES", "ten")
    assert _errors(tmp_path) == [("bad_limit", "<environment>", 0)]
    monkeypatch.delenv("SUBGUARD_MAX_RULES")
    monkeypatch.setenv("SUBGUARD_MAX_POLICY_BYTES", "50")
    assert _errors(tmp_path) == [("policy_too_large", "p.guard", 1)]
    monkeypatch.setenv("SUBGUARD_MAX_POLICY_BYTES", "-5")
    assert _errors(tmp_path) == [("bad_limit", "<environment>", 0)]


@pytest.mark.parametrize("bad", [0, -1, 2.5, "10"])
def test_limits_given_by_the_caller_must_be_positive_integers(tmp_path: Path, bad: object) -> None:
    (tmp_path / "p.guard").write_text(_constant_rules(2))
    with pytest.raises(ValueError, match="positive integers"):
        subguard.load_policy(tmp_path, max_rules=bad)  # type: ignore[arg-type]


def test_the_bundled_packs_load_well_within_the_defaults() -> None:
    policy = subguard.load_policy(RULES)
    size = sum(len(f.read_bytes()) for f in RULES.rglob("*.guard"))  # tests included
    assert size * 4 < DEFAULT_MAX_POLICY_BYTES
    assert len(policy.compiled.definitions) * 10 < DEFAULT_MAX_RULES


def test_check_reports_the_limit_with_file_and_line(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from subguard.cli import main

    (tmp_path / "p.guard").write_text(_constant_rules(30))
    result = CliRunner().invoke(main, ["check", str(tmp_path)], env={"SUBGUARD_MAX_RULES": "25"})
    assert result.exit_code != 0
    assert "p.guard:28:1: too_many_rules" in result.output
    assert "Traceback" not in result.output
