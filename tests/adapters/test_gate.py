"""The gate on its own, without any protocol: decisions become outcomes, closing runs the
callbacks once, and the numeric-placeholder rewrite touches placeholders only."""

from __future__ import annotations

import threading
import time

import pytest

import subguard
from subguard.adapters import Gate
from subguard.adapters._placeholders import for_analysis
from subguard.log import DecisionLog


def make_gate(engine: subguard.Engine, session: str = "g1", **options: float) -> Gate:
    return Gate(engine, subject=subguard.Subject("ci-bot", groups={"agents"}), resource={"name": "shop", "kind": "sqlite"}, session=session, **options)


def test_decide_returns_the_allowing_decision(engine: subguard.Engine) -> None:
    gate = make_gate(engine)
    decision = gate.decide(subguard.SqlRequest("SELECT 1"))
    assert decision.effect is subguard.Effect.ALLOW


def test_refusals_carry_their_decision_and_are_not_driver_errors(engine: subguard.Engine) -> None:
    gate = make_gate(engine)
    with pytest.raises(subguard.Denied) as denied:
        gate.decide(subguard.SqlRequest("DROP TABLE t"))
    assert type(denied.value) is subguard.Denied and denied.value.decision is not None
    with pytest.raises(subguard.ApprovalRequired) as held:
        gate.decide(subguard.SqlRequest("DELETE FROM t"))
    assert held.value.approval_id == held.value.decision.approval_id
    assert not gate.closed


def test_close_runs_every_callback_once_even_if_one_fails(engine: subguard.Engine) -> None:
    gate = make_gate(engine)
    calls: list[str] = []

    def failing(_error: subguard.Terminated) -> None:
        raise RuntimeError("boom")

    gate.on_close(failing)
    gate.on_close(lambda e: calls.append(e.message))
    with pytest.raises(subguard.Terminated):
        gate.decide(subguard.SqlRequest("SELECT value FROM secrets"))
    gate.close("again")
    assert len(calls) == 1 and "terminated" in calls[0]
    gate.on_close(lambda e: calls.append("late"))  # registered after closing: runs at once
    assert calls[-1] == "late"


def test_a_wait_ends_when_the_gate_is_closed(engine: subguard.Engine, log: DecisionLog) -> None:
    gate = make_gate(engine, approval_timeout=30.0)
    threading.Timer(0.3, lambda: log.kill("g1", reason="stop")).start()
    started = time.monotonic()
    with pytest.raises(subguard.Terminated):
        gate.decide(subguard.SqlRequest("DELETE FROM t"))
    assert time.monotonic() - started < 3


def test_without_a_log_a_hold_is_refused(policy: subguard.Policy) -> None:
    gate = make_gate(subguard.Engine(policy), approval_timeout=5.0)
    with pytest.raises(subguard.ApprovalRequired) as held:
        gate.decide(subguard.SqlRequest("DELETE FROM t"))
    assert held.value.approval_id is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("SELECT a FROM t WHERE a = ?1 AND b = ?22", "SELECT a FROM t WHERE a = ? AND b = ?"),
        ("SELECT a FROM t WHERE a = :1", "SELECT a FROM t WHERE a = :p1"),
        ("SELECT ':1', \"?2\", `:3` FROM t", "SELECT ':1', \"?2\", `:3` FROM t"),
        ("SELECT 1 -- :1\n, 2 /* ?3 */", "SELECT 1 -- :1\n, 2 /* ?3 */"),
        ("SELECT $$ :1 $$, $x$ ?2 $x$, a::int, b[1:2]", "SELECT $$ :1 $$, $x$ ?2 $x$, a::int, b[1:2]"),
        ("SELECT 'it''s :1', :2", "SELECT 'it''s :1', :p2"),
        ("SELECT :name, ?", "SELECT :name, ?"),
    ],
)
def test_numeric_placeholders_are_rewritten_outside_quotes_and_comments(text: str, expected: str) -> None:
    assert for_analysis(text) == expected


def test_format_drivers_keep_their_text() -> None:
    assert for_analysis("SELECT %s, :1", numeric=False) == "SELECT %s, :1"
