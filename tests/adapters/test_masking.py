"""Masking real rows: masks placed by output-column lineage, every strategy, the column's
type kept, and a mask that cannot be placed refusing the request."""

from __future__ import annotations

import hashlib
import hmac
import sqlite3

import pytest

import subguard
from subguard.adapters import dbapi

from .conftest import TAGS

KEY = "test-mask-key"


def h(value: str) -> str:
    return "h:" + hmac.new(KEY.encode(), value.encode(), hashlib.sha256).hexdigest()[:24]


@pytest.fixture
def conn(raw: sqlite3.Connection, engine: subguard.Engine) -> dbapi.GuardedConnection:
    return dbapi.guard(
        raw, engine, subject="ci-bot", resource={"name": "shop", "kind": "sqlite"}, session="s1",
        tags=TAGS, mask_key=KEY,
    )


def rows(conn: dbapi.GuardedConnection, sql: str) -> list[tuple[object, ...]]:
    return conn.execute(sql).fetchall()


def test_every_strategy_on_direct_columns(conn: dbapi.GuardedConnection) -> None:
    got = rows(conn, "SELECT name, email, ssn, phone, birth_year FROM users WHERE id = 1")
    assert got == [("Ann Lee", "****@example.com", "****6789", "****", None)]
    assert rows(conn, "SELECT card FROM payments ORDER BY id") == [(h("4111111111111111"),), (h("5500005555555559"),)]


def test_star_is_expanded_from_the_schema(conn: dbapi.GuardedConnection) -> None:
    assert rows(conn, "SELECT * FROM users WHERE id = 2") == [(2, "Bo Chan", "****@example.org", "****4321", "****", None)]
    assert rows(conn, "SELECT u.*, o.total FROM users u JOIN orders o ON o.user_id = u.id WHERE o.id = 12") == [
        (2, "Bo Chan", "****@example.org", "****4321", "****", None, 5.25)
    ]


def test_expressions_over_masked_columns_are_masked_whole(conn: dbapi.GuardedConnection) -> None:
    got = rows(conn, "SELECT upper(email), substr(ssn, 1, 4), '@' || email, length(email), birth_year + 1 FROM users WHERE id = 1")
    # partial and email keep part of a stored value only; a computed one is masked whole,
    # and a non-text value becomes NULL
    assert got == [("****", "****", "****", None, None)]


def test_hash_is_stable_so_group_by_and_joins_still_work(conn: dbapi.GuardedConnection) -> None:
    got = rows(conn, "SELECT card, count(*) FROM payments GROUP BY card ORDER BY card")
    assert got == sorted([(h("4111111111111111"), 1), (h("5500005555555559"), 1)])
    again = rows(conn, "SELECT p.card FROM payments p JOIN orders o ON o.id = p.order_id WHERE o.id = 10")
    assert again == [(h("4111111111111111"),)]


def test_joins_ctes_and_subqueries(conn: dbapi.GuardedConnection) -> None:
    assert rows(conn, "WITH x AS (SELECT id, email AS contact FROM users) SELECT contact FROM x WHERE id = 3") == [("****@mail.test",)]
    assert rows(conn, "SELECT c FROM (SELECT ssn AS c, id FROM users) t WHERE t.id = 3") == [("****3456",)]
    assert rows(conn, "SELECT (SELECT email FROM users WHERE id = 1) AS e") == [("****",)]
    assert rows(conn, "SELECT o.id, u.phone FROM orders o JOIN users u ON u.id = o.user_id WHERE o.id = 13") == [(13, "****")]
    assert rows(conn, "SELECT email FROM users WHERE id = 1 UNION ALL SELECT name FROM users WHERE id = 2") == [("****",), ("****",)]


def test_star_inside_an_expression_carries_every_column(conn: dbapi.GuardedConnection) -> None:
    assert rows(conn, "SELECT json_array(u.id, u.email) FROM users u WHERE id = 1") == [("****",)]


