"""The decision-case corpus (`tests/cases/*.json`), run through the library API and
through `subguard eval --format jsonl`, with the same expectations both ways.

A case file holds `policy` (file name → text), optional `data`, and `cases`, each with
a `request` (`sql` or `command`, plus `subject` and `resource`) or a raw `input`
document, optional `xfail` (why the engine is known to get it wrong), and `expect`: `effect`, `reasons` (exact, order-insensitive list of
`{rule, package, message}`), `masks` (list or object) and `errors` (codes).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import subguard
from subguard.cli import main

CASES_DIR = Path(__file__).resolve().parent.parent / "cases"
CASE_FILES = sorted(CASES_DIR.glob("*.json"))


def _load_cases() -> list[Any]:
    params = []
    for file in CASE_FILES:
        doc = json.loads(file.read_text(encoding="utf-8"))
        for case in doc["cases"]:
            marks = [pytest.mark.xfail(strict=True, reason=case["xfail"])] if "xfail" in case else []
            params.append(pytest.param(doc, case, id=f"{file.stem}:{case['name']}", marks=marks))
    return params


PARAMS = _load_cases()


def _write_policy(doc: dict[str, Any], tmp_path: Path) -> tuple[Path, Path]:
    rules = tmp_path / "rules"
    rules.mkdir()
    for name, text in doc["policy"].items():
        (rules / name).write_text(text, encoding="utf-8")
    data_file = tmp_path / "data.json"
    data_file.write_text(json.dumps(doc.get("data", {})), encoding="utf-8")
    return rules, data_file


def _api_decision(doc: dict[str, Any], case: dict[str, Any], rules: Path) -> dict[str, Any]:
    engine = subguard.Engine(subguard.load_policy(rules, data=doc.get("data", {})))
    if "input" in case:
        return engine.evaluate(case["input"]).as_dict()
    request = case["request"]
    if "sql" in request:
        req: Any = subguard.SqlRequest(request["sql"], request.get("dialect"))
    else:
        req = subguard.CommandRequest(request["command"])
    return engine.check(req, subject=request.get("subject"), resource=request.get("resource")).as_dict()


def _cli_decision(case: dict[str, Any], rules: Path, data_file: Path, tmp_path: Path) -> dict[str, Any]:
    line = {"input": case["input"]} if "input" in case else case["request"]
    batch = tmp_path / "batch.jsonl"
    batch.write_text(json.dumps(line) + "\n", encoding="utf-8")
    args = ["eval", "--rules", str(rules), "--data", str(data_file), "--batch", str(batch), "--format", "jsonl"]
    result = CliRunner().invoke(main, args)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    assert result.exit_code == 0, result.output
    records = [json.loads(x) for x in result.stdout.splitlines() if x.strip()]
    assert len(records) == 1, result.stdout
    return records[0]


def _assert_expected(decision: dict[str, Any], expect: dict[str, Any], how: str) -> None:
    assert set(decision) == {"id", "effect", "reasons", "masks", "errors"}, how
    assert decision["effect"] == expect["effect"], f"{how}: {decision}"
    if "reasons" in expect:
        got = Counter((r["rule"], r["package"], r["message"]) for r in decision["reasons"])
        want = Counter((r["rule"], r["package"], r["message"]) for r in expect["reasons"])
        assert got == want, f"{how}: reasons {decision['reasons']}"
    for reason in decision["reasons"]:
        if reason["package"] != "subguard":
            assert re.fullmatch(r".+\.guard:\d+", reason["location"]), f"{how}: {reason}"
    masks = expect.get("masks", [])
    if isinstance(masks, dict):
        assert decision["masks"] == masks, f"{how}: masks {decision['masks']}"
    else:
        assert isinstance(decision["masks"], list), f"{how}: masks {decision['masks']}"
        assert sorted(decision["masks"]) == sorted(masks), f"{how}: masks {decision['masks']}"
    codes = Counter(e["code"] for e in decision["errors"])
    assert codes == Counter(expect.get("errors", [])), f"{how}: errors {decision['errors']}"


def test_corpus_is_large_enough() -> None:
    assert len(CASE_FILES) >= 12
    assert len(PARAMS) >= 60


@pytest.mark.parametrize(("doc", "case"), PARAMS)
def test_case(doc: dict[str, Any], case: dict[str, Any], tmp_path: Path) -> None:
    rules, data_file = _write_policy(doc, tmp_path)
    expect = case["expect"]
    _assert_expected(_api_decision(doc, case, rules), expect, "api")
    _assert_expected(_cli_decision(case, rules, data_file, tmp_path), expect, "cli")
