"""Seeded policy errors: `subguard check` and `load_policy` report exactly the expected
(code, file, line, col) set — every error, in every file, never a traceback."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

import subguard
from subguard.cli import main

LINE = re.compile(r"^(?P<path>.+):(?P<line>\d+):(?P<col>\d+): (?P<code>[a-z_]+): (?P<message>.+)$")

Found = set[tuple[str, str, int, int]]


def _write(root: Path, files: dict[str, str | bytes]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")


def _api_errors(paths: list[Path]) -> Found:
    with pytest.raises(subguard.PolicyErrors) as info:
        subguard.load_policy(paths)
    for error in info.value.errors:
        assert isinstance(error, subguard.PolicyError)
        assert error.message and not error.message.endswith(".")
    return {(e.code, str(e.path), e.line, e.col) for e in info.value.errors}


def _cli_errors(paths: list[Path]) -> Found:
    result = CliRunner().invoke(main, ["check", *map(str, paths)])
    assert result.exit_code == 1, result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    found: Found = set()
    for line in result.stdout.splitlines():
        match = LINE.match(line)
        assert match, f"not a `path:line:col: code: message` line: {line!r}"
        found.add((match["code"], match["path"], int(match["line"]), int(match["col"])))
    return found


def _assert_both(paths: list[Path], expected: Found) -> None:
    assert _api_errors(paths) == expected
    assert _cli_errors(paths) == expected


MODULE_A = """package seeded.a

deny contains "drop" if {
    some s in input.sql.statements
    s.kinds == "drop"
}

allow if lenn(input.subject.groups) > 0

f(x) := y if {
    z := 1
    y := x
}
"""

MODULE_C = """package seeded.c

p if q

q if p

r if count(1, 2) > 0

t if input.subject.id == 1

u if v

deny contains "x" if {
    y > 1
}

deny := {"a"}
"""

MODULE_D = """package seeded.d

import input.nope

allow if nope

