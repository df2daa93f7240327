"""Pure event builders: what to append, computed from the folded state and the request.

No store, no thread, no clock: every function takes the state it reads and the time it
stamps, and returns `PendingEvent`s (or raises `LogError` when a responder's action is
not allowed). `DecisionLog` holds the lock, calls these, and writes what they return;
tests call them directly.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple

import attrs
from eventsourcing.persistence import StoredEvent

from subguard.engine.recorder import CheckContext
from subguard.engine.types import Decision, Effect, Reason
from subguard.errors import LogError
from subguard.log._events import (
    Topic,
    approval_aggregate_id,
    connection_aggregate_id,
    encode_event,
    format_time,
    policy_aggregate_id,
    session_aggregate_id,
    subject_aggregate_id,
)
from subguard.log._state import ApprovalState, ApprovalStatus, FoldedState, SessionState

__all__ = [
    "PendingEvent",
    "Prepared",
    "checkpoint_root",
    "checkpoint_state",
    "expire",
    "grant",
    "kill_session",
    "prepare",
    "refuse",
    "restore_subject",
    "revoke_subject",
    "session_closed",
    "session_opened",
    "statement_completed",
]

_APPROVE = Effect.APPROVE
_TERMINATE = Effect.TERMINATE
_EFFECT_VALUE = {e: e.value for e in Effect}


@attrs.define
class PendingEvent:
    """One event being prepared: where it goes and what it says."""

    aggregate_id: uuid.UUID
    topic: str
    state: dict[str, Any]


class Prepared(NamedTuple):
    """The events for a batch of decisions, and each decision as it will be recorded
    (grants applied, approval ids set), in the order the decisions came."""

    events: list[PendingEvent]
    decisions: list[Decision]


#: id(reason) → (that reason, its dict). Compiled rules hand out the same reason objects
#: again and again; orjson only reads these dicts. Holding the reason keeps its id from
#: being reused while it is cached.
_REASONS: dict[int, tuple[Reason, dict[str, str]]] = {}


def _reason_dict(reason: Reason) -> dict[str, str]:
    hit = _REASONS.get(id(reason))
    if hit is not None and hit[0] is reason:
        return hit[1]
    if len(_REASONS) >= 4096:
        _REASONS.clear()
    as_dict = reason.as_dict()
    _REASONS[id(reason)] = (reason, as_dict)
    return as_dict


_NO_FACTS: dict[str, list[str] | None] = {
    "kinds": [],
    "tables_read": [],
    "tables_written": [],
    "columns": [],
}
#: id(input.sql document) → (that document, its facts). The analyser hands out one
#: read-only document per analysed statement, so a repeated statement costs one lookup;
#: holding the document keeps its id from being reused while it is cached.
_FACTS_BY_DOC: dict[int, tuple[Any, dict[str, list[str] | None]]] = {}


def decision_facts(decision: Decision) -> dict[str, list[str] | None]:
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
        # absent from the document: not computed (the policy reads no column fact)
        "columns": sorted(columns) if "columns_read" in sql else None,
    }
    if len(_FACTS_BY_DOC) >= 1024:
        _FACTS_BY_DOC.clear()
    _FACTS_BY_DOC[id(sql)] = (sql, facts)
    return facts


@functools.lru_cache(maxsize=1024)
def _sorted(values: frozenset[str]) -> list[str]:
    return sorted(values)


def _masks(decision: Decision) -> Any:
    masks = decision.masks
    if not masks:
        return {} if isinstance(masks, Mapping) else []
    if isinstance(masks, Mapping):
        return dict(masks)
    return list(masks)


# ----------------------------------------------------------------------------------------
# decisions


def session_started(ctx: CheckContext, at: str) -> PendingEvent:
    assert ctx.session_id is not None
    return PendingEvent(
        session_aggregate_id(ctx.session_id),
        Topic.SESSION_STARTED,
        {
            "session": ctx.session_id,
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


def decision_recorded(
    aggregate_id: uuid.UUID, ctx: CheckContext, decision: Decision, at: str
) -> PendingEvent:
    return PendingEvent(
        aggregate_id,
        Topic.DECISION_RECORDED,
        {
            "session": ctx.session_id,
            "decision": str(decision.id),
            "subject": ctx.subject.id,
            "groups": _sorted(ctx.subject.groups),
            "resource": ctx.resource.name,
            "kind": ctx.request_kind,
            "text": ctx.redacted_text,
            "fingerprint": ctx.fingerprint,
            "facts": decision_facts(decision),
            "effect": _EFFECT_VALUE[decision.effect],
            "reasons": [_reason_dict(r) for r in decision.reasons],
            "masks": _masks(decision),
            "errors": [e.as_dict() for e in decision.errors] if decision.errors else [],
            "approval": str(decision.approval_id) if decision.approval_id else None,
            "policy": decision.policy_hash,
            "time": format_time(ctx.time_ns),
            "elapsed_ns": decision.elapsed_ns,
            "at": at,
        },
    )


def apply_grants(
    state: FoldedState,
    ctx: CheckContext,
    decision: Decision,
    events: list[PendingEvent],
    used: set[uuid.UUID],
    now: int,
    approval_ttl_ns: int,
) -> Decision:
    """An `approve` decision either uses a live grant (→ `allow`) or opens an approval."""
    if decision.effect is not _APPROVE:
        return decision
    at = format_time(now)
    found = state.find_grant(ctx.subject.id, ctx.exact_hash, ctx.fingerprint, now, used)
    if found is not None:
        if found.mode == "once":
            used.add(found.id)
            events.append(
                PendingEvent(
                    found.id, Topic.APPROVAL_USED, {"decision": str(decision.id), "at": at}
                )
            )
        reason = Reason(
            effect=Effect.ALLOW,
            package="subguard.log",
            rule="approval",
            message=f"approved by {found.by} ({found.mode}, approval {found.id})",
            location="",
        )
        return attrs.evolve(decision, effect=Effect.ALLOW, reasons=(*decision.reasons, reason))
    approval_id = approval_aggregate_id(decision.id)
    events.append(
        PendingEvent(
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
                "expires": format_time(now + approval_ttl_ns),
            },
        )
    )
    return attrs.evolve(decision, approval_id=approval_id)


def prepare(
    state: FoldedState,
    items: Iterable[tuple[CheckContext, Decision]],
    *,
    writer_id: uuid.UUID,
    now: int,
    approval_ttl_ns: int,
) -> Prepared:
    """The events recording `items`, in order: a session's start before its first
    decision, a policy's activation before its first use, grants used or approvals
    opened, and a session's end after a `terminate`.

    Every session named by an item must already be folded into `state.sessions`.
    """
    at = format_time(now)
    events: list[PendingEvent] = []
    decisions: list[Decision] = []
    started: set[str] = set()
    ended: set[str] = set()
    used: set[uuid.UUID] = set()
    policies: set[str] = set()
    for ctx, decision in items:
        name = ctx.session_id
        session: SessionState | None
        if name is not None:
            session = state.sessions.get(name)
            agg = session_aggregate_id(name)
            if state.head(agg)[0] == 0 and name not in started:
                started.add(name)
                events.append(session_started(ctx, at))
        else:
            agg = writer_id
            session = None
        decision = apply_grants(state, ctx, decision, events, used, now, approval_ttl_ns)
        policy = decision.policy_hash
        if policy and policy not in state.policies and policy not in policies:
            policies.add(policy)
            events.append(
                PendingEvent(
                    policy_aggregate_id(policy), Topic.POLICY_ACTIVATED, {"hash": policy, "at": at}
                )
            )
        events.append(decision_recorded(agg, ctx, decision, at))
        if (
            decision.effect is _TERMINATE
            and name is not None
            and session is not None
            and session.terminated is None
            and name not in ended
        ):
            ended.add(name)
            message = decision.reasons[0].message if decision.reasons else "terminated by policy"
            events.append(
                PendingEvent(
                    agg,
                    Topic.SESSION_TERMINATED,
                    {"session": name, "reason": message, "by": "policy", "at": at},
                )
            )
        decisions.append(decision)
    return Prepared(events, decisions)


# ----------------------------------------------------------------------------------------
# connections: what an adapter saw, recorded after the fact

#: Outcomes of a statement the database ran: its CommandComplete, an empty query, a
#: portal suspended at the Execute's row limit, or an ErrorResponse.
OUTCOMES = frozenset({"complete", "empty", "suspended", "error"})
_SQLSTATE = re.compile(r"[0-9A-Z]{5}")
_COMMAND = re.compile(r"[A-Z]+(?: [A-Z]+)*")


def _short(value: object, limit: int) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def session_opened(
    session: str,
    *,
    subject: str,
    adapter: str,
    peer: str,
    application_name: str,
    tls: bool,
    at: str,
) -> PendingEvent:
    """A client connected and logged in (before its first statement is decided)."""
    return PendingEvent(
        connection_aggregate_id(session),
        Topic.SESSION_OPENED,
        {
            "session": session,
            "subject": subject,
            "adapter": adapter,
            "peer": _short(peer, 128),
            "application_name": _short(application_name, 64),
            "tls": bool(tls),
            "at": at,
        },
    )


def statement_completed(
    session: str,
    *,
    decision: str,
    statement: int,
    outcome: str,
    command: str | None,
    rows: int | None,
    ms: float,
    sqlstate: str | None,
    at: str,
) -> PendingEvent:
    """What the database did with one statement a decision let through: the command word
    and row count of its completion tag (never a value), how long it took, and the
    SQLSTATE of its error (never the error's message, which can quote values).
    `statement` numbers the statements of one decision's text from 0."""
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown statement outcome `{outcome}`")
    if command is not None and not _COMMAND.fullmatch(command):
        command = None
    if sqlstate is not None and not _SQLSTATE.fullmatch(sqlstate):
        sqlstate = "XX000"  # an error without a readable code: the server's internal_error
    return PendingEvent(
        connection_aggregate_id(session),
        Topic.STATEMENT_COMPLETED,
        {
            "session": session,
            "decision": decision,
            "statement": int(statement),
            "outcome": outcome,
            "command": command,
            "rows": None if rows is None else int(rows),
            "ms": round(max(float(ms), 0.0), 3),
            "sqlstate": sqlstate,
            "at": at,
        },
    )


def session_closed(session: str, *, duration_ms: float, reason: str, at: str) -> PendingEvent:
    """The connection ended: how long it lasted and why."""
    return PendingEvent(
        connection_aggregate_id(session),
        Topic.SESSION_CLOSED,
        {
            "session": session,
            "duration_ms": round(max(float(duration_ms), 0.0), 3),
            "reason": _short(reason, 200),
            "at": at,
        },
    )


# ----------------------------------------------------------------------------------------
# responders' actions


def _approval(state: FoldedState, approval_id: uuid.UUID) -> ApprovalState:
    approval = state.approvals.get(approval_id)
    if approval is None:
        raise LogError(f"no approval `{approval_id}` in the decision log")
    return approval


def grant(
    state: FoldedState,
    approval_id: uuid.UUID,
    *,
    by: str,
    window: float | None,
    now: int,
    approval_ttl_ns: int,
) -> PendingEvent:
    """`ApprovalGranted`, or `ApprovalExpired` when the request waited past its TTL
    (the caller records it, then reports the expiry)."""
    approval = _approval(state, approval_id)
    if approval.status is ApprovalStatus.PENDING and approval.expires_ns <= now:
        return PendingEvent(approval_id, Topic.APPROVAL_EXPIRED, {"at": format_time(now)})
    if approval.status is not ApprovalStatus.PENDING:
        raise LogError(f"approval `{approval.id}` is already {approval.status}")
    if approval.subject == by:
        raise LogError(f"`{by}` may not approve their own request")
    if window is not None:
        until = now + int(window * 1e9)
        mode = "window"
    else:
        until = now + approval_ttl_ns
        mode = "once"
    return PendingEvent(
        approval_id,
        Topic.APPROVAL_GRANTED,
        {"by": by, "mode": mode, "until": format_time(until), "at": format_time(now)},
    )


def refuse(
    state: FoldedState, approval_id: uuid.UUID, *, by: str, reason: str, now: int
) -> PendingEvent:
    approval = _approval(state, approval_id)
    if approval.status is not ApprovalStatus.PENDING:
        raise LogError(f"approval `{approval_id}` is already {approval.status}")
    return PendingEvent(
        approval_id,
        Topic.APPROVAL_REFUSED,
        {"by": by, "reason": reason, "at": format_time(now)},
    )


def expire(state: FoldedState, approval_id: uuid.UUID, *, now: int) -> list[PendingEvent]:
    """`ApprovalExpired` if the approval is still pending (nothing otherwise)."""
    approval = state.approvals.get(approval_id)
    if approval is None or approval.status is not ApprovalStatus.PENDING:
        return []
    return [PendingEvent(approval_id, Topic.APPROVAL_EXPIRED, {"at": format_time(now)})]


def due_approvals(state: FoldedState, now: int) -> list[uuid.UUID]:
    """Pending approvals whose TTL has passed."""
    return [
        a.id
        for a in state.approvals.values()
        if a.status is ApprovalStatus.PENDING and a.expires_ns <= now
    ]


def revoke_subject(subject: str, *, reason: str, by: str, now: int) -> PendingEvent:
    return PendingEvent(
        subject_aggregate_id(subject),
        Topic.SUBJECT_REVOKED,
        {"subject": subject, "reason": reason, "by": by, "at": format_time(now)},
    )


def restore_subject(
    state: FoldedState, subject: str, *, reason: str, by: str, now: int
) -> PendingEvent:
    if subject not in state.revoked:
        raise LogError(f"subject `{subject}` is not revoked")
    return PendingEvent(
        subject_aggregate_id(subject),
        Topic.SUBJECT_RESTORED,
        {"subject": subject, "reason": reason, "by": by, "at": format_time(now)},
    )


def kill_session(
    state: FoldedState, session: str, *, reason: str, by: str, now: int
) -> PendingEvent:
    agg = session_aggregate_id(session)
    folded = state.sessions.get(session)
    if folded is None or state.head(agg)[0] == 0:
        raise LogError(f"no session `{session}` in the decision log")
    if folded.terminated is not None:
        raise LogError(f"session `{session}` is already terminated")
    return PendingEvent(
        agg,
        Topic.SESSION_TERMINATED,
        {"session": session, "reason": reason, "by": by, "at": format_time(now)},
    )


# ----------------------------------------------------------------------------------------
# checkpoints


def checkpoint_state(
    heads: Mapping[uuid.UUID, tuple[int, str]], reason: str, at: str
) -> dict[str, Any]:
    """A `CheckpointWritten` state over these aggregate heads."""
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


_SESSION_ENDS = frozenset({Topic.SESSION_TERMINATED, Topic.SESSION_CLOSED})


class Encoded(NamedTuple):
    """A batch as stored rows (event, what it says, its hash), with a checkpoint when
    one is due, and the heads and count since the last checkpoint afterwards."""

    rows: list[tuple[StoredEvent, PendingEvent, str]]
    covered: dict[uuid.UUID, tuple[int, str]]
    events_since: int
    checkpointed: bool


def encode(
    state: FoldedState,
    pending: Sequence[PendingEvent],
    *,
    since_checkpoint: Mapping[uuid.UUID, tuple[int, str]],
    events_since_checkpoint: int,
    checkpoint_id: uuid.UUID,
    checkpoint_every: int,
    force_checkpoint: bool,
    clock: Callable[[], int],
) -> Encoded:
    """Chain each event to its aggregate's head; add this writer's checkpoint when forced,
    when a session ends, on the writer's first write (so a log holding anything but no
    checkpoint has had its checkpoints removed) or every `checkpoint_every` events. A
    connection's close counts as a session's end."""
    heads: dict[uuid.UUID, tuple[int, str]] = {}
    rows: list[tuple[StoredEvent, PendingEvent, str]] = []
    session_end = False
    for p in pending:
        version, prev = heads.get(p.aggregate_id) or state.head(p.aggregate_id)
        stored, h = encode_event(p.aggregate_id, version + 1, p.topic, p.state, prev)
        heads[p.aggregate_id] = (version + 1, h)
        rows.append((stored, p, h))
        session_end = session_end or p.topic in _SESSION_ENDS
    covered = {**since_checkpoint, **heads}
    count = events_since_checkpoint + len(rows)
    version, prev = state.head(checkpoint_id)
    first = version == 0
    checkpointed = force_checkpoint or session_end or first or count >= checkpoint_every
    if checkpointed:
        reason = "session-end" if session_end else "start" if first else "interval"
        cp = checkpoint_state(covered, reason, format_time(clock()))
        stored, h = encode_event(checkpoint_id, version + 1, Topic.CHECKPOINT, cp, prev)
        rows.append((stored, PendingEvent(checkpoint_id, Topic.CHECKPOINT, cp), h))
    return Encoded(rows, covered, count, checkpointed)


def sessions_of(items: Sequence[tuple[CheckContext, Decision]]) -> list[str]:
    """The distinct sessions named by a batch, in order."""
    return list(dict.fromkeys(ctx.session_id for ctx, _ in items if ctx.session_id is not None))


def seconds_option(name: str, value: float, *, positive: bool = False) -> float:
    """A duration option: a finite number of seconds, not negative (nor 0 if `positive`)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise LogError(f"`{name}` must be a number of seconds, not {type(value).__name__}")
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        kind = "a positive" if positive else "a finite, non-negative"
        raise LogError(f"`{name}` must be {kind} number of seconds, not {value!r}")
    return float(value)
