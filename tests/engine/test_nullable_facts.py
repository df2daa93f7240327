"""Facts that may be `null` cannot be tested by a bare reference: `null` is not `false`,
so `deny if input.sql.parse_error` would deny every request with SQL. Every nullable
field of the input schema is a load-time `type_error` when referenced bare or under
`not`, with a hint naming the test meant; the written-out test works as intended."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import subguard
from subguard.cli import main
from subguard.engine.schema import INPUT_TYPE, RECORDS


def _nullable_paths() -> Iterator[tuple[str, str]]:
    """(literals that reach the field, the field's reference) for every nullable field
    reachable from `input`, iterating arrays and sets of records with `some`."""
    seen: set[tuple[str, str]] = set()

    def walk(record: str, base: str, prelude: str, depth: int) -> Iterator[tuple[str, str]]:
        for field, text in RECORDS[record].items():
            ref = f"{base}.{field}"
            parts = [p.strip() for p in text.split("|")]
            inner = next((p for p in parts if p != "null"), "null")
            if "null" in parts and (record, field) not in seen:
                seen.add((record, field))
                yield prelude, ref
            if depth > 4:
                continue
            if inner in RECORDS:
                yield from walk(inner, ref, prelude, depth + 1)
            elif inner.startswith(("array<", "set<")) and inner[inner.index("<") + 1 : -1] in RECORDS:
                var = f"x{depth}"
                yield from walk(inner[inner.index("<") + 1 : -1], var, f"{prelude}some {var} in {ref}\n    ", depth + 1)

    yield from walk(INPUT_TYPE, "input", "", 0)


NULLABLE = list(_nullable_paths())


def test_the_schema_has_nullable_fields() -> None:
    refs = {ref.split(".")[-1] for _p, ref in NULLABLE}
    assert {"sql", "command", "http", "parse_error", "dialect", "object_type"} <= refs


def _codes(tmp_path: Path, text: str) -> list[tuple[str, int, int, str | None]]:
    (tmp_path / "p.guard").write_text(text, encoding="utf-8")
    with pytest.raises(subguard.PolicyErrors) as info:
        subguard.load_policy(tmp_path)
    return [(e.code, e.line, e.col, e.hint) for e in info.value.errors]


@pytest.mark.parametrize(("prelude", "ref"), NULLABLE, ids=[r for _p, r in NULLABLE])
def test_bare_reference_to_a_nullable_field_is_a_type_error(tmp_path: Path, prelude: str, ref: str) -> None:
    text = f"package p\n\ndeny contains \"x\" if {{\n    {prelude}{ref}\n}}\n"
    line = text.splitlines().index(next(t for t in text.splitlines() if t.strip() == ref)) + 1
    found = _codes(tmp_path, text)
    assert [(c, ln, col) for c, ln, col, _h in found] == [("type_error", line, 5)]
    assert found[0][3] is not None and f"{ref} != null" in found[0][3]


@pytest.mark.parametrize(("prelude", "ref"), NULLABLE, ids=[r for _p, r in NULLABLE])
def test_not_of_a_nullable_field_is_a_type_error(tmp_path: Path, prelude: str, ref: str) -> None:
    text = f"package p\n\ndeny contains \"x\" if {{\n    {prelude}not {ref}\n}}\n"
    found = _codes(tmp_path, text)
    assert [c for c, *_ in found] == ["type_error"]
    assert found[0][3] is not None and f"{ref} == null" in found[0][3]


def test_a_local_bound_to_a_nullable_field_is_checked_too(tmp_path: Path) -> None:
    text = "package p\n\ndeny contains \"x\" if {\n    e := input.sql.parse_error\n    e\n}\n"
    assert [(c, ln, col) for c, ln, col, _h in _codes(tmp_path, text)] == [("type_error", 5, 5)]


def test_one_line_rule_is_checked(tmp_path: Path) -> None:
    text = "package p\n\nimport input.sql\n\ndeny contains \"bad sql\" if sql.parse_error\n"
    assert [(c, ln) for c, ln, _col, _h in _codes(tmp_path, text)] == [("type_error", 5)]


def test_check_names_the_field(tmp_path: Path) -> None:
    (tmp_path / "p.guard").write_text(
        "package p\n\ndeny contains \"unparseable\" if input.sql.parse_error\n", encoding="utf-8"
    )
    result = CliRunner().invoke(main, ["check", str(tmp_path)])
    assert result.exit_code != 0
    assert "type_error" in result.output and "input.sql.parse_error" in result.output
    assert "p.guard:3" in result.output


def test_the_written_out_test_leaves_parseable_sql_allowed(tmp_path: Path) -> None:
    (tmp_path / "p.guard").write_text(
        "package p\n\ndefault allow := true\n\n"
        "deny contains \"unparseable\" if input.sql.parse_error != null\n",
        encoding="utf-8",
    )
    policy = subguard.load_policy(tmp_path)
    engine = subguard.Engine(policy)
    assert engine.check(subguard.SqlRequest("SELECT 1"), subject="agent").effect is subguard.Effect.ALLOW
    assert engine.check(subguard.SqlRequest("SELEKT (("), subject="agent").effect is subguard.Effect.DENY


def test_non_nullable_fields_and_boolean_tests_stay_allowed(tmp_path: Path) -> None:
    (tmp_path / "p.guard").write_text(
        "package p\n\ndeny contains \"x\" if {\n    some s in input.sql.statements\n    s.has_where\n"
        "    not s.has_limit\n    input.sql.parse_error == null\n    s.object_type != null\n}\n",
        encoding="utf-8",
    )
    subguard.load_policy(tmp_path)
