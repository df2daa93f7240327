"""Editing, deleting or reordering stored rows makes `verify` fail and name the row."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from subguard.engine.types import Effect
from subguard.log import Topic, open_log, open_store, verify_store

from .conftest import PG_DSN, make_ctx, make_decision


def fill(url: str) -> None:
    log = open_log(url, checkpoint_every=1000)
    try:
        for i in range(6):
            effect = Effect.DENY if i == 2 else Effect.ALLOW
            log.record(make_ctx(session="s1"), make_decision(effect, "reason"))
        log.record(make_ctx(session="s2"), make_decision(Effect.ALLOW))
        log.record(make_ctx(session="s2"), make_decision(Effect.TERMINATE, "exfiltration"))
    finally:
        log.close()


def report(url: str) -> Any:
    store = open_store(url, create=False)
    try:
        return verify_store(store)
    finally:
        store.close()


class Backend:
    """Raw SQL on the events table: `rows()` gives (position, topic, version, state)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def rows(self) -> list[tuple[int, str, int, str]]:
        raise NotImplementedError

    def execute(self, sql: str, *params: Any) -> None:
        raise NotImplementedError

    def position_of(self, topic: str, predicate: Callable[[str], bool] = lambda s: True) -> int:
        return next(p for p, t, _, s in self.rows() if t == topic and predicate(s))


class SqliteBackend(Backend):
    def _conn(self) -> Any:
        import sqlite3

        return sqlite3.connect(self.url.removeprefix("sqlite://"))

    def rows(self) -> list[tuple[int, str, int, str]]:
        with self._conn() as conn:
            got = conn.execute(
                "SELECT rowid, topic, originator_version, CAST(state AS TEXT) FROM stored_events ORDER BY rowid"
            )
            return list(got)

    def execute(self, sql: str, *params: Any) -> None:
        sql = sql.replace("{pos}", "rowid").replace("{text}", "CAST(state AS TEXT)")
        sql = _blob(sql, "CAST({} AS BLOB)")
        with self._conn() as conn:
            conn.execute(sql, params)


class PostgresBackend(Backend):
    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.schema = url.rsplit("schema=", 1)[1]

    def rows(self) -> list[tuple[int, str, int, str]]:
        import psycopg

        with psycopg.connect(PG_DSN) as conn:
            cur = conn.execute(
                f"SELECT notification_id, topic, originator_version, convert_from(state, 'UTF8') FROM \"{self.schema}\".stored_events ORDER BY notification_id"
            )
            return list(cur.fetchall())

    def execute(self, sql: str, *params: Any) -> None:
        import psycopg

        sql = sql.replace("stored_events", f'"{self.schema}".stored_events').replace(
            "{pos}", "notification_id"
        )
        sql = _blob(sql.replace("{text}", "convert_from(state, 'UTF8')"), "convert_to({}, 'UTF8')")
        sql = sql.replace("?", "%s")
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(sql, params)


def blob(expr: str) -> str:
    return "BLOB<<" + expr + ">>"


def _blob(sql: str, template: str) -> str:
    import re

    return re.sub(r"BLOB<<(.*?)>>", lambda m: template.replace("{}", m.group(1)), sql)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: Any) -> Backend:
    if request.param == "sqlite":
        url = request.getfixturevalue("sqlite_url")
        fill(url)
        return SqliteBackend(url)
    url = request.getfixturevalue("pg_url")
    fill(url)
    return PostgresBackend(url)


def test_intact_log_verifies(backend: Backend) -> None:
    result = report(backend.url)
    assert result.ok and result.checkpoints >= 1 and result.events == len(backend.rows())


def test_deny_edited_to_allow(backend: Backend) -> None:
    position = backend.position_of(Topic.DECISION_RECORDED, lambda s: '"effect":"deny"' in s)
    backend.execute(
        "UPDATE stored_events SET state = "
        + blob('replace({text}, \'"effect":"deny"\', \'"effect":"allow"\')')
        + " WHERE {pos} = ?",
        position,
    )
    problem = report(backend.url).problem
    assert problem is not None and problem.position == position
    assert problem.event == "DecisionRecorded" and "altered" in problem.message


