"""`check_many` (what `eval --batch --store` uses) decides exactly as `check` one by one."""

from __future__ import annotations

from pathlib import Path

import subguard
from subguard.engine import Engine, Resource, SqlRequest, Subject
from subguard.log import open_log

RULES = Path(__file__).resolve().parents[2] / "rules"


def _engine() -> Engine:
    return Engine(subguard.load_policy(RULES), log=open_log("memory://"))


def _requests() -> list[tuple[SqlRequest, Subject, Resource, str | None]]:
    bot = Subject("bot", groups={"agents"})
    pg = Resource(name="prod", kind="postgres")
    texts = ["SELECT 1", "DROP TABLE a", "DROP TABLE b", "DROP TABLE c", "DROP TABLE d", "SELECT 2"]
    items = [(SqlRequest(t), bot, pg, "s1") for t in texts]
    items.insert(3, (SqlRequest("DROP TABLE z"), bot, pg, "s2"))  # another session between
    items.append((SqlRequest("DROP TABLE y"), bot, pg, None))  # and none at all
    return items


def test_a_batch_sees_the_session_state_of_its_own_earlier_requests() -> None:
    batch = [d.effect.value for d in _engine().check_many(_requests())]
    one_by_one_engine = _engine()
    one_by_one = [
        one_by_one_engine.check(r, subject=s, resource=res, session=sess).effect.value
        for r, s, res, sess in _requests()
    ]
    assert batch == one_by_one
    # the escalation pack ends session s1 after three denials
    assert batch[:6] == ["allow", "deny", "deny", "deny", "deny", "terminate"]
    assert batch[6:] == ["terminate", "deny"]


def test_batch_items_by_name_decide_as_tuples() -> None:
    """`BatchItem` names the fields of a `check_many` item; it decides as the plain tuple."""
    from subguard import BatchItem

    plain = [d.effect.value for d in _engine().check_many(_requests())]
    named = [d.effect.value for d in _engine().check_many([BatchItem(*item) for item in _requests()])]
    assert named == plain
    (only,) = _engine().check_many([BatchItem(SqlRequest("DELETE FROM users"), subject="ci-bot", session="s")])
    assert only.effect.value != "allow"
