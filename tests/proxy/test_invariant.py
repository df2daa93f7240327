"""The proxy's central invariant, under fuzzed message streams: every Query and Parse
it forwards to the database carries exactly a text the gate decided (allow or mask)
for that session; the messages the proxy writes for itself are the only others."""

from __future__ import annotations

import struct
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from subguard.adapters.postgres import ProxyServer
from subguard.adapters.postgres.results import Owed
from subguard.adapters.postgres.session import ProxySession
from subguard.engine import Effect

from .client import RawClient, msg
from .conftest import SETUP_SQL, admin, make_token, postgres_or_skip
from .inprocess import running_proxy
from .test_protocol import _message

pytestmark = pytest.mark.postgres

_lock = threading.Lock()
_decided: dict[int, set[str]] = {}  # id(session) → texts the gate let through
_violations: list[str] = []
_forwarded: list[str] = []


def _text_of(data: bytes) -> str:
    if data[:1] == b"Q":
        return data[5:].split(b"\0", 1)[0].decode()
    return data[5:].split(b"\0", 2)[1].decode()  # Parse: name, then the text


@pytest.fixture(scope="module")
def watched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProxyServer]:
    postgres_or_skip()
    admin(SETUP_SQL)
    real_judge = ProxySession._judge
    real_forward = ProxySession._forward

    def judge(self: ProxySession, text: str, decision: Any = None) -> Any:
        prepared = real_judge(self, text, decision)
        assert prepared.decision.effect in (Effect.ALLOW, Effect.MASK)
        with _lock:
            _decided.setdefault(id(self), set()).add(text)
        return prepared

    def forward(self: ProxySession, data: bytes, owed: Owed | None = None) -> None:
        if data[:1] in (b"Q", b"P") and not (owed is not None and owed.swallow):
            text = _text_of(data)
            with _lock:
                _forwarded.append(text)
                if text not in _decided.get(id(self), set()):
                    _violations.append(text)
        real_forward(self, data, owed)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ProxySession, "_judge", judge)
        patch.setattr(ProxySession, "_forward", forward)
        with running_proxy(tmp_path_factory.mktemp("invariant")) as (server, _):
            yield server


def test_allowed_statements_are_forwarded_as_decided(watched: ProxyServer) -> None:
    client = RawClient(watched.config.listen[1])
    client.login(make_token("inv-plain"))
    client.send(msg(b"Q", b"SELECT id FROM sgpx_orders\0"))
    client.until_ready()
    client.send(msg(b"P", b"s\0SELECT 1\0" + struct.pack("!h", 0)) + msg(b"S"))
    client.until_ready()
    client.close()
    with _lock:
        assert "SELECT id FROM sgpx_orders" in _forwarded and "SELECT 1" in _forwarded
        assert _violations == []


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(_message, min_size=1, max_size=14), st.integers(1, 64))
def test_fuzzed_streams_forward_only_decided_texts(watched: ProxyServer, messages: list[bytes], chunk: int) -> None:
    client = RawClient(watched.config.listen[1], timeout=3)
    assert client.login(make_token("inv-fuzz"))[-1][0] == b"Z"
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
    with _lock:
        assert _violations == []
    assert admin("SELECT id, note FROM sgpx_canary ORDER BY id") == [(1, "untouched")]
