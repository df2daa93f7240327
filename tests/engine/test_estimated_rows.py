"""`estimated_rows` in the engine: where the request's estimate lands in the input, which
policies read it (`Policy.reads`), and the data schema's defaults behind `max_rows`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import subguard
from subguard.engine.policy import policy_from_sources
from subguard.errors import PolicyErrors

PATH = "input.sql.statements[i].estimated_rows"
RULES = Path(__file__).resolve().parents[2] / "rules"


def _policy(body: str) -> subguard.Policy:
    return policy_from_sources([("p.guard", f"package p\n\nimport input.sql.statements\n\n{body}\n")])


def _statements(text: str, rows: int | None) -> list[dict[str, object]]:
    engine = subguard.Engine(_policy("default allow := true"))
    decision = engine.check(subguard.SqlRequest(text, "postgres", estimated_rows=rows))
    return list(decision.input["sql"]["statements"])


@pytest.mark.parametrize(
    "text, expected",
    [
        ("UPDATE t SET a = 1 WHERE id > 3", [7]),
        ("DELETE FROM t WHERE id > 3", [7]),
        ("MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE", [7]),
        ("SELECT * FROM t", [None]),
        ("INSERT INTO t VALUES (1)", [None]),
        # never pinned on one of several statements, nor on a write hidden in a CTE
        ("DELETE FROM t WHERE id = 1; DELETE FROM u WHERE id = 2", [None, None]),
        ("WITH d AS (DELETE FROM t RETURNING id) UPDATE u SET a = 1 WHERE id IN (SELECT id FROM d)", [None, None]),
    ],
)
def test_the_estimate_lands_on_a_single_write_only(text: str, expected: list[int | None]) -> None:
    assert [s["estimated_rows"] for s in _statements(text, 7)] == expected


def test_without_an_estimate_the_field_is_null() -> None:
    assert [s["estimated_rows"] for s in _statements("DELETE FROM t WHERE id > 3", None)] == [None]


@pytest.mark.parametrize("bad", [True, -1, 2.5, "9"])
def test_an_estimate_that_is_not_a_count_is_refused(bad: object) -> None:
    with pytest.raises(subguard.FieldError) as raised:
        subguard.SqlRequest("DELETE FROM t", estimated_rows=bad)  # type: ignore[arg-type]
    assert raised.value.code == "type_error" and raised.value.field == "estimated_rows"


@pytest.mark.parametrize(
    "body, reads",
    [
        ('approve contains "big" if {\n    some s in statements\n    s.estimated_rows > 5\n}', True),
        ('approve contains "big" if {\n    some s in statements\n    object.get(s, "estimated_rows", 0) > 5\n}', True),
        ('approve contains "big" if {\n    some s in statements\n    s["estimated_rows"] > 5\n}', True),
        # fields reached by a computed key: any field may be read
        ('approve contains k if {\n    some s in statements\n    some k, v in s\n    v == 5\n}', True),
        ('approve contains "x" if {\n    some s in statements\n    count(object.keys(s)) > 5\n}', True),
        ('approve contains "w" if {\n    some s in statements\n    not s.has_where\n}', False),
        ('approve contains "w" if {\n    some s in statements\n    object.get(s, "kind", "") == "delete"\n}', False),
    ],
)
def test_policy_reads(body: str, reads: bool) -> None:
    assert _policy(body).reads(PATH) is reads


def test_the_bundled_packs_read_it_and_declare_max_rows_with_a_default() -> None:
    policy = subguard.load_policy(RULES)
    assert policy.reads(PATH)
    assert policy.data["unbounded_writes"]["max_rows"] == 1000
    assert policy.data["escalation"]["max_denials"] == 3
    given = subguard.load_policy(RULES, data={"unbounded_writes": {"max_rows": 5}})
    assert given.data["unbounded_writes"]["max_rows"] == 5
    assert given.data["escalation"]["max_denials"] == 3
    with pytest.raises(PolicyErrors) as raised:
        subguard.load_policy(RULES, data={"unbounded_writes": {"max_rows": "many"}})
    assert [e.code for e in raised.value.errors] == ["data_type_error"]


def test_the_bundled_pack_holds_a_write_estimated_above_max_rows() -> None:
    engine = subguard.Engine(subguard.load_policy(RULES, data={"unbounded_writes": {"max_rows": 10}}))
    agent = subguard.Subject("ci-bot", groups={"agents"})
    held = engine.check(subguard.SqlRequest("DELETE FROM t WHERE id = 1", "postgres", estimated_rows=11), subject=agent)
    assert held.effect is subguard.Effect.APPROVE
    assert [(r.package, r.rule) for r in held.reasons] == [("guard.sql.unbounded_writes", "approve")]
    runs = engine.check(subguard.SqlRequest("DELETE FROM t WHERE id = 1", "postgres", estimated_rows=10), subject=agent)
    assert runs.effect is subguard.Effect.ALLOW


def test_a_default_that_is_not_json_is_a_schema_error(tmp_path: Path) -> None:
    (tmp_path / "p.guard").write_text("package p\n\ndefault allow := true\n")
    (tmp_path / "data.schema.json").write_text(json.dumps({"Data": {"n": "number = many"}}))
    with pytest.raises(PolicyErrors) as raised:
        subguard.load_policy(tmp_path)
    assert [(e.code, e.path) for e in raised.value.errors] == [("schema_error", str(tmp_path / "data.schema.json"))]
