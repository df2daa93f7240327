"""Read-side reports over a stored log: linked records, a session's timeline, the
sessions summary and backtests of a candidate policy. The CLI only formats them."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import attrs

from subguard.log._events import (
    Topic,
    connection_aggregate_id,
    decode_state,
    session_aggregate_id,
    split_hash,
)
from subguard.log._read import LogRecord, read_records
from subguard.log._state import DENIED_EFFECTS
from subguard.log._store import Store

if TYPE_CHECKING:
    from subguard.engine import Engine

__all__ = [
    "BacktestChange",
    "BacktestReport",
    "RecordLinker",
    "SessionSummary",
    "backtest",
    "fold_sessions",
    "session_timeline",
]


class RecordLinker:
    """Turns records into output lines, carrying decision, session and subject from an
    approval request to its outcome (so every approval line names its decision)."""

    def __init__(self) -> None:
        self.approvals: dict[uuid.UUID, tuple[str | None, str | None, str | None]] = {}

    def fill(self, record: LogRecord) -> dict[str, Any]:
        out = record.as_dict()
        if record.topic == Topic.APPROVAL_REQUESTED:
            self.approvals[record.aggregate_id] = (
                record.decision_id,
                record.session,
                record.subject,
            )
            out["approval"] = str(record.aggregate_id)
        elif record.topic in Topic.APPROVAL:
            decision, session, subject = self.approvals.get(record.aggregate_id, (None, None, None))
            out["decision_id"] = out.get("decision_id") or decision
            out.setdefault("session", session)
            out.setdefault("subject", subject)
            out["approval"] = str(record.aggregate_id)
        elif record.topic == Topic.SESSION_STARTED and isinstance(out.get("subject"), dict):
            out["groups"] = out["subject"].get("groups", [])
            out["subject"] = out["subject"].get("id")
        return out


# ----------------------------------------------------------------------------------------
# sessions

_TIMELINE_ORDER = {
    "SessionOpened": -1,
    "SessionStarted": 0,
    "DecisionRecorded": 1,
    "SessionTerminated": 3,
    "SessionClosed": 4,
}

#: What a decision line of a timeline carries of each `StatementCompleted`.
COMPLETION_FIELDS = ("statement", "outcome", "command", "rows", "ms", "sqlstate", "at")


def _plain_state(state: bytes) -> dict[str, Any]:
    split = split_hash(state)
    return decode_state(split[0] if split else state)


def session_timeline(store: Store, session: str) -> list[dict[str, Any]]:
    """A session's timeline as linked lines: its connection's opening, its start, every
    decision (with `completions`: what the database did with the statements it let
    through, in order), the approvals its requests opened and what became of them, its
    end and its connection's closing, in time order.

    Raises `ValueError` when the log holds no such session.
    """
    agg = session_aggregate_id(session)
    conn = connection_aggregate_id(session)
    events = store.select_events(agg)
    connection = store.select_events(conn)
    if not events and not connection:
        raise ValueError(f"no session `{session}` in the decision log")
    linker = RecordLinker()
    lines = []
    for record in read_records(store, topics=Topic.APPROVAL):
        line = linker.fill(record)
        if line.get("session") == session:
            lines.append(line)
    decisions: dict[str, dict[str, Any]] = {}
    for e in events:
        record = LogRecord(0, agg, e.originator_version, e.topic, _plain_state(e.state))
        line = linker.fill(record)
        if record.topic == Topic.DECISION_RECORDED:
            line["completions"] = []
            if record.decision_id is not None:
                decisions[record.decision_id] = line
        lines.append(line)
    for e in connection:
        record = LogRecord(0, conn, e.originator_version, e.topic, _plain_state(e.state))
        line = linker.fill(record)
        owner = decisions.get(record.decision_id or "")
        if record.topic == Topic.STATEMENT_COMPLETED and owner is not None:
            owner["completions"].append({k: record.state.get(k) for k in COMPLETION_FIELDS})
        else:
            lines.append(line)
    for line in decisions.values():
        line["completions"].sort(key=lambda c: (c.get("statement") or 0, str(c.get("at"))))
    lines.sort(key=lambda line: (str(line.get("at", "")), _TIMELINE_ORDER.get(line["event"], 2)))
    return lines


@attrs.define
class SessionSummary:
    """One line of `subguard sessions`: a session folded from its events."""

    session: str
    subject: str | None = None
    started: str | None = None
    last: str | None = None
    requests: int = 0
    #: decisions that were `deny` or `terminate` (as `input.session.denied` counts them)
    denied: int = 0
    effects: Counter[Any] = attrs.field(factory=Counter)
    terminated: str | None = None
    resource: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The `--format jsonl` line (keys in their historical order)."""
        out: dict[str, Any] = {
            "session": self.session,
            "subject": self.subject,
            "started": self.started,
            "last": self.last,
            "requests": self.requests,
            "denied": self.denied,
            "effects": dict(self.effects),
            "terminated": self.terminated,
        }
        if self._saw_start:  # the key is there once the session's start was read
            out["resource"] = self.resource
        return out

    _saw_start: bool = attrs.field(default=False, repr=False)