approve contains m if {
    m := "x"
    m := "y"
}
"""


def test_many_errors_in_several_files(tmp_path: Path) -> None:
    _write(tmp_path, {"a.guard": MODULE_A, "c.guard": MODULE_C, "d.guard": MODULE_D})
    a, c, d = (str(tmp_path / n) for n in ("a.guard", "c.guard", "d.guard"))
    expected = {
        ("unknown_field", a, 5, 7),
        ("unknown_function", a, 8, 10),
        ("unused_var", a, 11, 5),
        ("recursion", c, 3, 1),
        ("arity", c, 7, 6),
        ("type_error", c, 9, 6),
        ("unsafe_var", c, 11, 6),
        ("unsafe_var", c, 14, 5),
        ("conflict", c, 17, 1),
        ("unknown_field", d, 3, 14),
        ("redeclared_var", d, 9, 5),
    }
    found = _api_errors([tmp_path])
    # `deny := {…}` in a package that also has `deny contains`: reported once, as a conflict
    assert found == expected
    assert _cli_errors([tmp_path]) == expected


def test_unknown_field_has_a_hint(tmp_path: Path) -> None:
    _write(tmp_path, {"a.guard": MODULE_A})
    with pytest.raises(subguard.PolicyErrors) as info:
        subguard.load_policy(tmp_path)
    (field,) = [e for e in info.value.errors if e.code == "unknown_field"]
    assert "kind" in (field.hint or "")
    result = CliRunner().invoke(main, ["check", str(tmp_path)])
    assert any("unknown_field" in line and "(did you mean `kind`?)" in line for line in result.stdout.splitlines())


def test_parse_errors_in_two_files_reported_together(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "one.guard": 'package one\n\ndeny contains "x" if {\n    input.subject.id ==\n}\n',
            "two.guard": "package two\n\nallow if {\n    x := [1, 2\n}\n",
            "fine.guard": "package fine\n\nallow if true\n",
        },
    )
    expected = {
        ("parse_error", str(tmp_path / "one.guard"), 5, 1),
        ("parse_error", str(tmp_path / "two.guard"), 5, 1),
    }
    _assert_both([tmp_path], expected)


def test_parse_error_position_mid_line(tmp_path: Path) -> None:
    _write(tmp_path, {"p.guard": "package p\n\nallow if input.subject.id == == 3\n"})
    _assert_both([tmp_path / "p.guard"], {("parse_error", str(tmp_path / "p.guard"), 3, 30)})


def test_non_utf8_file(tmp_path: Path) -> None:
    _write(tmp_path, {"enc.guard": b'package enc\n\nallow if {\n    input.subject.id == "caf\xe9"\n}\n'})
    _assert_both([tmp_path], {("encoding_error", str(tmp_path / "enc.guard"), 4, 29)})


def test_file_too_large(tmp_path: Path) -> None:
    body = "package big\n" + ("# " + "x" * 78 + "\n") * (4 * 1024 * 1024 // 80 + 10)
    _write(tmp_path, {"big.guard": body})
    _assert_both([tmp_path], {("file_too_large", str(tmp_path / "big.guard"), 1, 1)})


def test_read_errors_in_two_files_reported_together(tmp_path: Path) -> None:
    body = "package big\n" + ("# " + "x" * 78 + "\n") * (4 * 1024 * 1024 // 80 + 10)
    _write(tmp_path, {"big.guard": body, "enc.guard": b"package enc\n\xff\n"})
    expected = {
        ("file_too_large", str(tmp_path / "big.guard"), 1, 1),
        ("encoding_error", str(tmp_path / "enc.guard"), 2, 1),
    }
    _assert_both([tmp_path], expected)


@pytest.mark.parametrize("brackets", ["()", "[]", "{}"])
def test_deep_nesting_is_an_error_not_a_crash(tmp_path: Path, brackets: str) -> None:
    opening, closing = brackets
    _write(tmp_path, {"deep.guard": "package deep\n\nx := " + opening * 5000 + "1" + closing * 5000 + "\n"})
    found = _api_errors([tmp_path])
    assert {(code, path, line) for code, path, line, _ in found} == {("too_deep", str(tmp_path / "deep.guard"), 3)}
    assert _cli_errors([tmp_path]) == found


def test_deep_parentheses_position(tmp_path: Path) -> None:
    _write(tmp_path, {"deep.guard": "package deep\n\nx := " + "(" * 5000 + "1" + ")" * 5000 + "\n"})
    # the first bracket beyond the limit of 100 levels
    _assert_both([tmp_path], {("too_deep", str(tmp_path / "deep.guard"), 3, 106)})


def test_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not a policy\n")
    found = _api_errors([tmp_path / "empty"])
    assert {code for code, *_ in found} == {"no_policy"}
    assert _cli_errors([tmp_path / "empty"]) == found


def test_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.guard"
    _assert_both([missing], {("io_error", str(missing), 0, 0)})


def test_missing_path_beside_a_good_one(tmp_path: Path) -> None:
    _write(tmp_path, {"ok.guard": "package ok\n\nallow if true\n"})
    missing = tmp_path / "nowhere"
    _assert_both([tmp_path / "ok.guard", missing], {("io_error", str(missing), 0, 0)})


def test_clean_policy_exit_zero(tmp_path: Path) -> None:
    _write(tmp_path, {"ok.guard": "package ok\n\nallow if true\n"})
    result = CliRunner().invoke(main, ["check", str(tmp_path)])
    assert result.exit_code == 0
    assert result.stdout == ""


@pytest.mark.parametrize("rule", ['allow := "yes" if true', "default allow := 1"])
def test_non_boolean_allow_is_a_type_error(tmp_path: Path, rule: str) -> None:
    _write(tmp_path, {"q.guard": f"package q\n\n{rule}\n"})
    _assert_both([tmp_path], {("type_error", str(tmp_path / "q.guard"), 3, 1)})