def test_unmasked_columns_and_types_are_untouched(conn: dbapi.GuardedConnection) -> None:
    got = rows(conn, "SELECT id, name, id * 2, birth_year IS NULL FROM users ORDER BY id")
    assert got == [(1, "Ann Lee", 2, None), (2, "Bo Chan", 4, None), (3, "Cy Diaz", 6, None)]  # IS NULL over a masked column is masked too
    assert rows(conn, "SELECT total, status FROM orders WHERE id = 10") == [(25.5, "paid")]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT u.email, a.* FROM users u JOIN users_archive a ON a.id = u.id",  # `*` without schema
        "SELECT email FROM users WHERE id = 1; SELECT 1",
    ],
)
def test_a_mask_that_cannot_be_placed_refuses(conn: dbapi.GuardedConnection, raw: sqlite3.Connection, sql: str) -> None:
    raw.execute("CREATE TABLE IF NOT EXISTS users_archive AS SELECT * FROM users")
    # users_archive is not in the gate's schema (created behind its back): its columns
    # are unknown, and `email` below must not come back in clear
    with pytest.raises(subguard.Denied) as caught:
        conn.execute(sql)
    assert isinstance(caught.value, sqlite3.DatabaseError)


def test_unknown_lineage_under_a_mask_refuses(conn: dbapi.GuardedConnection, raw: sqlite3.Connection) -> None:
    raw.execute("CREATE TABLE users_archive AS SELECT * FROM users")
    with pytest.raises(subguard.Denied):
        conn.execute("SELECT a.email, u.email FROM users_archive a JOIN users u ON u.id = a.id")


def test_hash_key_comes_from_the_environment(raw: sqlite3.Connection, engine: subguard.Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUBGUARD_MASK_KEY", KEY)
    conn = dbapi.guard(raw, engine, subject="ci-bot", resource={"name": "shop", "kind": "sqlite"}, session="s1", tags=TAGS)
    assert rows(conn, "SELECT card FROM payments WHERE id = 100") == [(h("4111111111111111"),)]


def test_a_mask_with_an_unknown_strategy_refuses(raw: sqlite3.Connection, engine: subguard.Engine) -> None:
    conn = dbapi.guard(
        raw, engine, subject="ci-bot", resource={"name": "shop", "kind": "sqlite"}, session="s1",
        tags={"users.email": ["mask:rot13"]},
    )
    with pytest.raises(subguard.Denied):
        conn.execute("SELECT email FROM users")
    assert conn.execute("SELECT name FROM users WHERE id = 1").fetchall() == [("Ann Lee",)]


def test_masks_apply_to_fetchone_fetchmany_and_iteration(conn: dbapi.GuardedConnection) -> None:
    cur = conn.cursor()
    cur.execute("SELECT email FROM users ORDER BY id")
    assert cur.fetchone() == ("****@example.com",)
    assert cur.fetchmany(1) == [("****@example.org",)]
    assert list(cur) == [("****@mail.test",)]


def test_a_given_schema_in_the_wrong_column_order_is_caught(raw: sqlite3.Connection, engine: subguard.Engine) -> None:
    # the schema says email comes second; the table has it third: `*` would put the mask
    # on `name` and return the emails in clear, so the result is refused instead
    schema = {"users": {"id": "integer", "email": {"type": "text", "tags": ["mask:redact"]}, "name": "text", "ssn": "text", "phone": "text", "birth_year": "integer"}}
    conn = dbapi.guard(raw, engine, subject="ci-bot", resource=subguard.Resource(name="shop", kind="sqlite", schema=schema), session="s1")
    with pytest.raises(subguard.Denied):
        conn.execute("SELECT * FROM users").fetchall()
    assert conn.execute("SELECT email FROM users WHERE id = 1").fetchall() == [("****",)]


def test_repeated_column_names_in_a_cte_are_placed(conn: dbapi.GuardedConnection) -> None:
    # SQLite names the second `email` of q `email:1`: still the column the mask was placed on
    got = rows(conn, "WITH q AS (SELECT u.email, u.* FROM users u WHERE id = 1) SELECT * FROM q")
    assert got == [("****@example.com", 1, "Ann Lee", "****@example.com", "****6789", "****", None)]
