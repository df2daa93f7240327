"""The command line fails closed at its boundaries (issue 9) and behaves as users of a
Python tool expect (issue 8): `subguard check` fails on a policy path it cannot read, a
malformed batch line is that line's error and the batch goes on, closed stdin is a clear
error, every option reads a `SUBGUARD_*` variable, `python -m subguard` works.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from subguard.cli import main

POLICY = """package p

deny contains "drop" if {
    some s in input.sql.statements
    s.kind == "drop"
}

default allow := true
"""

FUZZ = settings(max_examples=60, deadline=3000, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    path = tmp_path / "rules"
    path.mkdir()
    (path / "p.guard").write_text(POLICY, encoding="utf-8")
    return path


def _run(*args: str, env: dict[str, str] | None = None, input: str | None = None) -> Result:
    result = CliRunner().invoke(main, list(args), env=env, input=input)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.stdout + result.stderr
    return result


def _records(result: Result) -> list[dict[str, Any]]:
    # JSON Lines end at "\n" only: `splitlines` would also cut at U+0085 or U+2028 inside a
    # record's (unescaped) text
    return [json.loads(line) for line in result.stdout.split("\n") if line.strip()]


# ── subguard check on unreadable policy paths ────────────────────────────────────────


def test_check_fails_on_a_dangling_guard_symlink(rules: Path, tmp_path: Path) -> None:
    (rules / "gone.guard").symlink_to(tmp_path / "nowhere.guard")
    result = _run("check", str(rules))
    assert result.exit_code == 1
    assert f"{rules / 'gone.guard'}:0:0: io_error:" in result.stdout


def test_check_fails_on_an_unreadable_policy_subdirectory(
    rules: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    locked = rules / "locked"
    locked.mkdir()
    (locked / "d.guard").write_text(POLICY.replace("package p", "package locked"))
    real_scandir = os.scandir

    def scandir(path: Any = ".") -> Any:
        if Path(path) == locked:
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    result = _run("check", str(rules))
    assert result.exit_code == 1
    assert f"{locked}:0:0: io_error:" in result.stdout


def test_check_accepts_a_utf8_bom(rules: Path) -> None:
    (rules / "p.guard").write_bytes(b"\xef\xbb\xbf" + POLICY.encode())
    result = _run("check", str(rules))
    assert result.exit_code == 0, result.output


def test_fmt_fails_on_a_dangling_guard_symlink(rules: Path, tmp_path: Path) -> None:
    (rules / "gone.guard").symlink_to(tmp_path / "nowhere.guard")
    result = _run("fmt", "--check", str(rules))
    assert result.exit_code == 2
    assert f"{rules / 'gone.guard'}:0:0: io_error:" in result.stderr


def test_subguard_test_fails_on_a_dangling_guard_symlink(rules: Path, tmp_path: Path) -> None:
    (rules / "p_test.guard").write_text('package p_test\n\ntest_ok if true\n')
    (rules / "gone_test.guard").symlink_to(tmp_path / "nowhere.guard")
    result = _run("test", str(rules))
    assert result.exit_code == 2
    assert f"{rules / 'gone_test.guard'}:0:0: io_error:" in result.stderr


# ── eval --batch ─────────────────────────────────────────────────────────────────────


def _batch(tmp_path: Path, lines: list[str]) -> Path:
    path = tmp_path / "batch.jsonl"
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


MALFORMED = [
    ({"sql": "SELECT 1", "subject": {"id": "a", "claims": "role=admin"}}, "type_error"),
    ({"sql": "SELECT 1", "subject": {"id": "a", "claims": [["role", "admin"]]}}, "type_error"),
    ({"sql": "SELECT 1", "resource": {"tags": "pii"}}, "type_error"),
    ({"sql": "SELECT 1", "resource": {"tags": ["pii"]}}, "type_error"),
    ({"http": {"method": "GET", "path": "/", "query": "a=1"}}, "type_error"),
    ({"http": {"method": "GET", "path": "/", "query": [["a", "1"]]}}, "type_error"),
    ({"sql": "SELECT 1", "dialect": 5}, "type_error"),
    ({"sql": "SELECT 1", "resource": {"dialect": 5}}, "type_error"),
    ({"sql": "SELECT 1", "subject": {"id": "a", "groups": "agents"}}, "type_error"),
    ({"sql": "SELECT 1", "subject": {"id": 5}}, "type_error"),
    ({"sql": "SELECT 1", "session": ["s"]}, "type_error"),
    ({"http": {"method": "GET", "pth": "/"}}, "unknown_field"),
    ({"http": "GET /"}, "type_error"),
]


@pytest.mark.parametrize(("line", "code"), MALFORMED)
def test_batch_malformed_line_yields_its_error_and_the_batch_goes_on(
    rules: Path, tmp_path: Path, line: dict[str, Any], code: str
) -> None:
    lines = [json.dumps({"sql": "SELECT 1"}), json.dumps(line), json.dumps({"sql": "DROP TABLE t"})]
    result = _run("eval", "--rules", str(rules), "--batch", str(_batch(tmp_path, lines)), "--format", "jsonl")
    assert result.exit_code == 2
    records = _records(result)
    assert [r.get("effect") or r["error"]["code"] for r in records] == ["allow", code, "deny"]
    assert records[1]["line"] == 2


def test_batch_too_deep_or_too_long_json_is_that_lines_error(rules: Path, tmp_path: Path) -> None:
    lines = ["[" * 100_000 + "]" * 100_000, "1" * 5000, json.dumps({"sql": "SELECT 1"})]
    result = _run("eval", "--rules", str(rules), "--batch", str(_batch(tmp_path, lines)), "--format", "jsonl")
    assert [r.get("effect") or r["error"]["code"] for r in _records(result)] == ["parse_error", "parse_error", "allow"]


def test_batch_with_a_bom_reads_its_first_line(rules: Path, tmp_path: Path) -> None:
    path = tmp_path / "batch.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps({"sql": "SELECT 1"}).encode() + b"\n")
    result = _run("eval", "--rules", str(rules), "--batch", str(path), "--format", "jsonl")
    assert [r["effect"] for r in _records(result)] == ["allow"]


def _subguard(*args: str, stdin_closed: bool = False, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "subguard", *args]
    if stdin_closed:
        command = ["sh", "-c", 'exec "$@" <&-', "sh", *command]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env=env)


def test_batch_stdin_closed_is_a_clear_error(rules: Path) -> None:
    result = _subguard("eval", "--rules", str(rules), "--batch", "-", stdin_closed=True)
    assert result.returncode == 2
    assert "standard input is closed" in result.stderr
    assert "Traceback" not in result.stderr


def test_batch_from_stdin(rules: Path) -> None:
    result = _run("eval", "--rules", str(rules), "--batch", "-", "--format", "jsonl", input=json.dumps({"sql": "DROP TABLE t"}) + "\n")
    assert [r["effect"] for r in _records(result)] == ["deny"]


# ── packaging habits ─────────────────────────────────────────────────────────────────


def test_python_dash_m_subguard_runs_the_command(rules: Path) -> None:
    result = _subguard("eval", "--rules", str(rules), "--sql", "DROP TABLE t", "--format", "jsonl")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["effect"] == "deny"
    from importlib.metadata import version

    assert _subguard("--version").stdout.strip().endswith(version("subguard"))


def test_every_option_reads_a_subguard_environment_variable(rules: Path) -> None:
    env = {"SUBGUARD_EVAL_RULES": str(rules), "SUBGUARD_EVAL_FORMAT": "jsonl", "SUBGUARD_EVAL_SQL": "DROP TABLE t"}
    result = _run("eval", env=env)
    assert [r["effect"] for r in _records(result)] == ["deny"]


def _options(command: Any, path: str) -> list[tuple[str, Any]]:
    import click

    found = [(f"{path} {p.name}", p) for p in command.params if isinstance(p, click.Option) and not p.is_eager]
    for name, sub in getattr(command, "commands", {}).items():
        found.extend(_options(sub, f"{path} {name}"))
    return found


def test_every_option_has_an_environment_variable() -> None:
    options = _options(main, "subguard")
    assert len(options) > 20
    missing = [name for name, option in options if not option.envvar]
    assert missing == []
    names = [option.envvar for _, option in options if isinstance(option.envvar, str)]
    assert all(name.startswith("SUBGUARD_") for name in names)


def test_dialect_is_a_closed_choice(rules: Path) -> None:
    result = _run("eval", "--rules", str(rules), "--sql", "SELECT 1", "--dialect", "oracle-ish")
    assert result.exit_code == 2
    assert "--dialect" in result.stderr
    ok = _run("eval", "--rules", str(rules), "--sql", "SELECT 1", "--dialect", "postgres", "--format", "jsonl")
    assert [r["effect"] for r in _records(ok)] == ["allow"]


# ── fuzz: batch lines ────────────────────────────────────────────────────────────────

_scalar = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
_value = st.recursive(
    _scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)
_field = st.sampled_from(
    ["sql", "command", "http", "subject", "resource", "session", "dialect", "input", "id", "groups",
     "claims", "tags", "query", "method", "path", "name", "kind", "schema", "sqll"]
)


def _doc_of(**typed: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Documents whose fields are each well typed or of any type (or not an object)."""
    fields = {name: strategy | _value for name, strategy in typed.items()}
    return st.fixed_dictionaries({}, optional=fields) | _value


