"""Typed `data` (issue 9): a `data.schema.json` beside the rules declares the shape of
`data`; rules reading it are type-checked and the `data` document is validated at load,
so data of the wrong shape is a clear load error, not rules that silently stop firing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from subguard import Effect, Engine, PolicyErrors, SqlRequest, load_policy
from subguard.cli import main

RULES = """package p

deny contains "protected" if {
    some s in input.sql.statements
    some t in s.tables_written
    t in data.protected_tables
}

deny contains "too many" if {
    input.session.requests > data.limits.max_requests
}

default allow := true
"""

SCHEMA = {
    "Data": {"protected_tables": "set<string>", "limits": "Limits"},
    "Limits": {"max_requests": "number", "note": "string | null"},
}

GOOD = {"protected_tables": ["payments"], "limits": {"max_requests": 10, "note": None}}


def _dir(tmp_path: Path, rules: str = RULES, schema: Any = SCHEMA) -> Path:
    d = tmp_path / "rules"
    d.mkdir(exist_ok=True)
    (d / "p.guard").write_text(rules, encoding="utf-8")
    if schema is not None:
        (d / "data.schema.json").write_text(json.dumps(schema) if not isinstance(schema, str) else schema)
    return d


def _errors(exc: PolicyErrors) -> list[tuple[str, str]]:
    return [(e.code, e.message.split(":")[0]) for e in exc.errors]


def test_data_matching_its_schema_is_loaded_and_typed(tmp_path: Path) -> None:
    engine = Engine(load_policy(_dir(tmp_path), data=GOOD))
    assert engine.check(SqlRequest("DELETE FROM payments WHERE id = 1")).effect is Effect.DENY
    assert engine.check(SqlRequest("DELETE FROM users WHERE id = 1")).effect is Effect.ALLOW
    assert engine.policy.data["protected_tables"] == frozenset({"payments"})  # a set, as declared


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"protected_tables": "payments", "limits": {"max_requests": 10, "note": None}}, [("data_type_error", "`data.protected_tables`")]),
        ({"protected_tables": [1], "limits": {"max_requests": 10, "note": None}}, [("data_type_error", "`data.protected_tables[0]`")]),
        ({"protected_tables": [], "limits": {"max_requests": "10", "note": None}}, [("data_type_error", "`data.limits.max_requests`")]),
        ({"protected_tables": [], "limits": {"max_requests": True, "note": None}}, [("data_type_error", "`data.limits.max_requests`")]),
        ({"protected_tables": [], "limits": {"max_requests": 10}}, [("data_type_error", "`data.limits.note`")]),
        ({"protected_tables": [], "limits": {"max_requests": 10, "note": None, "extra": 1}}, [("data_type_error", "`data.limits.extra`")]),
        ({"protected_tables": []}, [("data_type_error", "`data.limits`")]),
        ({"protected_tables": [], "limits": None}, [("data_type_error", "`data.limits`")]),
        ({"protected_table": [], "limits": {"max_requests": 10, "note": None}}, [("data_type_error", "`data.protected_table`"), ("data_type_error", "`data.protected_tables`")]),
        # an undeclared top-level field is dynamic; a declared one missing is still an error
        ({"owners_of_record": [], "limits": {"max_requests": 10, "note": None}}, [("data_type_error", "`data.protected_tables`")]),
    ],
)
def test_data_of_the_wrong_shape_is_a_load_error(tmp_path: Path, data: dict[str, Any], expected: list[tuple[str, str]]) -> None:
    with pytest.raises(PolicyErrors) as info:
        load_policy(_dir(tmp_path), data=data)
    assert _errors(info.value) == expected
    assert all(e.path == "<data>" for e in info.value.errors)


def test_data_errors_never_quote_values(tmp_path: Path) -> None:
    with pytest.raises(PolicyErrors) as info:
        load_policy(_dir(tmp_path), data={"protected_tables": "s3cr3t-value", "limits": {"max_requests": 1, "note": None}})
    assert "s3cr3t-value" not in str(info.value)


def test_rule_reading_undeclared_data_is_an_unknown_field(tmp_path: Path) -> None:
    rules = RULES.replace("data.protected_tables", "data.protected_tabels")
    with pytest.raises(PolicyErrors) as info:
        load_policy(_dir(tmp_path, rules), data=GOOD)
    assert [(e.code, e.line) for e in info.value.errors] == [("unknown_field", 6)]
    assert "did you mean `protected_tables`?" in (info.value.errors[0].hint or "")


def test_rule_comparing_declared_data_wrongly_is_a_type_error(tmp_path: Path) -> None:
    rules = RULES.replace("input.session.requests > data.limits.max_requests", 'data.limits.max_requests == "ten"')
    with pytest.raises(PolicyErrors) as info:
        load_policy(_dir(tmp_path, rules), data=GOOD)
    assert [e.code for e in info.value.errors] == ["type_error"]


def test_undeclared_data_keeps_todays_behaviour(tmp_path: Path) -> None:
    policy = load_policy(_dir(tmp_path, schema=None), data={"protected_tables": "payments"})
    assert policy.data["protected_tables"] == "payments"  # dynamic, unchecked


@pytest.mark.parametrize(
    ("schema", "code"),
    [
        ("{not json", "schema_error"),
        ({"Data": {"x": "strin"}}, "schema_error"),
        ({"Limits": {"x": "number"}}, "schema_error"),  # no `Data` root
        ({"Data": {"s": "Subject"}, "Subject": {"id": "string"}}, "schema_error"),  # an input record
        ({"Data": ["x"]}, "schema_error"),
        ({"Data": {"x": 5}}, "schema_error"),
    ],
)
def test_a_bad_data_schema_is_a_load_error(tmp_path: Path, schema: Any, code: str) -> None:
    d = _dir(tmp_path, schema=schema)
    with pytest.raises(PolicyErrors) as info:
        load_policy(d, data=GOOD)
    assert [(e.code, e.path) for e in info.value.errors] == [(code, str(d / "data.schema.json"))]


def test_schemas_of_two_packs_merge_and_conflicts_are_errors(tmp_path: Path) -> None:
    d = _dir(tmp_path, schema={"Data": {"protected_tables": "set<string>"}})
    sub = d / "more"
    sub.mkdir()
    (sub / "data.schema.json").write_text(json.dumps({"Data": {"limits": "Limits"}, "Limits": SCHEMA["Limits"]}))
    assert Engine(load_policy(d, data=GOOD)).check(SqlRequest("DELETE FROM payments")).effect is Effect.DENY
    (sub / "data.schema.json").write_text(json.dumps({"Data": {"protected_tables": "array<string>"}}))
    with pytest.raises(PolicyErrors) as info:
        load_policy(d, data=GOOD)
    assert [e.code for e in info.value.errors] == ["schema_error"]


def test_dangling_data_schema_symlink_is_a_load_error(tmp_path: Path) -> None:
    d = _dir(tmp_path, schema=None)
    (d / "data.schema.json").symlink_to(tmp_path / "gone.json")
    with pytest.raises(PolicyErrors) as info:
        load_policy(d, data=GOOD)
    assert [(e.code, e.path) for e in info.value.errors] == [("io_error", str(d / "data.schema.json"))]


def test_the_data_schema_is_part_of_the_policy_hash(tmp_path: Path) -> None:
    d = _dir(tmp_path)
    before = load_policy(d, data=GOOD).hash
    (d / "data.schema.json").write_text(json.dumps({**SCHEMA, "Limits": {"max_requests": "number", "note": "any"}}))
    assert load_policy(d, data=GOOD).hash != before


def test_eval_data_of_the_wrong_shape_exits_two(tmp_path: Path) -> None:
    d = _dir(tmp_path)
    bad = tmp_path / "data.json"
    bad.write_text(json.dumps({"protected_tables": "payments", "limits": {"max_requests": 1, "note": None}}))
    result = CliRunner().invoke(main, ["eval", "--rules", str(d), "--data", str(bad), "--sql", "SELECT 1"])
    assert result.exit_code == 2
    assert "<data>:0:0: data_type_error: `data.protected_tables`" in result.stderr


def test_subguard_test_sees_the_data_schema(tmp_path: Path) -> None:
    d = _dir(tmp_path)
    (d / "p_test.guard").write_text(
        'package p_test\n\ntest_payments_are_protected if {\n'
        '    d := decide(sql_request("DELETE FROM payments", {}))\n    d.effect == "deny"\n}\n'
    )
    good = tmp_path / "data.json"
    good.write_text(json.dumps(GOOD))
    result = CliRunner().invoke(main, ["test", str(d), "--data", str(good)])
    assert result.exit_code == 0, result.output
    good.write_text(json.dumps({"protected_tables": 5}))
    result = CliRunner().invoke(main, ["test", str(d), "--data", str(good)])
    assert result.exit_code == 2
    assert "data_type_error" in result.stderr


def test_undeclared_top_level_data_stays_dynamic(tmp_path: Path) -> None:
    """The root of `data` is open: a rule pack typing its own settings can be loaded beside
    rules reading data no schema declares, and that data is not checked."""
    rules = RULES + '\ndeny contains "owner" if {\n    input.subject.id in data.owners_of_record\n}\n'
    policy = load_policy(_dir(tmp_path, rules), data={**GOOD, "owners_of_record": ["ops"]})
    assert policy is not None


def test_bundled_packs_load_beside_undeclared_data() -> None:
    rules = Path(__file__).resolve().parents[2] / "rules"
    policy = load_policy(rules, data={"my_team": {"owners": ["ops"]}})
    assert policy is not None
