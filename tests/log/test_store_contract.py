"""One store contract, run against memory, SQLite and a real PostgreSQL server."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import orjson
import pytest

from subguard.engine.types import Effect
from subguard.errors import LogError
from subguard.log import DecisionLog, Topic, open_log, open_store, read_records, verify_store
from subguard.log._events import encode_event, store_aggregate_id

from .conftest import eventually, make_ctx, make_decision


class StoreContract:
    """Subclasses provide `url`; every test opens logs on it and closes them."""

    @pytest.fixture
    def url(self) -> str:  # pragma: no cover - overridden
        raise NotImplementedError

    @pytest.fixture
    def log(self, url: str) -> Any:
        log = open_log(url)
        yield log
        log.close()

    def second(self, url: str) -> DecisionLog:
        """Another process's view of the same store (for memory: the same named store)."""
        return open_log(url)

    # -- recording ----------------------------------------------------------------------
    def test_record_then_session_state(self, log: DecisionLog) -> None:
        ctx = make_ctx()
        assert log.before(ctx).session["requests"] == 0
        log.record(ctx, make_decision(Effect.DENY, "no"))
        log.record(ctx, make_decision(Effect.ALLOW))
        session = log.before(ctx).session
        assert session["requests"] == 2
        assert session["denied"] == 1
        assert session["tables_touched"] == frozenset({"users"})
        assert session["terminated"] is False
        assert session["started_ns"] > 0

    def test_record_many_is_one_batch_and_readable(self, log: DecisionLog) -> None:
        items = [(make_ctx(session=f"s{i % 3}"), make_decision()) for i in range(50)]
        out = log.record_many(items)
        ids = {str(d.id) for d in out}
        found = {r.decision_id for r in read_records(log.store, topics=[Topic.DECISION_RECORDED])}
        assert ids <= found

    def test_stored_state_is_plain_json_without_literals(self, log: DecisionLog) -> None:
        ctx = make_ctx(literal="SELECT * FROM users WHERE id = 987654321")
        decision = log.record(ctx, make_decision(Effect.DENY, "no"))
        rows = list(log.store.iter_notifications(0))
        assert all(b"987654321" not in n.state for n in rows)
        decided = [n for n in rows if n.topic == Topic.DECISION_RECORDED]
        state = orjson.loads(decided[-1].state)
        assert state["decision"] == str(decision.id)
        assert state["text"] == ctx.redacted_text
        assert state["effect"] == "deny"
        assert state["facts"] == {
            "kinds": ["select"],
            "tables_read": ["users"],
            "tables_written": [],
            "columns": ["users.email"],
        }
        assert state["policy"] == "sha256:test-policy"
        assert state["time"].endswith("Z") and state["at"][10] == "T"
        assert len(state["h"]) == 64

    def test_sessionless_decisions(self, log: DecisionLog) -> None:
        ctx = make_ctx(session=None)
        assert log.before(ctx).session["id"] is None
        log.record(ctx, make_decision())
        assert verify_store(log.store).ok

    # -- approvals ------------------------------------------------------------------------
    def test_approve_creates_approval_and_once_grant_is_used_once(self, log: DecisionLog) -> None:
        ctx = make_ctx()
        held = log.record(ctx, make_decision(Effect.APPROVE, "unbounded write"))
        assert held.effect is Effect.APPROVE and held.approval_id is not None
        assert log.before(ctx).session["approvals_pending"] == 1
        log.approve(held.approval_id, by="oncall")
        assert log.before(ctx).session["approvals_pending"] == 0
        again = log.record(ctx, make_decision(Effect.APPROVE, "unbounded write"))
        assert again.effect is Effect.ALLOW
        assert "oncall" in again.reasons[-1].message
        third = log.record(ctx, make_decision(Effect.APPROVE, "unbounded write"))
        assert third.effect is Effect.APPROVE

    def test_once_grant_needs_exact_text_and_same_subject(self, log: DecisionLog) -> None:
        held = log.record(make_ctx(), make_decision(Effect.APPROVE, "x"))
        log.approve(held.approval_id, by="oncall")
        other_text = log.record(make_ctx(exact_hash="exact-2"), make_decision(Effect.APPROVE, "x"))
        assert other_text.effect is Effect.APPROVE
        other_subject = log.record(make_ctx(subject="agent-2"), make_decision(Effect.APPROVE, "x"))
        assert other_subject.effect is Effect.APPROVE

    def test_window_grant_covers_the_shape(self, log: DecisionLog) -> None:
        held = log.record(make_ctx(), make_decision(Effect.APPROVE, "x"))
        log.approve(held.approval_id, by="oncall", window=60)
        for i in range(3):
            d = log.record(make_ctx(exact_hash=f"other-{i}"), make_decision(Effect.APPROVE, "x"))
            assert d.effect is Effect.ALLOW
        other_shape = log.record(
            make_ctx(fingerprint="fp-2", exact_hash="z"), make_decision(Effect.APPROVE, "x")
        )
        assert other_shape.effect is Effect.APPROVE

    def test_reject_and_self_approval(self, log: DecisionLog) -> None:
        held = log.record(make_ctx(subject="agent-1"), make_decision(Effect.APPROVE, "x"))
        assert held.approval_id is not None
        with pytest.raises(LogError, match="own request"):
            log.approve(held.approval_id, by="agent-1")
        outcome = log.reject(held.approval_id, by="oncall", reason="not today")
        assert outcome.status == "refused" and outcome.reason == "not today"
        with pytest.raises(LogError, match="already refused"):
            log.approve(held.approval_id, by="oncall")

    def test_expiry(self, url: str) -> None:
        log = open_log(url, approval_ttl=0.05)
        try:
            held = log.record(make_ctx(), make_decision(Effect.APPROVE, "x"))
            assert held.approval_id is not None
            outcome = log.wait_for_approval(held.approval_id, timeout=2.0)
            assert outcome.status == "expired"
            with pytest.raises(LogError):
                log.approve(held.approval_id, by="oncall")
        finally:
            log.close()

    def test_wait_for_approval_sees_another_process(self, log: DecisionLog, url: str) -> None:
        held = log.record(make_ctx(), make_decision(Effect.APPROVE, "x"))
        assert held.approval_id is not None
        assert log.wait_for_approval(held.approval_id, timeout=0.05).status == "pending"
        admin = self.second(url)
        try:
            timer = threading.Timer(0.2, lambda: admin.approve(held.approval_id, by="oncall"))
            timer.start()
            started = time.monotonic()
            outcome = log.wait_for_approval(held.approval_id, timeout=5.0)
            timer.join()
        finally:
            admin.close()
        assert outcome.granted and outcome.by == "oncall" and outcome.mode == "once"
        # woken by the grant, not by the 5 s timeout (margin for a loaded machine)
        assert time.monotonic() - started < 4.0

    # -- containment ----------------------------------------------------------------------
    def test_revoke_and_restore_across_logs(self, log: DecisionLog, url: str) -> None:
        ctx = make_ctx()
        log.record(ctx, make_decision())
        admin = self.second(url)
        try:
            admin.revoke("agent-1", reason="offboarded", by="ir")
            message = eventually(lambda: log.before(ctx).terminate)
            assert message is not None and "revoked" in message and "offboarded" in message
            assert log.before(make_ctx(subject="agent-2")).terminate is None
            admin.restore("agent-1", by="ir")
            assert eventually(lambda: log.before(ctx).terminate is None)
        finally:
            admin.close()

    def test_kill_session(self, log: DecisionLog, url: str) -> None:
        ctx = make_ctx(session="victim")
        log.record(ctx, make_decision())
        admin = self.second(url)
        try:
            admin.kill("victim", reason="incident 42")
        finally:
            admin.close()
        message = eventually(lambda: log.before(ctx).terminate)
        assert message is not None and "incident 42" in message
        assert log.before(make_ctx(session="other")).terminate is None
        # the killed session keeps taking the terminate decisions the engine records
        log.record(ctx, make_decision(Effect.TERMINATE, message))
        assert verify_store(log.store).ok

    def test_terminate_effect_ends_session(self, log: DecisionLog) -> None:
        ctx = make_ctx(session="doomed")
        log.record(ctx, make_decision(Effect.TERMINATE, "COPY TO PROGRAM"))
        preflight = log.before(ctx)
        assert preflight.session["terminated"] is True
        assert preflight.terminate is not None and "COPY TO PROGRAM" in preflight.terminate
        names = [r.name for r in read_records(log.store)]
        assert "SessionTerminated" in names and "CheckpointWritten" in names

    def test_session_state_across_logs(self, log: DecisionLog, url: str) -> None:
        other = self.second(url)
        try:
            for _ in range(2):
                other.record(make_ctx(session="shared"), make_decision(Effect.DENY, "no"))
            log.record(make_ctx(session="shared"), make_decision(Effect.DENY, "no"))
            assert log.before(make_ctx(session="shared")).session["denied"] == 3
        finally:
            other.close()

    # -- integrity and concurrency ---------------------------------------------------------
    def test_threads_group_commit_lose_nothing(self, log: DecisionLog) -> None:
        ids: list[str] = []
        lock = threading.Lock()

        def worker(n: int) -> None:
            for i in range(40):
                d = log.record(make_ctx(session=f"t{n}-{i % 4}"), make_decision())
                with lock:
                    ids.append(str(d.id))

        threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        found = {r.decision_id for r in read_records(log.store, topics=[Topic.DECISION_RECORDED])}
        assert set(ids) <= found and len(ids) == 320
        assert verify_store(log.store).ok

    def test_verify_intact_with_checkpoints(self, url: str) -> None:
        log = open_log(url, checkpoint_every=10)
        try:
            for i in range(35):
                log.record(make_ctx(session=f"c{i % 5}"), make_decision())
        finally:
            log.close()
        report = verify_store(open_store(url))
        assert report.ok and report.checkpoints >= 3

    def test_newer_schema_is_refused(self, url: str, log: DecisionLog) -> None:
        stored, _ = encode_event(
            store_aggregate_id(),
            2,
            Topic.STORE_CREATED,
            {"schema": 99, "at": "2030-01-01T00:00:00.000000000Z"},
            "x",
        )
        log.store.insert([stored])
        if url.startswith("memory"):
            from subguard.log._store import Store

            with pytest.raises(LogError, match="newer"):
                Store.check_schema(log.store, create=False)
            return
        with pytest.raises(LogError, match="schema version 99"):
            open_log(url)

    def test_fail_on_unwritable_store(self, log: DecisionLog, monkeypatch: Any) -> None:
        def broken(events: Any) -> None:
            raise LogError("cannot write to the decision log: disk full")

        monkeypatch.setattr(log.store, "insert", broken)
        with pytest.raises(LogError, match="disk full"):
            log.record(make_ctx(), make_decision())


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def url(self) -> str:
        return f"memory://{uuid.uuid4().hex}"