def test_edit_with_recomputed_own_hash_breaks_the_chain(backend: Backend) -> None:
    from subguard.log._events import encode_event

    rows = backend.rows()
    position, topic, version, text = next(
        r for r in rows if r[1] == Topic.DECISION_RECORDED and '"effect":"deny"' in r[3]
    )
    import orjson

    state = orjson.loads(text)
    state["effect"] = "allow"
    prev = state.pop("prev")
    state.pop("h")
    agg = _aggregate_of(backend, position)
    stored, _ = encode_event(agg, version, topic, state, prev)
    backend.execute(
        "UPDATE stored_events SET state = " + blob("?") + " WHERE {pos} = ?",
        stored.state.decode(),
        position,
    )
    problem = report(backend.url).problem
    assert problem is not None and problem.position > position
    assert "chain" in problem.message or "checkpoint" in problem.message


def _aggregate_of(backend: Backend, position: int) -> Any:
    import uuid

    store = open_store(backend.url, create=False)
    try:
        n = store.select_notifications(position - 1, 1)[0]
        return (
            n.originator_id
            if isinstance(n.originator_id, uuid.UUID)
            else uuid.UUID(str(n.originator_id))
        )
    finally:
        store.close()


def test_deleted_row_in_the_middle(backend: Backend) -> None:
    decided = [
        p for p, t, _, s in backend.rows() if t == Topic.DECISION_RECORDED and '"session":"s1"' in s
    ]
    backend.execute("DELETE FROM stored_events WHERE {pos} = ?", decided[2])
    problem = report(backend.url).problem
    assert problem is not None and problem.position == decided[3]
    assert "missing" in problem.message and "removed" in problem.message


def test_deleted_last_event_of_an_ended_session(backend: Backend) -> None:
    position = backend.position_of(Topic.SESSION_TERMINATED)
    backend.execute("DELETE FROM stored_events WHERE {pos} = ?", position)
    problem = report(backend.url).problem
    assert problem is not None and problem.event == "CheckpointWritten"
    assert "missing" in problem.message


def test_swapped_rows(backend: Backend) -> None:
    decided = [
        (p, s)
        for p, t, _, s in backend.rows()
        if t == Topic.DECISION_RECORDED and '"session":"s1"' in s
    ]
    (p1, s1), (p2, s2) = decided[1], decided[2]
    backend.execute("UPDATE stored_events SET state = " + blob("?") + " WHERE {pos} = ?", s2, p1)
    backend.execute("UPDATE stored_events SET state = " + blob("?") + " WHERE {pos} = ?", s1, p2)
    problem = report(backend.url).problem
    assert problem is not None and problem.position == p1


def test_reordered_notification_order(backend: Backend) -> None:
    decided = [
        p for p, t, _, s in backend.rows() if t == Topic.DECISION_RECORDED and '"session":"s1"' in s
    ]
    last = backend.rows()[-1][0]
    backend.execute("UPDATE stored_events SET {pos} = ? WHERE {pos} = ?", last + 100, decided[1])
    problem = report(backend.url).problem
    assert problem is not None and problem.position == decided[2]


# -- issue 9: a verifier that cannot be fooled ------------------------------------------


def _cli_verify(url: str, *args: str) -> Any:
    import click
    from click.testing import CliRunner

    from subguard.cli.log_commands import register

    @click.group()
    def group() -> None:
        pass

    register(group)
    return CliRunner().invoke(group, [*args, "--store", url])


def test_verify_on_a_wiped_store_fails_and_writes_nothing(backend: Backend) -> None:
    backend.execute("DELETE FROM stored_events")
    result = _cli_verify(backend.url, "verify")
    assert result.exit_code == 1 and "wiped" in result.output
    assert backend.rows() == []  # read-only: no new StoreCreated row
    problem = report(backend.url).problem
    assert problem is not None and problem.position == 0 and "wiped" in problem.message


def test_verify_without_store_created_fails(backend: Backend) -> None:
    backend.execute(
        "DELETE FROM stored_events WHERE {pos} = ?", backend.position_of(Topic.STORE_CREATED)
    )
    problem = report(backend.url).problem
    assert problem is not None and "StoreCreated" in problem.message
    assert problem.position == backend.rows()[0][0]


def test_verify_with_every_checkpoint_deleted_fails(backend: Backend) -> None:
    backend.execute("DELETE FROM stored_events WHERE topic = ?", Topic.CHECKPOINT)
    problem = report(backend.url).problem
    assert problem is not None and "no checkpoint" in problem.message


