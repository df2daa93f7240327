"""`subguard eval --query` (the value of any rule or document) and `--explain` (which
decision rules fired, and for the others the first literal that failed), through the
CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from subguard.cli import main

POLICY = """package guard.demo

default allow := true

deny contains msg if {
    some s in input.sql.statements
    s.kind == "drop"
    msg := "no drops"
}

approve contains "busy session" if input.session.requests > 100

limits := {"max": 3}

level := "high" if { input.subject.id == "root" } else := "low"
"""


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    (tmp_path / "p.guard").write_text(POLICY, encoding="utf-8")
    return tmp_path / "p.guard"


def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def test_query_a_rule_with_no_input(rules: Path) -> None:
    code, out, _ = _run("eval", "--rules", str(rules), "--query", "data.guard.demo.limits")
    assert (code, json.loads(out)) == (0, {"max": 3})


def test_query_into_a_value(rules: Path) -> None:
    code, out, _ = _run("eval", "--rules", str(rules), "--query", "data.guard.demo.limits.max")
    assert (code, json.loads(out)) == (0, 3)


def test_query_for_the_input_a_request_makes(rules: Path) -> None:
    code, out, _ = _run("eval", "--rules", str(rules), "--sql", "DROP TABLE t", "--subject", "root", "--query", "data.guard.demo")
    assert code == 0
    document = json.loads(out)
    assert document["deny"] == ["no drops"]
    assert document["level"] == "high"
    assert document["allow"] is True


def test_query_with_data(rules: Path, tmp_path: Path) -> None:
    (tmp_path / "d.json").write_text('{"limits": {"tables": ["t"]}}', encoding="utf-8")
    code, out, _ = _run("eval", "--rules", str(rules), "--data", str(tmp_path / "d.json"), "--query", "data.limits.tables")
    assert (code, json.loads(out)) == (0, ["t"])


def test_query_untyped_input_outside_the_schema(rules: Path, tmp_path: Path) -> None:
    # `input.anything` is no field of the schema: typed, the policy does not load
    rules.write_text(POLICY + "\nraw := input.anything\n", encoding="utf-8")
    (tmp_path / "in.json").write_text('{"anything": [1, 2]}', encoding="utf-8")
    code, _out, err = _run("eval", "--rules", str(rules), "--query", "data.guard.demo.raw")
    assert code == 2 and "unknown_field" in err
    code, out, _ = _run("eval", "--rules", str(rules), "--input", str(tmp_path / "in.json"), "--untyped", "--query", "data.guard.demo.raw")
    assert (code, json.loads(out)) == (0, [1, 2])


def test_query_undefined_exits_1(rules: Path) -> None:
    code, out, err = _run("eval", "--rules", str(rules), "--query", "data.guard.demo.nothing")
    assert (code, out) == (1, "")
    assert "undefined" in err


@pytest.mark.parametrize("query", ["input.x", "data.", "data.a[0]", "data.a; rm -rf /"])
def test_query_that_is_not_a_data_path_exits_2(rules: Path, query: str) -> None:
    code, out, err = _run("eval", "--rules", str(rules), "--query", query)
    assert (code, out) == (2, "")
    assert "not a path under `data`" in err


def test_query_takes_one_request(rules: Path, tmp_path: Path) -> None:
    (tmp_path / "b.jsonl").write_text('{"sql": "SELECT 1"}\n', encoding="utf-8")
    code, _out, err = _run("eval", "--rules", str(rules), "--batch", str(tmp_path / "b.jsonl"), "--query", "data.guard.demo")
    assert code == 2 and "not --batch" in err


def test_explain_names_the_first_failing_literal(rules: Path) -> None:
    code, out, _ = _run("eval", "--rules", str(rules), "--sql", "SELECT 1", "--explain")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("ALLOW")
    deny = next(line for line in lines if "guard.demo.deny" in line and "not fired" in line)
    assert f'`s.kind == "drop"` failed at {rules}:7:5' in deny
    approve = next(line for line in lines if "guard.demo.approve" in line)
    assert "not fired" in approve and f"{rules}:11:" in approve


def test_explain_json_lists_fired_definitions(rules: Path) -> None:
    code, out, _ = _run("eval", "--rules", str(rules), "--sql", "DROP TABLE t", "--explain", "--format", "jsonl")
    assert code == 0
    decision, explained = (json.loads(line) for line in out.splitlines())
    assert decision["effect"] == "deny"
    by_rule = {(e["rule"], e["location"]): e for e in explained["explain"]}
    assert by_rule[("deny", f"{rules}:5")]["fired"] is True
    assert by_rule[("approve", f"{rules}:11")] == {
        "package": "guard.demo",
        "rule": "approve",
        "location": f"{rules}:11",
        "fired": False,
        "failed_at": f"{rules}:11:36",
        "failed_literal": "input.session.requests > 100",
        "error": None,
    }
