"""Reading the log: records in notification order, followers, timelines and exports."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from typing import Any

import attrs

from subguard.errors import LogError
from subguard.log._events import (
    Topic,
    decode_state,
    format_time,
    parse_time,
    short_name,
    split_hash,
)
from subguard.log._store import Store

__all__ = ["LogRecord", "follow", "ocsf_event", "read_records"]


@attrs.frozen
class LogRecord:
    """One stored event as a reader sees it."""

    position: int
    aggregate_id: uuid.UUID
    version: int
    topic: str
    state: dict[str, Any]

    @property
    def name(self) -> str:
        return short_name(self.topic)

    @property
    def time_ns(self) -> int:
        at = self.state.get("at")
        return parse_time(at) if isinstance(at, str) else 0

    @property
    def session(self) -> str | None:
        value = self.state.get("session")
        return str(value) if value is not None else None

    @property
    def subject(self) -> str | None:
        value = self.state.get("subject")
        if isinstance(value, dict):
            return str(value.get("id"))
        return str(value) if value is not None else None

    @property
    def decision_id(self) -> str | None:
        value = self.state.get("decision")
        return str(value) if value is not None else None

    def as_dict(self) -> dict[str, Any]:
        """The `--format jsonl` line: position, event name, ids, then the stored fields."""
        state = {k: v for k, v in self.state.items() if k not in ("prev", "h")}
        return {
            "position": self.position,
            "event": self.name,
            "aggregate": str(self.aggregate_id),
            "version": self.version,
            "decision_id": self.decision_id,
            **state,
        }


def _record(n: Any) -> LogRecord:
    """A stored row as a record; a malformed row is a `LogError` naming its position
    (run `subguard verify` to see what is wrong with it)."""
    try:
        split = split_hash(n.state)
        state = decode_state(split[0] if split else n.state)
        agg = (
            n.originator_id
            if isinstance(n.originator_id, uuid.UUID)
            else uuid.UUID(str(n.originator_id))
        )
    except (TypeError, ValueError, AttributeError):
        raise LogError(
            f"malformed event at position {n.id} in the decision log: run `subguard verify`"
        ) from None
    return LogRecord(n.id, agg, n.originator_version, n.topic, state)


def read_records(
    store: Store, *, after: int = 0, topics: Sequence[str] = ()
) -> Iterator[LogRecord]:
    """Every record after position `after`, in notification order, then stop."""
    for n in store.iter_notifications(after, topics=topics):
        yield _record(n)


def follow(
    store: Store,
    *,
    after: int = 0,
    topics: Sequence[str] = (),
    poll_interval: float = 0.05,
    stop: threading.Event | None = None,
) -> Iterator[LogRecord]:
    """Follow the log from a saved position: yields records as they are committed.

    On PostgreSQL it wakes on LISTEN/NOTIFY; elsewhere it polls. Save `record.position`
    to resume later. Ends when `stop` is set.
    """
    stop = stop or threading.Event()
    position = after
    with store.listen() as conn:
        while not stop.is_set():
            # Rows become visible in position order (every store serialises its writers),
            # so every row up to `seen` is committed before the page is read: once a page
            # is not full, none up to `seen` matched but those it held, and the next poll
            # starts after `seen` — not after the last match, which would read the same
            # growing tail of other topics' rows again on every poll.
            seen = store.max_position() if topics else 0
            page = store.select_notifications(position, 500, topics)
            for n in page:
                position = n.id
                yield _record(n)
                if stop.is_set():
                    return
            if len(page) == 500:
                continue
            position = max(position, seen)
            if conn is not None:
                for _ in conn.notifies(timeout=max(poll_interval, 0.1), stop_after=1):
                    pass
            else:
                stop.wait(poll_interval)


_OCSF_SEVERITY = {"allow": 1, "mask": 1, "approve": 3, "deny": 4, "terminate": 5}
_OCSF_DISPOSITION = {
    "allow": (1, "Allowed"),
    "mask": (1, "Allowed"),
    "approve": (99, "Held"),
    "deny": (2, "Blocked"),
    "terminate": (2, "Blocked"),
}
#: The OCSF version the events follow, and the profile that adds `disposition`.
OCSF_VERSION = "1.4.0"
OCSF_PROFILES = ("security_control",)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


def _without_none(value: Any) -> Any:
    """OCSF attributes are typed: an absent value is left out, never `null`."""
    if isinstance(value, dict):
        return {k: _without_none(v) for k, v in value.items() if v is not None}
    return value


def ocsf_event(record: LogRecord) -> dict[str, Any]:
    """An OCSF API Activity (6003) event for a recorded decision (OCSF 1.4.0 with the
    `security_control` profile, validated against the schema in the tests).

    The agent is the source endpoint (named by its subject), the resource the
    destination; subguard's own fields (effect, facts, reasons…) are under `unmapped`.
    """
    s = record.state
    effect = str(s.get("effect", ""))
    disposition_id, disposition = _OCSF_DISPOSITION.get(effect, (0, "Unknown"))
    time_ms = record.time_ns // 1_000_000
    subject = _text(s.get("subject"))
    kind = str(s.get("kind", ""))
    event: dict[str, Any] = _without_none(
        {
            "class_uid": 6003,
            "class_name": "API Activity",
            "category_uid": 6,
            "category_name": "Application Activity",
            "activity_id": 99,
            "activity_name": kind,
            "type_uid": 600399,
            "time": time_ms,
            "severity_id": _OCSF_SEVERITY.get(effect, 0),
            "status_id": 1 if effect in ("allow", "mask") else 2,
            "disposition_id": disposition_id,
            "disposition": disposition,
            "actor": {
                "user": {"uid": subject or "", "name": subject},
                "session": {"uid": _text(s.get("session"))},
            },
            "api": {"operation": kind, "request": {"uid": _text(s.get("decision")) or ""}},
            "src_endpoint": {"name": subject or "unknown"},
            "dst_endpoint": {"name": _text(s.get("resource")) or "unknown"},
            "message": _text(s.get("text")),
            "metadata": {
                "version": OCSF_VERSION,
                "profiles": list(OCSF_PROFILES),
                "product": {"name": "subguard", "vendor_name": "subguard"},
                "uid": _text(s.get("decision")),
                "log_name": "decisions",
                "sequence": record.position,
            },
            "unmapped": {
                "effect": effect,
                "fingerprint": s.get("fingerprint"),
                "facts": s.get("facts"),
                "reasons": s.get("reasons"),
                "masks": s.get("masks"),
                "policy": s.get("policy"),
                "approval": s.get("approval"),
                "recorded_at": s.get("at"),
            },
        }
    )
    return event


def since_ns(text: str | None, now_ns: int | None = None) -> int:
    """`--since`: an RFC 3339 time, or a duration back from now (`15m`, `2h`, `7d`)."""
    if not text:
        return 0
    duration = parse_duration(text, strict=False)
    if duration is not None:
        return (now_ns or time.time_ns()) - int(duration * 1e9)
    return parse_time(text)


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str, *, strict: bool = True) -> float | None:
    """`90s`, `15m`, `2h`, `1d` → seconds."""
    text = text.strip()
    if text and text[-1] in _UNITS and text[:-1].replace(".", "", 1).isdigit():
        return float(text[:-1]) * _UNITS[text[-1]]
    if text.replace(".", "", 1).isdigit():
        return float(text)
    if strict:
        raise ValueError(f"`{text}` is not a duration (use e.g. 90s, 15m, 2h, 1d)")
    return None


__all__ += ["Topic", "format_time", "parse_duration", "since_ns"]
