"""The language's newer features through the engine, where decision definitions run
inlined in one generated function and are indexed by what they require of `input`."""

from __future__ import annotations

from pathlib import Path

import subguard


def _engine(tmp_path: Path, text: str) -> subguard.Engine:
    (tmp_path / "p.guard").write_text(text, encoding="utf-8")
    return subguard.Engine(subguard.load_policy(tmp_path))


def test_else_in_a_decision_rule(tmp_path: Path) -> None:
    engine = _engine(
        tmp_path,
        "package guard.e\n\nallow if {\n    some s in input.sql.statements\n    s.kind == \"select\"\n} else := false\n\n"
        "deny contains \"drop\" if {\n    some s in input.sql.statements\n    s.kind == \"drop\"\n}\n",
    )
    decide = [engine.check(subguard.SqlRequest(q), subject="a") for q in ("SELECT 1", "UPDATE t SET a = 1", "DROP TABLE t")]
    assert [d.effect for d in decide] == [subguard.Effect.ALLOW, subguard.Effect.DENY, subguard.Effect.DENY]
    assert [r.rule for r in decide[1].reasons] == ["default"]
    assert [r.message for r in decide[2].reasons] == ["drop"]
    assert all(d.errors == () for d in decide)


def test_with_mocks_a_builtin_in_a_decision_rule(tmp_path: Path) -> None:
    # business hours from a mocked clock: `time.now_ns` replaced for one literal
    engine = _engine(
        tmp_path,
        "package guard.m\n\ndefault allow := true\n\nafter_hours if time.clock(time.now_ns())[0] >= 18\n\n"
        "deny contains \"after hours\" if after_hours with time.now_ns as input.request.time_ns\n",
    )
    evening = engine.evaluate({"request": {"kind": "sql", "text": "", "time_ns": 1706724000 * 10**9}})  # 18:00 UTC
    morning = engine.evaluate({"request": {"kind": "sql", "text": "", "time_ns": 1706688000 * 10**9}})  # 08:00 UTC
    assert (evening.effect, morning.effect) == (subguard.Effect.DENY, subguard.Effect.ALLOW)
