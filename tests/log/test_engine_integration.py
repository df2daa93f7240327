"""The engine with a real decision log: write-ahead, fail-closed, session state, approvals,
containment, and the CLI's `eval --store`."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import attrs
import click
import orjson
import pytest
from click.testing import CliRunner

import subguard
from subguard import Effect, Engine, SqlRequest
from subguard.errors import LogError
from subguard.log import Topic, open_log, read_records, verify_store

POLICY = """\
package guard.test

import input.sql.statements

deny contains "x may not" if {
    input.subject.id == "x"
}

deny contains "no drops" if {
    some s in statements
    s.kind == "drop"
}

approve contains "unbounded write" if {
    some s in statements
    s.kind in {"update", "delete"}
    not s.has_where
}

terminate contains "three denials in this session" if {
    input.session.denied >= 3
}

default allow := true
"""


@pytest.fixture
def rules(tmp_path: Path) -> str:
    path = tmp_path / "policy.guard"
    path.write_text(POLICY)
    return str(path)


@pytest.fixture
def engine_log(rules: str, sqlite_url: str) -> Any:
    log = open_log(sqlite_url)
    engine = Engine(subguard.load_policy([rules]), log=log)
    yield engine, log
    log.close()


def decided_ids(log: Any) -> dict[str, dict[str, Any]]:
    return {
        r.decision_id: r.state
        for r in read_records(log.store, topics=[Topic.DECISION_RECORDED])
        if r.decision_id
    }


def test_check_is_recorded_with_facts_and_no_literals(engine_log: Any) -> None:
    engine, log = engine_log
    d = engine.check(
        SqlRequest("SELECT email FROM users WHERE id = 31337"), subject="agent", session="s1"
    )
    assert d.effect is Effect.ALLOW
    stored = decided_ids(log)[str(d.id)]
    assert "31337" not in orjson.dumps(stored).decode()
    assert stored["policy"] == engine.policy.hash
    assert stored["facts"]["kinds"] == ["select"] and "users" in stored["facts"]["tables_read"]
    assert stored["fingerprint"]
    rows = list(log.store.iter_notifications(0))
    assert all(b"31337" not in n.state for n in rows)
    assert any(n.topic == Topic.POLICY_ACTIVATED for n in rows)


def test_three_denials_terminate_the_session(engine_log: Any) -> None:
    engine, _ = engine_log
    effects = [
        engine.check(SqlRequest("DROP TABLE t"), subject="agent", session="s2").effect
        for _ in range(3)
    ]
    assert effects == [Effect.DENY] * 3
    fourth = engine.check(SqlRequest("SELECT 1"), subject="agent", session="s2")
    assert fourth.effect is Effect.TERMINATE
    fifth = engine.check(SqlRequest("SELECT 1"), subject="agent", session="s2")
    assert fifth.effect is Effect.TERMINATE
    assert (
        engine.check(SqlRequest("SELECT 1"), subject="agent", session="s3").effect is Effect.ALLOW
    )


def test_denials_across_processes_count(rules: str, sqlite_url: str) -> None:
    policy = subguard.load_policy([rules])
    a, b = open_log(sqlite_url), open_log(sqlite_url)
    try:
        ea, eb = Engine(policy, log=a), Engine(policy, log=b)
        ea.check(SqlRequest("DROP TABLE t"), subject="agent", session="shared")
        eb.check(SqlRequest("DROP TABLE t"), subject="agent", session="shared")
        ea.check(SqlRequest("DROP TABLE t"), subject="agent", session="shared")
        b.catch_up()
        assert (
            eb.check(SqlRequest("SELECT 1"), subject="agent", session="shared").effect
            is Effect.TERMINATE
        )
    finally:
        a.close()
        b.close()


def test_fail_closed_when_the_store_cannot_commit(engine_log: Any, monkeypatch: Any) -> None:
    engine, log = engine_log

    def broken(events: Any) -> None:
        raise LogError("cannot write to the decision log: disk I/O error")

    monkeypatch.setattr(log.store, "insert", broken)
    d = engine.check(SqlRequest("SELECT 1"), subject="agent", session="s1")
    assert d.effect is Effect.DENY
    assert any("log" in r.message for r in d.reasons)


def test_approval_round_trip(engine_log: Any, sqlite_url: str) -> None:
    engine, _ = engine_log
    held = engine.check(SqlRequest("DELETE FROM orders"), subject="agent", session="s4")
    assert held.effect is Effect.APPROVE and held.approval_id is not None
    admin = open_log(sqlite_url, follow=False)
    try:
        threading.Timer(0.1, lambda: admin.approve(held.approval_id, by="oncall")).start()
        outcome = engine.wait_for_approval(held, timeout=5)
    finally:
        pass
    assert outcome.granted
    # the exact same statement (modulo whitespace and case) runs once
    again = engine.check(SqlRequest("delete   from ORDERS"), subject="agent", session="s4")
    assert again.effect is Effect.ALLOW
    assert (
        engine.check(SqlRequest("DELETE FROM orders"), subject="agent", session="s4").effect
        is Effect.APPROVE
    )
    admin.close()


def test_window_grant_covers_other_literals(engine_log: Any, sqlite_url: str) -> None:
    engine, log = engine_log
    held = engine.check(
        SqlRequest("UPDATE accounts SET limit_cents = 100"), subject="agent", session="s5"
    )
    log.approve(held.approval_id, by="oncall", window=60)
    d = engine.check(
        SqlRequest("UPDATE accounts SET limit_cents = 250"), subject="agent", session="s6"
    )
    assert d.effect is Effect.ALLOW


def test_revoked_subject_is_terminated(engine_log: Any, sqlite_url: str) -> None:
    engine, _ = engine_log
    assert (
        engine.check(SqlRequest("SELECT 1"), subject="contractor", session="s7").effect
        is Effect.ALLOW
    )
    admin = open_log(sqlite_url, follow=False)
    try:
        admin.revoke("contractor", reason="offboarded")
    finally:
        admin.close()
    from .conftest import eventually

    seen: list[Any] = []

    def terminated() -> bool:
        seen.append(engine.check(SqlRequest("SELECT 1"), subject="contractor", session="s8"))
        return seen[-1].effect is Effect.TERMINATE

    assert eventually(terminated, interval=0.02)
    assert "offboarded" in seen[-1].reasons[0].message


def test_cli_eval_store_ids_are_in_the_log(rules: str, sqlite_url: str, tmp_path: Path) -> None:
    from subguard.cli import main

    batch = tmp_path / "batch.jsonl"
    batch.write_text(
        "\n".join(
            orjson.dumps({"sql": sql, "subject": "agent", "session": "cli"}).decode()
            for sql in ("SELECT 1", "DROP TABLE users", "DELETE FROM t")
        )
        + "\n"
    )
    runner = CliRunner()
    result = runner.invoke(
        main,
        [
            "eval",
            "--rules",
            rules,
            "--batch",
            str(batch),
            "--format",
            "jsonl",
            "--store",
            sqlite_url,
        ],
    )
    assert result.exit_code == 0, result.output
    ids = [orjson.loads(line)["id"] for line in result.output.splitlines() if line.startswith("{")]
    assert len(ids) == 3
    logged = runner.invoke(main, ["log", "--store", sqlite_url, "--format", "jsonl"])
    assert logged.exit_code == 0, logged.output
    seen = {orjson.loads(line)["decision_id"] for line in logged.output.splitlines()}
    assert set(ids) <= seen
    one = runner.invoke(
        main,
        [
            "eval",
            "--rules",
            rules,
            "--sql",
            "SELECT 2",
            "--subject",
            "agent",
            "--format",
            "json",
            "--store",
            sqlite_url,
        ],
    )
    assert one.exit_code == 0, one.output
    assert (
        orjson.loads(one.output)["id"] in runner.invoke(main, ["log", "--store", sqlite_url]).output
    )
    assert runner.invoke(main, ["verify", "--store", sqlite_url]).exit_code == 0


def test_backtest_counts_changes(rules: str, sqlite_url: str, tmp_path: Path) -> None:
    log = open_log(sqlite_url)
    engine = Engine(subguard.load_policy([rules]), log=log)
    try:
        for sql in ("SELECT 1", "SELECT * FROM t WHERE a = 5", "DROP TABLE users", "DELETE FROM t"):
            engine.check(SqlRequest(sql), subject="agent", session="bt")
    finally:
        log.close()
    candidate = tmp_path / "candidate.guard"
    candidate.write_text(
        'package guard.candidate\n\ndeny contains "no selects" if {\n    some s in input.sql.statements\n    s.kind == "select"\n}\n\ndefault allow := true\n'
    )
    from subguard.cli.log_commands import register

    @click.group()
    def group() -> None:
        pass

    register(group)
    result = CliRunner().invoke(
        group, ["backtest", "--rules", str(candidate), "--store", sqlite_url, "--format", "jsonl"]
    )
    assert result.exit_code == 0, result.output
    summary = orjson.loads(result.output)
    assert summary["decisions"] == 4
    changes = {(c["from"], c["to"]): c["count"] for c in summary["changes"]}
    assert changes == {("allow", "deny"): 2, ("deny", "allow"): 1, ("approve", "allow"): 1}
    text = CliRunner().invoke(group, ["backtest", "--rules", str(candidate), "--store", sqlite_url])
    assert "4 would change" in text.output
    assert verify_store(open_log(sqlite_url, follow=False).store).ok


def test_engine_uses_only_the_recorder_protocol(tmp_path: Path) -> None:
    """A recorder with exactly the protocol's four methods serves check, check_many and
    wait_for_approval: the engine probes for nothing else."""
    import uuid as uuid_

    from subguard.engine.recorder import CheckContext, Preflight, Recorder
    from subguard.engine.types import Decision

    class Minimal:
        def __init__(self) -> None:
            self.recorded: list[Decision] = []

        def before(self, ctx: CheckContext) -> Preflight:
            return Preflight(session={"id": ctx.session_id, "requests": 0, "denied": 0})

        def record(self, ctx: CheckContext, decision: Decision) -> Decision:
            self.recorded.append(decision)
            return decision

        def batch(self) -> Any:
            outer = self

            class Batch:
                def __init__(self) -> None:
                    self.staged: list[tuple[CheckContext, Decision]] = []

                def must_commit(self, ctx: CheckContext) -> bool:
                    return False

                def before(self, ctx: CheckContext) -> Preflight:
                    return outer.before(ctx)

                def stage(self, ctx: CheckContext, decision: Decision) -> None:
                    self.staged.append((ctx, decision))

                def commit(self) -> list[Decision]:
                    staged, self.staged = self.staged, []
                    return [outer.record(c, d) for c, d in staged]

            return Batch()

        def wait_for_approval(self, approval_id: uuid_.UUID, timeout: float) -> Any:
            return ("waited", approval_id, timeout)

    (tmp_path / "p.guard").write_text("package p\n\ndefault allow := true\n")
    minimal = Minimal()
    recorder: Recorder = minimal
    engine = Engine(subguard.load_policy(tmp_path), log=recorder)
    assert engine.check(SqlRequest("SELECT 1"), subject="a").effect is Effect.ALLOW
    decided = engine.check_many([(SqlRequest("SELECT 1"), "a", None, "s1")] * 3)
    assert [d.effect for d in decided] == [Effect.ALLOW] * 3
    assert len(minimal.recorded) == 4
    held = attrs.evolve(decided[0], approval_id=uuid_.uuid4())
    assert engine.wait_for_approval(held, timeout=1.5) == ("waited", held.approval_id, 1.5)
