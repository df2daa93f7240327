"""The stored event format: topics, plain-JSON state written with orjson, and hash chains.

A stored event is eventsourcing's `StoredEvent` (originator id, version, topic, state).
Its state is one JSON object, readable without subguard, that ends with two chain fields:
`prev` (the hash of the previous event of the same aggregate, "" for the first) and `h`
(this event's own hash). `h` is the SHA-256 of the originator id, version and topic, one
per line, followed by the state bytes up to (not including) the `,"h":` suffix. No secret
is involved: anyone holding the rows can recompute every hash (see docs/log.md).
"""

from __future__ import annotations

import calendar
import functools
import hashlib
import time
import uuid
from datetime import UTC
from typing import Any, Final

import orjson
from eventsourcing.persistence import StoredEvent

__all__ = [
    "NAMESPACE",
    "SCHEMA_VERSION",
    "Topic",
    "approval_aggregate_id",
    "connection_aggregate_id",
    "decode_state",
    "encode_event",
    "event_hash",
    "format_time",
    "parse_time",
    "policy_aggregate_id",
    "session_aggregate_id",
    "split_hash",
    "store_aggregate_id",
    "subject_aggregate_id",
]

#: The stored-format version this code writes and understands.
SCHEMA_VERSION: Final = 1

#: Namespace of every deterministic aggregate id (uuid5); part of the stored format.
NAMESPACE: Final = uuid.UUID("6f1f6c1e-5b7a-5c43-9d0e-2a51b7c0d8e4")


class Topic:
    """Stable event topics. Versioned in their names: a changed shape gets a new name."""

    STORE_CREATED: Final = "subguard.log.events:StoreCreated"
    SESSION_STARTED: Final = "subguard.log.events:SessionStarted"
    DECISION_RECORDED: Final = "subguard.log.events:DecisionRecorded"
    SESSION_TERMINATED: Final = "subguard.log.events:SessionTerminated"
    APPROVAL_REQUESTED: Final = "subguard.log.events:ApprovalRequested"
    APPROVAL_GRANTED: Final = "subguard.log.events:ApprovalGranted"
    APPROVAL_REFUSED: Final = "subguard.log.events:ApprovalRefused"
    APPROVAL_EXPIRED: Final = "subguard.log.events:ApprovalExpired"
    APPROVAL_USED: Final = "subguard.log.events:ApprovalUsed"
    SUBJECT_REVOKED: Final = "subguard.log.events:SubjectRevoked"
    SUBJECT_RESTORED: Final = "subguard.log.events:SubjectRestored"
    POLICY_ACTIVATED: Final = "subguard.log.events:PolicyActivated"
    CHECKPOINT: Final = "subguard.log.events:CheckpointWritten"
    #: An adapter's connection: who connected from where, what each statement it let
    #: through did in the database, and how the connection ended. Recorded after the
    #: fact, without delaying requests, in the connection's own stream.
    SESSION_OPENED: Final = "subguard.log.events:SessionOpened"
    STATEMENT_COMPLETED: Final = "subguard.log.events:StatementCompleted"
    SESSION_CLOSED: Final = "subguard.log.events:SessionClosed"

    SESSION: Final = (SESSION_STARTED, DECISION_RECORDED, SESSION_TERMINATED)
    APPROVAL: Final = (
        APPROVAL_REQUESTED,
        APPROVAL_GRANTED,
        APPROVAL_REFUSED,
        APPROVAL_EXPIRED,
        APPROVAL_USED,
    )
    SUBJECT: Final = (SUBJECT_REVOKED, SUBJECT_RESTORED)
    CONNECTION: Final = (SESSION_OPENED, STATEMENT_COMPLETED, SESSION_CLOSED)
    #: Everything but the per-request stream: what a process loads when it opens a store.
    CONTROL: Final = (*APPROVAL, *SUBJECT, SESSION_TERMINATED, POLICY_ACTIVATED, STORE_CREATED)
    ALL: Final = (
        *SESSION,
        *APPROVAL,
        *SUBJECT,
        POLICY_ACTIVATED,
        CHECKPOINT,
        STORE_CREATED,
        *CONNECTION,
    )


