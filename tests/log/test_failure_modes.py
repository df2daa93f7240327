"""Issue 9, log side: no hang, validated timeouts and URLs, clear errors, logged failures.

Each test is named after the finding it pins.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

import subguard
from subguard import Effect, Engine, SqlRequest
from subguard.errors import ConfigError, LogError
from subguard.log import open_log, open_store

from ._proxy import Relay
from .conftest import PG_DSN, eventually, make_ctx, make_decision


def allow_all(tmp_path: Path) -> subguard.Policy:
    (tmp_path / "p.guard").write_text("package p\n\ndefault allow := true\n")
    return subguard.load_policy(tmp_path)


# -- timeouts validated -------------------------------------------------------------------


@pytest.mark.parametrize("timeout", [math.nan, -1.0, math.inf, "5"])
def test_await_approval_with_nan_or_negative_timeout_is_an_error(timeout: Any) -> None:
    log = open_log("memory://")
    try:
        held = log.record(make_ctx(), make_decision(Effect.APPROVE, "hold"))
        assert held.approval_id is not None
        started = time.monotonic()
        with pytest.raises(LogError, match="timeout"):
            asyncio.run(log.await_approval(held.approval_id, timeout))
        with pytest.raises(LogError, match="timeout"):
            log.wait_for_approval(held.approval_id, timeout)
        assert time.monotonic() - started < 1.0
    finally:
        log.close()


@pytest.mark.parametrize(
    "option",
    [
        {"poll_interval": -1},
        {"approval_ttl": math.nan},
        {"gather_wait": -0.1},
        {"checkpoint_every": 0},
        {"poll_interval": 0},
    ],
)
def test_negative_or_nan_log_options_are_errors(option: dict[str, Any]) -> None:
    with pytest.raises(LogError):
        open_log("memory://", **option)


@pytest.mark.parametrize(
    "query",
    [
        "lock_timeout=-1",
        "lock_timeout=nan",
        "lock_timeout=0",
        "lock_timeout=abc",
        "lock_timeout=inf",
    ],
)
def test_negative_timeouts_in_a_sqlite_store_url_are_errors(sqlite_url: str, query: str) -> None:
    with pytest.raises(ConfigError, match="lock_timeout"):
        open_store(f"{sqlite_url}?{query}")


@pytest.mark.parametrize(
    "query",
    [
        "connect_timeout=-2",
        "connect_timeout=nan",
        "lock_timeout=-1",
        "pool_size=0",
        "max_overflow=-1",
        "pool_size=two",
    ],
)
def test_negative_timeouts_in_a_postgres_store_url_are_errors(query: str) -> None:
    with pytest.raises(ConfigError, match=query.split("=")[0]):
        open_store(f"{PG_DSN}?{query}")


def test_unknown_store_url_parameters_are_errors(sqlite_url: str) -> None:
    with pytest.raises(ConfigError, match="`lock_timout`"):
        open_store(f"{sqlite_url}?lock_timout=2")
    with pytest.raises(ConfigError, match="`sslmod`"):
        open_store(f"{PG_DSN}?schema=x&sslmod=require")
    with pytest.raises(ConfigError, match="`schema`"):
        open_store(f"{sqlite_url}?schema=x")


@pytest.mark.postgres
def test_missing_postgres_database_gives_a_clear_message() -> None:
    from .conftest import require_postgres

    require_postgres()
    parts = urlsplit(PG_DSN)
    url = urlunsplit(parts._replace(path="/no_such_database_sg"))
    started = time.monotonic()
    with pytest.raises(LogError) as caught:
        open_store(url + "?connect_timeout=2")
    message = str(caught.value)
    assert "no_such_database_sg" in message and "does not exist" in message
    assert "couldn't get a connection" not in message
    assert time.monotonic() - started < 10


# -- no hang ------------------------------------------------------------------------------


def _relayed(url: str, relay: Relay, query: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit(":", 1)[0] + f":{relay.port}"
    return urlunsplit(parts._replace(netloc=netloc, query=f"{parts.query}&{query}"))


@pytest.mark.postgres
@pytest.mark.parametrize("outage", ["kill", "freeze"])
def test_postgres_killed_mid_batch_denies_within_connect_timeout_and_recovers(
    pg_url: str, tmp_path: Path, outage: str
) -> None:
    """Killed mid-batch (connections reset) or frozen (connections open, nothing
    answers), the store makes every check `deny` (`log_unavailable`) within a bound set
    by connect_timeout + lock_timeout, never a hang; checks allow again once the store
    is back."""
    parts = urlsplit(pg_url)
    relay = Relay((parts.hostname or "127.0.0.1", parts.port or 5432))
    url = _relayed(pg_url, relay, "connect_timeout=1&lock_timeout=1")
    log = open_log(url)
    engine = Engine(allow_all(tmp_path), log=log)
    # A store operation ends within lock_timeout + connect_timeout (2 s). A check may
    # wait for a commit already in flight, then fail its own: two of those, plus
    # scheduling margin for a loaded machine.
    bound = 2 * 2.0 + 3.0
    try:
        assert engine.check(SqlRequest("SELECT 1"), subject="a", session="s").effect is Effect.ALLOW
        stop = threading.Event()
        after_kill: list[tuple[float, Any]] = []
        killed_at = [math.inf]

        def worker(k: int) -> None:
            while not stop.is_set():
                started = time.monotonic()
                d = engine.check(SqlRequest("SELECT 1"), subject=f"a{k}", session=f"s{k % 3}")
                if started > killed_at[0]:
                    after_kill.append((time.monotonic() - started, d))

        threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(8)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        killed_at[0] = time.monotonic()
        relay.kill() if outage == "kill" else relay.freeze()
        time.sleep(5.0)
        stop.set()
        for t in threads:
            t.join(timeout=bound + 5)
        assert not any(t.is_alive() for t in threads), "a check hung on the dead store"
        assert after_kill, "no check completed while the store was down"
        assert all(d.effect is Effect.DENY for _, d in after_kill)
        assert all(any(e.code == "log_unavailable" for e in d.errors) for _, d in after_kill)
        assert max(elapsed for elapsed, _ in after_kill) < bound
        # once the log knows the store is down, checks fail at once (retry_after)
        # instead of each holding a thread for a deadline
        elapsed = sorted(e for e, _ in after_kill)
        assert elapsed[len(elapsed) // 2] < 0.5, elapsed
        relay.revive()

        def allowed() -> bool:
            d = engine.check(SqlRequest("SELECT 1"), subject="a", session="s")
            return d.effect is Effect.ALLOW

        assert eventually(allowed, timeout=20, interval=0.2), "the engine did not recover"
    finally:
        relay.kill()
        log.close()


# -- logging ------------------------------------------------------------------------------


def test_a_failed_commit_is_logged(sqlite_url: str, caplog: Any) -> None:
    log = open_log(sqlite_url, follow=False)
    try:

        def broken(events: Any) -> Any:
            raise LogError("disk on fire")

        log.store.insert = broken  # type: ignore[method-assign]
        with caplog.at_level(logging.ERROR, logger="subguard.log"), pytest.raises(LogError):
            log.record(make_ctx(), make_decision())
        assert any(
            r.name == "subguard.log" and "fail closed" in r.getMessage() for r in caplog.records
        )
    finally:
        log.store.close()


def test_follower_errors_are_logged_not_swallowed(sqlite_url: str, caplog: Any) -> None:
    log = open_log(sqlite_url, poll_interval=0.01)
    try:
        original = log.store.select_positions
        failing = threading.Event()
        failing.set()

        def flaky(*args: Any, **kwargs: Any) -> Any:
            if failing.is_set():
                raise LogError("store unreachable")
            return original(*args, **kwargs)

        with caplog.at_level(logging.WARNING, logger="subguard.log"):
            log.store.select_positions = flaky  # type: ignore[method-assign]
            assert eventually(
                lambda: any("follower cannot read" in r.getMessage() for r in caplog.records)
            )
            failing.clear()
            assert eventually(
                lambda: any(
                    "reads" in r.getMessage() and "again" in r.getMessage() for r in caplog.records
                )
            )
    finally:
        log.close()


def test_library_logging_is_silent_by_default() -> None:
    handlers = logging.getLogger("subguard.log").handlers
    assert any(isinstance(h, logging.NullHandler) for h in handlers)
