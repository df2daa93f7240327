"""The PostgreSQL proxy under test: a real `subguard proxy postgres --config` process in
front of the real server, a SQLite decision log responders reach from other processes,
tokens signed with the test secret, and sample tables (prefixed `sgpx_`)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_DSN = os.environ.get("SUBGUARD_TEST_POSTGRES", f"postgresql://postgres@{PG_HOST}:{PG_PORT}/test")
SECRET = "proxy-test-secret-" + "k" * 32

POLICY = '''package proxy.test

import input.sql.statements

terminate contains "reading the vault ends the session" if {
    "sgpx_vault" in input.sql.tables_read
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

deny contains "the canary is never written" if {
    "sgpx_canary" in input.sql.tables_written
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

TAGS = {
    "sgpx_users.email": ["pii", "mask:email"],
    "sgpx_users.ssn": ["pii", "mask:partial:4"],
    "sgpx_users.phone": ["pii", "mask:redact"],
    "sgpx_users.age": ["pii", "mask:null"],
}

SETUP_SQL = """
DROP TABLE IF EXISTS sgpx_users, sgpx_orders, sgpx_canary, sgpx_vault, sgpx_copy;
CREATE TABLE sgpx_users (id int PRIMARY KEY, name text, email text, ssn varchar(11), phone text, age int);
CREATE TABLE sgpx_orders (id int PRIMARY KEY, user_id int, total numeric, status text);
CREATE TABLE sgpx_canary (id int PRIMARY KEY, note text);
CREATE TABLE sgpx_vault (id int PRIMARY KEY, secret text);
CREATE TABLE sgpx_copy (id int, note text);
INSERT INTO sgpx_users VALUES
  (1, 'Ann Lee', 'ann.lee@example.com', '123-45-6789', '+1 555 0101', 44),
  (2, 'Bo Chan', 'bo@example.org', '987-65-4321', '+1 555 0102', 33),
  (3, 'Cy Diaz', 'cy.diaz@mail.test', '555-12-3456', '+1 555 0103', 51);
INSERT INTO sgpx_orders VALUES (10, 1, 25.5, 'paid'), (11, 1, 99.0, 'open'), (12, 2, 5.25, 'paid');
INSERT INTO sgpx_canary VALUES (1, 'untouched');
INSERT INTO sgpx_vault VALUES (1, 'top secret');
"""

#: Every value of a masked column, as text: none may ever reach a client.
SECRETS = [
    v
    for row in [
        ("ann.lee@example.com", "123-45-6789", "+1 555 0101", "44"),
        ("bo@example.org", "987-65-4321", "+1 555 0102", "33"),
        ("cy.diaz@mail.test", "555-12-3456", "+1 555 0103", "51"),
    ]
    for v in row
]


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


def admin(sql: str) -> list[tuple[Any, ...]]:
    """Run SQL directly on the database (not through the proxy)."""
    import psycopg

    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        cur = conn.execute(sql)
        return cur.fetchall() if cur.description else []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def subguard_command() -> list[str]:
    exe = shutil.which("subguard")
    return [exe] if exe else [sys.executable, "-m", "subguard"]


def cli(*args: str, store: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*subguard_command(), *args, "--store", store], capture_output=True, text=True, timeout=60, check=False
    )


def make_token(subject: str = "bot", groups: tuple[str, ...] = ("agents",), *, expires_in: float = 3600, secret: str = SECRET, **claims: Any) -> str:
    now = int(time.time())
    doc: dict[str, Any] = {"sub": subject, "groups": list(groups), "iat": now, "exp": now + expires_in, **claims}
    return jwt.encode(doc, secret, algorithm="HS256")


class Proxy:
    """A running proxy process."""

    def __init__(self, directory: Path, port: int, store: str, process: subprocess.Popen[str]) -> None:
        self.directory = directory
        self.port = port
        self.store = store
        self.process = process

    def dsn(self, token: str, **extra: str) -> str:
        parts = {"host": "127.0.0.1", "port": str(self.port), "dbname": "test", "user": "agent", "password": token, **extra}
        return " ".join(f"{k}={v}" for k, v in parts.items())

    def alive(self) -> bool:
        return self.process.poll() is None


def write_setup(directory: Path, port: int, *, approval_timeout: float = 20.0, extra: str = "") -> Path:
    (directory / "rules").mkdir(exist_ok=True)
    (directory / "rules" / "proxy.guard").write_text(POLICY)
    (directory / "jwt.secret").write_text(SECRET + "\n")
    (directory / "tags.json").write_text(json.dumps(TAGS))
    config = directory / "subguard.toml"
    config.write_text(
        f"""
[proxy]
listen = "127.0.0.1:{port}"
startup_timeout = 5

[policy]
rules = ["rules"]

[store]
url = "sqlite:///log.db"

[identity]
jwt_secret_file = "jwt.secret"

[approval]
timeout = {approval_timeout}

[resource]
name = "test"
upstream = "{PG_DSN}"
tags_file = "tags.json"
{extra}
"""
    )
    return config


def start_proxy(directory: Path, config: Path, port: int) -> subprocess.Popen[str]:
    with open(directory / "proxy.stderr", "w") as errors:  # a pipe nobody reads would fill up
        process = subprocess.Popen(
            [*subguard_command(), "proxy", "postgres", "--config", str(config)],
            stdout=subprocess.DEVNULL, stderr=errors, text=True, cwd=directory,
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the proxy exited: {(directory / 'proxy.stderr').read_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the proxy did not start listening")


@pytest.fixture(autouse=True)
def _sigpipe_ignored() -> Iterator[None]:
    """`subguard`'s main() (run in-process by CLI tests) restores SIGPIPE's default so a
    closed pipe ends the command quietly; in this process a send to a socket the proxy
    closed must raise instead of killing the test run."""
    import signal

    previous = signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    yield
    signal.signal(signal.SIGPIPE, previous)


@pytest.fixture(scope="session")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxy]:
    postgres_or_skip()
    admin(SETUP_SQL)
    directory = tmp_path_factory.mktemp("proxy")
    port = free_port()
    config = write_setup(directory, port)
    process = start_proxy(directory, config, port)
    yield Proxy(directory, port, f"sqlite:///{directory}/log.db", process)
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture
def token() -> Callable[..., str]:
    return make_token


@pytest.fixture
def subject() -> str:
    """A fresh subject per test: revocations in one test never reach another."""
    return f"bot-{uuid.uuid4().hex[:8]}"
