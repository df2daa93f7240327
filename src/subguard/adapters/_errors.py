"""What an agent sees when the gate refuses: one exception per action, each carrying the
decision (its id and the rules that made it)."""

from __future__ import annotations

import uuid
from typing import Any

from subguard.engine import Decision
from subguard.errors import SubguardError

__all__ = ["ApprovalRequired", "Denied", "Refused", "Terminated", "describe"]


def describe(decision: Decision | None) -> str:
    """`rule package.rule at file:line: message` for each reason, and the decision id."""
    if decision is None:
        return ""
    parts = []
    for r in decision.reasons:
        where = f" ({r.location})" if r.location else ""
        parts.append(f"{r.package}.{r.rule}{where}: {r.message}")
    rules = "; ".join(parts) if parts else "no rule"
    return f"{rules} [decision {decision.id}]"


class Refused(SubguardError):
    """The gate did not run the request. `decision` is the decision that refused it
    (None when the gate itself was closed before any decision)."""

    def __init__(self, message: str, decision: Decision | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.decision = decision

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message, self.decision))


class Denied(Refused):
    """A rule denied this request (or a responder refused its approval); the connection
    stays usable."""


class ApprovalRequired(Refused):
    """The request is held for a human's approval: `approval_id` names it, and the
    message names the command a responder runs."""

    def __init__(
        self, message: str, decision: Decision | None = None, approval_id: uuid.UUID | None = None
    ) -> None:
        super().__init__(message, decision)
        self.approval_id = (
            approval_id
            if approval_id is not None
            else (decision.approval_id if decision is not None else None)
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.message, self.decision, self.approval_id))


class Terminated(Refused):
    """The session is over: a rule terminated it, its subject was revoked or the session
    was killed. The connection is closed; every later call raises this again."""
