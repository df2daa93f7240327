"""`subguard test` on fixtures that pass, fail, skip and do not compile: exit codes,
output, coverage, JSON and the JUnit file."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from subguard.cli import main
from subguard.testing import policy_files, run_tests

FIXTURES = Path(__file__).parent / "fixtures"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["test", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def test_all_passing_exits_zero_with_full_coverage() -> None:
    code, out, _ = run(str(FIXTURES / "passing"), "--coverage", "--fail-under", "100")
    assert code == 0
    assert "PASS  fixture_test.test_drop_is_denied" in out
    assert "3 passed, 0 failed" in out
    assert "coverage: 100.0% (4/4 decision rules fired)" in out


def test_a_failure_shows_expected_and_actual_decision_and_reasons() -> None:
    code, out, _ = run(str(FIXTURES / "mixed"))
    assert code == 1
    failure = out.split("FAIL  fixture_test.test_delete_is_allowed", 1)[1]
    assert "policy_test.guard:16)" in failure.splitlines()[0]
    assert "expected: allow" in failure
    assert "actual:   approve" in failure
    assert "decision for `DELETE FROM users`: approve" in failure
    assert "fixture.approve: unbounded DELETE" in failure
    assert "policy.guard:10" in failure


def test_todo_tests_are_skipped_and_builtin_errors_are_errors() -> None:
    code, out, _ = run(str(FIXTURES / "mixed"))
    assert code == 1
    assert "SKIP  fixture_test.todo_test_copy_program" in out
    assert "ERROR  fixture_test.test_bad_context" in out
    assert "`subjct` is not a field of the request context (did you mean `subject`?)" in out
    assert "2 passed, 1 failed, 1 error, 1 skipped" in out


def test_run_selects_tests_by_regex() -> None:
    code, out, _ = run(str(FIXTURES / "mixed"), "--run", "select|drop")
    assert code == 0
    assert "2 passed, 0 failed" in out
    assert "test_delete_is_allowed" not in out


def test_coverage_lists_rules_no_test_made_fire() -> None:
    code, out, err = run(str(FIXTURES / "mixed"), "--run", "drop", "--fail-under", "90")
    assert code == 1
    assert "coverage: 50.0% (2/4 decision rules fired)" in out
    assert "policy.guard:10: fixture.approve never fired" in out
    assert "policy.guard:17: fixture.terminate never fired" in out
    assert "coverage 50.0% is under 90%" in err


def test_junit_file(tmp_path: Path) -> None:
    junit = tmp_path / "out" / "junit.xml"
    junit.parent.mkdir()
    code, _, _ = run(str(FIXTURES / "mixed"), "--junit", str(junit))
    assert code == 1
    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites"
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == ("5", "1", "1", "1")
    (suite,) = root.findall("testsuite")
    assert suite.get("name") == "fixture_test"
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert set(cases) == {
        "test_drop_is_denied", "test_select_is_allowed", "test_delete_is_allowed",
        "todo_test_copy_program", "test_bad_context",
    }
    failure = cases["test_delete_is_allowed"].find("failure")
    assert failure is not None and "actual:   approve" in (failure.text or "")
    assert cases["todo_test_copy_program"].find("skipped") is not None
    assert cases["test_bad_context"].find("error") is not None
    assert cases["test_drop_is_denied"].get("line") == "5"
    assert cases["test_drop_is_denied"].get("file", "").endswith("policy_test.guard")


def test_json_format() -> None:
    code, out, _ = run(str(FIXTURES / "mixed"), "--format", "json", "--coverage")
    assert code == 1
    report = json.loads(out)
    assert report["summary"] == {"pass": 2, "fail": 1, "skip": 1, "error": 1}
    by_name = {r["name"]: r for r in report["results"]}
    failed = by_name["fixture_test.test_delete_is_allowed"]
    assert failed["status"] == "fail"
    assert failed["expected"] == ["allow"]
    assert failed["decisions"][0]["effect"] == "approve"
    assert report["coverage"]["percent"] == 75.0  # only the COPY PROGRAM rule never fired


def test_policy_errors_are_one_line_each_and_exit_two() -> None:
    code, out, err = run(str(FIXTURES / "broken"))
    assert code == 2
    assert "policy_test.guard:4:17: unknown_function: `sql_requst` is not a builtin" in err
    assert "did you mean `sql_request`?" in err
    assert "Traceback" not in out + err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--run", "("], "`--run`: not a regular expression"),
        (["--data", "{missing}"], "does not exist"),
    ],
)
def test_usage_errors_exit_two(args: list[str], message: str) -> None:
    code, out, err = run(str(FIXTURES / "passing"), *args)
    assert code == 2
    assert message in out + err


def test_a_path_without_tests_fails(tmp_path: Path) -> None:
    (tmp_path / "p.guard").write_text('package p\ndeny contains "x" if input.subject.id == "x"\n')
    code, _, err = run(str(tmp_path))
    assert code == 1
    assert "no tests found" in err


def test_data_file_feeds_the_data_document(tmp_path: Path) -> None:
    (tmp_path / "p.guard").write_text('package p\nlimit := data.limit\n')
    (tmp_path / "p_test.guard").write_text("package p_test\ntest_limit if data.p.limit == 5\n")
    (tmp_path / "data.json").write_text('{"limit": 5}')
    code, out, _ = run(str(tmp_path), "--data", str(tmp_path / "data.json"))
    assert code == 0, out


def test_policy_files_leave_tests_out_unless_asked() -> None:
    names = {p.name for p in policy_files(FIXTURES / "mixed")}
    assert names == {"policy.guard"}
    assert {p.name for p in policy_files(FIXTURES / "mixed", tests=True)} == {"policy.guard", "policy_test.guard"}


def test_run_tests_api() -> None:
    report = run_tests(FIXTURES / "passing", coverage=True)
    assert report.ok
    assert report.coverage is not None and report.coverage.percent == 100.0
    assert [r.status for r in report.results] == ["pass", "pass", "pass"]
