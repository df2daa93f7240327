"""The state folded from the log: sessions, approvals, revoked subjects, policy releases.

Every process folds the same events in the same way, whether it wrote them or read them
from the notification log, so `input.session` and containment agree across processes.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable
from typing import Any

import attrs

from subguard.log._events import Topic, parse_time

__all__ = ["ApprovalOutcome", "ApprovalState", "ApprovalStatus", "FoldedState", "SessionState"]

DENIED_EFFECTS = frozenset({"deny", "terminate"})
_UNFOLDED = frozenset(Topic.CONNECTION)


@attrs.define
class SessionState:
    id: str
    started_ns: int = 0
    subject: str = ""
    requests: int = 0
    denied: int = 0
    tables_touched: set[str] = attrs.field(factory=set)
    terminated: str | None = None

    def as_input(self, approvals_pending: int) -> dict[str, Any]:
        """The `input.session` document (see `RECORDS["Session"]`)."""
        return {
            "id": self.id,
            "started_ns": self.started_ns,
            "requests": self.requests,
            "denied": self.denied,
            "approvals_pending": approvals_pending,
            "tables_touched": frozenset(self.tables_touched),
            "terminated": self.terminated is not None,
        }


class ApprovalStatus(enum.StrEnum):
    """Where an approval stands. A `StrEnum`: each member equals its stored text."""

    PENDING = "pending"
    GRANTED = "granted"
    REFUSED = "refused"
    EXPIRED = "expired"
    #: a once-grant that a decision has used (reported to callers as `granted`)
    USED = "used"


@attrs.define
class ApprovalState:
    id: uuid.UUID
    decision_id: str
    subject: str
    session: str | None
    fingerprint: str | None
    exact_hash: str | None
    text: str
    requested_ns: int
    expires_ns: int
    status: ApprovalStatus = ApprovalStatus.PENDING
    mode: str | None = None  # once | window
    until_ns: int = 0
    by: str | None = None
    reason: str | None = None


@attrs.define
class FoldedState:
    """Aggregate heads and folded views; callers hold the owner's lock."""

    heads: dict[uuid.UUID, tuple[int, str]] = attrs.field(factory=dict)
    sessions: dict[str, SessionState] = attrs.field(factory=dict)
    stale_sessions: set[str] = attrs.field(factory=set)
    #: Sessions terminated that this process has not loaded: session → reason.
    terminated: dict[str, str] = attrs.field(factory=dict)
    approvals: dict[uuid.UUID, ApprovalState] = attrs.field(factory=dict)
    pending_by_session: dict[str, int] = attrs.field(factory=dict)
    revoked: dict[str, str] = attrs.field(factory=dict)
    policies: set[str] = attrs.field(factory=set)
    #: counts changes to anything above (a cached view of it is valid while it holds)
    generation: int = 0

    def head(self, aggregate_id: uuid.UUID) -> tuple[int, str]:
        return self.heads.get(aggregate_id, (0, ""))

    def apply_all(
        self,
        events: Iterable[tuple[uuid.UUID, int, str, dict[str, Any], str]],
        *,
        loading: str | None = None,
    ) -> None:
        for event in events:
            self.apply(*event, loading=loading)

    def apply(
        self,
        aggregate_id: uuid.UUID,
        version: int,
        topic: str,
        state: dict[str, Any],
        h: str,
        *,
        loading: str | None = None,
    ) -> bool:
        """Fold one event; False when it was already applied or cannot be yet."""
        if topic in Topic.SESSION:
            session = state.get("session")
            if session is not None and session not in self.sessions and session != loading:
                # Not loaded here: remember only that it ended; load it when it is used.
                if topic == Topic.SESSION_TERMINATED:
                    self.terminated[session] = str(state.get("reason", ""))
                    self.generation += 1
                return False
        current, _ = self.head(aggregate_id)
        if version <= current:
            return False
        if version != current + 1:
            if topic in Topic.SESSION and state.get("session") is not None:
                self.stale_sessions.add(str(state["session"]))
                self.generation += 1
                return False
            if current != 0:
                return False
        self.heads[aggregate_id] = (version, h)
        if topic in _UNFOLDED:
            return True  # a connection's record: nothing any decision reads
        self.generation += 1
        fold = _FOLDS.get(topic)
        if fold is not None:
            fold(self, aggregate_id, state)
        return True

    # -- folds ---------------------------------------------------------------------------
    def _session(self, state: dict[str, Any]) -> SessionState | None:
        name = state.get("session")
        if name is None:
            return None
        session = self.sessions.get(name)
        if session is None:
            session = self.sessions[name] = SessionState(id=name)
        return session

    def _started(self, _id: uuid.UUID, state: dict[str, Any]) -> None:
        session = self._session(state)
        if session is not None:
            session.started_ns = parse_time(state["at"])
            session.subject = state["subject"]["id"]

    def _decided(self, _id: uuid.UUID, state: dict[str, Any]) -> None:
        session = self._session(state)
        if session is None:
            return
        session.requests += 1
        if state["effect"] in DENIED_EFFECTS:
            session.denied += 1
        facts = state.get("facts") or {}
        session.tables_touched.update(facts.get("tables_read", ()))
        session.tables_touched.update(facts.get("tables_written", ()))

    def _session_terminated(self, _id: uuid.UUID, state: dict[str, Any]) -> None:
        session = self._session(state)
        if session is not None:
            session.terminated = str(state.get("reason", ""))
            self.terminated[session.id] = session.terminated

    def _requested(self, aggregate_id: uuid.UUID, state: dict[str, Any]) -> None:
        self.approvals[aggregate_id] = ApprovalState(
            id=aggregate_id,
            decision_id=state["decision"],
            subject=state["subject"],
            session=state.get("session"),
            fingerprint=state.get("fingerprint"),
            exact_hash=state.get("exact_hash"),
            text=state.get("text", ""),
            requested_ns=parse_time(state["at"]),
            expires_ns=parse_time(state["expires"]),
        )
        if state.get("session") is not None:
            key = state["session"]
            self.pending_by_session[key] = self.pending_by_session.get(key, 0) + 1

    def _settle(
        self, aggregate_id: uuid.UUID, status: ApprovalStatus, state: dict[str, Any]
    ) -> None:
        approval = self.approvals.get(aggregate_id)
        if approval is None:
            return
        if approval.status is ApprovalStatus.PENDING and approval.session is not None:
            self.pending_by_session[approval.session] -= 1
        approval.status = status
        if "by" in state:
            approval.by = state["by"]
        if "reason" in state:
            approval.reason = state["reason"]

    def _granted(self, aggregate_id: uuid.UUID, state: dict[str, Any]) -> None:
        self._settle(aggregate_id, ApprovalStatus.GRANTED, state)
        approval = self.approvals.get(aggregate_id)
        if approval is not None:
            approval.mode = state["mode"]
            approval.until_ns = parse_time(state["until"])

    def _refused(self, aggregate_id: uuid.UUID, state: dict[str, Any]) -> None:
        self._settle(aggregate_id, ApprovalStatus.REFUSED, state)

    def _expired(self, aggregate_id: uuid.UUID, state: dict[str, Any]) -> None:
        self._settle(aggregate_id, ApprovalStatus.EXPIRED, state)

    def _used(self, aggregate_id: uuid.UUID, state: dict[str, Any]) -> None:
        approval = self.approvals.get(aggregate_id)
        if approval is not None:
            approval.status = ApprovalStatus.USED

    def _revoked(self, _id: uuid.UUID, state: dict[str, Any]) -> None:
        self.revoked[state["subject"]] = str(state.get("reason", ""))

    def _restored(self, _id: uuid.UUID, state: dict[str, Any]) -> None:
        self.revoked.pop(state["subject"], None)

    def _activated(self, _id: uuid.UUID, state: dict[str, Any]) -> None:
        self.policies.add(state["hash"])

    # -- queries -------------------------------------------------------------------------
    def find_grant(
        self,
        subject: str,
        exact_hash: str | None,
        fingerprint: str | None,
        now_ns: int,
        used: set[uuid.UUID],
    ) -> ApprovalState | None:
        """A live grant for this subject: a once-grant of the exact text, else a window."""
        window: ApprovalState | None = None
        for approval in self.approvals.values():
            if approval.subject != subject or approval.status is not ApprovalStatus.GRANTED:
                continue
            if approval.until_ns <= now_ns or approval.id in used:
                continue
            if approval.mode == "once" and exact_hash and approval.exact_hash == exact_hash:
                return approval
            if approval.mode == "window" and fingerprint and approval.fingerprint == fingerprint:
                window = approval
        return window


_FOLDS: dict[str, Any] = {
    Topic.SESSION_STARTED: FoldedState._started,
    Topic.DECISION_RECORDED: FoldedState._decided,
    Topic.SESSION_TERMINATED: FoldedState._session_terminated,
    Topic.APPROVAL_REQUESTED: FoldedState._requested,
    Topic.APPROVAL_GRANTED: FoldedState._granted,
    Topic.APPROVAL_REFUSED: FoldedState._refused,
    Topic.APPROVAL_EXPIRED: FoldedState._expired,
    Topic.APPROVAL_USED: FoldedState._used,
    Topic.SUBJECT_REVOKED: FoldedState._revoked,
    Topic.SUBJECT_RESTORED: FoldedState._restored,
    Topic.POLICY_ACTIVATED: FoldedState._activated,
}


@attrs.frozen
class ApprovalOutcome:
    """What became of a held request: `granted`, `refused`, `expired` or still `pending`."""

    approval_id: uuid.UUID
    status: ApprovalStatus
    by: str | None = None
    reason: str | None = None
    mode: str | None = None
    until_ns: int = 0

    @property
    def granted(self) -> bool:
        return self.status is ApprovalStatus.GRANTED
