"""Connection events (`SessionOpened`, `StatementCompleted`, `SessionClosed`): pure
builders that keep values out, a background writer nobody waits for and whose failures
never reach the caller, chained and verified like every event, and a timeline that puts
each completion on its decision's line."""

from __future__ import annotations

import threading
import time
from typing import Any

import click
import orjson
import pytest
from click.testing import CliRunner

from subguard.cli.log_commands import register
from subguard.engine.types import Effect
from subguard.errors import LogError
from subguard.log import Topic, open_log, open_store, read_records, session_timeline, verify_store
from subguard.log._builders import session_closed, session_opened, statement_completed
from subguard.log._events import connection_aggregate_id
from subguard.log._later import LaterWriter

from .conftest import make_ctx, make_decision

AT = "2026-12-01T00:00:00.000000000Z"


def test_statement_completed_keeps_only_words_counts_and_codes() -> None:
    event = statement_completed(
        "s1",
        decision="d",
        statement=1,
        outcome="error",
        command="SELECT 'x'",
        rows=3,
        ms=-1,
        sqlstate="not a code",
        at=AT,
    )
    assert event.aggregate_id == connection_aggregate_id("s1")
    assert event.topic == Topic.STATEMENT_COMPLETED
    assert event.state["command"] is None  # not a tag's upper-case words: dropped
    assert event.state["sqlstate"] == "XX000"
    assert event.state["ms"] == 0.0 and event.state["rows"] == 3 and event.state["statement"] == 1
    ok = statement_completed(
        "s1",
        decision="d",
        statement=0,
        outcome="complete",
        command="CREATE TABLE",
        rows=None,
        ms=1.23456,
        sqlstate=None,
        at=AT,
    )
    assert (ok.state["command"], ok.state["ms"], ok.state["sqlstate"]) == (
        "CREATE TABLE",
        1.235,
        None,
    )
    with pytest.raises(ValueError, match="outcome"):
        statement_completed(
            "s1",
            decision="d",
            statement=0,
            outcome="ran",
            command=None,
            rows=None,
            ms=0,
            sqlstate=None,
            at=AT,
        )


def test_opened_and_closed_bound_their_texts() -> None:
    opened = session_opened(
        "s1",
        subject="a",
        adapter="postgres",
        peer="p" * 500,
        application_name="n" * 500,
        tls=True,
        at=AT,
    )
    assert len(opened.state["peer"]) == 128 and len(opened.state["application_name"]) == 64
    assert opened.state["tls"] is True
    closed = session_closed("s1", duration_ms=12.34567, reason="r" * 1000, at=AT)
    assert closed.state["duration_ms"] == 12.346 and len(closed.state["reason"]) == 200


@pytest.mark.parametrize("backend", ["sqlite_url", "pg_url"])
def test_connection_events_are_chained_verified_and_on_the_timeline(
    backend: str, request: pytest.FixtureRequest
) -> None:
    sqlite_url = request.getfixturevalue(backend)
    log = open_log(sqlite_url)
    try:
        assert log.session_opened(
            "c1", subject="agent-1", adapter="postgres", peer="127.0.0.1:5", application_name="app"
        )
        decision = log.record(make_ctx(session="c1"), make_decision(Effect.ALLOW))
        refused = log.record(make_ctx(session="c1"), make_decision(Effect.DENY, "no"))
        assert log.statement_completed(
            "c1", decision=str(decision.id), statement=0, command="SELECT", rows=3, ms=1.5
        )
        assert log.statement_completed(
            "c1", decision=str(decision.id), statement=1, outcome="error", sqlstate="22012", ms=0.2
        )
        assert log.statement_completed("c1", decision="not-in-the-log", outcome="empty")
        assert log.session_closed("c1", duration_ms=1000.0, reason="the client disconnected")
        assert log.flush_later()
        assert log.later_dropped == 0
    finally:
        log.close()
    store = open_store(sqlite_url, create=False)
    try:
        assert verify_store(store).ok
        topics = [
            r.topic for r in read_records(store) if r.aggregate_id == connection_aggregate_id("c1")
        ]
        assert topics == [
            Topic.SESSION_OPENED,
            Topic.STATEMENT_COMPLETED,
            Topic.STATEMENT_COMPLETED,
            Topic.STATEMENT_COMPLETED,
            Topic.SESSION_CLOSED,
        ]
        lines = session_timeline(store, "c1")
    finally:
        store.close()
    events = [line["event"] for line in lines]
    assert events[0] == "SessionOpened" and events[-1] == "SessionClosed"
    assert events.count("StatementCompleted") == 1  # the one whose decision is not in the log
    by_id = {line["decision_id"]: line for line in lines if line["event"] == "DecisionRecorded"}
    done = by_id[str(decision.id)]["completions"]
    assert [(c["statement"], c["rows"], c["sqlstate"]) for c in done] == [
        (0, 3, None),
        (1, None, "22012"),
    ]
    assert by_id[str(refused.id)]["completions"] == []


