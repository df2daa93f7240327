"""Login: a token as the password; a bad or expired one gets 28P01 and no database
connection is ever opened for it. Startup requests the proxy refuses."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from subguard.adapters.postgres import ProxyServer

from .client import RawClient, error_code, fields
from .conftest import make_token, postgres_or_skip
from .inprocess import running_proxy

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def inproc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ProxyServer, dict[str, int]]]:
    postgres_or_skip()
    from .conftest import SETUP_SQL, admin

    admin(SETUP_SQL)
    with running_proxy(tmp_path_factory.mktemp("login")) as running:
        yield running


def _login(server: ProxyServer, token: str, **params: str) -> list[tuple[bytes, bytes]]:
    client = RawClient(server.config.listen[1])
    try:
        return client.login(token, **params)
    finally:
        client.close()


@pytest.mark.parametrize(
    ("token", "reason"),
    [
        (make_token(expires_in=-30), "expired"),
        (make_token(secret="another-secret-" + "z" * 32), "bad_signature"),
        (make_token(nbf=int(time.time()) + 600), "not_yet_valid"),
        ("not-a-token", "malformed"),
        ("", "malformed"),
        (make_token(groups=()).rsplit(".", 1)[0] + ".", "bad_signature"),
    ],
)
def test_bad_token_gets_28P01_and_no_upstream_connection(inproc: tuple[ProxyServer, dict[str, int]], token: str, reason: str) -> None:
    server, counts = inproc
    before = counts["upstream"]
    got = _login(server, token)
    assert error_code(got) == "28P01"
    err = fields(next(b for k, b in got if k == b"E"))
    assert err["S"] == "FATAL" and reason in err["M"]
    assert counts["upstream"] == before


def test_good_token_opens_one_upstream_connection(inproc: tuple[ProxyServer, dict[str, int]]) -> None:
    server, counts = inproc
    before = counts["upstream"]
    got = _login(server, make_token("login-ok"))
    assert got[-1][0] == b"Z"
    kinds = [k for k, _ in got]
    assert b"K" in kinds and b"S" in kinds  # BackendKeyData, ParameterStatus relayed
    assert counts["upstream"] == before + 1


def test_refused_startups(inproc: tuple[ProxyServer, dict[str, int]]) -> None:
    server, counts = inproc
    before = counts["upstream"]
    assert error_code(_login(server, make_token(), replication="database")) == "28000"
    assert error_code(_login(server, make_token(), database="postgres")) == "3D000"
    assert counts["upstream"] == before


def test_ssl_and_gss_requests_are_declined_without_a_certificate(inproc: tuple[ProxyServer, dict[str, int]]) -> None:
    server, _ = inproc
    client = RawClient(server.config.listen[1])
    client.send((8).to_bytes(4, "big") + (80877104).to_bytes(4, "big"))  # GSSENCRequest
    assert client.sock.recv(1) == b"N"
    client.send((8).to_bytes(4, "big") + (80877103).to_bytes(4, "big"))  # SSLRequest
    assert client.sock.recv(1) == b"N"
    assert client.login(make_token())[-1][0] == b"Z"
    client.close()


def test_slow_startup_is_closed(tmp_path: Path) -> None:
    postgres_or_skip()
    with running_proxy(tmp_path) as (server, counts):
        client = RawClient(server.config.listen[1], timeout=15)
        client.send(b"\x00\x00")  # half a length, then nothing: a slowloris
        started = time.monotonic()
        got = client.read_message()
        assert time.monotonic() - started < 10
        assert got is None or fields(got[1]).get("C") == "08006"
        client.close()
        assert counts["upstream"] == 0




def test_unreachable_database_is_a_postgres_error(tmp_path: Path) -> None:
    with running_proxy(tmp_path, introspect=False, upstream="postgresql://postgres@127.0.0.1:1/test") as (server, _):
        got = _login(server, make_token("nowhere"))
        err = fields(next(b for k, b in got if k == b"E"))
        assert (err["S"], err["C"]) == ("FATAL", "08006")


def test_many_idle_connections(inproc: tuple[ProxyServer, dict[str, int]]) -> None:
    server, _ = inproc
    clients = []
    try:
        for i in range(40):
            client = RawClient(server.config.listen[1])
            assert client.login(make_token(f"idle-{i}"))[-1][0] == b"Z"
            clients.append(client)
        last = clients[-1]
        last.send(b"Q" + (len(b"SELECT 1\0") + 4).to_bytes(4, "big") + b"SELECT 1\0")
        assert [k for k, _ in last.until_ready()][-1] == b"Z"
        assert len(server.live) >= 40
    finally:
        for client in clients:
            client.close()


def test_session_start_and_end_are_logged(inproc: tuple[ProxyServer, dict[str, int]], caplog: pytest.LogCaptureFixture) -> None:
    server, _ = inproc
    caplog.set_level("INFO", logger="subguard.proxy")
    _login(server, make_token("logged-bot"), application_name="nightly-job")

    def mine() -> list[str]:
        return [r.getMessage() for r in caplog.records if r.name == "subguard.proxy"]

    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not any("logged-bot" in line for line in mine()):
        time.sleep(0.05)
    time.sleep(0.2)  # the end follows the client's disconnect
    lines = mine()
    started = next(line for line in lines if line.startswith("session started") and "logged-bot" in line)
    assert "subject='logged-bot'" in started and "application_name='nightly-job'" in started and "peer='127.0.0.1:" in started
    assert any(line.startswith("session ended") for line in lines)
