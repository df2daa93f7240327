"""`verify`: recompute every hash, chain link and checkpoint of a stored log. Read-only.

Needs nothing but the rows: SHA-256 over each event's identity and state bytes, each
event's `prev` against its predecessor's hash, version continuity per aggregate, and
each checkpoint's heads and root against the events it names. A store must begin with
its `StoreCreated` event and hold at least one checkpoint once it holds anything else.

What the rows alone cannot show (their newest events removed after the last checkpoint,
or the whole log rewritten) an `Anchor` shows: the newest checkpoint's position, root
and the count of events up to it, published elsewhere (`subguard anchor`) and checked
later (`subguard verify --anchor FILE`, or `--expect-root`).
"""

from __future__ import annotations

import uuid
from typing import Any

import attrs
import orjson

from subguard.errors import LogError
from subguard.log._builders import checkpoint_root
from subguard.log._events import (
    Topic,
    decode_state,
    event_hash,
    short_name,
    split_hash,
    store_aggregate_id,
)
from subguard.log._store import Store

__all__ = ["Anchor", "Problem", "VerifyReport", "verify_store"]

_STORE_ID = str(store_aggregate_id())


@attrs.frozen
class Problem:
    """The first bad event: where it is in the log and what is wrong with it.

    Problems with the log as a whole (empty, no checkpoint, shorter than an anchor) have
    position 0 and an empty aggregate.
    """

    position: int
    aggregate_id: str
    version: int
    event: str
    message: str

    def __str__(self) -> str:
        if not self.aggregate_id and not self.position:
            return f"the log: {self.message}"
        return (
            f"event at position {self.position} ({self.event}, aggregate {self.aggregate_id}, "
            f"version {self.version}): {self.message}"
        )


@attrs.frozen
class Anchor:
    """A checkpoint to publish elsewhere, so a later `verify` can tell the log still
    holds it: its position, aggregate, version and root, and how many events the log
    held up to that position."""

    position: int
    aggregate_id: str
    version: int
    root: str
    events: int

    def to_json(self) -> str:
        return orjson.dumps(attrs.asdict(self)).decode()

    @classmethod
    def from_json(cls, text: str | bytes) -> Anchor:
        """Parse an anchor; a malformed one is a `LogError`, never a pass."""
        try:
            value = orjson.loads(text)
        except orjson.JSONDecodeError as e:
            raise LogError(f"the anchor is not JSON: {e}") from None
        fields = {"position": int, "aggregate_id": str, "version": int, "root": str, "events": int}
        if not isinstance(value, dict) or set(value) != set(fields):
            raise LogError(f"an anchor has exactly the fields {', '.join(sorted(fields))}")
        for name, kind in fields.items():
            if type(value[name]) is not kind:
                raise LogError(f"the anchor's `{name}` must be {kind.__name__}")
        return cls(**value)


@attrs.frozen
class VerifyReport:
    events: int
    aggregates: int
    checkpoints: int
    problem: Problem | None
    #: the newest checkpoint, to publish (None when the log has none)
    anchor: Anchor | None = None
    #: events after the newest checkpoint that names their aggregate: an open writer's
    #: tail, which only a later checkpoint (or an anchor) protects
    unsealed: int = 0

    @property
    def ok(self) -> bool:
        return self.problem is None


def _log_problem(message: str) -> Problem:
    return Problem(0, "", 0, "", message)