def test_verify_anchor_detects_a_deleted_tail(backend: Backend) -> None:
    anchored = _cli_verify(backend.url, "anchor")
    assert anchored.exit_code == 0, anchored.output
    from subguard.log import Anchor

    anchor = Anchor.from_json(anchored.output)
    assert report(backend.url).anchor == anchor
    # the writer goes on after the anchor was published …
    log = open_log(backend.url)
    try:
        log.record(make_ctx(session="s3"), make_decision())
    finally:
        log.close()
    store = open_store(backend.url, create=False)
    try:
        assert verify_store(store, anchor=anchor).ok
        # … then the anchored checkpoint and everything after it are deleted: the rest
        # of the log still chains and verifies on its own
        backend.execute("DELETE FROM stored_events WHERE {pos} >= ?", anchor.position)
        problem = verify_store(store, anchor=anchor).problem
    finally:
        store.close()
    assert problem is not None and "anchor" in problem.message


def test_verify_anchor_detects_a_removed_event_before_it(backend: Backend) -> None:
    from subguard.log import Anchor

    anchor = Anchor.from_json(_cli_verify(backend.url, "anchor").output)
    # the newest decision of session s1 (its aggregate's tail, named by no later
    # checkpoint in this log) is removed
    decided = [
        p for p, t, _, s in backend.rows() if t == Topic.DECISION_RECORDED and '"session":"s1"' in s
    ]
    backend.execute("DELETE FROM stored_events WHERE {pos} = ?", decided[-1])
    store = open_store(backend.url, create=False)
    try:
        problem = verify_store(store, anchor=anchor).problem
    finally:
        store.close()
    assert problem is not None


def test_verify_expect_root_and_anchor_file(backend: Backend, tmp_path: Any) -> None:
    from subguard.log import Anchor

    anchor = Anchor.from_json(_cli_verify(backend.url, "anchor").output)
    path = tmp_path / "anchor.json"
    path.write_text(anchor.to_json())
    ok = _cli_verify(backend.url, "verify", "--anchor", str(path), "--expect-root", anchor.root)
    assert ok.exit_code == 0 and "anchor is held" in ok.output
    wrong = _cli_verify(backend.url, "verify", "--expect-root", "0" * 64)
    assert wrong.exit_code == 1 and "expected root" in wrong.output
    path.write_text('{"position": "x"}')
    bad = _cli_verify(backend.url, "verify", "--anchor", str(path))
    assert bad.exit_code == 2 and "anchor" in bad.output


def test_verify_reports_a_null_state_row_with_its_position(backend: Backend) -> None:
    position = backend.position_of(Topic.DECISION_RECORDED)
    if isinstance(backend, SqliteBackend):
        backend.execute("UPDATE stored_events SET state = NULL WHERE {pos} = ?", position)
    else:
        backend.execute("ALTER TABLE stored_events ALTER COLUMN state DROP NOT NULL")
        backend.execute("UPDATE stored_events SET state = NULL WHERE {pos} = ?", position)
    result = _cli_verify(backend.url, "verify")
    assert result.exit_code == 1 and "unexpected" not in result.output
    problem = report(backend.url).problem
    assert problem is not None and problem.position == position and "NULL" in problem.message


def test_verify_reports_a_text_state_row_with_its_position(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path}/text.db"
    fill(url)
    backend = SqliteBackend(url)
    position = backend.position_of(Topic.DECISION_RECORDED)
    backend.execute(
        "UPDATE stored_events SET state = CAST(state AS TEXT) WHERE {pos} = ?", position
    )
    result = _cli_verify(url, "verify")
    assert result.exit_code == 1 and "unexpected" not in result.output
    problem = report(url).problem
    assert problem is not None and problem.position == position and "str" in problem.message


def test_log_and_export_name_a_malformed_row_not_unexpected_type_error(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path}/text.db"
    fill(url)
    backend = SqliteBackend(url)
    position = backend.position_of(Topic.DECISION_RECORDED)
    backend.execute("UPDATE stored_events SET state = NULL WHERE {pos} = ?", position)
    for command in ("log", "export", "sessions"):
        result = _cli_verify(url, command)
        assert result.exit_code == 2, (command, result.output)
        assert "unexpected" not in result.output and f"position {position}" in result.output
