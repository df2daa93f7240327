"""A batch of decisions staged for one commit (what `Engine.check_many` uses).

The engine decides a batch's requests one after another and commits them together. A
request whose session already has decisions waiting in the batch must see them in
`input.session`, exactly as if each had been committed before it was decided (`check`
one by one). The batch keeps, per session, what its staged decisions will add once
folded — requests, denials, tables touched, approvals opened, a termination — and lays
that over the folded state the log's own `before` returns. Nothing is written or
folded before `commit`, and `commit` returns only after the transaction holding every
staged decision committed (write-ahead: no decision of the batch is reported earlier).

One case cannot be laid over: a session that has no event in the log yet gets its start
time (`input.session.started_ns`) from the commit that starts it, so a second request
in a new session asks for a commit first (`must_commit`).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from subguard.engine.recorder import CheckContext, Preflight
from subguard.engine.types import Decision, Effect

__all__ = ["StagedBatch"]

_DENIED = (Effect.DENY, Effect.TERMINATE)


@attrs.define
class _Overlay:
    """What a session's staged decisions add to its folded state."""

    new: bool
    requests: int = 0
    denied: int = 0
    approvals_pending: int = 0
    tables: set[str] = attrs.field(factory=set)
    terminated: str | None = None


class StagedBatch:
    """Decisions staged for one commit; see the module docstring.

    `before(ctx)`: the log's preflight with this batch's staged decisions counted in;
    `stage(ctx, decision)`: add a decided request; `must_commit(ctx)`: whether `ctx`'s
    session needs the staged decisions committed before it is decided; `commit()`: write
    them all in one transaction and return them as recorded, in staging order.
    """

    def __init__(
        self,
        *,
        before: Callable[[CheckContext], Preflight],
        commit: Callable[[Sequence[tuple[CheckContext, Decision]]], list[Decision]],
        session_is_new: Callable[[str], bool],
        grant_for: Callable[[CheckContext, set[uuid.UUID]], tuple[uuid.UUID, str] | None],
        facts: Callable[[Decision], dict[str, list[str] | None]],
    ) -> None:
        self._before = before
        self._commit = commit
        self._session_is_new = session_is_new
        self._grant_for = grant_for
        self._facts = facts
        self.items: list[tuple[CheckContext, Decision]] = []
        self._overlays: dict[str, _Overlay] = {}
        self._used: set[uuid.UUID] = set()

    def must_commit(self, ctx: CheckContext) -> bool:
        overlay = self._overlays.get(ctx.session_id) if ctx.session_id is not None else None
        return overlay is not None and overlay.new

    def before(self, ctx: CheckContext) -> Preflight:
        preflight = self._before(ctx)
        name = ctx.session_id
        overlay = self._overlays.get(name) if name is not None else None
        if overlay is None:
            return preflight
        doc: dict[str, Any] = dict(preflight.session)
        doc["requests"] = doc.get("requests", 0) + overlay.requests
        doc["denied"] = doc.get("denied", 0) + overlay.denied
        doc["approvals_pending"] = doc.get("approvals_pending", 0) + overlay.approvals_pending
        if overlay.tables:
            doc["tables_touched"] = frozenset(doc.get("tables_touched", ())) | overlay.tables
        terminate = preflight.terminate
        if overlay.terminated is not None and not doc.get("terminated"):
            doc["terminated"] = True
            if terminate is None:
                terminate = f"session `{name}` was terminated: {overlay.terminated}"
        return Preflight(session=doc, terminate=terminate)

    def stage(self, ctx: CheckContext, decision: Decision) -> None:
        """Add a decided request. Its effect on the session is folded as the log will
        fold it: an `approve` that a live grant covers counts as allowed."""
        self.items.append((ctx, decision))
        name = ctx.session_id
        if name is None:
            return
        overlay = self._overlays.get(name)
        if overlay is None:
            overlay = self._overlays[name] = _Overlay(new=self._session_is_new(name))
        effect = decision.effect
        if effect is Effect.APPROVE:
            grant = self._grant_for(ctx, self._used)
            if grant is None:
                overlay.approvals_pending += 1
            else:
                if grant[1] == "once":
                    self._used.add(grant[0])
                effect = Effect.ALLOW
        overlay.requests += 1
        if effect in _DENIED:
            overlay.denied += 1
        facts = self._facts(decision)
        overlay.tables.update(facts["tables_read"] or ())
        overlay.tables.update(facts["tables_written"] or ())
        if effect is Effect.TERMINATE and overlay.terminated is None:
            overlay.terminated = (
                decision.reasons[0].message if decision.reasons else "terminated by policy"
            )

    def commit(self) -> list[Decision]:
        """Commit every staged decision in one transaction; returns them as recorded.
        The batch is empty afterwards, whether the commit succeeded or raised."""
        items, self.items = self.items, []
        self._overlays = {}
        self._used = set()
        if not items:
            return []
        return self._commit(items)