def verify_store(
    store: Store, *, anchor: Anchor | None = None, expect_root: str | None = None
) -> VerifyReport:
    """Check every row; never writes. With `anchor` (or `expect_root`), also check
    that the log still holds that checkpoint and at least as many events up to it."""
    heads: dict[str, tuple[int, str]] = {}
    hashes: dict[tuple[str, int], str] = {}
    #: aggregate → position of its newest event not yet covered by a checkpoint
    uncovered: dict[str, int] = {}
    events = checkpoints = 0
    latest: Anchor | None = None
    anchor_seen = root_seen = False
    count_to_anchor = 0
    problem: Problem | None = None

    def report(problem: Problem | None) -> VerifyReport:
        return VerifyReport(
            events, len(heads), checkpoints, problem, anchor=latest, unsealed=len(uncovered)
        )

    for n in store.iter_rows(0):
        events += 1
        agg, version, topic = _identity(n)
        if agg is None:
            problem = Problem(n.id, str(n.originator_id), 0, "?", "malformed aggregate id")
            return report(problem)
        if events == 1 and (agg != _STORE_ID or topic != Topic.STORE_CREATED):
            missing = "the log does not begin with its StoreCreated event: rows were removed"
            return report(Problem(n.id, agg, version, short_name(topic), missing))
        try:
            message, state = _check(agg, version, topic, n.state, heads, hashes)
        except Exception as e:  # a row no writer of ours produced: name it, never crash
            message, state = f"malformed row ({type(e).__name__})", None
        if message is not None:
            return report(Problem(n.id, agg, version, short_name(topic), message))
        if topic == Topic.CHECKPOINT and state is not None:
            checkpoints += 1
            for covered in state.get("heads") or {}:
                uncovered.pop(covered, None)
            root = str(state.get("root"))
            latest = Anchor(n.id, agg, version, root, events)
            if anchor is not None and (agg, version) == (anchor.aggregate_id, anchor.version):
                if (n.id, root) != (anchor.position, anchor.root):
                    rewritten = (
                        "checkpoint differs from the published anchor: the log was rewritten"
                    )
                    return report(Problem(n.id, agg, version, short_name(topic), rewritten))
                anchor_seen = True
            root_seen = root_seen or (expect_root is not None and root == expect_root)
        elif agg != _STORE_ID:
            uncovered[agg] = n.id
        if anchor is not None and n.id <= anchor.position:
            count_to_anchor = events
    if events == 0:
        problem = _log_problem("the store holds no events, not even StoreCreated: it was wiped")
    elif events > 1 and checkpoints == 0:
        problem = _log_problem(
            "the log holds events but no checkpoint: checkpoints were removed "
            "(or the writer never closed nor reached one)"
        )
    elif anchor is not None and not anchor_seen:
        problem = _log_problem(
            f"the published anchor (checkpoint at position {anchor.position}, root "
            f"{anchor.root[:12]}…) is not in the log: it was removed or rewritten"
        )
    elif anchor is not None and count_to_anchor < anchor.events:
        problem = _log_problem(
            f"the log holds {count_to_anchor} events up to the anchor at position "
            f"{anchor.position}, fewer than the {anchor.events} it held when anchored: "
            "events were removed"
        )
    elif expect_root is not None and not root_seen:
        problem = _log_problem(f"no checkpoint in the log has the expected root `{expect_root}`")
    return report(problem)


def _identity(n: Any) -> tuple[str | None, int, str]:
    oid = n.originator_id
    try:
        agg = str(oid if isinstance(oid, uuid.UUID) else uuid.UUID(str(oid)))
    except (ValueError, TypeError, AttributeError):
        agg = None
    version = n.originator_version if type(n.originator_version) is int else 0
    topic = n.topic if isinstance(n.topic, str) else "?"
    return agg, version, topic


def _check(
    agg: str,
    version: int,
    topic: str,
    stored: Any,
    heads: dict[str, tuple[int, str]],
    hashes: dict[tuple[str, int], str],
) -> tuple[str | None, dict[str, Any] | None]:
    """What is wrong with one event, given everything before it (None: nothing), and
    its decoded state."""
    if isinstance(stored, memoryview):
        stored = stored.tobytes()
    if stored is None:
        return "state is NULL: the row was altered", None
    if not isinstance(stored, bytes):
        return f"state is stored as {type(stored).__name__}, not bytes: the row was altered", None
    split = split_hash(stored)
    if split is None:
        return "state has no hash: it was altered or not written by subguard", None
    body, recorded = split
    if event_hash(agg, version, topic, body) != recorded:
        return "content does not match its hash: the event was altered", None
    try:
        state: dict[str, Any] = decode_state(body)
    except ValueError:
        return "state is not a JSON object", None
    last_version, last_hash = heads.get(agg, (0, ""))
    if version <= last_version:
        return f"version {version} comes after version {last_version}: events were reordered", None
    if version != last_version + 1:
        return (
            f"version {last_version + 1} of this aggregate is missing before version {version}: "
            "an event was removed"
        ), None
    if state.get("prev") != last_hash:
        return (
            "`prev` does not match the hash of the aggregate's previous event: the chain is broken",
            None,
        )
    heads[agg] = (version, recorded)
    hashes[(agg, version)] = recorded
    if topic != Topic.CHECKPOINT:
        return None, state
    ordered = []
    covered = state.get("heads")
    if not isinstance(covered, dict):
        return "checkpoint has no heads", None
    for other, head in sorted(covered.items()):
        if not (isinstance(head, list) and len(head) == 2):
            return f"checkpoint head of aggregate {other} is malformed", None
        other_version, other_hash = head
        seen = hashes.get((other, other_version))
        if seen is None:
            return (
                f"checkpoint names version {other_version} of aggregate {other}, which is "
                "missing: events were removed"
            ), None
        if seen != other_hash:
            return f"checkpoint disagrees with version {other_version} of aggregate {other}", None
        ordered.append((other, other_version, other_hash))
    if checkpoint_root(ordered) != state.get("root"):
        return "checkpoint root does not fold its heads", None
    return None, state
