"""What the engine needs from a decision log, as a protocol (implemented by `subguard.log`).

The engine calls `before` to learn the session state and whether the subject or session
is already contained, evaluates, then calls `record`, which must commit the decision
durably before returning (write-ahead). `record` may change the decision: an approval
grant turns `approve` into `allow`, a held request gets its `approval_id`. Any exception
from either call makes the engine fail closed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

import attrs

from subguard.engine.types import Decision, Request, Resource, Subject

__all__ = ["CheckContext", "Preflight", "Recorder"]


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


class Recorder(Protocol):
    def before(self, ctx: CheckContext) -> Preflight: ...

    def record(self, ctx: CheckContext, decision: Decision) -> Decision: ...
