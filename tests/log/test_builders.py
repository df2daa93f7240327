"""The pure event builders, over a folded state: no store, no thread, no clock."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from subguard.engine.types import Effect
from subguard.errors import LogError
from subguard.log import ApprovalStatus
from subguard.log import _builders as build
from subguard.log._events import Topic, session_aggregate_id, subject_aggregate_id
from subguard.log._state import FoldedState

from .conftest import make_ctx, make_decision

NOW = 1_800_000_000_000_000_000
TTL = 3600 * 10**9
WRITER = uuid.UUID(int=1)


def fold(state: FoldedState, events: list[build.PendingEvent]) -> None:
    """Apply events as the log would after a commit (versions follow the heads)."""
    for e in events:
        version = state.head(e.aggregate_id)[0] + 1
        loading = e.state.get("session") if e.topic in Topic.SESSION else None
        assert state.apply(
            e.aggregate_id, version, e.topic, dict(e.state), f"h{version}", loading=loading
        )


def prepare(state: FoldedState, items: list, now: int = NOW) -> build.Prepared:
    return build.prepare(state, items, writer_id=WRITER, now=now, approval_ttl_ns=TTL)


def test_first_decision_of_a_session_starts_it() -> None:
    state = FoldedState()
    out = prepare(state, [(make_ctx(session="s1"), make_decision())])
    assert [e.topic for e in out.events] == [
        Topic.SESSION_STARTED,
        Topic.POLICY_ACTIVATED,
        Topic.DECISION_RECORDED,
    ]
    assert out.events[0].aggregate_id == session_aggregate_id("s1")
    fold(state, out.events)
    again = prepare(state, [(make_ctx(session="s1"), make_decision())])
    assert [e.topic for e in again.events] == [Topic.DECISION_RECORDED]
    assert state.sessions["s1"].requests == 1


def test_decision_outside_a_session_goes_to_the_writer_stream() -> None:
    out = prepare(FoldedState(), [(make_ctx(session=None), make_decision())])
    recorded = [e for e in out.events if e.topic == Topic.DECISION_RECORDED]
    assert recorded[0].aggregate_id == WRITER


def test_recorded_decision_holds_no_literal() -> None:
    ctx = make_ctx(literal="SELECT * FROM users WHERE id = 987654321")
    out = prepare(FoldedState(), [(ctx, make_decision(Effect.DENY, "no"))])
    assert "987654321" not in repr([e.state for e in out.events])


def test_terminate_ends_the_session_once_per_batch() -> None:
    state = FoldedState()
    fold(state, prepare(state, [(make_ctx(session="s1"), make_decision())]).events)
    items = [(make_ctx(session="s1"), make_decision(Effect.TERMINATE, "bad")) for _ in range(3)]
    out = prepare(state, items)
    ends = [e for e in out.events if e.topic == Topic.SESSION_TERMINATED]
    assert len(ends) == 1 and ends[0].state["reason"] == "bad" and ends[0].state["by"] == "policy"


def test_approve_opens_an_approval_then_a_once_grant_is_used_once() -> None:
    state = FoldedState()
    first = prepare(state, [(make_ctx(session="s1"), make_decision(Effect.APPROVE, "hold"))])
    held = first.decisions[0]
    assert held.effect is Effect.APPROVE and held.approval_id is not None
    fold(state, first.events)
    assert state.approvals[held.approval_id].status is ApprovalStatus.PENDING
    grant = build.grant(
        state, held.approval_id, by="boss", window=None, now=NOW, approval_ttl_ns=TTL
    )
    assert grant.topic == Topic.APPROVAL_GRANTED
    fold(state, [grant])
    # two identical requests in one batch: only the first uses the once-grant
    items = [(make_ctx(session="s1"), make_decision(Effect.APPROVE, "hold")) for _ in range(2)]
    out = prepare(state, items, now=NOW + 1)
    assert [d.effect for d in out.decisions] == [Effect.ALLOW, Effect.APPROVE]
    assert sum(e.topic == Topic.APPROVAL_USED for e in out.events) == 1


def test_grant_rules() -> None:
    state = FoldedState()
    first = prepare(state, [(make_ctx(subject="agent-1"), make_decision(Effect.APPROVE, "h"))])
    fold(state, first.events)
    approval_id = first.decisions[0].approval_id
    assert approval_id is not None
    with pytest.raises(LogError, match="their own request"):
        build.grant(state, approval_id, by="agent-1", window=None, now=NOW, approval_ttl_ns=TTL)
    with pytest.raises(LogError, match="no approval"):
        build.grant(state, uuid.uuid4(), by="boss", window=None, now=NOW, approval_ttl_ns=TTL)
    late = build.grant(
        state, approval_id, by="boss", window=None, now=NOW + TTL, approval_ttl_ns=TTL
    )
    assert late.topic == Topic.APPROVAL_EXPIRED
    refused = build.refuse(state, approval_id, by="boss", reason="no", now=NOW)
    fold(state, [refused])
    assert state.approvals[approval_id].status is ApprovalStatus.REFUSED
    with pytest.raises(LogError, match="already refused"):
        build.refuse(state, approval_id, by="boss", reason="no", now=NOW)
    assert build.expire(state, approval_id, now=NOW + TTL) == []


def test_due_approvals_and_expire() -> None:
    state = FoldedState()
    out = prepare(state, [(make_ctx(), make_decision(Effect.APPROVE, "h"))])
    fold(state, out.events)
    assert build.due_approvals(state, NOW) == []
    due = build.due_approvals(state, NOW + TTL)
    assert due == [out.decisions[0].approval_id]
    [expired] = build.expire(state, due[0], now=NOW + TTL)
    fold(state, [expired])
    assert state.approvals[due[0]].status is ApprovalStatus.EXPIRED


def test_revoke_restore_and_kill() -> None:
    state = FoldedState()
    with pytest.raises(LogError, match="not revoked"):
        build.restore_subject(state, "agent-1", reason="", by="", now=NOW)
    revoked = build.revoke_subject("agent-1", reason="leak", by="soc", now=NOW)
    assert revoked.aggregate_id == subject_aggregate_id("agent-1")
    fold(state, [revoked])
    assert state.revoked == {"agent-1": "leak"}
    fold(state, [build.restore_subject(state, "agent-1", reason="", by="", now=NOW)])
    assert state.revoked == {}
    with pytest.raises(LogError, match="no session"):
        build.kill_session(state, "s1", reason="x", by="", now=NOW)
    fold(state, prepare(state, [(make_ctx(session="s1"), make_decision())]).events)
    fold(state, [build.kill_session(state, "s1", reason="x", by="soc", now=NOW)])
    assert state.sessions["s1"].terminated == "x"
    with pytest.raises(LogError, match="already terminated"):
        build.kill_session(state, "s1", reason="x", by="", now=NOW)


@settings(max_examples=50, deadline=None)
@given(
    st.dictionaries(
        st.uuids(),
        st.tuples(st.integers(1, 10**6), st.text("0123456789abcdef", min_size=64, max_size=64)),
        max_size=8,
    )
)
def test_checkpoint_root_is_independent_of_insertion_order(heads: dict) -> None:
    forward = build.checkpoint_state(heads, "interval", "t")
    backward = build.checkpoint_state(dict(reversed(list(heads.items()))), "interval", "t")
    assert forward["root"] == backward["root"]
    assert list(forward["heads"]) == sorted(str(k) for k in heads)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(list(Effect)), min_size=1, max_size=12))
def test_session_fold_counts_what_prepare_recorded(effects: list[Effect]) -> None:
    """`input.session` after a batch counts every decision, and denied ones as deny/terminate."""
    state = FoldedState()
    items = [(make_ctx(session="s"), make_decision(e, "m")) for e in effects]
    out = prepare(state, items)
    fold(state, out.events)
    recorded = [d.effect for d in out.decisions]
    session = state.sessions["s"]
    assert session.requests == len(effects)
    assert session.denied == sum(e in (Effect.DENY, Effect.TERMINATE) for e in recorded)


def test_encode_chains_events_and_checkpoints_the_first_write_then_every_n() -> None:
    state = FoldedState()
    checkpoint_id = uuid.UUID(int=2)
    pending = prepare(state, [(make_ctx(session="s1"), make_decision())]).events

    def encode(events: list[build.PendingEvent], since: dict, count: int) -> build.Encoded:
        return build.encode(
            state,
            events,
            since_checkpoint=since,
            events_since_checkpoint=count,
            checkpoint_id=checkpoint_id,
            checkpoint_every=5,
            force_checkpoint=False,
            clock=lambda: NOW,
        )

    first = encode(pending, {}, 0)
    assert first.checkpointed and first.rows[-1][1].state["reason"] == "start"
    prevs = [row[0].state for row in first.rows]
    assert all(b'"prev":"' in s and b',"h":"' in s for s in prevs)
    for stored, event, h in first.rows:
        state.apply(event.aggregate_id, stored.originator_version, event.topic, event.state, h)
    again = encode([build.revoke_subject("x", reason="r", by="", now=NOW)], {}, 0)
    assert not again.checkpointed and again.events_since == 1
    due = encode([build.revoke_subject("y", reason="r", by="", now=NOW)], again.covered, 4)
    assert due.checkpointed and due.rows[-1][1].state["reason"] == "interval"
    assert set(due.rows[-1][1].state["heads"]) == {
        str(build.subject_aggregate_id("x")),
        str(build.subject_aggregate_id("y")),
    }