def fold_sessions(records: Iterable[LogRecord]) -> dict[str, SessionSummary]:
    """Fold session events into one summary per session, in order of first appearance."""
    out: dict[str, SessionSummary] = {}
    for r in records:
        name = r.session
        if name is None:
            continue
        s = out.get(name)
        if s is None:
            s = out[name] = SessionSummary(session=name)
        s.last = r.state.get("at")
        if r.topic == Topic.SESSION_STARTED:
            s.subject = r.subject
            s.started = r.state.get("at")
            s.resource = (r.state.get("resource") or {}).get("name")
            s._saw_start = True
        elif r.topic == Topic.DECISION_RECORDED:
            effect = r.state.get("effect")
            s.requests += 1
            s.effects[effect] += 1
            if effect in DENIED_EFFECTS:
                s.denied += 1
        elif r.topic == Topic.SESSION_TERMINATED:
            s.terminated = r.state.get("reason")
    return out


# ----------------------------------------------------------------------------------------
# backtest


@attrs.frozen
class BacktestChange:
    """Recorded decisions whose effect a candidate policy changes from one to another."""

    before: str
    after: str
    count: int
    examples: tuple[dict[str, Any], ...]


@attrs.frozen
class BacktestReport:
    #: recorded decisions re-decided by the candidate
    decisions: int
    #: decisions the log itself made (revocation, kill, approval grant): left out
    decided_by_log: int
    #: most frequent change first
    changes: tuple[BacktestChange, ...]

    @property
    def changed(self) -> int:
        return sum(c.count for c in self.changes)

    def as_dict(self) -> dict[str, Any]:
        return {
            "decisions": self.decisions,
            "decided_by_log": self.decided_by_log,
            "changed": self.changed,
            "changes": [
                {"from": c.before, "to": c.after, "count": c.count, "examples": list(c.examples)}
                for c in self.changes
            ],
        }


def _decided_by_log(state: dict[str, Any]) -> bool:
    return any(
        isinstance(r, dict) and r.get("package") == "subguard.log"
        for r in state.get("reasons") or ()
    )


def backtest(
    store: Store, engine: Engine, *, since_ns: int = 0, examples: int = 3
) -> BacktestReport:
    """Re-decide every recorded request (from `since_ns` on) with `engine`'s policy.

    Each request is re-analysed from its redacted text with the subject and resource its
    session started with; session state is not replayed (rules over `input.session` see
    an empty session).
    """
    from subguard.engine.types import CommandRequest, Resource, SqlRequest, Subject

    starts: dict[str, dict[str, Any]] = {}
    changes: Counter[tuple[str, str]] = Counter()
    shown: dict[tuple[str, str], list[dict[str, Any]]] = {}
    total = by_log = 0
    records: Iterator[LogRecord] = read_records(
        store, topics=[Topic.SESSION_STARTED, Topic.DECISION_RECORDED]
    )
    for record in records:
        s = record.state
        if record.topic == Topic.SESSION_STARTED:
            starts[str(s.get("session"))] = s
            continue
        if since_ns and record.time_ns < since_ns:
            continue
        start = starts.get(str(s.get("session")), {})
        # the session's subject and resource as recorded, through the strict constructors
        recorded = start.get("subject") or {}
        subject = Subject.from_dict(
            {
                **recorded,
                "id": str(s.get("subject")),
                "groups": s.get("groups") or recorded.get("groups") or (),
            }
        )
        resource = Resource.from_dict(
            start.get("resource") or {"name": str(s.get("resource") or "")}
        )
        kind = s.get("kind")
        request: Any
        if kind == "sql":
            request = SqlRequest(str(s.get("text", "")), dialect=resource.dialect)
        elif kind == "command":
            request = CommandRequest(str(s.get("text", "")))
        else:
            continue
        if _decided_by_log(s):
            # a revocation, a kill, an approval grant: a candidate policy would not change it
            by_log += 1
            continue
        total += 1
        new = engine.check(request, subject=subject, resource=resource, session=None)
        old_effect, new_effect = str(s.get("effect")), new.effect.value
        if old_effect == new_effect:
            continue
        key = (old_effect, new_effect)
        changes[key] += 1
        bucket = shown.setdefault(key, [])
        if len(bucket) < examples:
            bucket.append(
                {
                    "decision_id": s.get("decision"),
                    "text": s.get("text"),
                    "reasons": [r.message for r in new.reasons],
                }
            )
    return BacktestReport(
        decisions=total,
        decided_by_log=by_log,
        changes=tuple(
            BacktestChange(a, b, n, tuple(shown[(a, b)])) for (a, b), n in changes.most_common()
        ),
    )
