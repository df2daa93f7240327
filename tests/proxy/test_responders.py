"""Responders in other processes act on live proxy sessions: an approval releases a
held statement, a revocation or a kill closes idle connections within a second; a
terminate decision and a token's expiry end the session too."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable

import psycopg
import pytest

from .client import RawClient, error_code, fields
from .conftest import Proxy, admin, cli

pytestmark = pytest.mark.postgres


def _wait_fatal(client: RawClient, seconds: float) -> tuple[float, str | None]:
    started = time.monotonic()
    client.sock.settimeout(seconds)
    got = client.read_message()
    elapsed = time.monotonic() - started
    if got is None:
        return elapsed, None
    kind, body = got
    assert kind == b"E"
    f = fields(body)
    assert f["S"] == "FATAL"
    return elapsed, f["C"]


def test_held_statement_runs_once_approved_from_another_process(proxy: Proxy, token: Callable[..., str], subject: str) -> None:
    admin("INSERT INTO sgpx_orders VALUES (70, 3, 1, 'held') ON CONFLICT DO NOTHING")
    notices: list[str] = []
    result: dict[str, object] = {}
    conn = psycopg.connect(proxy.dsn(token(subject)), autocommit=True)
    conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))

    def agent() -> None:
        try:
            result["rows"] = conn.execute("UPDATE sgpx_orders SET status = status").rowcount
        except Exception as exc:
            result["error"] = exc

    thread = threading.Thread(target=agent)
    thread.start()
    deadline = time.monotonic() + 20
    while not notices and time.monotonic() < deadline:
        time.sleep(0.02)
    assert notices, "no notice named the approval"
    match = re.search(r"held for approval ([0-9a-f-]{36})", notices[0])
    assert match and "subguard approve" in notices[0]
    done = cli("approve", match.group(1), "--by", "alice", store=proxy.store)
    assert done.returncode == 0, done.stderr
    thread.join(30)
    conn.close()
    assert "error" not in result, result
    assert isinstance(result["rows"], int) and result["rows"] >= 1


def test_held_statement_rejected_from_another_process(proxy: Proxy, token: Callable[..., str], subject: str) -> None:
    notices: list[str] = []
    result: dict[str, object] = {}
    with psycopg.connect(proxy.dsn(token(subject)), autocommit=True) as conn:
        conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))

        def agent() -> None:
            try:
                conn.execute("DELETE FROM sgpx_orders")
            except psycopg.Error as exc:
                result["sqlstate"] = exc.sqlstate

        thread = threading.Thread(target=agent)
        thread.start()
        deadline = time.monotonic() + 20
        while not notices and time.monotonic() < deadline:
            time.sleep(0.02)
        approval = re.search(r"held for approval ([0-9a-f-]{36})", notices[0])
        assert approval is not None
        done = cli("reject", approval.group(1), "--by", "alice", "--reason", "not today", store=proxy.store)
        assert done.returncode == 0, done.stderr
        thread.join(30)
        assert result == {"sqlstate": "42501"}
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert admin("SELECT count(*) > 0 FROM sgpx_orders") == [(True,)]


def test_revocation_closes_an_idle_connection_within_a_second(proxy: Proxy, token: Callable[..., str], subject: str) -> None:
    client = RawClient(proxy.port)
    assert client.login(token(subject))[-1][0] == b"Z"
    other = RawClient(proxy.port)
    assert other.login(token(subject + "-other"))[-1][0] == b"Z"
    done = cli("revoke", subject, "--reason", "offboarded", store=proxy.store)
    assert done.returncode == 0, done.stderr
    # the CLI returned once the revocation was committed; the proxy follows the log
    elapsed, code = _wait_fatal(client, 5)
    assert code == "57P01"
    assert elapsed < 1.0
    # another subject's session is untouched
    other.send(b"Q" + (len(b"SELECT 1\0") + 4).to_bytes(4, "big") + b"SELECT 1\0")
    assert [m[0] for m in other.until_ready()][-1] == b"Z"
    # and the revoked subject cannot log in again: no database connection for it
    again = RawClient(proxy.port)
    assert error_code(again.login(token(subject))) == "28000"
    for c in (client, other, again):
        c.close()


def test_kill_closes_that_session(proxy: Proxy, token: Callable[..., str], subject: str) -> None:
    with psycopg.connect(proxy.dsn(token(subject), application_name="sgpx-kill"), autocommit=True) as conn:
        conn.execute("SELECT 1")
        sessions = cli("sessions", "--format", "jsonl", store=proxy.store)
        assert sessions.returncode == 0, sessions.stderr
        import json

        mine = [s for s in (json.loads(line) for line in sessions.stdout.splitlines() if line.strip()) if s.get("subject") == subject]
        assert mine, sessions.stdout
        done = cli("kill", mine[0]["session"], "--reason", "incident", store=proxy.store)
        assert done.returncode == 0, done.stderr
        _wait_for(lambda: conn.closed or conn.pgconn.status != 0, 3)  # closed by the proxy
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")


def test_terminate_decision_closes_the_connection(proxy: Proxy, token: Callable[..., str], subject: str) -> None:
    client = RawClient(proxy.port)
    client.login(token(subject))
    client.send(b"Q" + (len(b"SELECT * FROM sgpx_vault\0") + 4).to_bytes(4, "big") + b"SELECT * FROM sgpx_vault\0")
    got = client.read_message()
    assert got is not None and got[0] == b"E"
    assert fields(got[1])["C"] == "57P01" and fields(got[1])["S"] == "FATAL"
    assert client.read_message() is None  # closed
    client.close()


def test_token_expiry_ends_the_session(proxy: Proxy, token: Callable[..., str], subject: str) -> None:
    client = RawClient(proxy.port)
    assert client.login(token(subject, expires_in=2))[-1][0] == b"Z"
    _elapsed, code = _wait_fatal(client, 6)
    assert code == "57P01"
    client.close()


def test_cancel_while_held_refuses_the_statement(proxy: Proxy, token: Callable[..., str], subject: str) -> None:
    notices: list[str] = []
    with psycopg.connect(proxy.dsn(token(subject)), autocommit=True) as conn:
        conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
        timer = threading.Thread(target=lambda: (_wait_for(lambda: bool(notices)), conn.cancel()))
        timer.start()
        started = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute("UPDATE sgpx_orders SET status = 'cancelled-update'")
        assert time.monotonic() - started < 10
        timer.join(5)
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert admin("SELECT count(*) FROM sgpx_orders WHERE status = 'cancelled-update'") == [(0,)]


def _wait_for(condition: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