class TestSqliteStore(StoreContract):
    @pytest.fixture
    def url(self, sqlite_url: str) -> str:
        return sqlite_url


@pytest.mark.postgres
class TestPostgresStore(StoreContract):
    @pytest.fixture
    def url(self, pg_url: str) -> str:
        return pg_url


def test_asyncio_tasks_share_group_commits(tmp_path: Any) -> None:
    import asyncio

    log = open_log(f"sqlite:///{tmp_path}/a.db")
    commits = 0
    original = log.store.insert

    def counting(events: Any) -> Any:
        nonlocal commits
        commits += 1
        return original(events)

    log.store.insert = counting  # type: ignore[method-assign]

    async def main() -> list[Any]:
        return await asyncio.gather(
            *(log.arecord(make_ctx(session=f"a{i % 4}"), make_decision()) for i in range(64))
        )

    try:
        decisions = asyncio.run(main())
        assert len({d.id for d in decisions}) == 64
        assert commits < 64
        found = {r.decision_id for r in read_records(log.store, topics=[Topic.DECISION_RECORDED])}
        assert {str(d.id) for d in decisions} <= found
    finally:
        log.close()


def test_follow_from_a_saved_position(tmp_path: Any) -> None:
    from subguard.log import follow

    url = f"sqlite:///{tmp_path}/f.db"
    log = open_log(url)
    try:
        first = log.record(make_ctx(), make_decision())
        saved = max(r.position for r in read_records(log.store) if r.decision_id == str(first.id))
        stop = threading.Event()
        seen: list[str] = []

        def consume() -> None:
            reader = open_store(url, create=False)
            try:
                for record in follow(reader, after=saved, stop=stop, poll_interval=0.01):
                    if record.decision_id:
                        seen.append(record.decision_id)
            finally:
                reader.close()

        thread = threading.Thread(target=consume)
        thread.start()
        later = [log.record(make_ctx(session="later"), make_decision()) for _ in range(3)]
        eventually(lambda: len(seen) >= 3)
        stop.set()
        thread.join(timeout=5)
        assert seen == [str(d.id) for d in later]
    finally:
        log.close()


