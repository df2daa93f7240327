"""What the engine needs from a decision log, as a protocol (implemented by `subguard.log`).

The engine calls `before` to learn the session state and whether the subject or session
is already contained, evaluates, then calls `record`, which must commit the decision
durably before returning (write-ahead). `record` may change the decision: an approval
grant turns `approve` into `allow`, a held request gets its `approval_id`. `batch`
opens a `RecorderBatch` (what `check_many` uses): decisions are staged one by one, each
request's preflight counting the decisions staged before it, and committed together;
`wait_for_approval` blocks until a held request is settled. Any exception from
`before`, `record` or a batch's `before` or `commit` makes the engine fail closed.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import attrs

from subguard.engine.types import Decision, Request, Resource, Subject

__all__ = ["ApprovalResult", "CheckContext", "Preflight", "Recorder", "RecorderBatch"]


@attrs.frozen
class CheckContext:
    """One request as the log sees it: literal values already redacted away.

    `exact_hash` identifies the exact statement (whitespace, comments and keyword case
    normalized, literals included) without storing it: a once-grant matches on it.
    `fingerprint` identifies the statement's shape (literals removed): a window grant
    matches on it.
    """

    request: Request = attrs.field(repr=False)
    subject: Subject
    resource: Resource
    session_id: str | None
    request_kind: str
    redacted_text: str
    fingerprint: str | None
    exact_hash: str | None
    time_ns: int


@attrs.frozen
class Preflight:
    """What the log knows before the policy runs."""

    session: Mapping[str, Any]
    #: A reason to terminate without evaluating (revoked subject, killed session).
    terminate: str | None = None


class ApprovalResult(Protocol):
    """What became of a held request (`subguard.log.ApprovalOutcome` implements it)."""

    @property
    def approval_id(self) -> uuid.UUID: ...

    @property
    def status(self) -> str: ...

    @property
    def granted(self) -> bool: ...


class RecorderBatch(Protocol):
    """Decisions staged for one commit. `before` is the recorder's preflight with the
    staged decisions counted as committed; `must_commit(ctx)` says the staged decisions
    must be committed before `ctx` is decided (the batch cannot stand in for them);
    `commit` writes every staged decision durably and returns them as recorded, in the
    order they were staged, and leaves the batch empty."""

    def must_commit(self, ctx: CheckContext) -> bool: ...

    def before(self, ctx: CheckContext) -> Preflight: ...

    def stage(self, ctx: CheckContext, decision: Decision) -> None: ...

    def commit(self) -> Sequence[Decision]: ...


class Recorder(Protocol):
    """A decision log as the engine uses it."""

    def before(self, ctx: CheckContext) -> Preflight:
        """The session state and any containment, before the policy runs."""
        ...

    def record(self, ctx: CheckContext, decision: Decision) -> Decision:
        """Commit one decision durably; returns it as recorded."""
        ...

    def batch(self) -> RecorderBatch:
        """An empty batch: decisions staged, then committed in one transaction."""
        ...

    def wait_for_approval(self, approval_id: uuid.UUID, timeout: float) -> ApprovalResult:
        """Block until the approval is settled or `timeout` seconds pass."""
        ...
