"""The gate: one per agent connection (or `exec`, or MCP session). It binds the engine,
the log, the subject, the resource and the session, and turns each decision into what
happens to the request: run, run and mask, hold, refuse, or refuse and close.

It knows nothing of any protocol: adapters hand it requests and get back the decision
that lets the request run (with its mask plan), or an exception the agent sees. A
revocation of the subject or a kill of the session, made in any process, closes every
live gate of it within a second through one follower per log (`_Watcher`), not on the
agent's next call.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

from subguard.adapters._errors import ApprovalRequired, Denied, Terminated, describe
from subguard.adapters._estimate import ESTIMATE_PATH
from subguard.adapters._masking import MaskPlan, Unplaceable, mask_key, plan_masks
from subguard.engine import Decision, Effect, Engine, Request, Resource, Subject
from subguard.log import DecisionLog, Topic, follow
from subguard.sql import ResultLineage

__all__ = ["Gate"]

#: How often the watcher polls a store without notifications (SQLite, memory).
WATCH_INTERVAL = 0.05


def as_subject(value: Subject | Mapping[str, Any] | str) -> Subject:
    if isinstance(value, Subject):
        return value
    if isinstance(value, str):
        return Subject(value)
    return Subject(str(value.get("id", "")), value.get("groups") or (), value.get("claims") or {})


def as_resource(value: Resource | Mapping[str, Any] | str | None) -> Resource:
    if value is None:
        return Resource()
    if isinstance(value, Resource):
        return value
    if isinstance(value, str):
        return Resource(name=value)
    return Resource(
        name=str(value.get("name", "")),
        kind=str(value.get("kind", "")),
        dialect=value.get("dialect"),
        env=str(value.get("env", "")),
        tags=value.get("tags") or {},
        schema=value.get("schema"),
    )


class Gate:
    """Enforces one agent connection's decisions. Thread-safe.

    `decide(request)` returns the decision that lets the request run (effect `allow` or
    `mask`) or raises: `Denied` (the gate stays open), `ApprovalRequired` (held; with
    `approval_timeout` > 0 the gate first waits for a responder, then re-checks),
    `Terminated` (the gate closes and every later call raises it again).
    """

    def __init__(
        self,
        engine: Engine,
        *,
        subject: Subject | Mapping[str, Any] | str,
        resource: Resource | Mapping[str, Any] | str | None,
        session: str | None,
        approval_timeout: float = 0.0,
        mask_key: bytes | str | None = None,
    ) -> None:
        self.engine = engine
        self.subject = as_subject(subject)
        self.resource = as_resource(resource)
        self.session = session if session is not None else f"gate-{uuid.uuid4()}"
        self.approval_timeout = max(float(approval_timeout), 0.0)
        self.mask_key = _key(mask_key)
        self.log: DecisionLog | None = engine.log if isinstance(engine.log, DecisionLog) else None
        self._lock = threading.Lock()
        self._closed: Terminated | None = None
        self._callbacks: list[Callable[[Terminated], None]] = []
        if self.log is not None:
            _Watcher.watch(self.log, self)
            self._check_contained()

    # -- state -------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed is not None

    def on_close(self, callback: Callable[[Terminated], None]) -> None:
        """Call `callback` once when the gate closes (at once if it already has)."""
        with self._lock:
            if self._closed is None:
                self._callbacks.append(callback)
                return
            closed = self._closed
        callback(closed)

    def close(
        self, reason: str = "the connection was closed", decision: Decision | None = None
    ) -> None:
        """Close the gate: every later `decide` raises `Terminated`; callbacks run once."""
        error = Terminated(reason, decision)
        with self._lock:
            if self._closed is not None:
                return
            self._closed = error
            callbacks, self._callbacks = self._callbacks, []
        if self.log is not None:
            _Watcher.unwatch(self.log, self)
        for callback in callbacks:
            with contextlib.suppress(
                Exception
            ):  # one failing callback must not keep others from running
                callback(error)

    def ensure_open(self) -> None:
        closed = self._closed
        if closed is not None:
            raise Terminated(closed.message, closed.decision)

    def _check_contained(self) -> None:
        assert self.log is not None
        with contextlib.suppress(Exception):
            self.log.catch_up()
        reason = self.log.revoked().get(self.subject.id)
        if reason is not None:
            self.close(f"subject `{self.subject.id}` is revoked: {reason}")
            return
        try:
            state = self.log.session_state(self.session)
        except Exception:
            return
        if state.get("terminated"):
            self.close(f"session `{self.session}` is terminated")

    def contain(
        self, *, subject: str | None = None, session: str | None = None, reason: str = ""
    ) -> None:
        """Called by the watcher for a revocation or a kill recorded anywhere."""
        if subject is not None and subject == self.subject.id:
            self.close(f"subject `{subject}` was revoked: {reason}".rstrip(": "))
        elif session is not None and session == self.session:
            self.close(f"session `{session}` was killed: {reason}".rstrip(": "))

    @functools.cached_property
    def wants_estimate(self) -> bool:
        """Whether a loaded rule reads a write's `estimated_rows`: an adapter holding a
        connection estimates writes (and passes `SqlRequest(…, estimated_rows=n)`) only
        then. True when the engine cannot tell."""
        try:
            return bool(self.engine.policy.reads(ESTIMATE_PATH))
        except Exception:
            return True

    # -- deciding ----------------------------------------------------------------------
    def decide(
        self,
        request: Request,
        *,
        resource: Resource | None = None,
        approval_timeout: float | None = None,
        waiting: Callable[[Decision, float], None] | None = None,
        on_hold: Callable[[Decision, str], None] | None = None,
    ) -> Decision:
        """The decision that lets `request` run, or an exception (see the class).

        `approval_timeout` overrides the gate's for this request; `on_hold(decision,
        message)` is called once before waiting for a responder, so the agent can be told
        at once how it is being held; `waiting(decision, seconds_waited)` is called while
        a held request waits (at least every quarter second); an exception either raises
        ends the wait."""
        timeout = (
            self.approval_timeout if approval_timeout is None else max(float(approval_timeout), 0.0)
        )
        return self._decide(
            request,
            resource or self.resource,
            wait=timeout > 0,
            timeout=timeout,
            waiting=waiting,
            on_hold=on_hold,
        )

    def _decide(
        self,
        request: Request,
        resource: Resource,
        *,
        wait: bool,
        timeout: float | None = None,
        waiting: Callable[[Decision, float], None] | None = None,
        on_hold: Callable[[Decision, str], None] | None = None,
    ) -> Decision:
        self.ensure_open()
        decision = self.engine.check(
            request, subject=self.subject, resource=resource, session=self.session
        )
        return self.enforce(
            request,
            resource,
            decision,
            wait=wait,
            timeout=timeout,
            waiting=waiting,
            on_hold=on_hold,
        )

    def enforce(
        self,
        request: Request,
        resource: Resource,
        decision: Decision,
        *,
        wait: bool,
        timeout: float | None = None,
        waiting: Callable[[Decision, float], None] | None = None,
        on_hold: Callable[[Decision, str], None] | None = None,
    ) -> Decision:
        """What a recorded decision of this gate's subject and session means for
        `request` (made by `engine.check`, or an engine batch): returned when it lets the
        request run, else raised as `decide` says."""
        self.ensure_open()  # revoked or killed while the decision was being made
        effect = decision.effect
        if effect is Effect.ALLOW or effect is Effect.MASK:
            return decision
        if effect is Effect.APPROVE:
            return self._hold(
                request,
                resource,
                decision,
                wait=wait,
                timeout=timeout,
                waiting=waiting,
                on_hold=on_hold,
            )
        if effect is Effect.TERMINATE:
            message = f"terminated: {describe(decision)}"
            self.close(message, decision)
            raise Terminated(message, decision)
        raise Denied(f"denied: {describe(decision)}", decision)

    def _hold(
        self,
        request: Request,
        resource: Resource,
        decision: Decision,
        *,
        wait: bool,
        timeout: float | None = None,
        waiting: Callable[[Decision, float], None] | None = None,
        on_hold: Callable[[Decision, str], None] | None = None,
        cancelled: threading.Event | None = None,
    ) -> Decision:
        """Wait for a responder's answer to a held decision (see `decide`); `cancelled`,
        when set, stops the wait as the agent's own cancel (the request is refused)."""
        approval = decision.approval_id
        held = _held_message(decision)
        if approval is None or self.log is None:
            raise ApprovalRequired(
                f"held for approval, but no decision log records approvals: {describe(decision)}",
                decision,
            )
        if not wait:
            raise ApprovalRequired(held, decision, approval)
        timeout = self.approval_timeout if timeout is None else timeout
        started = time.monotonic()
        deadline = started + timeout
        if on_hold is not None:
            on_hold(decision, held)
        while True:
            self.ensure_open()
            if cancelled is not None and cancelled.is_set():
                raise Denied(f"{held} (cancelled by the client while waiting)", decision)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ApprovalRequired(
                    f"{held} (no answer within {timeout:g}s)", decision, approval
                )
            if waiting is not None:
                waiting(decision, time.monotonic() - started)
            outcome = self.log.wait_for_approval(
                approval, min(remaining, 0.1 if cancelled is not None else 0.25)
            )
            if outcome.status == "pending":
                continue
            if outcome.granted:
                # A once-grant matches this exact statement, a window grant its shape: the
                # re-check finds it in the log and allows; it is recorded like any decision.
                return self._decide(request, resource, wait=False)
            why = f": {outcome.reason}" if outcome.reason else ""
            who = f" by {outcome.by}" if outcome.by else ""
            raise Denied(
                f"approval {approval} was {outcome.status}{who}{why} [decision {decision.id}]",
                decision,
            )

    def mask_plan(
        self, decision: Decision, lineage: Callable[[], ResultLineage]
    ) -> MaskPlan | None:
        """Where the decision's masks fall in the result, or `Denied` when a mask cannot be
        placed: a result is never returned unmasked. `lineage` is called only if needed."""
        if not decision.masks:
            return None
        try:
            return plan_masks(decision.masks, lineage(), self.mask_key)
        except Unplaceable as exc:
            raise Denied(
                f"refused: a mask cannot be applied ({exc}): {describe(decision)}", decision
            ) from None


def _key(configured: bytes | str | None) -> bytes:
    return mask_key(configured)


def _held_message(decision: Decision) -> str:
    approval = decision.approval_id
    return (
        f"held for approval {approval}: {describe(decision)}; a responder runs "
        f"`subguard approve {approval} --by NAME` (or `subguard reject {approval} --by NAME`)"
    )


class _Watcher:
    """One follower per decision log: closes gates on revocations and kills."""

    _by_log: ClassVar[weakref.WeakKeyDictionary[DecisionLog, _Watcher]] = (
        weakref.WeakKeyDictionary()
    )
    # Re-entrant: a gate's finalizer (`_release`) may run inside these sections when the
    # garbage collector happens to run there.
    _lock = threading.RLock()

    @classmethod
    def watch(cls, log: DecisionLog, gate: Gate) -> None:
        """Follow `log` for `gate` (starting the log's follower if it has none)."""
        with cls._lock:
            while True:
                watcher = cls._by_log.get(log)
                if watcher is None or not watcher.alive:
                    watcher = cls._by_log[log] = _Watcher(log)
                watcher.gates.add(gate)
                if watcher.alive:  # not stopped by a finalizer meanwhile
                    break
            # A gate dropped without being closed must not keep the follower polling.
            weakref.finalize(gate, cls._release, weakref.ref(log))

    @classmethod
    def unwatch(cls, log: DecisionLog, gate: Gate) -> None:
        with cls._lock:
            watcher = cls._by_log.get(log)
            if watcher is not None:
                watcher.gates.discard(gate)
        cls._release(weakref.ref(log))

    @classmethod
    def _release(cls, log_ref: weakref.ref[DecisionLog]) -> None:
        """Stop the log's follower once no live gate is left on it."""
        log = log_ref()
        if log is None:
            return
        with cls._lock:
            watcher = cls._by_log.get(log)
            if watcher is not None and not any(not g.closed for g in list(watcher.gates)):
                watcher.stop.set()
                cls._by_log.pop(log, None)

    def __init__(self, log: DecisionLog) -> None:
        self.store = log.store
        self.gates: weakref.WeakSet[Gate] = weakref.WeakSet()
        self.stop = threading.Event()
        self.after = self.store.max_position()
        self.thread = threading.Thread(target=self._run, name="subguard-gate-watcher", daemon=True)
        self.thread.start()

    @property
    def alive(self) -> bool:
        return not self.stop.is_set() and self.thread.is_alive()

    def _run(self) -> None:
        topics = (Topic.SUBJECT_REVOKED, Topic.SESSION_TERMINATED)
        while not self.stop.is_set():
            try:
                for record in follow(
                    self.store,
                    after=self.after,
                    topics=topics,
                    poll_interval=WATCH_INTERVAL,
                    stop=self.stop,
                ):
                    self.after = record.position
                    self._dispatch(record.topic, record.state)
            except Exception:
                # The store is unreachable or closed: the log's own checks fail closed
                # meanwhile; try again shortly, and stop once nothing is watched.
                if not self.gates:
                    self.stop.set()
                    return
                self.stop.wait(0.2)

    def _dispatch(self, topic: str, state: Mapping[str, Any]) -> None:
        reason = str(state.get("reason") or "")
        for gate in list(self.gates):
            if topic == Topic.SUBJECT_REVOKED:
                gate.contain(subject=str(state.get("subject")), reason=reason)
            else:
                gate.contain(session=str(state.get("session")), reason=reason)
