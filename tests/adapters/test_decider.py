"""The asyncio decider: requests decided in the event loop, committed in batches on one
writer thread, each decision returned only once the commit holding it is done, and the
same decisions as `Engine.check` one by one."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import subguard
from subguard import Effect, Engine, SqlRequest, Subject
from subguard.adapters._decider import AsyncDecider
from subguard.engine import Resource
from subguard.errors import LogError
from subguard.log import Topic, open_log, read_records

POLICY = """\
package guard.decider

import input.sql.statements

deny contains "no drops" if {
    some s in statements
    s.kind == "drop"
}

approve contains "unbounded write" if {
    some s in statements
    s.kind in {"update", "delete"}
    not s.has_where
}

terminate contains "two denials in this session" if {
    input.session.denied >= 2
}

default allow := true
"""

RESOURCE = Resource(name="db", kind="postgres", dialect="postgres")
AGENT = Subject("agent")


@pytest.fixture(scope="module")
def policy(tmp_path_factory: pytest.TempPathFactory) -> subguard.Policy:
    path = tmp_path_factory.mktemp("decider") / "p.guard"
    path.write_text(POLICY)
    return subguard.load_policy([str(path)])


def _url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/log.db"


async def _check_all(
    decider: AsyncDecider, items: list[tuple[str, str]]
) -> list[subguard.Decision]:
    return list(
        await asyncio.gather(
            *(
                decider.check(
                    SqlRequest(sql, "postgres"), subject=AGENT, resource=RESOURCE, session=s
                )
                for sql, s in items
            )
        )
    )


def _recorded(log: Any) -> dict[str, dict[str, Any]]:
    return {
        r.decision_id: r.state
        for r in read_records(log.store, topics=[Topic.DECISION_RECORDED])
        if r.decision_id
    }


def test_concurrent_sessions_share_one_commit_and_every_decision_is_in_the_store(
    policy: subguard.Policy, tmp_path: Path
) -> None:
    log = open_log(_url(tmp_path))
    try:
        decider = AsyncDecider(Engine(policy, log=log))
        items = [(f"SELECT total FROM orders WHERE id = {i}", f"s{i}") for i in range(20)]
        decisions = asyncio.run(_check_all(decider, items))
        decider.close()
        assert [d.effect for d in decisions] == [Effect.ALLOW] * 20
        assert decider.batches == 1 and decider.decisions == 20
        # read back by a second reader of the same file: committed, not only folded
        other = open_log(_url(tmp_path))
        try:
            stored = _recorded(other)
        finally:
            other.close()
        assert {str(d.id) for d in decisions} <= set(stored)
        assert all(
            str(i) not in stored[str(d.id)]["text"] for i, d in enumerate(decisions) if i > 9
        )
    finally:
        log.close()


def test_a_new_sessions_second_request_waits_for_the_first_commit(
    policy: subguard.Policy, tmp_path: Path
) -> None:
    log = open_log(_url(tmp_path))
    try:
        decider = AsyncDecider(Engine(policy, log=log))
        decisions = asyncio.run(
            _check_all(
                decider, [("DROP TABLE a", "new"), ("DROP TABLE b", "new"), ("SELECT 1", "new")]
            )
        )
        decider.close()
        assert decider.batches >= 2
        assert [d.input["session"]["denied"] for d in decisions] == [0, 1, 2]
        assert [d.effect for d in decisions] == [Effect.DENY, Effect.DENY, Effect.TERMINATE]
    finally:
        log.close()


def test_a_store_that_cannot_commit_denies_every_decision_of_the_batch(
    policy: subguard.Policy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = open_log(_url(tmp_path))
    try:

        def broken(events: Any) -> None:
            raise LogError("cannot write to the decision log: disk I/O error")

        monkeypatch.setattr(log.store, "insert", broken)
        decider = AsyncDecider(Engine(policy, log=log))
        decisions = asyncio.run(_check_all(decider, [("SELECT 1", f"s{i}") for i in range(5)]))
        decider.close()
        assert [d.effect for d in decisions] == [Effect.DENY] * 5
        assert all(any(e.code == "log_unavailable" for e in d.errors) for d in decisions)
    finally:
        log.close()


def test_inline_commit_on_a_memory_log(policy: subguard.Policy) -> None:
    log = open_log("memory://decider-inline")
    try:
        decider = AsyncDecider(Engine(policy, log=log), inline_commit=True)
        decisions = asyncio.run(_check_all(decider, [("DELETE FROM t", "m1"), ("SELECT 1", "m2")]))
        assert [d.effect for d in decisions] == [Effect.APPROVE, Effect.ALLOW]
        assert decisions[0].approval_id is not None
        assert {str(d.id) for d in decisions} <= set(_recorded(log))
    finally:
        log.close()


def test_a_request_whose_waiter_went_away_is_not_decided(policy: subguard.Policy) -> None:
    log = open_log("memory://decider-cancel")
    try:
        decider = AsyncDecider(Engine(policy, log=log), inline_commit=True)

        async def scenario() -> subguard.Decision:
            gone = asyncio.ensure_future(
                decider.check(
                    SqlRequest("DROP TABLE x"), subject=AGENT, resource=RESOURCE, session="c"
                )
            )
            await asyncio.sleep(0)  # queued, not yet decided
            gone.cancel()
            return await decider.check(
                SqlRequest("SELECT 1"), subject=AGENT, resource=RESOURCE, session="c"
            )

        kept = asyncio.run(scenario())
        assert kept.effect is Effect.ALLOW
        assert kept.input["session"]["denied"] == 0
        assert [s["kinds"] for s in (st_["facts"] for st_ in _recorded(log).values())] == [
            ["select"]
        ]
    finally:
        log.close()


STATEMENTS = st.sampled_from(
    [
        "SELECT 1",
        "SELECT total FROM orders WHERE id = 7",
        "DROP TABLE t",
        "DELETE FROM t",
        "UPDATE t SET a = 1 WHERE id = 2",
        "SELEC nonsense",
    ]
)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.tuples(STATEMENTS, st.sampled_from(["a", "b", "c"])), min_size=1, max_size=12))
def test_the_decider_decides_as_check_one_by_one(
    policy: subguard.Policy, items: list[tuple[str, str]]
) -> None:
    """Property: whatever the interleaving of sessions, each decision (effect, reasons'
    rules, the session state the rules saw) equals `Engine.check` called in order."""
    one = open_log("memory://")
    two = open_log("memory://")
    try:
        expected = [
            Engine(policy, log=one).check(
                SqlRequest(sql, "postgres"), subject=AGENT, resource=RESOURCE, session=s
            )
            for sql, s in items
        ]
        decider = AsyncDecider(Engine(policy, log=two), inline_commit=True)

        async def sequential() -> list[subguard.Decision]:
            # each session's requests in order, sessions interleaved as generated
            return [
                await decider.check(
                    SqlRequest(sql, "postgres"), subject=AGENT, resource=RESOURCE, session=s
                )
                for sql, s in items
            ]

        got = asyncio.run(sequential())

        def view(d: subguard.Decision) -> tuple[Any, ...]:
            session = {k: v for k, v in d.input["session"].items() if k not in ("id", "started_ns")}
            return d.effect, [r.rule for r in d.reasons], session

        assert [view(d) for d in got] == [view(d) for d in expected]
    finally:
        one.close()
        two.close()


def test_requests_arriving_during_a_commit_fill_the_next_batch(
    policy: subguard.Policy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While one commit runs (a slow disk here), what arrives is decided and staged into
    the next batch, committed as soon as the writer is free; a request of a session whose
    decision is in the running commit waits for it, and sees it."""
    import time

    log = open_log(_url(tmp_path))
    try:
        insert = log.store.insert

        def slow(events: Any) -> Any:
            time.sleep(0.05)
            return insert(events)

        monkeypatch.setattr(log.store, "insert", slow)
        decider = AsyncDecider(Engine(policy, log=log))

        async def scenario() -> tuple[subguard.Decision, list[subguard.Decision], subguard.Decision]:
            first = asyncio.ensure_future(
                decider.check(SqlRequest("DROP TABLE a"), subject=AGENT, resource=RESOURCE, session="busy")
            )
            await asyncio.sleep(0.01)  # the first batch is committing now
            others = [
                decider.check(SqlRequest(f"SELECT {i}"), subject=AGENT, resource=RESOURCE, session=f"o{i}")
                for i in range(10)
            ]
            same = decider.check(SqlRequest("SELECT 1"), subject=AGENT, resource=RESOURCE, session="busy")
            *rest, last = await asyncio.gather(*others, same)
            return await first, rest, last

        first, rest, last = asyncio.run(scenario())
        decider.close()
        assert first.effect is Effect.DENY
        assert [d.effect for d in rest] == [Effect.ALLOW] * 10
        assert last.input["session"]["denied"] == 1  # saw the decision committed before it
        assert decider.decisions == 12
        # the first; then the ten decided meanwhile with the one that waited for the first
        assert decider.batches == 2
    finally:
        log.close()
