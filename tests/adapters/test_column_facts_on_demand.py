"""The DB-API gate with a policy that reads no column fact: over a database whose schema
tags columns the engine still resolves them, so the gate's own checks on tagged columns
(a function registered in this process, a tagged column reaching the result unjudged)
hold as with every fact; over an untagged one, rows and decisions are the same."""

from __future__ import annotations

import sqlite3

import pytest

import subguard
from subguard.adapters import Denied, Refused, dbapi
from subguard.engine.policy import policy_from_sources

from .conftest import TAGS

#: Masks by constant, reads tables only: no column fact.
POLICY = """package t

deny contains "secrets are never read" if "secrets" in input.sql.tables_read

mask["users.email"] := "redact" if "users" in input.sql.tables_read

default allow := true
"""


@pytest.fixture
def engines() -> tuple[subguard.Engine, subguard.Engine]:
    policy = policy_from_sources([("t.guard", POLICY)])
    lean, full = subguard.Engine(policy), subguard.Engine(policy, column_facts=True)
    assert not lean.column_facts and full.column_facts
    return lean, full


def _guard(
    raw: sqlite3.Connection, engine: subguard.Engine, tags: object
) -> dbapi.GuardedConnection:
    return dbapi.guard(
        raw,
        engine,
        subject="ci-bot",
        resource={"name": "shop", "kind": "sqlite"},
        session=None,
        tags=tags,
    )


@pytest.mark.parametrize("tags", [None, TAGS])
@pytest.mark.parametrize(
    "sql",
    [
        "SELECT name, email FROM users ORDER BY id",
        "SELECT * FROM users WHERE id = 2",
        "SELECT u.email, o.total FROM users u JOIN orders o ON o.user_id = u.id ORDER BY o.id",
        "SELECT total FROM orders ORDER BY id",
        "SELECT value FROM secrets",
    ],
)
def test_rows_and_refusals_are_the_same(
    raw: sqlite3.Connection,
    engines: tuple[subguard.Engine, subguard.Engine],
    tags: object,
    sql: str,
) -> None:
    got = []
    for engine in engines:
        conn = _guard(raw, engine, tags)
        try:
            got.append(("rows", conn.execute(sql).fetchall()))
        except Refused as exc:
            got.append(("refused", type(exc).__name__))
    assert got[0] == got[1]


def test_a_tagged_schema_keeps_the_registered_function_check(
    raw: sqlite3.Connection, engines: tuple[subguard.Engine, subguard.Engine]
) -> None:
    lean, _ = engines
    conn = _guard(raw, lean, TAGS)
    conn.create_function("peek", 1, lambda v: v)
    with pytest.raises(Denied, match="registered in this process"):
        conn.execute("SELECT peek(ssn) FROM users").fetchall()