def test_following_some_topics_reads_each_other_row_once(tmp_path: Any) -> None:
    """A follower of a few topics (the gate's watch for revocations and kills) starts each
    poll after the last row it has seen, matched or not: a log of decisions between
    revocations is not read again on every poll; a revocation after them still arrives."""
    from subguard.log import follow

    url = f"sqlite:///{tmp_path}/w.db"
    log = open_log(url)
    reader = open_store(url, create=False)
    try:
        starts: list[int] = []
        select = reader.select_notifications

        def spy(after: int, limit: int = 500, topics: Any = ()) -> Any:
            starts.append(after)
            return select(after, limit, topics)

        reader.select_notifications = spy  # type: ignore[method-assign]
        stop = threading.Event()
        revoked: list[str] = []

        def consume() -> None:
            topics = (Topic.SUBJECT_REVOKED,)
            for record in follow(reader, after=0, topics=topics, stop=stop, poll_interval=0.01):
                revoked.append(str(record.state.get("subject")))

        thread = threading.Thread(target=consume)
        thread.start()
        for i in range(50):
            log.record(make_ctx(session=f"s{i}"), make_decision())
        last = log.store.max_position()
        assert eventually(lambda: bool(starts) and starts[-1] >= last)
        log.revoke("agent-x", by="responder", reason="test")
        assert eventually(lambda: revoked == ["agent-x"])
        assert eventually(lambda: starts[-1] > last)  # past the revocation too
        stop.set()
        thread.join(timeout=5)
    finally:
        reader.close()
        log.close()


def test_sqlite_connections_are_wal_and_synchronous_full(tmp_path: Any) -> None:
    """Durability: every connection a SQLite store writes through syncs the WAL at commit."""
    log = open_log(f"sqlite:///{tmp_path}/d.db")
    try:
        log.record(make_ctx(), make_decision())
        datastore: Any = log.store.recorder.datastore  # type: ignore[attr-defined]
        with datastore.transaction(commit=False) as cursor:
            cursor.execute("PRAGMA journal_mode")
            assert cursor.fetchone()[0].lower() == "wal"
            cursor.execute("PRAGMA synchronous")
            assert cursor.fetchone()[0] == 2  # FULL
        writer = log.store.recorder._writer  # type: ignore[attr-defined]
        assert writer is not None  # the connection the batch was committed on
        assert writer.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
        assert writer.execute("PRAGMA synchronous").fetchone()[0] == 2
    finally:
        log.close()
