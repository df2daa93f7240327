"""`subguard eval` on bad input: one clear line per problem, the good lines of a batch
still decided in order, the documented exit codes, and never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from subguard.cli import main

POLICY = """package p

deny contains "drop" if {
    some s in input.sql.statements
    s.kind == "drop"
}

allow if "ok" in input.subject.groups
"""

OK = {"id": "a", "groups": ["ok"]}


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    path = tmp_path / "p.guard"
    path.write_text(POLICY, encoding="utf-8")
    return path


def _run(*args: str) -> Result:
    result = CliRunner().invoke(main, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.stdout
    assert "Traceback" not in result.stderr
    return result


def _batch(tmp_path: Path, lines: list[str | bytes]) -> Path:
    path = tmp_path / "batch.jsonl"
    path.write_bytes(b"".join((x if isinstance(x, bytes) else x.encode()) + b"\n" for x in lines))
    return path


MIXED = [
    json.dumps({"sql": "SELECT 1", "subject": OK}),  # 1: allow
    "not json at all",  # 2
    json.dumps({"sqll": "SELECT 1"}),  # 3: unknown field
    json.dumps({"sql": 5}),  # 4: wrong type
    "[1, 2]",  # 5: not an object
    "",  # 6: blank, skipped
    json.dumps({"command": "ls", "subject": OK}),  # 7: allow
    json.dumps({"sql": "DROP TABLE t", "subject": OK}),  # 8: deny
    json.dumps({"input": {"subject": OK}}),  # 9: allow
    json.dumps({"sql": "SELECT 1", "command": "ls"}),  # 10: two requests
    json.dumps({"sql": "SELECT 1", "subject": {"id": "a", "groupz": []}}),  # 11: unknown subject field
    json.dumps({"input": 3}),  # 12: input not an object
    json.dumps({"sql": "SELECT 1", "subject": {"id": "a", "groups": "ok"}}),  # 13: groups not a list
    json.dumps({"sql": "SELECT 1"}),  # 14: deny (nothing allows)
]

EXPECTED = [
    (1, "allow"),
    (2, "parse_error"),
    (3, "unknown_field"),
    (4, "type_error"),
    (5, "type_error"),
    (7, "allow"),
    (8, "deny"),
    (9, "allow"),
    (10, "bad_request"),
    (11, "unknown_field"),
    (12, "bad_request"),
    (13, "type_error"),
    (14, "deny"),
]


def test_malformed_batch_jsonl(rules: Path, tmp_path: Path) -> None:
    result = _run("eval", "--rules", str(rules), "--batch", str(_batch(tmp_path, MIXED)), "--format", "jsonl")
    assert result.exit_code == 2
    records = [json.loads(line) for line in result.stdout.splitlines()]
    got = []
    decided_lines = iter(n for n, what in EXPECTED if what in ("allow", "deny"))
    for record in records:
        if "error" in record:
            assert set(record) == {"line", "error"}
            got.append((record["line"], record["error"]["code"]))
        else:
            assert set(record) == {"id", "effect", "reasons", "masks", "errors"}
            got.append((next(decided_lines), record["effect"]))
    assert got == EXPECTED
    errors = [line for line in result.stderr.splitlines() if line.startswith("batch line ")]
    assert [line.split(":")[0] for line in errors] == [f"batch line {n}" for n, what in EXPECTED if what not in ("allow", "deny")]
    assert "batch line 3: unknown_field: `sqll` is not a field of a request (did you mean `sql`?)" in errors


def test_malformed_batch_json_format(rules: Path, tmp_path: Path) -> None:
    result = _run("eval", "--rules", str(rules), "--batch", str(_batch(tmp_path, MIXED[:4])), "--format", "json")
    assert result.exit_code == 2
    decoder = json.JSONDecoder()
    text, records = result.stdout, []
    index = 0
    while index < len(text):
        if text[index].isspace():
            index += 1
            continue
        record, index = decoder.raw_decode(text, index)
        records.append(record)
    assert records[0]["effect"] == "allow"
    assert [(r["line"], r["error"]["code"]) for r in records[1:]] == [(2, "parse_error"), (3, "unknown_field"), (4, "type_error")]


def test_malformed_batch_text_format(rules: Path, tmp_path: Path) -> None:
    result = _run("eval", "--rules", str(rules), "--batch", str(_batch(tmp_path, MIXED)), "--format", "text")
    assert result.exit_code == 2
    assert result.stdout.count("ALLOW") == 3
    assert result.stdout.count("DENY") == 2
    assert "batch line 2: parse_error:" in result.stderr


def test_good_batch_exits_zero(rules: Path, tmp_path: Path) -> None:
    lines = [json.dumps({"sql": "SELECT 1", "subject": OK}), json.dumps({"sql": "DROP TABLE t"})]
    result = _run("eval", "--rules", str(rules), "--batch", str(_batch(tmp_path, lines)), "--format", "jsonl")
    assert result.exit_code == 0
    assert [json.loads(x)["effect"] for x in result.stdout.splitlines()] == ["allow", "deny"]
    assert result.stderr == ""


def test_non_utf8_batch_line(rules: Path, tmp_path: Path) -> None:
    lines: list[str | bytes] = [json.dumps({"sql": "SELECT 1", "subject": OK}), b"\xff\xfe", json.dumps({"sql": "DROP TABLE t"})]
    result = _run("eval", "--rules", str(rules), "--batch", str(_batch(tmp_path, lines)), "--format", "jsonl")
    assert result.exit_code == 2
    records = [json.loads(x) for x in result.stdout.splitlines()]
    assert records[0].get("effect") == "allow"
    assert records[1] == {"line": 2, "error": {"code": "encoding_error", "message": records[1]["error"]["message"]}}
    assert records[2].get("effect") == "deny"


def test_missing_batch_file(rules: Path, tmp_path: Path) -> None:
    result = _run("eval", "--rules", str(rules), "--batch", str(tmp_path / "nope.jsonl"))
    assert result.exit_code == 2
    assert "cannot read batch file" in result.stderr


def test_unreadable_data_file(rules: Path, tmp_path: Path) -> None:
    result = _run("eval", "--rules", str(rules), "--data", str(tmp_path / "missing.json"), "--sql", "SELECT 1")
    assert result.exit_code == 2
    assert "cannot read data file" in result.stderr
    assert result.stdout == ""


def test_data_file_is_a_directory(rules: Path, tmp_path: Path) -> None:
    result = _run("eval", "--rules", str(rules), "--data", str(tmp_path), "--sql", "SELECT 1")
    assert result.exit_code == 2
    assert "data file" in result.stderr


@pytest.mark.parametrize(("content", "needle"), [(b"{not json", "not valid JSON"), (b"\xff\xfe{}", "not valid JSON"), (b"[1, 2]", "must hold a JSON object")])
def test_bad_data_file(rules: Path, tmp_path: Path, content: bytes, needle: str) -> None:
    data = tmp_path / "data.json"
    data.write_bytes(content)
    result = _run("eval", "--rules", str(rules), "--data", str(data), "--sql", "SELECT 1")
    assert result.exit_code == 2
    assert needle in result.stderr


@pytest.mark.parametrize("content", ["[1]", '"text"', "42", "null", "{oops"])
def test_input_not_an_object(rules: Path, tmp_path: Path, content: str) -> None:
    doc = tmp_path / "input.json"
    doc.write_text(content, encoding="utf-8")
    result = _run("eval", "--rules", str(rules), "--input", str(doc), "--format", "jsonl")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert "input document" in result.stderr


def test_input_object_is_decided(rules: Path, tmp_path: Path) -> None:
    doc = tmp_path / "input.json"
    doc.write_text(json.dumps({"subject": OK}), encoding="utf-8")
    result = _run("eval", "--rules", str(rules), "--input", str(doc), "--format", "jsonl")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["effect"] == "allow"


@pytest.mark.parametrize(
    "extra",
    [
        ["--sql", "SELECT 1", "--batch", "BATCH"],
        ["--sql", "SELECT 1", "--command", "ls"],
        ["--input", "BATCH", "--batch", "BATCH"],
        [],
    ],
)
def test_request_sources_are_exclusive(rules: Path, tmp_path: Path, extra: list[str]) -> None:
    batch = str(_batch(tmp_path, [json.dumps({"sql": "SELECT 1"})]))
    result = _run("eval", "--rules", str(rules), *[batch if x == "BATCH" else x for x in extra])
    assert result.exit_code == 2
    assert "exactly one of" in result.stderr
    assert result.stdout == ""


def test_policy_error_in_eval(tmp_path: Path) -> None:
    bad = tmp_path / "bad.guard"
    bad.write_text("package bad\n\nallow if input.subject.idd == 1\n", encoding="utf-8")
    result = _run("eval", "--rules", str(bad), "--sql", "SELECT 1")
    assert result.exit_code == 2
    assert f"{bad}:3:24: unknown_field:" in result.stderr
    assert result.stdout == ""


def test_missing_rules(tmp_path: Path) -> None:
    result = _run("eval", "--rules", str(tmp_path / "nope"), "--sql", "SELECT 1")
    assert result.exit_code == 2
    assert "io_error" in result.stderr


def test_unknown_format_is_a_usage_error(rules: Path) -> None:
    result = _run("eval", "--rules", str(rules), "--sql", "SELECT 1", "--format", "yaml")
    assert result.exit_code == 2


@pytest.mark.parametrize("sql", ["", "\x00\x01", "SELECT '" * 200, "(" * 5000, "DROP TABLE t; " * 300])
def test_odd_sql_is_decided(rules: Path, sql: str) -> None:
    result = _run("eval", "--rules", str(rules), "--sql", sql, "--group", "ok", "--format", "jsonl")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["effect"] in ("allow", "deny")
