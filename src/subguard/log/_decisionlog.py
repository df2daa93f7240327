"""`DecisionLog`: the engine's recorder. Write-ahead, group-committed, hash-chained.

A thin facade over five parts: the folded state (`_state`), the pure event builders
(`_builders`: what to append, from that state), group commit (`_commit`), the
follower thread (`_follower`) that brings other processes' events in, and the writer
thread (`_later`) of connection events nobody waits for. This module holds
the locks, talks to the store, and retries a write that lost an optimistic-concurrency
race after re-reading what the winner wrote.

It stays one module (about 750 lines) because every method works under the same two
locks and the same store handle: split, the lock discipline would be spread over files.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs

from subguard.engine.recorder import CheckContext, Preflight
from subguard.engine.types import Decision
from subguard.errors import LogError
from subguard.log import _builders as build
from subguard.log._batch import StagedBatch
from subguard.log._builders import PendingEvent, seconds_option
from subguard.log._commit import GroupCommitter, Unit
from subguard.log._events import (
    Topic,
    decode_state,
    format_time,
    session_aggregate_id,
    split_hash,
    subject_aggregate_id,
)
from subguard.log._follower import Follower
from subguard.log._later import LaterWriter
from subguard.log._state import (
    ApprovalOutcome,
    ApprovalState,
    ApprovalStatus,
    FoldedState,
    SessionState,
)
from subguard.log._store import Store, StoreConflict, open_store

__all__ = ["ApprovalOutcome", "DecisionLog", "open_log"]

logger = logging.getLogger("subguard.log")

#: Writes that lose an optimistic-concurrency race are re-read and re-decided this often.
CONFLICT_RETRIES = 8

#: Per-request streams: another process's events in them are read only for the sessions
#: this process has loaded (connection events: never, as nothing here reads them).
_STREAM_TOPICS = frozenset({Topic.DECISION_RECORDED, Topic.SESSION_STARTED, *Topic.CONNECTION})


class DecisionLog:
    """The decision log over one store. Thread-safe; one per process and store is enough.

    Every failure to commit raises `LogError`; the engine turns it into `deny` (fail
    closed) unless it was built with `fail_closed=False`.

    Options: `checkpoint_every` (events per checkpoint), `approval_ttl` (seconds a held
    request waits, and a once-grant stays usable), `group_commit`, `gather_wait` (the
    shortest bound on a commit leader's wait for callers it expects; the bound grows to a
    quarter of a recent commit, at most 1 ms; 0 turns gathering off), `follow` (a follower thread;
    without it, checks catch up at most once a second), `poll_interval` (SQLite and
    memory followers), `clock` (time in ns, for tests), `retry_after` (after the store
    failed, checks fail at once for this many seconds instead of each waiting for the
    store's deadline; then the next one tries the store again). Durations must be finite
    and not negative.
    """

    def __init__(
        self,
        store: Store,
        *,
        checkpoint_every: int = 1000,
        approval_ttl: float = 3600.0,
        group_commit: bool = True,
        follow: bool = True,
        poll_interval: float = 0.02,
        clock: Callable[[], int] = time.time_ns,
        gather_wait: float = 0.0001,
        retry_after: float = 1.0,
    ) -> None:
        if (
            isinstance(checkpoint_every, bool)
            or not isinstance(checkpoint_every, int)
            or checkpoint_every < 1
        ):
            raise LogError(
                f"`checkpoint_every` must be a positive integer, not {checkpoint_every!r}"
            )
        self.store = store
        self.checkpoint_every = checkpoint_every
        self.approval_ttl_ns = int(
            seconds_option("approval_ttl", approval_ttl, positive=True) * 1e9
        )
        self.group_commit = group_commit
        self.poll_interval = seconds_option("poll_interval", poll_interval, positive=True)
        self.clock = clock
        self._committer = GroupCommitter(
            self._commit_locked, gather_wait=seconds_option("gather_wait", gather_wait)
        )
        #: This process's stream for decisions outside any session, and its checkpoints.
        self.writer_id = uuid.uuid4()
        self.checkpoint_id = uuid.uuid4()
        self._state = FoldedState()
        self._lock = threading.RLock()  # guards _state
        self._write_lock = threading.Lock()  # one writer at a time in this process
        self._changed = threading.Condition(self._lock)
        #: callers blocked in `wait_for_approval` (no one to notify: no notify)
        self._waiting = 0
        #: (session, subject) → (the state's generation, the preflight computed then)
        self._preflights: dict[tuple[str | None, str], tuple[int, Preflight]] = {}
        self._since_checkpoint: dict[uuid.UUID, tuple[int, str]] = {}
        self._events_since_checkpoint = 0
        self._position = 0
        self._fresh_at = 0.0
        self._closed = False
        self.retry_after = seconds_option("retry_after", retry_after)
        #: after a store failure: (monotonic time until which checks fail at once, why)
        self._unavailable: tuple[float, LogError] | None = None
        #: connection events (`session_opened`, …): written by a thread, never waited for
        self._later = LaterWriter(self._write_later)
        self._load()
        self._follower: Follower | None = None
        if follow:
            self._follower = Follower(
                store,
                catch_up=self.catch_up,
                sweep=self.expire_approvals,
                poll_interval=self.poll_interval,
            )
            self._follower.start()

    @property
    def gather_wait(self) -> float:
        return self._committer.gather_wait

    # ------------------------------------------------------------------------------------
    # loading and following
    def _load(self) -> None:
        """Fold approvals, containment and policy releases; sessions load when used."""
        start = self.store.max_position()
        with self._lock:
            for n in self.store.iter_notifications(0, topics=Topic.CONTROL):
                self._apply_stored(n.originator_id, n.originator_version, n.topic, n.state)
            self._position = start
            self._fresh_at = time.monotonic()

    def _apply_stored(
        self,
        aggregate_id: Any,
        version: int,
        topic: str,
        state: bytes,
        *,
        loading: str | None = None,
    ) -> bool:
        agg = aggregate_id if isinstance(aggregate_id, uuid.UUID) else uuid.UUID(str(aggregate_id))
        if topic is Topic.DECISION_RECORDED or topic in _STREAM_TOPICS:
            # Cheap skip, before decoding: our own events, and sessions not loaded here.
            head = self._state.heads.get(agg)
            if (head is None and loading is None) or (head is not None and version <= head[0]):
                return False
        split = split_hash(state)
        h = split[1] if split else ""
        return self._state.apply(agg, version, topic, decode_state(state), h, loading=loading)

    def catch_up(self) -> int:
        """Read what other processes appended since the last read; returns the count.

        Reads positions first (no state), then the state of only the events this process
        does not hold yet and cares about: its own writes and other processes' decisions
        in sessions it has not loaded are skipped without being read.
        """
        count = 0
        while True:
            page = self.store.select_positions(self._position, 1000)
            if not page:
                with self._lock:
                    self._fresh_at = time.monotonic()
                return count
            with self._lock:
                heads = self._state.heads
                wanted = []
                for position, agg, version, topic in page:
                    head = heads.get(agg)
                    if head is not None and version <= head[0]:
                        continue
                    if head is None and topic in _STREAM_TOPICS:
                        continue
                    wanted.append(position)
            states = self.store.select_states(wanted) if wanted else {}
            with self._lock:
                for position, agg, version, topic in page:
                    state = states.get(position)
                    if state is not None:
                        self._apply_stored(agg, version, topic, state)
                self._position = max(self._position, page[-1][0])
                count += len(page)
                self._fresh_at = time.monotonic()
                if self._waiting:
                    self._changed.notify_all()
            if len(page) < 1000:
                return count

    def _ensure_fresh(self, max_age: float = 1.0) -> None:
        if time.monotonic() - self._fresh_at > max_age:
            self.catch_up()

    def _load_session(self, name: str) -> SessionState:
        """Fold a session from its own events (once per session per process)."""
        agg = session_aggregate_id(name)
        with self._lock:
            session = self._state.sessions.get(name)
            if session is not None and name not in self._state.stale_sessions:
                return session
            if session is None:
                session = self._state.sessions[name] = SessionState(id=name)
                self._state.heads.pop(agg, None)
            self._state.stale_sessions.discard(name)
            gt = self._state.head(agg)[0]
        events = self.store.select_events(agg, gt=gt)
        with self._lock:
            for e in events:
                self._apply_stored(agg, e.originator_version, e.topic, e.state, loading=name)
            self._state.heads.setdefault(agg, (0, ""))
            if name in self._state.terminated and session.terminated is None:
                session.terminated = self._state.terminated[name]
            self._state.generation += 1
            return session

    # ------------------------------------------------------------------------------------
    # the Recorder protocol
    def _available(self) -> None:
        """Fail at once while a recent store failure holds (no wait on a dead store)."""
        down = self._unavailable
        if down is not None:
            if time.monotonic() < down[0]:
                raise LogError(f"the decision log is unavailable: {down[1]}")
            self._unavailable = None

    def _store_failed(self, error: LogError) -> None:
        if self.retry_after > 0 and not isinstance(error, StoreConflict):
            self._unavailable = (time.monotonic() + self.retry_after, error)

    def before(self, ctx: CheckContext) -> Preflight:
        self._available()
        name = ctx.session_id
        try:
            self._ensure_fresh()
            session = self._load_session(name) if name is not None else None
        except LogError as e:
            self._store_failed(e)
            raise
        key = (name, ctx.subject.id)
        with self._lock:
            generation = self._state.generation
            cached = self._preflights.get(key)
            if cached is not None and cached[0] == generation:
                return cached[1]
            terminate = None
            revoked = self._state.revoked.get(ctx.subject.id)
            if revoked is not None:
                terminate = f"subject `{ctx.subject.id}` was revoked: {revoked}"
            elif session is not None and session.terminated is not None:
                terminate = f"session `{name}` was terminated: {session.terminated}"
            if session is None:
                doc: dict[str, Any] = SessionState(id="").as_input(0)
                doc["id"] = None
            else:
                doc = session.as_input(self._state.pending_by_session.get(session.id, 0))
            preflight = Preflight(session=doc, terminate=terminate)
            if len(self._preflights) >= 4096:
                self._preflights.clear()
            self._preflights[key] = (generation, preflight)
            return preflight

    def record(self, ctx: CheckContext, decision: Decision) -> Decision:
        return self.record_many([(ctx, decision)])[0]

    def batch(self) -> StagedBatch:
        """A batch of decisions to commit together (see `subguard.log._batch`)."""
        return StagedBatch(
            before=self.before,
            commit=self.record_many,
            session_is_new=self._session_is_new,
            grant_for=self._grant_for,
            facts=build.decision_facts,
        )

    def _session_is_new(self, name: str) -> bool:
        with self._lock:
            return self._state.head(session_aggregate_id(name))[0] == 0

    def _grant_for(self, ctx: CheckContext, used: set[uuid.UUID]) -> tuple[uuid.UUID, str] | None:
        with self._lock:
            found = self._state.find_grant(
                ctx.subject.id, ctx.exact_hash, ctx.fingerprint, self.clock(), used
            )
            return None if found is None or found.mode is None else (found.id, found.mode)

    def record_many(self, items: Sequence[tuple[CheckContext, Decision]]) -> list[Decision]:
        """Commit many decisions in one transaction; returns them as recorded."""
        if not items:
            return []
        unit = Unit(items)
        if not self.group_commit:
            with self._write_lock:
                self._commit([unit])
        else:
            self._committer.submit(unit)
        if unit.error is not None:
            raise unit.error
        assert unit.result is not None
        return unit.result

    async def arecord(self, ctx: CheckContext, decision: Decision) -> Decision:
        """`record` for asyncio: runs in the loop's executor, so concurrent tasks share a
        group commit while the event loop keeps serving."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self.record, ctx, decision)

    async def await_approval(self, approval_id: uuid.UUID, timeout: float) -> ApprovalOutcome:
        """`wait_for_approval` for asyncio."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, self.wait_for_approval, approval_id, timeout)

    # ------------------------------------------------------------------------------------
    # writing
    def _commit_locked(self, units: list[Unit]) -> None:
        with self._write_lock:
            self._commit(units)

    def _commit(self, units: list[Unit]) -> None:
        """Prepare and write `units`; after a conflict re-read and re-decide (grants are
        re-checked, so a once-grant is never used twice). Sets each unit's result or error."""
        items = units[0].items if len(units) == 1 else [i for u in units for i in u.items]
        try:
            self._available()
            try:
                prepared = self._attempt(items)
            except LogError as e:
                self._store_failed(e)
                raise
            if len(units) == 1:
                units[0].result = prepared.decisions
            else:
                decisions = iter(prepared.decisions)
                for unit in units:
                    unit.result = [next(decisions) for _ in unit.items]
        except BaseException as e:
            error = e if isinstance(e, LogError) else LogError(f"cannot record decisions: {e}")
            if error is not e:
                error.__cause__ = e
            logger.error(
                "decision log could not commit %d decision(s); they fail closed: %s",
                len(items),
                error,
            )
            for unit in units:
                unit.error = error
        finally:
            for unit in units:
                unit.done = True

    def _attempt(self, items: Sequence[tuple[CheckContext, Decision]]) -> build.Prepared:
        """Prepare and write; after a conflict, re-read and re-decide holding the store's
        write lock (SQLite): no other process can append in between, so the retry cannot
        conflict again (PostgreSQL serialises writers with its table lock already; there
        the retry is optimistic)."""
        prepared = self._prepare(items)
        # connection events waiting for their own write ride along in this transaction
        # (not on a retry: if this write fails they are queued again, first)
        later = self._later.take()
        written = False
        try:
            self._write([*prepared.events, *later] if later else prepared.events)
            written = True
            return prepared
        except StoreConflict:
            touched = prepared.events
        finally:
            self._later.settle(later, written=written)
        for attempt in range(1, CONFLICT_RETRIES):
            logger.debug("decision log write conflicted; re-reading (attempt %d)", attempt)
            with self.store.exclusive():
                self._refresh(touched)
                prepared = self._prepare(items)
                try:
                    self._write(prepared.events)
                    return prepared
                except StoreConflict:
                    if attempt == CONFLICT_RETRIES - 1:
                        raise
                    touched = prepared.events
        raise AssertionError("unreachable")  # pragma: no cover

    def _prepare(self, items: Sequence[tuple[CheckContext, Decision]]) -> build.Prepared:
        with self._lock:
            sessions = self._state.sessions
            stale = self._state.stale_sessions
            for ctx, _ in items:
                name = ctx.session_id
                if name is not None and (name not in sessions or name in stale):
                    self._load_session(name)
            return build.prepare(
                self._state,
                items,
                writer_id=self.writer_id,
                now=self.clock(),
                approval_ttl_ns=self.approval_ttl_ns,
            )

    def _refresh(self, pending: Iterable[PendingEvent]) -> None:
        """After a conflict: read what others appended to the aggregates we touched."""
        for agg in {p.aggregate_id for p in pending}:
            with self._lock:
                gt = self._state.head(agg)[0]
            events = self.store.select_events(agg, gt=gt)
            with self._lock:
                for e in events:
                    state = decode_state(e.state)
                    loading = state.get("session") if e.topic in Topic.SESSION else None
                    self._apply_stored(agg, e.originator_version, e.topic, e.state, loading=loading)

    def _write(self, pending: list[PendingEvent], *, checkpoint: bool = False) -> None:
        """Encode with chain hashes, add a checkpoint when due, insert, then fold."""
        with self._lock:
            rows, covered, count, wrote_checkpoint = build.encode(
                self._state,
                pending,
                since_checkpoint=self._since_checkpoint,
                events_since_checkpoint=self._events_since_checkpoint,
                checkpoint_id=self.checkpoint_id,
                checkpoint_every=self.checkpoint_every,
                force_checkpoint=checkpoint,
                clock=self.clock,
            )
        ids = self.store.insert([r[0] for r in rows])
        with self._lock:
            if ids and ids[0] == self._position + 1 and ids[-1] - ids[0] == len(ids) - 1:
                # Nothing but these rows since what the follower read: it need not
                # read them back.
                self._position = ids[-1]
            for stored, p, h in rows:
                loading = p.state.get("session") if p.topic in Topic.SESSION else None
                self._state.apply(
                    p.aggregate_id, stored.originator_version, p.topic, p.state, h, loading=loading
                )
            if wrote_checkpoint:
                self._since_checkpoint = {}
                self._events_since_checkpoint = 0
            else:
                self._since_checkpoint = covered
                self._events_since_checkpoint = count
            if self._waiting:
                self._changed.notify_all()

    # ------------------------------------------------------------------------------------
    # connections: recorded after the fact, best effort
    def session_opened(
        self,
        session: str,
        *,
        subject: str,
        adapter: str,
        peer: str = "",
        application_name: str = "",
        tls: bool = False,
    ) -> bool:
        """Record that a client connected (`SessionOpened`). Queued, never waited for;
        False when it was dropped. Never raises."""
        return self._later_event(
            build.session_opened,
            session,
            subject=subject,
            adapter=adapter,
            peer=peer,
            application_name=application_name,
            tls=tls,
        )

    def statement_completed(
        self,
        session: str,
        *,
        decision: str,
        statement: int = 0,
        outcome: str = "complete",
        command: str | None = None,
        rows: int | None = None,
        ms: float = 0.0,
        sqlstate: str | None = None,
    ) -> bool:
        """Record what the database did with a statement a decision let through
        (`StatementCompleted`): no values, only the command word, a row count, the time
        it took and an error's SQLSTATE. Queued, never waited for; never raises."""
        return self._later_event(
            build.statement_completed,
            session,
            decision=decision,
            statement=statement,
            outcome=outcome,
            command=command,
            rows=rows,
            ms=ms,
            sqlstate=sqlstate,
        )

    def session_closed(self, session: str, *, duration_ms: float, reason: str) -> bool:
        """Record that a connection ended (`SessionClosed`). Queued; never raises."""
        return self._later_event(
            build.session_closed, session, duration_ms=duration_ms, reason=reason
        )

    def flush_later(self, timeout: float = 5.0) -> bool:
        """Wait until the connection events queued so far are written (or dropped)."""
        return self._later.flush(timeout)

    @property
    def later_dropped(self) -> int:
        """Connection events lost so far (a full queue, or the store failing)."""
        return self._later.dropped

    def _later_event(self, make: Callable[..., PendingEvent], session: str, **fields: Any) -> bool:
        try:
            event = make(session, at=format_time(self.clock()), **fields)
        except Exception:
            logger.exception("decision log could not build a connection event")
            return False
        return self._later.submit(event)

    def _write_later(self, pending: list[PendingEvent]) -> None:
        """On the writer thread: append connection events, as `_act` appends (each
        connection's stream has one writer, so a conflict is another process's
        checkpoint at most; re-read and retry)."""
        self._available()
        with self._write_lock:
            for attempt in range(CONFLICT_RETRIES):
                with self.store.exclusive() if attempt else contextlib.nullcontext():
                    if attempt:
                        self._refresh(pending)
                    try:
                        self._write(pending)
                        return
                    except StoreConflict:
                        if attempt == CONFLICT_RETRIES - 1:
                            raise

    # ------------------------------------------------------------------------------------
    # responders' actions
    def _act(self, aggregate_id: uuid.UUID, make: Callable[[], list[PendingEvent]]) -> None:
        """Append what `make` returns to an aggregate, re-reading it after a conflict
        (holding the store's write lock on a retry, as `_attempt` does)."""
        with self._write_lock:
            for attempt in range(CONFLICT_RETRIES):
                with self.store.exclusive() if attempt else contextlib.nullcontext():
                    self._refresh([PendingEvent(aggregate_id, "", {})])
                    with self._lock:
                        pending = make()
                    if not pending:
                        return
                    try:
                        self._write(pending)
                        return
                    except StoreConflict:
                        if attempt == CONFLICT_RETRIES - 1:
                            raise

    def approve(
        self, approval_id: uuid.UUID, *, by: str, window: float | None = None
    ) -> ApprovalOutcome:
        """Grant a held request: once (the exact text) or for a window (its shape)."""
        if not by:
            raise LogError("an approval needs the name of who grants it")
        if window is not None:
            window = seconds_option("window", window, positive=True)
        self.catch_up()
        expired = False

        def make() -> list[PendingEvent]:
            nonlocal expired
            event = build.grant(
                self._state,
                approval_id,
                by=by,
                window=window,
                now=self.clock(),
                approval_ttl_ns=self.approval_ttl_ns,
            )
            expired = event.topic == Topic.APPROVAL_EXPIRED
            return [event]

        self._act(approval_id, make)
        if expired:
            raise LogError(f"approval `{approval_id}` has expired")
        return self.outcome(approval_id)

    def reject(self, approval_id: uuid.UUID, *, by: str, reason: str = "") -> ApprovalOutcome:
        if not by:
            raise LogError("a refusal needs the name of who refuses")
        self.catch_up()
        self._act(
            approval_id,
            lambda: [
                build.refuse(self._state, approval_id, by=by, reason=reason, now=self.clock())
            ],
        )
        return self.outcome(approval_id)

    def expire_approvals(self, now_ns: int | None = None) -> list[uuid.UUID]:
        """Record `expired` for every pending approval past its TTL; returns their ids."""
        now = self.clock() if now_ns is None else now_ns
        with self._lock:
            due = build.due_approvals(self._state, now)
        done = []
        for approval_id in due:

            def make(approval_id: uuid.UUID = approval_id) -> list[PendingEvent]:
                return build.expire(self._state, approval_id, now=now)

            try:
                self._act(approval_id, make)
                done.append(approval_id)
            except LogError:
                continue
        return done

    def revoke(self, subject: str, *, reason: str, by: str = "") -> None:
        """Contain a subject everywhere: every later check for it yields `terminate`."""
        self._act(
            subject_aggregate_id(subject),
            lambda: [build.revoke_subject(subject, reason=reason, by=by, now=self.clock())],
        )

    def restore(self, subject: str, *, reason: str = "", by: str = "") -> None:
        self.catch_up()
        self._act(
            subject_aggregate_id(subject),
            lambda: [
                build.restore_subject(self._state, subject, reason=reason, by=by, now=self.clock())
            ],
        )

    def kill(self, session: str, *, reason: str = "killed by a responder", by: str = "") -> None:
        """End a session: later checks in it yield `terminate`."""
        self._load_session(session)
        self._act(
            session_aggregate_id(session),
            lambda: [
                build.kill_session(self._state, session, reason=reason, by=by, now=self.clock())
            ],
        )

    # ------------------------------------------------------------------------------------
    # queries
    def outcome(self, approval_id: uuid.UUID) -> ApprovalOutcome:
        with self._lock:
            a = self._state.approvals.get(approval_id)
            if a is None:
                raise LogError(f"no approval `{approval_id}` in the decision log")
            status = ApprovalStatus.GRANTED if a.status is ApprovalStatus.USED else a.status
            return ApprovalOutcome(approval_id, status, a.by, a.reason, a.mode, a.until_ns)

    def wait_for_approval(self, approval_id: uuid.UUID, timeout: float) -> ApprovalOutcome:
        """Block until the approval is granted, refused or expired, or `timeout` passes.

        `timeout` is a finite, non-negative number of seconds (NaN or a negative value is
        a `LogError`, never a wait without end)."""
        deadline = time.monotonic() + seconds_option("timeout", timeout)
        while True:
            with self._lock:
                approval = self._state.approvals.get(approval_id)
                if approval is not None and approval.status is not ApprovalStatus.PENDING:
                    return self.outcome(approval_id)
                if approval is not None and approval.expires_ns <= self.clock():
                    expired = True
                else:
                    expired = False
                remaining = deadline - time.monotonic()
                if not expired and remaining > 0:
                    self._waiting += 1
                    try:
                        self._changed.wait(min(remaining, max(self.poll_interval, 0.05)))
                    finally:
                        self._waiting -= 1
            if expired:
                # Record the expiry if we can; either way the request stays refused.
                with contextlib.suppress(LogError):
                    self.expire_approvals()
                outcome = self.outcome(approval_id)
                if outcome.status is ApprovalStatus.PENDING:
                    outcome = attrs.evolve(outcome, status=ApprovalStatus.EXPIRED)
                return outcome
            if self._follower is None or not self._follower.is_alive():
                self.catch_up()
            if time.monotonic() >= deadline:
                with self._lock:
                    if approval_id not in self._state.approvals:
                        raise LogError(f"no approval `{approval_id}` in the decision log")
                return self.outcome(approval_id)

    def session_state(self, session: str) -> dict[str, Any]:
        state = self._load_session(session)
        with self._lock:
            return state.as_input(self._state.pending_by_session.get(session, 0))

    def revoked(self) -> dict[str, str]:
        with self._lock:
            return dict(self._state.revoked)

    def approvals(self) -> list[ApprovalState]:
        with self._lock:
            return [attrs.evolve(a) for a in self._state.approvals.values()]

    def checkpoint(self) -> None:
        """Write a checkpoint of everything this process appended since the last one."""
        with self._write_lock:
            if self._since_checkpoint:
                self._write([], checkpoint=True)

    def close(self) -> None:
        if self._closed:
            return
        self._later.close()
        with contextlib.suppress(LogError):
            self.checkpoint()
        self._closed = True
        if self._follower is not None:
            self._follower.stop()
        self.store.close()

    def __enter__(self) -> DecisionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_log(url: str, **options: Any) -> DecisionLog:
    """Open a decision log on the store named by `url` (see `DecisionLog` for options).

    `create` (default: yes, except on PostgreSQL, where `subguard init` creates it once).
    """
    create = options.pop("create", None)
    lock_timeout = options.pop("lock_timeout", 5.0)
    store = open_store(url, create=create, lock_timeout=lock_timeout)
    try:
        return DecisionLog(store, **options)
    except BaseException:
        store.close()
        raise
