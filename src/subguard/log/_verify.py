"""`verify`: recompute every hash, chain link and checkpoint of a stored log.

Needs nothing but the rows: SHA-256 over each event's identity and state bytes, each
event's `prev` against its predecessor's hash, version continuity per aggregate, and
each checkpoint's heads and root against the events it names.
"""

from __future__ import annotations

import uuid
from typing import Any

import attrs

from subguard.log._builders import checkpoint_root
from subguard.log._events import Topic, decode_state, event_hash, short_name, split_hash
from subguard.log._store import Store

__all__ = ["Problem", "VerifyReport", "verify_store"]


@attrs.frozen
class Problem:
    """The first bad event: where it is in the log and what is wrong with it."""

    position: int
    aggregate_id: str
    version: int
    event: str
    message: str

    def __str__(self) -> str:
        return (
            f"event at position {self.position} ({self.event}, aggregate {self.aggregate_id}, "
            f"version {self.version}): {self.message}"
        )


@attrs.frozen
class VerifyReport:
    events: int
    aggregates: int
    checkpoints: int
    problem: Problem | None

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify_store(store: Store) -> VerifyReport:
    heads: dict[str, tuple[int, str]] = {}
    hashes: dict[tuple[str, int], str] = {}
    events = checkpoints = 0
    for n in store.iter_notifications(0):
        events += 1
        oid = n.originator_id
        agg = str(oid if isinstance(oid, uuid.UUID) else uuid.UUID(str(oid)))
        message = _check(agg, n.originator_version, n.topic, n.state, heads, hashes)
        if message is not None:
            problem = Problem(n.id, agg, n.originator_version, short_name(n.topic), message)
            return VerifyReport(events, len(heads), checkpoints, problem)
        checkpoints += n.topic == Topic.CHECKPOINT
    return VerifyReport(events, len(heads), checkpoints, None)


def _check(
    agg: str,
    version: int,
    topic: str,
    stored: bytes,
    heads: dict[str, tuple[int, str]],
    hashes: dict[tuple[str, int], str],
) -> str | None:
    """What is wrong with one event, given everything before it (None: nothing)."""
    split = split_hash(stored)
    if split is None:
        return "state has no hash: it was altered or not written by subguard"
    body, recorded = split
    if event_hash(agg, version, topic, body) != recorded:
        return "content does not match its hash: the event was altered"
    try:
        state: dict[str, Any] = decode_state(body)
    except ValueError:
        return "state is not a JSON object"
    last_version, last_hash = heads.get(agg, (0, ""))
    if version <= last_version:
        return f"version {version} comes after version {last_version}: events were reordered"
    if version != last_version + 1:
        return f"version {last_version + 1} of this aggregate is missing before version {version}: an event was removed"
    if state.get("prev") != last_hash:
        return (
            "`prev` does not match the hash of the aggregate's previous event: the chain is broken"
        )
    heads[agg] = (version, recorded)
    hashes[(agg, version)] = recorded
    if topic != Topic.CHECKPOINT:
        return None
    ordered = []
    for other, (other_version, other_hash) in sorted((state.get("heads") or {}).items()):
        seen = hashes.get((other, other_version))
        if seen is None:
            return f"checkpoint names version {other_version} of aggregate {other}, which is missing: events were removed"
        if seen != other_hash:
            return f"checkpoint disagrees with version {other_version} of aggregate {other}"
        ordered.append((other, other_version, other_hash))
    if checkpoint_root(ordered) != state.get("root"):
        return "checkpoint root does not fold its heads"
    return None