_text = st.text(max_size=6)
_object = st.dictionaries(_text, _value, max_size=3)
_part = _doc_of(id=_text, name=_text)
_context = {
    "subject": _doc_of(id=_text, groups=st.lists(_text, max_size=3), claims=_object) | _text,
    "resource": _doc_of(
        name=_text, kind=_text, dialect=st.sampled_from(["postgres", "mysql"]), env=_text, tags=_object, schema=_object
    ),
    "session": _text | _value,
    "dialect": st.sampled_from(["postgres", "sqlite"]) | _value,
}
_request_doc = (
    st.fixed_dictionaries({"sql": st.text(max_size=20) | _value}, optional=_context)
    | st.fixed_dictionaries({"command": st.text(max_size=20) | _value}, optional=_context)
    | st.fixed_dictionaries({"http": _doc_of(method=_text, path=_text, host=_text, query=_object)}, optional=_context)
    | st.fixed_dictionaries({"input": _part})
    | st.dictionaries(_field, _part, max_size=4)
)
_line = _request_doc.map(json.dumps) | _value.map(json.dumps) | st.text(max_size=30)


@FUZZ
@given(lines=st.lists(_line.filter(lambda s: "\n" not in s and "\r" not in s), min_size=1, max_size=6))
@example(lines=['{"\u0085x": 1}', '{"\u2028": 2}'])  # line separators that are not "\n"
def test_fuzz_batch_lines_never_traceback_and_malformed_lines_never_allow(
    rules: Path, tmp_path: Path, lines: list[str]
) -> None:
    path = tmp_path / "fuzz.jsonl"
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    result = _run("eval", "--rules", str(rules), "--batch", str(path), "--format", "jsonl")
    assert result.exit_code in (0, 2)
    records = _records(result)
    decided = [line for line in lines if line.strip()]
    assert len(records) == len(decided)
    for record in records:
        if "line" in record:  # a malformed line is only its error, never a decision
            assert set(record) == {"line", "error"}
            assert record["error"]["code"] in {"parse_error", "type_error", "unknown_field", "bad_request", "encoding_error"}
        elif record["effect"] == "allow":
            assert record["errors"] == []


