"""The DB-API gate builds a statement text's request once (`SqlRequest` is frozen) and
decides every later execute of the text with it: decisions equal those of a request
built anew, and the kept requests stay bounded."""

from __future__ import annotations

import sqlite3

from hypothesis import given, settings
from hypothesis import strategies as st

import subguard
from subguard.adapters import dbapi
from subguard.engine.policy import policy_from_sources

POLICY = """package t

deny contains "no deletes" if {
    some s in input.sql.statements
    s.kind == "delete"
}

default allow := true
"""

STATEMENTS = (
    "SELECT id FROM items WHERE id = ?",
    "SELECT name FROM items WHERE id = ?",
    "DELETE FROM items WHERE id = ?",
    "UPDATE items SET name = 'x' WHERE id = ?",
)


def _connection() -> tuple[dbapi.GuardedConnection, subguard.Engine]:
    raw = sqlite3.connect(":memory:", check_same_thread=False)
    raw.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
    raw.executemany("INSERT INTO items VALUES (?, ?)", [(i, f"n{i}") for i in range(1, 11)])
    engine = subguard.Engine(policy_from_sources([("t.guard", POLICY)]))
    conn = dbapi.guard(raw, engine, subject="ci-bot", resource={"name": "shop", "kind": "sqlite"}, session="s")
    return conn, engine


@settings(max_examples=30, deadline=None)
@given(st.lists(st.sampled_from(STATEMENTS), min_size=1, max_size=12))
def test_a_kept_request_decides_as_a_new_one(texts: list[str]) -> None:
    conn, engine = _connection()
    for text in texts:
        kept = conn._request(text, None)
        assert kept is conn._request(text, None)
        assert kept == subguard.SqlRequest(text, "sqlite")
        got = engine.check(kept, subject="ci-bot", resource={"name": "shop", "kind": "sqlite"})
        want = engine.check(subguard.SqlRequest(text, "sqlite"), subject="ci-bot", resource={"name": "shop", "kind": "sqlite"})
        assert (got.effect, got.reasons, got.input["sql"]) == (want.effect, want.reasons, want.input["sql"])
        try:
            conn.execute(text, (1,))
            allowed = True
        except subguard.Denied:
            allowed = False
        assert allowed == (want.effect is subguard.Effect.ALLOW)


def test_an_estimate_makes_a_new_request_and_the_kept_ones_stay_bounded() -> None:
    conn, _engine = _connection()
    estimated = conn._request(STATEMENTS[2], 7)
    assert estimated.estimated_rows == 7
    assert conn._request(STATEMENTS[2], None).estimated_rows is None
    for i in range(1500):
        conn._request(f"SELECT {i}", None)
    assert len(conn._requests) <= 1024
