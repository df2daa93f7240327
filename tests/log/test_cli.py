"""The responders' commands, through a throwaway click group."""

from __future__ import annotations

import sqlite3
from typing import Any

import click
import orjson
import pytest
from click.testing import CliRunner

from subguard.cli.log_commands import register
from subguard.engine.types import Effect
from subguard.log import open_log

from .conftest import make_ctx, make_decision


@pytest.fixture
def cli() -> click.Group:
    @click.group()
    def group() -> None:
        pass

    register(group)
    return group


def run(cli: click.Group, *args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


@pytest.fixture
def filled(sqlite_url: str) -> tuple[str, dict[str, Any]]:
    log = open_log(sqlite_url)
    try:
        ids: dict[str, Any] = {}
        ids["allow"] = log.record(make_ctx(session="s1"), make_decision(Effect.ALLOW))
        ids["deny"] = log.record(make_ctx(session="s1"), make_decision(Effect.DENY, "no writes"))
        ids["approve"] = log.record(
            make_ctx(session="s2", subject="agent-2"), make_decision(Effect.APPROVE, "unbounded")
        )
    finally:
        log.close()
    return sqlite_url, ids


def test_missing_store_is_one_line_exit_2(cli: click.Group) -> None:
    result = CliRunner().invoke(cli, ["verify"], env={"SUBGUARD_STORE": ""})
    assert result.exit_code == 2
    assert "SUBGUARD_STORE" in result.output and "Traceback" not in result.output


def test_bad_store_url(cli: click.Group, tmp_path: Any) -> None:
    result = CliRunner().invoke(cli, ["verify", "--store", f"sqlite:///{tmp_path}/nope/x.db"])
    assert result.exit_code == 2 and "does not exist" in result.output
    result = CliRunner().invoke(cli, ["log", "--store", "ftp://x"])
    assert result.exit_code == 2 and "unknown store URL scheme" in result.output


def test_not_a_database(cli: click.Group, tmp_path: Any) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not sqlite" * 100)
    result = CliRunner().invoke(cli, ["log", "--store", f"sqlite:///{path}"])
    assert result.exit_code == 2 and result.output.startswith("error: ")


def test_log_jsonl_carries_decision_ids(cli: click.Group, filled: Any) -> None:
    url, ids = filled
    result = run(cli, "log", "--store", url, "--format", "jsonl")
    assert result.exit_code == 0, result.output
    lines = [orjson.loads(line) for line in result.output.splitlines()]
    decided = {line["decision_id"] for line in lines if line["event"] == "DecisionRecorded"}
    assert {str(d.id) for d in ids.values()} <= decided
    held = [line for line in lines if line["event"] == "ApprovalRequested"]
    assert held[0]["decision_id"] == str(ids["approve"].id)


def test_log_filters_and_text(cli: click.Group, filled: Any) -> None:
    url, ids = filled
    result = run(cli, "log", "--store", url, "--session", "s2", "--format", "jsonl")
    lines = [orjson.loads(line) for line in result.output.splitlines()]
    assert lines and all(line["session"] == "s2" for line in lines)
    result = run(cli, "log", "--store", url, "--subject", "agent-1", "--format", "jsonl")
    assert all(orjson.loads(line)["subject"] == "agent-1" for line in result.output.splitlines())
    result = run(cli, "log", "--store", url, "--since", "1h")
    assert str(ids["deny"].id) in result.output and "deny" in result.output
    result = run(cli, "log", "--store", url, "--since", "2999-01-01T00:00:00Z", "--format", "jsonl")
    assert result.output == ""


def test_approve_and_reject_commands(cli: click.Group, filled: Any) -> None:
    url, ids = filled
    approval = str(ids["approve"].approval_id)
    own = run(cli, "approve", approval, "--by", "agent-2", "--store", url)
    assert own.exit_code == 2 and "own request" in own.output
    ok = run(cli, "approve", approval, "--by", "oncall", "--window", "15m", "--store", url)
    assert ok.exit_code == 0, ok.output
    assert "window" in ok.output
    again = run(cli, "reject", approval, "--by", "oncall", "--reason", "late", "--store", url)
    assert again.exit_code == 2 and "already granted" in again.output
    unknown = run(cli, "approve", "not-a-uuid", "--by", "x", "--store", url)
    assert unknown.exit_code == 2


def test_revoke_restore_kill(cli: click.Group, filled: Any) -> None:
    url, _ = filled
    assert run(cli, "revoke", "agent-1", "--reason", "offboarded", "--store", url).exit_code == 0
    log = open_log(url, follow=False)
    try:
        assert "offboarded" in (log.before(make_ctx()).terminate or "")
    finally:
        log.close()
    assert run(cli, "restore", "agent-1", "--store", url).exit_code == 0
    assert run(cli, "restore", "agent-1", "--store", url).exit_code == 2
    assert run(cli, "kill", "s1", "--reason", "ir-7", "--store", url).exit_code == 0
    assert run(cli, "kill", "nope", "--store", url).exit_code == 2
    sessions = run(cli, "sessions", "--store", url, "--format", "jsonl")
    folded = {
        orjson.loads(line)["session"]: orjson.loads(line) for line in sessions.output.splitlines()
    }
    assert folded["s1"]["terminated"] == "ir-7" and folded["s1"]["requests"] == 2
    assert run(cli, "verify", "--store", url).exit_code == 0


def test_sessions_and_replay_text(cli: click.Group, filled: Any) -> None:
    url, ids = filled
    result = run(cli, "sessions", "--store", url)
    assert result.exit_code == 0 and "s1" in result.output and "s2" in result.output
    result = run(cli, "replay", "s1", "--store", url)
    assert result.exit_code == 0
    assert str(ids["deny"].id) in result.output and "no writes" in result.output
    assert run(cli, "replay", "missing", "--store", url).exit_code == 2


def test_export_jsonl_and_ocsf(cli: click.Group, filled: Any) -> None:
    url, ids = filled
    result = run(cli, "export", "--store", url, "--format", "ocsf")
    events = [orjson.loads(line) for line in result.output.splitlines()]
    assert len(events) == 3
    assert {e["metadata"]["uid"] for e in events} == {str(d.id) for d in ids.values()}
    assert all(e["class_uid"] == 6003 for e in events)
    result = run(cli, "export", "--store", url, "--since", "2999-01-01T00:00:00Z")
    assert result.output == ""


def test_verify_names_tampered_row(cli: click.Group, filled: Any) -> None:
    url, _ = filled
    assert run(cli, "verify", "--store", url).exit_code == 0
    path = url.removeprefix("sqlite://")
    with sqlite3.connect(path) as conn:
        conn.execute(
            'UPDATE stored_events SET state = CAST(replace(CAST(state AS TEXT), \'"effect":"deny"\', \'"effect":"allow"\') AS BLOB)'
        )
    result = run(cli, "verify", "--store", url)
    assert result.exit_code == 1
    assert (
        "tampered" in result.output
        and "DecisionRecorded" in result.output
        and "altered" in result.output
    )


def test_init_on_sqlite(cli: click.Group, tmp_path: Any) -> None:
    result = run(cli, "init", "--store", f"sqlite:///{tmp_path}/new.db")
    assert result.exit_code == 0 and "initialised" in result.output


@pytest.mark.postgres
def test_uninitialised_postgres_store(cli: click.Group) -> None:
    import uuid

    from .conftest import PG_DSN, require_postgres

    require_postgres()
    url = f"{PG_DSN}?schema=sg_missing_{uuid.uuid4().hex[:8]}"
    result = CliRunner().invoke(cli, ["verify", "--store", url])
    assert (
        result.exit_code == 2
        and "not initialised" in result.output
        and "subguard init" in result.output
    )