def short_name(topic: str) -> str:
    """`subguard.log.events:DecisionRecorded` → `DecisionRecorded`."""
    return topic.rpartition(":")[2]


@functools.lru_cache(maxsize=65536)
def session_aggregate_id(session: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, "session:" + session)


@functools.lru_cache(maxsize=4096)
def connection_aggregate_id(session: str) -> uuid.UUID:
    """The stream of a session's connection events (`Topic.CONNECTION`), apart from its
    decisions: written after the fact, it never races a decision's commit."""
    return uuid.uuid5(NAMESPACE, "connection:" + session)


def subject_aggregate_id(subject: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, "subject:" + subject)


def approval_aggregate_id(decision_id: uuid.UUID) -> uuid.UUID:
    """An approval's id is derived from the decision that asked for it."""
    return uuid.uuid5(NAMESPACE, "approval:" + str(decision_id))


def policy_aggregate_id(policy_hash: str) -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, "policy:" + policy_hash)


def store_aggregate_id() -> uuid.UUID:
    return uuid.uuid5(NAMESPACE, "store")


#: seconds → their RFC 3339 text: a request's time and its recording's are usually in
#: the same second or the one before.
_SECONDS: dict[int, str] = {}


def format_time(time_ns: int) -> str:
    """RFC 3339 in UTC with nanoseconds: `2026-11-30T01:02:03.123456789Z`."""
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    text = _SECONDS.get(seconds)
    if text is None:
        if len(_SECONDS) >= 64:
            _SECONDS.clear()
        text = _SECONDS[seconds] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    return f"{text}.{nanos:09d}Z"


def parse_time(text: str) -> int:
    """The inverse of `format_time`; also accepts other RFC 3339 offsets and precisions."""
    if len(text) == 30 and text[19] == "." and text[-1] == "Z":
        seconds = calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S"))
        return seconds * 1_000_000_000 + int(text[20:29])
    from datetime import datetime

    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp()) * 1_000_000_000 + value.microsecond * 1000


_H_SUFFIX_LEN: Final = len(b',"h":""}') + 64


def event_hash(originator_id: str, version: int, topic: str, body: bytes) -> str:
    """The chain hash of one event: see the module docstring."""
    digest = hashlib.sha256(f"{originator_id}\n{version}\n{topic}\n".encode())
    digest.update(body)
    return digest.hexdigest()


@functools.lru_cache(maxsize=65536)
def _uuid_text(value: uuid.UUID) -> str:
    return str(value)


_sha256 = hashlib.sha256
_dumps = orjson.dumps


def encode_event(
    originator_id: uuid.UUID, version: int, topic: str, state: dict[str, Any], prev: str
) -> tuple[StoredEvent, str]:
    """Serialise one event with its chain fields; returns the stored event and its hash.

    Sets `state["prev"]`: pass a dict this call may change.
    """
    state["prev"] = prev
    body = _dumps(state)
    digest = _sha256(f"{_uuid_text(originator_id)}\n{version}\n{topic}\n".encode())
    digest.update(body)
    h = digest.hexdigest()
    stored = b"".join((body[:-1], b',"h":"', h.encode(), b'"}'))
    return StoredEvent(originator_id, version, topic, stored), h


def split_hash(state: bytes) -> tuple[bytes, str] | None:
    """Split stored state into the hashed body and the recorded hash (None if malformed)."""
    if len(state) < _H_SUFFIX_LEN or not state.endswith(b'"}'):
        return None
    suffix = state[-_H_SUFFIX_LEN:]
    if not suffix.startswith(b',"h":"'):
        return None
    return state[:-_H_SUFFIX_LEN] + b"}", suffix[6:70].decode("ascii", "replace")


def decode_state(state: bytes) -> dict[str, Any]:
    value = orjson.loads(state)
    if not isinstance(value, dict):
        raise ValueError("stored event state is not a JSON object")
    return value
