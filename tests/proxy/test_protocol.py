"""The protocol's edges: CancelRequest, COPY both ways, malformed and oversized
messages, and a fuzzer over message streams (the proxy never crashes and never
forwards a statement it did not decide)."""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Callable

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .client import RawClient, error_code, fields, msg
from .conftest import SECRETS, Proxy, admin

pytestmark = pytest.mark.postgres


def test_cancel_reaches_the_database(proxy: Proxy, token: Callable[..., str], subject: str) -> None:
    with psycopg.connect(proxy.dsn(token(subject)), autocommit=True) as conn:
        timer = threading.Timer(0.5, conn.cancel)
        timer.start()
        started = time.monotonic()
        with pytest.raises(psycopg.errors.QueryCanceled):
            conn.execute("SELECT pg_sleep(20)")
        assert time.monotonic() - started < 10
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_cancel_with_a_wrong_key_does_nothing(proxy: Proxy, token: Callable[..., str], subject: str) -> None:
    with psycopg.connect(proxy.dsn(token(subject)), autocommit=True) as conn:
        pid = conn.info.backend_pid
        bogus = RawClient(proxy.port)
        bogus.send(struct.pack("!iiii", 16, 80877102, pid, 12345))
        bogus.close()
        assert conn.execute("SELECT pg_sleep(0.3), 1").fetchone() == ("", 1)


def test_copy_out_in_and_masked_copy(proxy: Proxy, token: Callable[..., str], subject: str) -> None:
    with psycopg.connect(proxy.dsn(token(subject)), autocommit=True) as conn:
        with conn.cursor() as cur:
            with cur.copy("COPY sgpx_copy (id, note) FROM STDIN") as copy:
                copy.write_row((1, "one"))
                copy.write_row((2, "two"))
            with cur.copy("COPY (SELECT id, status FROM sgpx_orders ORDER BY id) TO STDOUT") as copy:
                rows = list(copy.rows())
            assert rows[0] == ("10", "paid")
            with pytest.raises(psycopg.errors.InsufficientPrivilege), cur.copy("COPY (SELECT email FROM sgpx_users) TO STDOUT") as copy:
                list(copy.rows())
            with pytest.raises(psycopg.errors.InsufficientPrivilege), cur.copy("COPY sgpx_users TO STDOUT") as copy:
                list(copy.rows())
            with pytest.raises(psycopg.errors.InsufficientPrivilege), cur.copy("COPY sgpx_canary FROM STDIN") as copy:
                copy.write_row((9, "x"))
        assert conn.execute("SELECT 1").fetchone() == (1,)
    assert admin("SELECT count(*) FROM sgpx_copy WHERE note IN ('one', 'two')")[0][0] >= 2
    assert admin("SELECT count(*) FROM sgpx_canary") == [(1,)]


def test_whole_row_values_carrying_masked_columns_never_leak(proxy: Proxy, token: Callable[..., str], subject: str) -> None:
    with psycopg.connect(proxy.dsn(token(subject)), autocommit=True) as conn:
        for text in ("SELECT u FROM sgpx_users u", "SELECT row_to_json(u) FROM sgpx_users u", "SELECT u.*::text FROM sgpx_users u"):
            try:
                rows = conn.execute(text).fetchall()
            except psycopg.errors.InsufficientPrivilege:
                continue
            flat = repr(rows)
            assert not any(s in flat for s in SECRETS), text
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_function_call_interface_is_refused(proxy: Proxy, token: Callable[..., str], subject: str) -> None:
    client = RawClient(proxy.port)
    client.login(token(subject))
    body = struct.pack("!i", 1247) + struct.pack("!h", 0) + struct.pack("!h", 0) + struct.pack("!h", 0)
    client.send(msg(b"F", body))
    got = client.until_ready()
    assert error_code(got) == "42501"
    client.close()


@pytest.mark.parametrize(
    "payload",
    [
        b"Q" + struct.pack("!i", 2),  # length below 4
        b"Q" + struct.pack("!i", 1 << 30),  # longer than the bound
        msg(b"Q", b"SELECT 1"),  # no terminator
        msg(b"P", b"\0SELECT 1\0" + struct.pack("!h", 5)),  # parameter types truncated
        msg(b"B", b"\0\0" + struct.pack("!h", 1) + struct.pack("!h", 7)),  # bad format code
        msg(b"Z", b"I"),  # a backend message from a client
        msg(b"Q", b"SELECT \xff\xfe\0"),  # not UTF-8
    ],
)
def test_malformed_messages_close_that_connection_only(proxy: Proxy, token: Callable[..., str], subject: str, payload: bytes) -> None:
    bystander = RawClient(proxy.port)
    bystander.login(token(subject))
    client = RawClient(proxy.port)
    client.login(token(subject))
    client.send(payload)
    got = client.read_message()
    assert got is not None and got[0] == b"E" and fields(got[1])["C"] == "08P01"
    assert client.read_message() is None
    client.close()
    bystander.send(msg(b"Q", b"SELECT 1\0"))
    assert [k for k, _ in bystander.until_ready()][-1] == b"Z"
    bystander.close()


