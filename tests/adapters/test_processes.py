"""A responder in another OS process: `subguard revoke`, `subguard kill` and `subguard
approve` run as separate processes against the same SQLite store close, end or release
this process's live guarded connections."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import subguard
from subguard.adapters import dbapi
from subguard.log import DecisionLog, open_log

from .conftest import SCHEMA_SQL, TAGS, fill


def cli(*args: str, store: str) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("subguard")
    command = [exe] if exe else [sys.executable, "-m", "subguard"]
    return subprocess.run(
        [*command, *args, "--store", store], capture_output=True, text=True, timeout=60,
        env={**os.environ}, check=False,
    )


@pytest.fixture
def store(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/log.db"


@pytest.fixture
def durable_log(store: str) -> Iterator[DecisionLog]:
    with open_log(store) as log:
        yield log


@pytest.fixture
def durable_engine(policy: subguard.Policy, durable_log: DecisionLog) -> subguard.Engine:
    return subguard.Engine(policy, log=durable_log)


def connect(engine: subguard.Engine, session: str, **options: float) -> tuple[sqlite3.Connection, dbapi.GuardedConnection]:
    raw = sqlite3.connect(":memory:", check_same_thread=False)
    raw.executescript(SCHEMA_SQL)
    fill(raw)
    guarded = dbapi.guard(raw, engine, subject="ci-bot", resource={"name": "shop", "kind": "sqlite"}, session=session, tags=TAGS, **options)
    return raw, guarded


def wait_closed(conn: dbapi.GuardedConnection, seconds: float) -> float:
    started = time.monotonic()
    while not conn.closed and time.monotonic() - started < seconds:
        time.sleep(0.01)
    return time.monotonic() - started


def test_revoke_in_another_process_closes_idle_connections(durable_engine: subguard.Engine, store: str) -> None:
    raw1, first = connect(durable_engine, "job-1")
    raw2, second = connect(durable_engine, "job-2")
    first.execute("SELECT 1")
    second.execute("SELECT 1")
    done = cli("revoke", "ci-bot", "--reason", "offboarded", "--by", "sec", store=store)
    assert done.returncode == 0, done.stderr
    # measured from the moment the other process has committed: within one second
    assert wait_closed(first, 1.0) < 1.0 and wait_closed(second, 1.0) < 1.0
    for raw in (raw1, raw2):
        with pytest.raises(sqlite3.ProgrammingError):
            raw.execute("SELECT 1")
    with pytest.raises(subguard.Terminated) as caught:
        first.execute("SELECT 1")
    assert "offboarded" in str(caught.value)


def test_kill_in_another_process_closes_that_session_only(durable_engine: subguard.Engine, store: str) -> None:
    _raw1, first = connect(durable_engine, "job-1")
    _raw2, second = connect(durable_engine, "job-2")
    first.execute("SELECT 1")
    second.execute("SELECT 1")
    done = cli("kill", "job-1", "--reason", "runaway", store=store)
    assert done.returncode == 0, done.stderr
    assert wait_closed(first, 1.0) < 1.0
    assert not second.closed
    assert second.execute("SELECT count(*) FROM orders").fetchone() == (4,)


def test_approval_from_another_process_releases_a_waiting_statement(durable_engine: subguard.Engine, durable_log: DecisionLog, store: str) -> None:
    raw, conn = connect(durable_engine, "job-1", approval_timeout=20.0)
    result: dict[str, object] = {}

    def agent() -> None:
        try:
            result["rowcount"] = conn.execute("DELETE FROM payments").rowcount
        except Exception as exc:  # the assertion below reports it
            result["error"] = exc

    thread = threading.Thread(target=agent)
    thread.start()
    approval = None
    for _ in range(500):
        pending = [a for a in durable_log.approvals() if a.status == "pending"]
        if pending:
            approval = pending[0].id
            break
        time.sleep(0.02)
    assert approval is not None
    done = cli("approve", str(approval), "--by", "alice", store=store)
    assert done.returncode == 0, done.stderr
    thread.join(timeout=15)
    assert result == {"rowcount": 2}
    assert raw.execute("SELECT count(*) FROM payments").fetchone() == (0,)
