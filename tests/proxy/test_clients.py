"""Real clients through the proxy: psql (simple protocol), psycopg 3 (extended,
prepared, binary), asyncpg (binary by default) and pgbench."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Callable

import psycopg
import pytest

from .conftest import SECRETS, Proxy, admin

pytestmark = pytest.mark.postgres


def psql(proxy: Proxy, token: str, *commands: str) -> subprocess.CompletedProcess[str]:
    args = ["psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=0", "-h", "127.0.0.1", "-p", str(proxy.port), "-U", "agent", "test"]
    for c in commands:
        args += ["-c", c]
    return subprocess.run(args, capture_output=True, text=True, timeout=60, env={**os.environ, "PGPASSWORD": token}, check=False)


def test_psql_allowed_masked_and_refused(proxy: Proxy, token: Callable[..., str], subject: str) -> None:
    done = psql(
        proxy,
        token(subject),
        "SELECT id, name, email, ssn, phone, age FROM sgpx_users ORDER BY id",
        "SELECT count(*) FROM sgpx_orders",
        "DROP TABLE sgpx_orders",
        "SELECT 41 + 1",
    )
    lines = done.stdout.splitlines()
    assert lines[0] == "1|Ann Lee|****@example.com|****6789|****|"
    assert lines[3] == "3"
    assert lines[4] == "42"  # the connection stays usable after the refusal
    assert "DROP is never allowed" in done.stderr and "[decision " in done.stderr
    assert not any(s in done.stdout for s in SECRETS)
    assert admin("SELECT to_regclass('sgpx_orders') IS NOT NULL") == [(True,)]


def test_psql_multi_statement_text_is_judged_whole(proxy: Proxy, token: Callable[..., str], subject: str) -> None:
    done = psql(proxy, token(subject), "SELECT 1; DROP TABLE sgpx_orders; SELECT 2")
    assert "DROP is never allowed" in done.stderr
    assert done.stdout.strip() == ""  # nothing of the text ran
    assert admin("SELECT to_regclass('sgpx_orders') IS NOT NULL") == [(True,)]


def test_psql_refusal_reports_sqlstate_42501(proxy: Proxy, token: Callable[..., str], subject: str) -> None:
    done = psql(proxy, token(subject), r"\set VERBOSITY verbose", "TRUNCATE sgpx_canary")
    assert "ERROR:  42501:" in done.stderr


def test_psycopg_extended_prepared_and_binary(proxy: Proxy, token: Callable[..., str], subject: str) -> None:
    with psycopg.connect(proxy.dsn(token(subject)), autocommit=True) as conn:
        text = conn.execute("SELECT id, email, ssn, age FROM sgpx_users WHERE id = %s", (1,)).fetchall()
        binary = conn.execute("SELECT id, email, ssn, age FROM sgpx_users WHERE id = %s", (2,), binary=True).fetchall()
        assert text == [(1, "****@example.com", "****6789", None)]
        assert binary == [(2, "****@example.org", "****4321", None)]
        for _ in range(3):  # server-side prepared after the threshold: decided at its Parse
            rows = conn.execute("SELECT name, email FROM sgpx_users WHERE id = %s", (3,), prepare=True).fetchall()
            assert rows == [("Cy Diaz", "****@mail.test")]
        unmasked = conn.execute("SELECT id, name FROM sgpx_users ORDER BY id", binary=True).fetchall()
        assert [r[1] for r in unmasked] == ["Ann Lee", "Bo Chan", "Cy Diaz"]
        with pytest.raises(psycopg.errors.InsufficientPrivilege) as info:
            conn.execute("DROP TABLE sgpx_orders")
        assert "[decision " in str(info.value)
        assert conn.execute("SELECT 7").fetchone() == (7,)


def test_psycopg_refusal_fails_the_transaction(proxy: Proxy, token: Callable[..., str], subject: str) -> None:
    with psycopg.connect(proxy.dsn(token(subject))) as conn:
        conn.execute("INSERT INTO sgpx_orders VALUES (90, 1, 1, 'tx')")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("TRUNCATE sgpx_orders")
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):
            conn.execute("SELECT 1")
        conn.commit()  # a COMMIT of a failed transaction rolls back
    assert admin("SELECT count(*) FROM sgpx_orders WHERE id = 90") == [(0,)]


def test_psycopg_pipeline_with_a_refusal_in_the_middle(proxy: Proxy, token: Callable[..., str], subject: str) -> None:
    with psycopg.connect(proxy.dsn(token(subject)), autocommit=True) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.pipeline():
            first = conn.execute("SELECT 1")
            conn.execute("DROP TABLE sgpx_orders")
        assert first.fetchone() == (1,)
        assert conn.execute("SELECT 2").fetchone() == (2,)


def test_asyncpg_binary_masking_and_refusal(proxy: Proxy, token: Callable[..., str], subject: str) -> None:
    import asyncpg

    async def main() -> None:
        conn = await asyncpg.connect(host="127.0.0.1", port=proxy.port, user="agent", password=token(subject), database="test")
        try:
            rows = await conn.fetch("SELECT id, email, ssn, phone, age FROM sgpx_users ORDER BY id")
            assert next(tuple(r) for r in rows) == (1, "****@example.com", "****6789", "****", None)
            assert await conn.fetchval("SELECT email FROM sgpx_users WHERE id = $1", 2) == "****@example.org"
            stmt = await conn.prepare("SELECT ssn FROM sgpx_users WHERE id = $1")
            assert [await stmt.fetchval(i) for i in (1, 2)] == ["****6789", "****4321"]
            with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError):
                await conn.execute("DROP TABLE sgpx_orders")
            assert await conn.fetchval("SELECT 42") == 42
            tx = conn.transaction()
            await tx.start()
            with pytest.raises(asyncpg.exceptions.InsufficientPrivilegeError):
                await conn.execute("TRUNCATE sgpx_orders")
            with pytest.raises(asyncpg.exceptions.InFailedSQLTransactionError):
                await conn.fetchval("SELECT 1")
            await tx.rollback()
        finally:
            await conn.close()

    asyncio.run(main())


def test_pgbench_select_only_through_the_proxy(proxy: Proxy, token: Callable[..., str], subject: str) -> None:
    init = subprocess.run(["pgbench", "-i", "-s", "1", "-q", "-h", "127.0.0.1", "-U", "postgres", "test"], capture_output=True, text=True, timeout=120, check=False)
    assert init.returncode == 0, init.stderr
    env = {**os.environ, "PGPASSWORD": token(subject)}
    for mode in ("simple", "extended", "prepared"):
        run = subprocess.run(
            ["pgbench", "-n", "-S", "-M", mode, "-c", "2", "-t", "50", "-h", "127.0.0.1", "-p", str(proxy.port), "-U", "agent", "test"],
            capture_output=True, text=True, timeout=120, env=env, check=False,
        )
        assert run.returncode == 0, run.stderr
        assert "number of failed transactions: 0" in run.stdout
        assert "number of transactions actually processed: 100/100" in run.stdout
