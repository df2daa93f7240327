"""The DB-API adapter over psycopg 3 and the PostgreSQL server: both paramstyles, text
and binary results, server-side cursors and the connection's own shortcuts."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

import subguard
from subguard.adapters import dbapi
from subguard.log import DecisionLog, read_records

from .conftest import PG_DSN, SCHEMA_SQL, TAGS, fill, postgres_or_skip, secret_values

pytestmark = pytest.mark.postgres

psycopg = pytest.importorskip("psycopg")


@pytest.fixture
def pg_raw() -> Iterator[Any]:
    postgres_or_skip()
    schema = "sggate_" + uuid.uuid4().hex[:10]
    with psycopg.connect(PG_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
    conn = psycopg.connect(PG_DSN, options=f"-c search_path={schema}")
    try:
        for statement in SCHEMA_SQL.replace("INTEGER PRIMARY KEY", "integer PRIMARY KEY").split(";"):
            if statement.strip():
                conn.execute(statement)
        fill(conn, "%s")
        yield conn
    finally:
        conn.close()
        with psycopg.connect(PG_DSN, autocommit=True) as admin:
            admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def pg(pg_raw: Any, engine: subguard.Engine) -> dbapi.GuardedConnection:
    return dbapi.guard(
        pg_raw, engine, subject=subguard.Subject("ci-bot", groups={"agents"}),
        resource=subguard.Resource(name="shop", kind="postgres"), session="pg-1", tags=TAGS, mask_key="k",
    )


def test_both_paramstyles_are_placeholders(pg: dbapi.GuardedConnection, log: DecisionLog) -> None:
    cur = pg.cursor()
    cur.execute("SELECT id, status FROM orders WHERE total > %s AND status <> %s ORDER BY id", (10, "pg-s3cr3t"))
    assert cur.fetchall() == [(10, "paid"), (11, "open"), (13, "void")]
    cur.execute("SELECT id FROM orders WHERE status = %(s)s ORDER BY id", {"s": "paid"})
    assert cur.fetchall() == [(10,), (12,)]
    assert "pg-s3cr3t" not in repr([r.state for r in read_records(log.store)])


@pytest.mark.parametrize("binary", [False, True], ids=["text", "binary"])
def test_masks_in_text_and_binary_results(pg: dbapi.GuardedConnection, binary: bool) -> None:
    cur = pg.cursor(binary=binary)
    cur.execute("SELECT id, name, email, ssn, phone, birth_year FROM users WHERE id = %s", (1,))
    assert cur.fetchall() == [(1, "Ann Lee", "****@example.com", "****6789", "****", None)]
    cur.execute("SELECT * FROM users WHERE id = %s", (2,), binary=binary)
    assert cur.fetchone() == (2, "Bo Chan", "****@example.org", "****4321", "****", None)


def test_deny_is_a_psycopg_database_error_and_the_connection_stays_usable(pg: dbapi.GuardedConnection, pg_raw: Any) -> None:
    with pytest.raises(psycopg.DatabaseError) as caught:
        pg.execute("DROP TABLE orders")
    assert isinstance(caught.value, subguard.Denied)
    assert pg.execute("SELECT count(*) FROM orders").fetchone() == (4,)


def test_connection_shortcut_and_composed_statements(pg: dbapi.GuardedConnection) -> None:
    from psycopg import sql

    assert pg.execute("SELECT email FROM users WHERE id = %s", (3,)).fetchone() == ("****@mail.test",)
    query = sql.SQL("SELECT {} FROM {} WHERE id = %s").format(sql.Identifier("ssn"), sql.Identifier("users"))
    assert pg.execute(query, (3,)).fetchone() == ("****3456",)
    with pytest.raises(subguard.Denied):
        pg.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier("users")))


def test_server_side_cursors_are_guarded_and_masked(pg: dbapi.GuardedConnection) -> None:
    with pg.cursor(name="agent_cursor") as cur:
        cur.execute("SELECT email FROM users ORDER BY id")
        assert cur.fetchmany(2) == [("****@example.com",), ("****@example.org",)]
    with pytest.raises(subguard.Denied), pg.cursor(name="agent_cursor_2") as cur:
        cur.execute("TRUNCATE users")


def test_stream_is_masked_and_copy_is_refused_under_a_mask(pg: dbapi.GuardedConnection) -> None:
    cur = pg.cursor()
    assert list(cur.stream("SELECT email FROM users ORDER BY id")) == [
        ("****@example.com",), ("****@example.org",), ("****@mail.test",)
    ]
    with pytest.raises(subguard.Denied):
        cur.copy("COPY (SELECT email FROM users) TO STDOUT")


@pytest.mark.parametrize("sql", ["SELECT email, u FROM users u", "SELECT email, row_to_json(u) FROM users u"])
def test_whole_row_references_under_a_mask_never_leak(pg: dbapi.GuardedConnection, sql: str) -> None:
    # `u` is the whole row, so it carries every masked column: the analysis expands it to
    # every column of `users` and the gate masks the whole value (a record is not text: NULL)
    rows = pg.execute(sql).fetchall()
    assert [r[1] for r in rows] == [None, None, None]
    assert not any(v in repr(rows) for v in secret_values())


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT to_json(u.*) FROM users u",
        "SELECT row_to_json(u) FROM users u",
        "SELECT u FROM users u",
        "SELECT name, (SELECT json_agg(x) FROM users x) FROM users",
        "SELECT email, to_json(u.*) FROM users u",
    ],
)
def test_tagged_columns_carried_by_whole_rows_are_masked(pg: dbapi.GuardedConnection, sql: str) -> None:
    # A whole-row value or `u.*` inside a function carries every column of `users`: the
    # analysis lists them, the policy's mask rule fires, and the gate masks the whole value
    rows = pg.execute(sql).fetchall()
    assert rows
    assert not any(v in repr(rows) for v in secret_values())


def test_untagged_whole_rows_still_run(pg: dbapi.GuardedConnection) -> None:
    rows = pg.execute("SELECT to_json(o.*) FROM orders o WHERE id = 10").fetchall()
    assert rows[0][0]["status"] == "paid"
    assert not any(v in repr(rows) for v in secret_values())


def test_introspection_leaves_no_transaction_open(pg_raw: Any, engine: subguard.Engine) -> None:
    pg_raw.commit()
    dbapi.guard(pg_raw, engine, subject="ci-bot", resource={"name": "shop", "kind": "postgres"}, session="pg-2", tags=TAGS)
    assert pg_raw.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_revocation_closes_the_psycopg_connection(pg: dbapi.GuardedConnection, pg_raw: Any, log: DecisionLog) -> None:
    pg.execute("SELECT 1")
    log.revoke("ci-bot", reason="offboarded")
    deadline = time.monotonic() + 1.0
    while not pg_raw.closed and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pg_raw.closed and pg.closed
    with pytest.raises(psycopg.DatabaseError) as caught:
        pg.execute("SELECT 1")
    assert isinstance(caught.value, subguard.Terminated)


def test_ddl_refreshes_the_schema(pg: dbapi.GuardedConnection, engine: subguard.Engine, pg_raw: Any) -> None:
    conn = dbapi.guard(
        pg_raw, engine, subject="ci-bot", resource={"name": "shop", "kind": "postgres"}, session="pg-3",
        tags={"notes.body": ["mask:redact"]},
    )
    conn.execute("CREATE TABLE notes (id integer, body text)")
    conn.execute("INSERT INTO notes VALUES (%s, %s)", (1, "private"))
    assert conn.execute("SELECT * FROM notes").fetchall() == [(1, "****")]


def test_dict_rows_are_masked_and_custom_row_factories_refused(pg: dbapi.GuardedConnection) -> None:
    from psycopg.rows import class_row, dict_row

    cur = pg.cursor(row_factory=dict_row)
    cur.execute("SELECT name, email FROM users WHERE id = %s", (1,))
    assert cur.fetchall() == [{"name": "Ann Lee", "email": "****@example.com"}]

    class Person:
        def __init__(self, **values: Any) -> None:
            self.values = values

    with pytest.raises(TypeError):
        pg.cursor(row_factory=class_row(Person))
