"""`check_many` stages a batch's decisions and commits them together, yet decides every
request exactly as `check` one by one would: the session state each rule sees counts the
decisions staged before it (requests, denials, tables, held requests, termination), live
grants are used as one by one, and no decision is reported before its commit."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import subguard
from subguard.engine import Effect, Engine, SqlRequest
from subguard.log import DecisionLog, open_log
from subguard.log._store import Store

POLICY = """package batch.props

default allow := true

deny contains "drop" if {
    some s in input.sql.statements
    s.kind == "drop"
}

approve contains "delete" if {
    some s in input.sql.statements
    s.kind == "delete"
}

terminate contains "too many denials" if {
    input.session.denied >= 3
}

deny contains "too many held" if {
    input.session.approvals_pending >= 2
    input.session.requests >= 4
}

deny contains "too wide" if {
    count(input.session.tables_touched) >= 3
}
"""

TEXTS = [
    "SELECT 1 FROM a",
    "SELECT 1 FROM b",
    "UPDATE c SET x = 1 WHERE id = 1",
    "DELETE FROM d",
    "DELETE FROM g",  # a window grant covers it for `x`
    "DELETE FROM h",  # a once-grant covers it once for `x`
    "DROP TABLE e",
]

ITEM = st.tuples(
    st.sampled_from(TEXTS), st.sampled_from(["x", "y"]), st.sampled_from(["s1", "s2", "s3", None])
)

SESSION_FIELDS = ("requests", "denied", "approvals_pending", "tables_touched", "terminated")


def _engine(tmp: Path, url: str = "memory://") -> tuple[Engine, DecisionLog]:
    (tmp / "p.guard").write_text(POLICY)
    log = open_log(url, follow=False)
    engine = Engine(subguard.load_policy([tmp / "p.guard"]), log=log)
    for text, window in (("DELETE FROM g", 3600.0), ("DELETE FROM h", None)):
        held = engine.check(SqlRequest(text), subject="x", session="setup")
        assert held.effect is Effect.APPROVE and held.approval_id is not None
        log.approve(held.approval_id, by="admin", window=window)
    return engine, log


def _seen(decision: subguard.Decision) -> tuple[Any, ...]:
    session = (decision.input or {}).get("session") or {}
    return (
        decision.effect.value,
        [r.message.split(", approval ")[0] for r in decision.reasons],
        [session.get(k) for k in SESSION_FIELDS],
    )


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(items=st.lists(ITEM, max_size=24))
def test_a_batch_decides_as_one_by_one(
    tmp_path: Path, items: list[tuple[str, str, str | None]]
) -> None:
    requests = [(SqlRequest(t), subject, None, session) for t, subject, session in items]
    batch_engine, batch_log = _engine(tmp_path)
    single_engine, single_log = _engine(tmp_path)
    batched = batch_engine.check_many(requests)
    single = [
        single_engine.check(r, subject=s, resource=res, session=se) for r, s, res, se in requests
    ]
    assert [_seen(d) for d in batched] == [_seen(d) for d in single]
    # and the logs fold to the same sessions
    for name in ("s1", "s2", "s3"):
        a, b = batch_log.session_state(name), single_log.session_state(name)
        assert [a[k] for k in SESSION_FIELDS] == [b[k] for k in SESSION_FIELDS]


def _counting(store: Store) -> list[int]:
    calls: list[int] = []
    insert = store.insert

    def counted(events: Any) -> Any:
        calls.append(len(events))
        return insert(events)

    store.insert = counted  # type: ignore[method-assign]
    return calls


def test_a_batch_commits_once_except_to_start_new_sessions(tmp_path: Path) -> None:
    engine, log = _engine(tmp_path, f"sqlite:///{tmp_path}/log.db")
    commits = _counting(log.store)
    items = [(SqlRequest("SELECT 1 FROM a"), "y", None, f"n{i % 16}") for i in range(64)]
    assert {d.effect for d in engine.check_many(items)} == {Effect.ALLOW}
    # 16 new sessions staged, then the 17th request needs s0 started: one commit; the
    # other 48 in one more
    assert len(commits) == 2
    again = engine.check_many(items)
    assert len(commits) == 3  # every session exists now: one commit for all 64
    assert [d.input["session"]["requests"] for d in again[:16]] == [4] * 16
    assert [d.input["session"]["requests"] for d in again[-16:]] == [7] * 16


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(items=st.lists(ITEM, min_size=1, max_size=16), fail_at=st.integers(min_value=1, max_value=4))
def test_a_failed_commit_reports_no_decision_it_lost(
    tmp_path: Path, items: list[tuple[str, str, str | None]], fail_at: int
) -> None:
    """A commit that fails (the store dies mid-batch) fails every decision it held
    closed: whatever `check_many` reports as not denied for the log is in the store."""
    engine, log = _engine(tmp_path, f"sqlite:///{tmp_path}/{uuid.uuid4().hex}.db")
    store = log.store
    insert = store.insert
    calls = [0]

    def dying(events: Any) -> Any:
        calls[0] += 1
        if calls[0] >= fail_at:
            raise subguard.LogError("the store went away")
        return insert(events)

    store.insert = dying  # type: ignore[method-assign]
    decided = engine.check_many([(SqlRequest(t), s, None, se) for t, s, se in items])
    assert len(decided) == len(items)
    recorded = {
        r.as_dict()["decision"]
        for r in subguard.log.read_records(store)
        if r.as_dict().get("decision")
    }
    for d in decided:
        failed = any(e.code == "log_unavailable" for e in d.errors)
        if failed:
            assert d.effect is Effect.DENY
        else:
            assert str(d.id) in recorded
    log.close()
