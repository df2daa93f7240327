"""`DecisionLog`: the engine's recorder. Write-ahead, group-committed, hash-chained.

Writers: whichever caller finds no commit in flight becomes the leader, takes everything
queued (its own request included), writes it in one transaction and releases each caller
only after the commit; there is no timer, so a lone caller pays one commit and no wait.
A follower thread tails the notification log (LISTEN/NOTIFY on PostgreSQL, polling
elsewhere) so revocations, kills, approvals and other processes' decisions reach this
process without a query per check.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import hashlib
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs
from eventsourcing.persistence import StoredEvent

from subguard.engine.recorder import CheckContext, Preflight
from subguard.engine.types import Decision, Effect, Reason
from subguard.errors import LogError
from subguard.log._events import (
    Topic,
    approval_aggregate_id,
    decode_state,
    encode_event,
    format_time,
    policy_aggregate_id,
    session_aggregate_id,
    split_hash,
    subject_aggregate_id,
)
from subguard.log._state import ApprovalState, FoldedState, SessionState
from subguard.log._store import Store, StoreConflict, open_store

__all__ = ["ApprovalOutcome", "DecisionLog", "open_log"]

_CONFLICT_RETRIES = 8
_APPROVE = Effect.APPROVE
_TERMINATE = Effect.TERMINATE
_EFFECT_VALUE = {e: e.value for e in Effect}


@functools.lru_cache(maxsize=4096)
def _reason_dict(reason: Reason) -> dict[str, str]:
    # Compiled rules hand out the same reasons again and again; orjson only reads these.
    return reason.as_dict()


_STREAM_TOPICS = frozenset({Topic.DECISION_RECORDED, Topic.SESSION_STARTED})


@attrs.frozen
class ApprovalOutcome:
    """What became of a held request: `granted`, `refused`, `expired` or still `pending`."""

    approval_id: uuid.UUID
    status: str
    by: str | None = None
    reason: str | None = None
    mode: str | None = None
    until_ns: int = 0

    @property
    def granted(self) -> bool:
        return self.status == "granted"


@attrs.define
class _Unit:
    items: Sequence[tuple[CheckContext, Decision]]
    result: list[Decision] | None = None
    error: BaseException | None = None
    done: bool = False


@attrs.define
class _Pending:
    """One event being prepared: where it goes and what it says."""

    aggregate_id: uuid.UUID
    topic: str
    state: dict[str, Any]


_NO_FACTS: dict[str, list[str]] = {
    "kinds": [],
    "tables_read": [],
    "tables_written": [],
    "columns": [],
}
#: id(input.sql document) → (that document, its facts). The analyser hands out one
#: read-only document per analysed statement, so a repeated statement costs one lookup;
#: holding the document keeps its id from being reused while it is cached.
_FACTS_BY_DOC: dict[int, tuple[Any, dict[str, list[str]]]] = {}


def _facts(decision: Decision) -> dict[str, list[str]]:
    """Statement kinds, tables and columns from the input document: names only.

    The result is shared between events of the same statement: never mutate it.
    """
    doc = decision.input
    sql = doc.get("sql") if doc else None
    if sql is None and doc:
        command = doc.get("command") or {}
        sql = command.get("sql")
    if not sql:
        return _NO_FACTS
    hit = _FACTS_BY_DOC.get(id(sql))
    if hit is not None and hit[0] is sql:
        return hit[1]
    columns = {
        f"{c.get('table')}.{c.get('column')}" if c.get("table") else str(c.get("column", ""))
        for c in sql.get("columns_read") or ()
    }
    facts = {
        "kinds": [str(s.get("kind", "")) for s in sql.get("statements") or ()],
        "tables_read": sorted(map(str, sql.get("tables_read") or ())),
        "tables_written": sorted(map(str, sql.get("tables_written") or ())),
        "columns": sorted(columns),
    }
    if len(_FACTS_BY_DOC) >= 1024:
        _FACTS_BY_DOC.clear()
    _FACTS_BY_DOC[id(sql)] = (sql, facts)
    return facts


@functools.lru_cache(maxsize=1024)
def _sorted(values: frozenset[str]) -> list[str]:
    return sorted(values)


def _masks(decision: Decision) -> Any:
    if isinstance(decision.masks, Mapping):
        return dict(decision.masks)
    return list(decision.masks)


class DecisionLog:
    """The decision log over one store. Thread-safe; one per process and store is enough.

    Every failure to commit raises `LogError`; the engine turns it into `deny` (fail
    closed) unless it was built with `fail_closed=False`.

    Options: `checkpoint_every` (events per checkpoint), `approval_ttl` (seconds a held
    request waits, and a once-grant stays usable), `group_commit`, `gather_wait` (the
    shortest bound on a commit leader's wait for callers it expects; the bound grows to a
    quarter of a recent commit, at most 1 ms; 0 turns gathering off), `follow` (a follower thread;
    without it, checks catch up at most once a second), `poll_interval` (SQLite and
    memory followers), `clock` (time in ns, for tests).
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
    ) -> None:
        self.store = store
        self.checkpoint_every = checkpoint_every
        self.approval_ttl_ns = int(approval_ttl * 1e9)
        self.group_commit = group_commit
        self.poll_interval = poll_interval
        self.clock = clock
        self.gather_wait = gather_wait
        #: This process's stream for decisions outside any session, and its checkpoints.
        self.writer_id = uuid.uuid4()
        self.checkpoint_id = uuid.uuid4()
        self._state = FoldedState()
        self._lock = threading.RLock()  # guards _state
        self._write_lock = threading.Lock()  # one writer at a time in this process
        queue_lock = threading.Lock()
        self._queue_cv = threading.Condition(queue_lock)
        self._queue: list[_Unit] = []
        self._committing = False
        #: sizes of the last few group commits, and a running mean of a commit's seconds
        self._recent: collections.deque[int] = collections.deque([1], maxlen=8)
        self._commit_time = 0.0
        self._gathering = False
        self._gather_cv = threading.Condition(queue_lock)  # the leader waits here for company
        self._changed = threading.Condition(self._lock)
        self._since_checkpoint: dict[uuid.UUID, tuple[int, str]] = {}
        self._events_since_checkpoint = 0
        self._position = 0
        self._fresh_at = 0.0
        self._closed = threading.Event()
        self._load()
        self._follower: threading.Thread | None = None
        if follow:
            self._follower = threading.Thread(
                target=self._follow_loop, name="subguard-log-follower", daemon=True
            )
            self._follower.start()

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
                self._changed.notify_all()
            if len(page) < 1000:
                return count

    def _follow_loop(self) -> None:
        next_sweep = 0.0
        while not self._closed.is_set():
            try:
                with self.store.listen() as conn:
                    while not self._closed.is_set():
                        self.catch_up()
                        if time.monotonic() >= next_sweep:
                            next_sweep = time.monotonic() + 1.0
                            self.expire_approvals()
                        if conn is not None:
                            for _ in conn.notifies(
                                timeout=max(self.poll_interval, 0.1), stop_after=1
                            ):
                                pass
                        else:
                            self._closed.wait(self.poll_interval)
            except Exception:
                # The store is unreachable; checks see the staleness and catch up themselves.
                self._closed.wait(0.1)

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
            return session

    # ------------------------------------------------------------------------------------
    # the Recorder protocol
    def before(self, ctx: CheckContext) -> Preflight:
        self._ensure_fresh()
        name = ctx.session_id
        session = self._load_session(name) if name is not None else None
        with self._lock:
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
        return Preflight(session=doc, terminate=terminate)

    def record(self, ctx: CheckContext, decision: Decision) -> Decision:
        return self.record_many([(ctx, decision)])[0]

    def record_many(self, items: Sequence[tuple[CheckContext, Decision]]) -> list[Decision]:
        """Commit many decisions in one transaction; returns them as recorded."""
        if not items:
            return []
        unit = _Unit(items)
        if not self.group_commit:
            with self._write_lock:
                self._commit([unit])
        else:
            self._group_commit(unit)
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

    def _group_commit(self, unit: _Unit) -> None:
        cv = self._queue_cv
        with cv:
            self._queue.append(unit)
            if self._gathering:
                self._gather_cv.notify()
            while not unit.done:
                if not self._committing:
                    self._committing = True
                    # Callers released by the last commit are still on their way back:
                    # wait for as many as recent batches held, but never longer than a
                    # quarter of a recent commit (at least `gather_wait`, at most 1 ms),
                    # so waiting costs little next to the commit it fills. A lone caller
                    # never waits, and a wait that brings nobody forgets the crowd.
                    want = min(max(self._recent), 64)
                    if want > 1 and self.gather_wait > 0 and len(self._queue) < want:
                        bound = min(max(self.gather_wait, self._commit_time / 4), 0.001)
                        deadline = time.monotonic() + bound
                        arrived = len(self._queue)
                        self._gathering = True
                        while len(self._queue) < want:
                            remaining = deadline - time.monotonic()
                            if remaining <= 0:
                                break
                            self._gather_cv.wait(remaining)
                        self._gathering = False
                        if len(self._queue) == arrived:
                            self._recent.clear()
                    batch, self._queue = self._queue, []
                    self._recent.append(len(batch))
                    break
                cv.wait()
            else:
                return
        started = time.monotonic()
        try:
            with self._write_lock:
                self._commit(batch)
        finally:
            elapsed = time.monotonic() - started
            with cv:
                self._commit_time += (elapsed - self._commit_time) / 8
                self._committing = False
                cv.notify_all()

    def _commit(self, units: list[_Unit]) -> None:
        try:
            for attempt in range(_CONFLICT_RETRIES):
                with self._lock:
                    pending, results = self._prepare(units)
                try:
                    self._write(pending)
                except StoreConflict:
                    if attempt == _CONFLICT_RETRIES - 1:
                        raise
                    self._refresh(pending)
                    continue
                for unit, result in zip(units, results):
                    unit.result = result
                return
        except BaseException as e:
            error = e if isinstance(e, LogError) else LogError(f"cannot record decisions: {e}")
            if error is not e:
                error.__cause__ = e
            for unit in units:
                unit.error = error
        finally:
            for unit in units:
                unit.done = True

    def _refresh(self, pending: Iterable[_Pending]) -> None:
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

    def _prepare(self, units: list[_Unit]) -> tuple[list[_Pending], list[list[Decision]]]:
        now = self.clock()
        at = format_time(now)
        pending: list[_Pending] = []
        results: list[list[Decision]] = []
        started: set[str] = set()
        ended: set[str] = set()
        used: set[uuid.UUID] = set()
        policies: set[str] = set()
        for unit in units:
            out: list[Decision] = []
            for ctx, decision in unit.items:
                name = ctx.session_id
                if name is not None:
                    session = self._state.sessions.get(name)
                    if session is None or name in self._state.stale_sessions:
                        session = self._load_session(name)
                    agg = session_aggregate_id(name)
                    if self._state.head(agg)[0] == 0 and name not in started:
                        started.add(name)
                        pending.append(
                            _Pending(
                                agg,
                                Topic.SESSION_STARTED,
                                {
                                    "session": name,
                                    "subject": {
                                        "id": ctx.subject.id,
                                        "groups": sorted(ctx.subject.groups),
                                        "claims": dict(ctx.subject.claims),
                                    },
                                    "resource": {
                                        "name": ctx.resource.name,
                                        "kind": ctx.resource.kind,
                                        "dialect": ctx.resource.dialect,
                                        "env": ctx.resource.env,
                                        "tags": dict(ctx.resource.tags),
                                    },
                                    "at": at,
                                },
                            )
                        )
                else:
                    agg = self.writer_id
                    session = None
                decision = self._apply_grants(ctx, decision, pending, used, now, at)
                policy = decision.policy_hash
                if policy and policy not in self._state.policies and policy not in policies:
                    policies.add(policy)
                    pending.append(
                        _Pending(
                            policy_aggregate_id(policy),
                            Topic.POLICY_ACTIVATED,
                            {"hash": policy, "at": at},
                        )
                    )
                pending.append(
                    _Pending(
                        agg,
                        Topic.DECISION_RECORDED,
                        {
                            "session": name,
                            "decision": str(decision.id),
                            "subject": ctx.subject.id,
                            "groups": _sorted(ctx.subject.groups),
                            "resource": ctx.resource.name,
                            "kind": ctx.request_kind,
                            "text": ctx.redacted_text,
                            "fingerprint": ctx.fingerprint,
                            "facts": _facts(decision),
                            "effect": _EFFECT_VALUE[decision.effect],
                            "reasons": [_reason_dict(r) for r in decision.reasons],
                            "masks": _masks(decision),
                            "errors": [e.as_dict() for e in decision.errors]
                            if decision.errors
                            else [],
                            "approval": str(decision.approval_id) if decision.approval_id else None,
                            "policy": decision.policy_hash,
                            "time": format_time(ctx.time_ns),
                            "elapsed_ns": decision.elapsed_ns,
                            "at": at,
                        },
                    )
                )
                if (
                    decision.effect is _TERMINATE
                    and name is not None
                    and session is not None
                    and session.terminated is None
                    and name not in ended
                ):
                    ended.add(name)
                    message = (
                        decision.reasons[0].message if decision.reasons else "terminated by policy"
                    )
                    pending.append(
                        _Pending(
                            agg,
                            Topic.SESSION_TERMINATED,
                            {"session": name, "reason": message, "by": "policy", "at": at},
                        )
                    )
                out.append(decision)
            results.append(out)
        return pending, results

    def _apply_grants(
        self,
        ctx: CheckContext,
        decision: Decision,
        pending: list[_Pending],
        used: set[uuid.UUID],
        now: int,
        at: str,
    ) -> Decision:
        if decision.effect is not _APPROVE:
            return decision
        grant = self._state.find_grant(ctx.subject.id, ctx.exact_hash, ctx.fingerprint, now, used)
        if grant is not None:
            if grant.mode == "once":
                used.add(grant.id)
                pending.append(
                    _Pending(
                        grant.id, Topic.APPROVAL_USED, {"decision": str(decision.id), "at": at}
                    )
                )
            reason = Reason(
                effect=Effect.ALLOW,
                package="subguard.log",
                rule="approval",
                message=f"approved by {grant.by} ({grant.mode}, approval {grant.id})",
                location="",
            )
            return attrs.evolve(decision, effect=Effect.ALLOW, reasons=(*decision.reasons, reason))
        approval_id = approval_aggregate_id(decision.id)
        pending.append(
            _Pending(
                approval_id,
                Topic.APPROVAL_REQUESTED,
                {
                    "decision": str(decision.id),
                    "subject": ctx.subject.id,
                    "session": ctx.session_id,
                    "fingerprint": ctx.fingerprint,
                    "exact_hash": ctx.exact_hash,
                    "text": ctx.redacted_text,
                    "reasons": [r.as_dict() for r in decision.reasons],
                    "at": at,
                    "expires": format_time(now + self.approval_ttl_ns),
                },
            )
        )
        return attrs.evolve(decision, approval_id=approval_id)

    def _write(self, pending: list[_Pending], *, checkpoint: bool = False) -> None:
        """Encode with chain hashes, add a checkpoint when due, insert, then fold."""
        heads: dict[uuid.UUID, tuple[int, str]] = {}
        rows: list[tuple[StoredEvent, _Pending, str]] = []
        session_end = False
        with self._lock:
            for p in pending:
                version, prev = heads.get(p.aggregate_id) or self._state.head(p.aggregate_id)
                stored, h = encode_event(p.aggregate_id, version + 1, p.topic, p.state, prev)
                heads[p.aggregate_id] = (version + 1, h)
                rows.append((stored, p, h))
                session_end = session_end or p.topic == Topic.SESSION_TERMINATED
            covered = {**self._since_checkpoint, **heads}
            count = self._events_since_checkpoint + len(rows)
            wrote_checkpoint = checkpoint or session_end or count >= self.checkpoint_every
            if wrote_checkpoint:
                version, prev = self._state.head(self.checkpoint_id)
                state = _checkpoint_state(
                    covered, "session-end" if session_end else "interval", format_time(self.clock())
                )
                p = _Pending(self.checkpoint_id, Topic.CHECKPOINT, state)
                stored, h = encode_event(
                    self.checkpoint_id, version + 1, Topic.CHECKPOINT, state, prev
                )
                rows.append((stored, p, h))
        self.store.insert([r[0] for r in rows])
        with self._lock:
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
            self._changed.notify_all()

    # ------------------------------------------------------------------------------------
    # responders' actions
    def _act(
        self,
        aggregate_id: uuid.UUID,
        build: Callable[[], list[_Pending]],
        *,
        checkpoint: bool = False,
    ) -> None:
        """Append what `build` returns to an aggregate, re-reading it after a conflict."""
        with self._write_lock:
            for attempt in range(_CONFLICT_RETRIES):
                self._refresh([_Pending(aggregate_id, "", {})])
                with self._lock:
                    pending = build()
                if not pending:
                    return
                try:
                    self._write(pending, checkpoint=checkpoint)
                    return
                except StoreConflict:
                    if attempt == _CONFLICT_RETRIES - 1:
                        raise

    def _approval(self, approval_id: uuid.UUID) -> ApprovalState:
        approval = self._state.approvals.get(approval_id)
        if approval is None:
            raise LogError(f"no approval `{approval_id}` in the decision log")
        return approval

    def _require_pending(self, approval: ApprovalState, now: int) -> None:
        if approval.status != "pending":
            raise LogError(f"approval `{approval.id}` is already {approval.status}")
        if approval.expires_ns <= now:
            raise LogError(
                f"approval `{approval.id}` expired at {format_time(approval.expires_ns)}"
            )

    def approve(
        self, approval_id: uuid.UUID, *, by: str, window: float | None = None
    ) -> ApprovalOutcome:
        """Grant a held request: once (the exact text) or for a window (its shape)."""
        if not by:
            raise LogError("an approval needs the name of who grants it")
        self.catch_up()
        expired = False

        def build() -> list[_Pending]:
            nonlocal expired
            approval = self._approval(approval_id)
            now = self.clock()
            if approval.status == "pending" and approval.expires_ns <= now:
                expired = True
                return [_Pending(approval_id, Topic.APPROVAL_EXPIRED, {"at": format_time(now)})]
            self._require_pending(approval, now)
            if approval.subject == by:
                raise LogError(f"`{by}` may not approve their own request")
            if window is not None:
                until = now + int(window * 1e9)
                mode = "window"
            else:
                until = now + self.approval_ttl_ns
                mode = "once"
            return [
                _Pending(
                    approval_id,
                    Topic.APPROVAL_GRANTED,
                    {"by": by, "mode": mode, "until": format_time(until), "at": format_time(now)},
                )
            ]

        self._act(approval_id, build)
        if expired:
            raise LogError(f"approval `{approval_id}` has expired")
        return self.outcome(approval_id)

    def reject(self, approval_id: uuid.UUID, *, by: str, reason: str = "") -> ApprovalOutcome:
        if not by:
            raise LogError("a refusal needs the name of who refuses")
        self.catch_up()

        def build() -> list[_Pending]:
            approval = self._approval(approval_id)
            now = self.clock()
            if approval.status != "pending":
                raise LogError(f"approval `{approval_id}` is already {approval.status}")
            return [
                _Pending(
                    approval_id,
                    Topic.APPROVAL_REFUSED,
                    {"by": by, "reason": reason, "at": format_time(now)},
                )
            ]

        self._act(approval_id, build)
        return self.outcome(approval_id)

    def expire_approvals(self, now_ns: int | None = None) -> list[uuid.UUID]:
        """Record `expired` for every pending approval past its TTL; returns their ids."""
        now = self.clock() if now_ns is None else now_ns
        with self._lock:
            due = [
                a.id
                for a in self._state.approvals.values()
                if a.status == "pending" and a.expires_ns <= now
            ]
        done = []
        for approval_id in due:

            def build(approval_id: uuid.UUID = approval_id) -> list[_Pending]:
                approval = self._state.approvals.get(approval_id)
                if approval is None or approval.status != "pending":
                    return []
                return [_Pending(approval_id, Topic.APPROVAL_EXPIRED, {"at": format_time(now)})]

            try:
                self._act(approval_id, build)
                done.append(approval_id)
            except LogError:
                continue
        return done

    def revoke(self, subject: str, *, reason: str, by: str = "") -> None:
        """Contain a subject everywhere: every later check for it yields `terminate`."""
        agg = subject_aggregate_id(subject)
        self._act(
            agg,
            lambda: [
                _Pending(
                    agg,
                    Topic.SUBJECT_REVOKED,
                    {
                        "subject": subject,
                        "reason": reason,
                        "by": by,
                        "at": format_time(self.clock()),
                    },
                )
            ],
        )

    def restore(self, subject: str, *, reason: str = "", by: str = "") -> None:
        agg = subject_aggregate_id(subject)

        def build() -> list[_Pending]:
            if subject not in self._state.revoked:
                raise LogError(f"subject `{subject}` is not revoked")
            return [
                _Pending(
                    agg,
                    Topic.SUBJECT_RESTORED,
                    {
                        "subject": subject,
                        "reason": reason,
                        "by": by,
                        "at": format_time(self.clock()),
                    },
                )
            ]

        self.catch_up()
        self._act(agg, build)

    def kill(self, session: str, *, reason: str = "killed by a responder", by: str = "") -> None:
        """End a session: later checks in it yield `terminate`."""
        agg = session_aggregate_id(session)
        self._load_session(session)

        def build() -> list[_Pending]:
            state = self._state.sessions.get(session)
            if state is None or self._state.head(agg)[0] == 0:
                raise LogError(f"no session `{session}` in the decision log")
            if state.terminated is not None:
                raise LogError(f"session `{session}` is already terminated")
            return [
                _Pending(
                    agg,
                    Topic.SESSION_TERMINATED,
                    {
                        "session": session,
                        "reason": reason,
                        "by": by,
                        "at": format_time(self.clock()),
                    },
                )
            ]

        self._act(agg, build)

    # ------------------------------------------------------------------------------------
    # queries
    def outcome(self, approval_id: uuid.UUID) -> ApprovalOutcome:
        with self._lock:
            a = self._approval(approval_id)
            status = "granted" if a.status == "used" else a.status
            return ApprovalOutcome(approval_id, status, a.by, a.reason, a.mode, a.until_ns)

    def wait_for_approval(self, approval_id: uuid.UUID, timeout: float) -> ApprovalOutcome:
        """Block until the approval is granted, refused or expired, or `timeout` passes."""
        deadline = time.monotonic() + max(timeout, 0.0)
        while True:
            with self._lock:
                approval = self._state.approvals.get(approval_id)
                if approval is not None and approval.status != "pending":
                    return self.outcome(approval_id)
                if approval is not None and approval.expires_ns <= self.clock():
                    expired = True
                else:
                    expired = False
                remaining = deadline - time.monotonic()
                if not expired and remaining > 0:
                    self._changed.wait(min(remaining, max(self.poll_interval, 0.05)))
            if expired:
                # Record the expiry if we can; either way the request stays refused.
                with contextlib.suppress(LogError):
                    self.expire_approvals()
                outcome = self.outcome(approval_id)
                if outcome.status == "pending":
                    outcome = attrs.evolve(outcome, status="expired")
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
        if self._closed.is_set():
            return
        with contextlib.suppress(LogError):
            self.checkpoint()
        self._closed.set()
        if self._follower is not None:
            self._follower.join(timeout=2.0)
        self.store.close()

    def __enter__(self) -> DecisionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _checkpoint_state(
    heads: Mapping[uuid.UUID, tuple[int, str]], reason: str, at: str
) -> dict[str, Any]:
    ordered = sorted((str(k), v[0], v[1]) for k, v in heads.items())
    return {
        "heads": {k: [version, h] for k, version, h in ordered},
        "root": checkpoint_root(ordered),
        "reason": reason,
        "at": at,
    }


def checkpoint_root(ordered: Iterable[tuple[str, int, str]]) -> str:
    """SHA-256 over `aggregate version hash` lines, sorted by aggregate id."""
    digest = hashlib.sha256()
    for aggregate, version, h in ordered:
        digest.update(f"{aggregate} {version} {h}\n".encode())
    return digest.hexdigest()


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