def test_input_document_too_deep_or_with_a_bom(rules: Path, tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    result = _run("eval", "--rules", str(rules), "--input", str(deep))
    assert result.exit_code == 2
    assert "nested too deeply" in result.stderr
    bom = tmp_path / "bom.json"
    bom.write_bytes(b"\xef\xbb\xbf" + json.dumps({"subject": {"id": "a", "groups": []}}).encode())
    result = _run("eval", "--rules", str(rules), "--input", str(bom), "--format", "jsonl")
    assert [r["effect"] for r in _records(result)] == ["allow"]


ADMINS_ONLY = 'package a\n\nallow if "admins" in input.subject.groups\n'


def test_batch_input_line_with_groups_as_a_string_is_denied(tmp_path: Path) -> None:
    (tmp_path / "a.guard").write_text(ADMINS_ONLY)
    lines = [
        json.dumps({"input": {"subject": {"id": "a", "groups": "xadminsx"}}}),
        json.dumps({"input": {"subject": {"id": "a", "groups": ["admins"]}}}),
    ]
    result = _run("eval", "--rules", str(tmp_path / "a.guard"), "--batch", str(_batch(tmp_path, lines)), "--format", "jsonl")
    records = _records(result)
    assert [r["effect"] for r in records] == ["deny", "allow"]
    assert [e["code"] for e in records[0]["errors"]] == ["invalid_request"]
    document = tmp_path / "input.json"
    document.write_text(json.dumps({"subject": {"id": "a", "groups": "xadminsx"}}))
    result = _run("eval", "--rules", str(tmp_path / "a.guard"), "--input", str(document), "--format", "jsonl")
    assert [r["effect"] for r in _records(result)] == ["deny"]