def test_replay_prints_completions_and_the_connection(sqlite_url: str) -> None:
    log = open_log(sqlite_url)
    try:
        log.session_opened(
            "c2",
            subject="agent-1",
            adapter="postgres",
            peer="10.0.0.1:4",
            application_name="app",
            tls=True,
        )
        decision = log.record(make_ctx(session="c2"), make_decision(Effect.ALLOW))
        log.statement_completed("c2", decision=str(decision.id), command="UPDATE", rows=2, ms=3.0)
        log.statement_completed(
            "c2", decision=str(decision.id), statement=1, outcome="error", sqlstate="22012", ms=0.5
        )
        log.session_closed("c2", duration_ms=2500.0, reason="bye")
    finally:
        log.close()

    @click.group()
    def group() -> None:
        pass

    register(group)
    text = CliRunner().invoke(
        group, ["replay", "c2", "--store", sqlite_url], catch_exceptions=False, terminal_width=400
    )
    assert text.exit_code == 0, text.output
    assert (
        "session c2 opened" in text.output
        and "peer=10.0.0.1:4" in text.output
        and "tls=True" in text.output
    )
    assert "UPDATE 2 rows 3.000 ms" in text.output and "error 22012 0.500 ms" in text.output
    assert "session closed after 2.500 s: bye" in text.output
    jsonl = CliRunner().invoke(
        group, ["replay", "c2", "--store", sqlite_url, "--format", "jsonl"], catch_exceptions=False
    )
    lines = [orjson.loads(line) for line in jsonl.output.splitlines()]
    decided = next(line for line in lines if line["event"] == "DecisionRecorded")
    assert [(c["command"], c["rows"], c["sqlstate"]) for c in decided["completions"]] == [
        ("UPDATE", 2, None),
        (None, None, "22012"),
    ]


def test_a_session_with_only_its_connection_replays(sqlite_url: str) -> None:
    log = open_log(sqlite_url)
    try:
        log.session_opened("c3", subject="agent-1", adapter="postgres")
        log.session_closed("c3", duration_ms=1.0, reason="bye")
    finally:
        log.close()
    store = open_store(sqlite_url, create=False)
    try:
        assert [line["event"] for line in session_timeline(store, "c3")] == [
            "SessionOpened",
            "SessionClosed",
        ]
    finally:
        store.close()


def test_a_failing_store_loses_connection_events_but_never_raises(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = open_log(sqlite_url)
    try:
        real = log.store.insert

        def broken(events: Any) -> Any:
            if any(e.topic in Topic.CONNECTION for e in events):
                raise RuntimeError("disk on fire")
            return real(events)

        monkeypatch.setattr(log.store, "insert", broken)
        assert log.session_opened("c4", subject="agent-1", adapter="postgres") is True
        assert log.flush_later()
        assert log.later_dropped == 1
        # decisions are unaffected
        assert (
            log.record(make_ctx(session="c4"), make_decision(Effect.ALLOW)).effect is Effect.ALLOW
        )
    finally:
        log.close()


def test_the_writer_never_blocks_its_callers() -> None:
    release = threading.Event()
    written: list[int] = []

    def slow(events: list[Any]) -> None:
        release.wait(10)
        written.append(len(events))

    writer = LaterWriter(slow, limit=3, linger=0)
    event = session_closed("s", duration_ms=0, reason="", at=AT)
    started = time.monotonic()
    results = [writer.submit(event) for _ in range(10)]
    assert time.monotonic() - started < 1.0  # a stuck write holds nobody up
    # at most one batch in the stuck write and a full queue behind it
    assert results.count(False) >= 4 and writer.dropped == results.count(False)
    assert not writer.flush(0.05)
    release.set()
    assert writer.flush(10)
    assert sum(written) == results.count(True)
    writer.close()
    assert writer.submit(event) is False


def test_connection_events_ride_along_in_a_decisions_commit(tmp_path: Any, monkeypatch: Any) -> None:
    """Queued connection events go into the next decisions' transaction rather than one
    of their own (one flush to disk instead of two); when that write fails they are
    queued again and written later, never lost to it."""
    log = open_log(f"sqlite:///{tmp_path}/ride.db")
    try:
        log._later.linger = 30.0  # the writer thread would wait: only a commit takes them
        inserts: list[list[str]] = []
        insert = log.store.insert

        def counting(events: Any) -> Any:
            inserts.append([e.topic for e in events])
            return insert(events)

        monkeypatch.setattr(log.store, "insert", counting)
        first = log.record(make_ctx(session="ride"), make_decision())
        assert log.statement_completed("ride", decision=str(first.id), rows=3, ms=0.5)
        second = log.record(make_ctx(session="ride"), make_decision())
        assert second.effect is Effect.ALLOW
        assert Topic.STATEMENT_COMPLETED in inserts[-1] and Topic.DECISION_RECORDED in inserts[-1]
        assert log.flush_later(0.5)  # nothing left for the writer thread

        # a failed decisions' write puts the events back in the queue
        assert log.statement_completed("ride", decision=str(second.id), rows=1, ms=0.1)

        def broken(events: Any) -> Any:
            raise OSError("disk I/O error")

        monkeypatch.setattr(log.store, "insert", broken)
        log.retry_after = 0  # no pause after the failure: the next commit may try at once
        with pytest.raises(LogError):
            log.record(make_ctx(session="ride"), make_decision())
        assert len(log._later._queue) == 1
        monkeypatch.setattr(log.store, "insert", counting)
        log.record(make_ctx(session="ride"), make_decision())
        assert not log._later._queue and log.later_dropped == 0
        completed = [r for r in read_records(log.store, topics=[Topic.STATEMENT_COMPLETED])]
        assert [r.state["rows"] for r in completed] == [3, 1]
        assert verify_store(log.store).ok
    finally:
        log.close()
