"""Fixtures for the gate and the DB-API adapter: a policy, a sample SQLite database, and
engines over memory and SQLite decision logs."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import subguard
from subguard.log import DecisionLog, open_log

PG_DSN = os.environ.get("SUBGUARD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")

POLICY = '''package gate.test

import input.sql.statements

terminate contains "COPY TO PROGRAM" if {
    some s in statements
    s.copy_program
}

terminate contains "reading the secrets table ends the session" if {
    "secrets" in input.sql.tables_read
}

deny contains msg if {
    some s in statements
    s.kind in {"drop", "truncate"}
    msg := sprintf("%s is never allowed", [upper(s.kind)])
}

deny contains "unparseable SQL" if {
    some s in statements
    s.kind == "unparseable"
}

approve contains "unbounded write" if {
    some s in statements
    s.kind in {"update", "delete"}
    not s.has_where
}

mask[key] := strategy if {
    some c in input.sql.columns_read
    c.in_output
    some tag in c.tags
    startswith(tag, "mask:")
    key := sprintf("%s.%s", [c.table, c.column])
    strategy := substring(tag, 5, -1)
}

default allow := true
'''

#: Tags of the sample database: each `mask:STRATEGY` tag asks for that strategy.
TAGS = {
    "users.email": ["pii", "mask:email"],
    "users.ssn": ["pii", "mask:partial:4"],
    "users.phone": ["pii", "mask:redact"],
    "users.birth_year": ["pii", "mask:null"],
    "payments.card": ["pci", "mask:hash"],
}

SCHEMA_SQL = """
CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, email TEXT, ssn TEXT, phone TEXT, birth_year INTEGER);
CREATE TABLE orders (id INTEGER PRIMARY KEY, user_id INTEGER, total REAL, status TEXT);
CREATE TABLE payments (id INTEGER PRIMARY KEY, order_id INTEGER, card TEXT, amount REAL);
CREATE TABLE secrets (id INTEGER PRIMARY KEY, value TEXT);
"""

USERS = [
    (1, "Ann Lee", "ann.lee@example.com", "123-45-6789", "+1 555 0101", 1980),
    (2, "Bo Chan", "bo@example.org", "987-65-4321", "+1 555 0102", 1991),
    (3, "Cy Diaz", "cy.diaz@mail.test", "555-12-3456", "+1 555 0103", 1975),
]
ORDERS = [(10, 1, 25.5, "paid"), (11, 1, 99.0, "open"), (12, 2, 5.25, "paid"), (13, 3, 12.0, "void")]
PAYMENTS = [(100, 10, "4111111111111111", 25.5), (101, 12, "5500005555555559", 5.25)]


def fill(conn: Any, placeholder: str = "?") -> None:
    cur = conn.cursor()
    for table, rows in (("users", USERS), ("orders", ORDERS), ("payments", PAYMENTS)):
        marks = ", ".join([placeholder] * len(rows[0]))
        cur.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
    conn.commit()


@pytest.fixture(scope="session")
def policy_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("policy")
    (d / "gate.guard").write_text(POLICY)
    return d


@pytest.fixture(scope="session")
def policy(policy_dir: Path) -> subguard.Policy:
    return subguard.load_policy(policy_dir)


@pytest.fixture
def log() -> Iterator[DecisionLog]:
    with open_log("memory://", poll_interval=0.01) as opened:
        yield opened


@pytest.fixture
def engine(policy: subguard.Policy, log: DecisionLog) -> subguard.Engine:
    return subguard.Engine(policy, log=log)


@pytest.fixture
def raw() -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    conn.executescript(SCHEMA_SQL)
    fill(conn)
    yield conn
    conn.close()


def secret_values() -> list[str]:
    """Every value of a masked column in the sample data, as text."""
    out = []
    for row in USERS:
        out.extend([row[2], row[3], row[4], str(row[5])])
    out.extend(p[2] for p in PAYMENTS)
    return out


def postgres_or_skip() -> None:
    try:
        import psycopg

        with psycopg.connect(PG_DSN, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        message = f"PostgreSQL at {PG_DSN} is not available ({type(exc).__name__})"
        if os.environ.get("SUBGUARD_REQUIRE_POSTGRES") == "1":
            pytest.fail(message + " and SUBGUARD_REQUIRE_POSTGRES=1", pytrace=False)
        pytest.skip(message)