# -- fuzzing -----------------------------------------------------------------------------
_STATEMENTS = [
    b"INSERT INTO sgpx_canary VALUES (2, 'x')",
    b"UPDATE sgpx_canary SET note = 'changed' WHERE id = 1",
    b"DELETE FROM sgpx_canary WHERE id = 1",
    b"WITH d AS (DELETE FROM sgpx_canary RETURNING *) SELECT 1",
    b"SELECT 1; INSERT INTO sgpx_canary VALUES (3, 'y')",
    b"SELECT id FROM sgpx_orders",
    b"SELECT email FROM sgpx_users",
    b"BEGIN",
    b"COMMIT",
    b"",
]

_names = st.sampled_from([b"", b"s1", b"p1"])


def _parse(name: bytes, text: bytes) -> bytes:
    return msg(b"P", name + b"\0" + text + b"\0" + struct.pack("!h", 0))


def _bind(portal: bytes, name: bytes) -> bytes:
    return msg(b"B", portal + b"\0" + name + b"\0" + struct.pack("!hhh", 0, 0, 0))


_message = st.one_of(
    st.builds(lambda t: msg(b"Q", t + b"\0"), st.sampled_from(_STATEMENTS)),
    st.builds(_parse, _names, st.sampled_from(_STATEMENTS)),
    st.builds(_bind, _names, _names),
    st.builds(lambda p: msg(b"E", p + b"\0" + struct.pack("!i", 0)), _names),
    st.builds(lambda w, n: msg(b"D", w + n + b"\0"), st.sampled_from([b"S", b"P"]), _names),
    st.builds(lambda w, n: msg(b"C", w + n + b"\0"), st.sampled_from([b"S", b"P"]), _names),
    st.just(msg(b"S")),
    st.just(msg(b"H")),
    st.builds(lambda k, b: k + struct.pack("!i", len(b) + 4) + b, st.sampled_from([b"Q", b"P", b"B", b"E", b"D", b"d", b"?"]), st.binary(max_size=24)),
    st.binary(min_size=1, max_size=12),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(_message, min_size=1, max_size=12), st.integers(1, 64))
def test_fuzzed_streams_never_crash_the_proxy_or_reach_the_canary(
    proxy: Proxy, token: Callable[..., str], messages: list[bytes], chunk: int
) -> None:
    client = RawClient(proxy.port, timeout=3)
    assert client.login(token("fuzzer"))[-1][0] == b"Z"
    stream = b"".join(messages) + msg(b"S")
    try:
        for i in range(0, len(stream), chunk):
            client.send(stream[i : i + chunk])
        client.sock.settimeout(0.3)
        while client.read_message() is not None:
            pass
    except OSError:
        pass
    client.close()
    assert proxy.alive()
    assert admin("SELECT id, note FROM sgpx_canary ORDER BY id") == [(1, "untouched")]
    check = RawClient(proxy.port)
    assert check.login(token("fuzzer"))[-1][0] == b"Z"
    check.close()


def test_notices_pass_through_and_a_malformed_listen_fails_closed(proxy: Proxy, token: Callable[..., str], subject: str) -> None:
    notices: list[str] = []
    with psycopg.connect(proxy.dsn(token(subject)), autocommit=True) as conn:
        conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
        conn.execute("CREATE TABLE IF NOT EXISTS sgpx_copy (id int)")
        assert any("already exists" in n for n in notices)
        # LISTEN/NOTIFY are read by the SQL analysis (test_session_log.py); anything else
        # after those words is unparseable, so refused
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("LISTEN sgpx_channel, 'x'")
        assert conn.execute("SELECT pg_notify('sgpx_channel', 'x')").fetchone() == ("",)


def test_database_errors_never_quote_tagged_values(proxy: Proxy, token: Callable[..., str], subject: str) -> None:
    with psycopg.connect(proxy.dsn(token(subject)), autocommit=True) as conn:
        for text in (
            "SELECT email::int FROM sgpx_users",
            "SELECT 1 / (length(ssn) - 11), ssn FROM sgpx_users",
            "SELECT id FROM sgpx_users WHERE ssn::int > 0",  # not in the output: no mask, still read
        ):
            with pytest.raises(psycopg.Error) as info:
                conn.execute(text)
            assert info.value.sqlstate in ("22P02", "22012")
            shown = f"{info.value} {info.value.diag.message_detail} {info.value.diag.context}"
            assert not any(s in shown for s in SECRETS)
            assert "withheld" in str(info.value)
        # without a mask the database's own message comes through
        with pytest.raises(psycopg.errors.InvalidTextRepresentation, match="invalid input syntax"):
            conn.execute("SELECT status::int FROM sgpx_orders")


def test_encodings_that_would_change_the_text_are_refused(proxy: Proxy, token: Callable[..., str], subject: str) -> None:
    with pytest.raises(psycopg.OperationalError, match="client_encoding"):
        psycopg.connect(proxy.dsn(token(subject), client_encoding="SJIS"))
    with psycopg.connect(proxy.dsn(token(subject)), autocommit=True) as conn:
        # The proxy ends the session with a FATAL 22023: the client reads it as that
        # error (InvalidParameterValue) or, when the socket closes first, as a lost
        # connection; either way nothing more runs under that encoding.
        with pytest.raises(psycopg.Error) as refused:
            conn.execute("SET client_encoding = 'BIG5'")
            conn.execute("SELECT 1")
        assert isinstance(refused.value, psycopg.OperationalError) or refused.value.sqlstate == "22023"
        with pytest.raises(psycopg.OperationalError):
            conn.execute("SELECT 1")
