"""The gate's per-request approval timeout and `waiting` callback (what the MCP guard
uses to send progress notifications while a call is held)."""

from __future__ import annotations

import time

import pytest

import subguard
from subguard.adapters import Gate


def gate_for(engine: subguard.Engine, **options: float) -> Gate:
    return Gate(engine, subject=subguard.Subject("ci-bot", groups={"agents"}), resource={"name": "shop", "kind": "sqlite"}, session="w1", **options)


def test_waiting_is_called_while_held_until_the_timeout(engine: subguard.Engine) -> None:
    gate = gate_for(engine)  # the gate's own timeout is 0: the request overrides it
    waited: list[float] = []
    started = time.monotonic()
    with pytest.raises(subguard.ApprovalRequired) as held:
        gate.decide(subguard.SqlRequest("DELETE FROM t"), approval_timeout=0.6, waiting=lambda d, s: waited.append(s))
    assert time.monotonic() - started >= 0.6
    assert "no answer within 0.6s" in held.value.message
    assert len(waited) >= 2 and waited == sorted(waited)
    gate.close()


def test_an_exception_from_waiting_ends_the_wait(engine: subguard.Engine) -> None:
    gate = gate_for(engine, approval_timeout=30)

    def give_up(decision: subguard.Decision, seconds: float) -> None:
        raise subguard.ApprovalRequired("the agent went away", decision)

    started = time.monotonic()
    with pytest.raises(subguard.ApprovalRequired) as held:
        gate.decide(subguard.SqlRequest("DELETE FROM t"), waiting=give_up)
    assert held.value.message == "the agent went away"
    assert time.monotonic() - started < 5
    gate.close()


def test_without_a_timeout_nothing_waits(engine: subguard.Engine) -> None:
    gate = gate_for(engine, approval_timeout=30)
    calls: list[float] = []
    with pytest.raises(subguard.ApprovalRequired):
        gate.decide(subguard.SqlRequest("DELETE FROM t"), approval_timeout=0, waiting=lambda d, s: calls.append(s))
    assert calls == []
    gate.close()
