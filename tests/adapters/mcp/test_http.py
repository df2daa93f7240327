"""`subguard mcp` over streamable HTTP: guarding a server reached by URL
(`--upstream-url`), and serving agents (`--listen`) identified by bearer tokens."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import anyio
import httpx2
import jwt
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from .conftest import RULES, TOOLSERVER, Shop, cli, subguard_command, text_of

pytestmark = pytest.mark.slow

SECRET = "a-test-secret-of-at-least-32-bytes!!"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, process: subprocess.Popen[Any], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"process exited: {process.stderr.read() if process.stderr else ''}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}")


@pytest.fixture
def http_toolserver(shop: Shop) -> Iterator[str]:
    port = free_port()
    env = {**os.environ, "TOOLSERVER_RECORD": str(shop.record)}
    process = subprocess.Popen([sys.executable, str(TOOLSERVER), str(shop.database), "--http", str(port)], env=env, stderr=subprocess.PIPE, text=True)
    try:
        wait_port(port, process)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(10)


def test_guarding_a_server_by_url(shop: Shop, http_toolserver: str) -> None:
    command = subguard_command()
    params = StdioServerParameters(command=command[0], args=[*command[1:], *shop.guard_args("--upstream-url", http_toolserver)], env=dict(os.environ))

    async def main() -> Any:
        async with Client(params) as client:
            allowed = await client.call_tool("query", {"sql": "SELECT id FROM users ORDER BY id"})
            refused = await client.call_tool("query", {"sql": "DROP TABLE users"})
            return allowed, refused

    allowed, refused = anyio.run(main)
    assert allowed.structured_content["rows"] == [{"id": 1}, {"id": 2}]
    assert refused.is_error and "guard.sql.destructive.deny" in text_of(refused)
    assert [c["arguments"]["sql"] for c in shop.reached()] == ["SELECT id FROM users ORDER BY id"]


@pytest.fixture
def listening(shop: Shop) -> Iterator[str]:
    secret = shop.root / "secret"
    secret.write_text(SECRET)
    config = shop.config.read_text() + f'\n[identity]\njwt_secret_file = "{secret}"\nissuer = "https://idp.example"\naudience = "mcp-guard"\n'
    shop.config.write_text(config)
    port = free_port()
    command = subguard_command()
    args = ["mcp", "--rules", str(RULES),
            "--data", str(shop.data), "--store", shop.store, "--config", str(shop.config),
            "--listen", f"127.0.0.1:{port}", "--", sys.executable, str(TOOLSERVER), str(shop.database)]
    env = {**os.environ, "TOOLSERVER_RECORD": str(shop.record)}
    process = subprocess.Popen([*command, *args], env=env, stderr=subprocess.PIPE, text=True)
    try:
        wait_port(port, process)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(10)


def token(subject: str, groups: list[str], *, expires_in: float = 600, audience: str = "mcp-guard") -> str:
    now = int(time.time())
    claims = {"sub": subject, "groups": groups, "iss": "https://idp.example", "aud": audience, "iat": now, "exp": now + int(expires_in)}
    return jwt.encode(claims, SECRET, algorithm="HS256")


def client_for(url: str, bearer: str, mode: str = "auto") -> Client:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {bearer}"}, timeout=30)
    return Client(streamable_http_client(url, http_client=http), mode=mode)  # type: ignore[arg-type]


def test_listen_decides_per_token_subject(shop: Shop, listening: str) -> None:
    async def main(bearer: str) -> Any:
        async with client_for(listening, bearer) as client:
            names = [t.name for t in (await client.list_tools()).tools]
            masked = await client.call_tool("query", {"sql": "SELECT email FROM users WHERE id = 1"})
            refused = await client.call_tool("query", {"sql": "DROP TABLE users"})
            return names, masked, refused

    names, masked, refused = anyio.run(lambda: main(token("claude", ["agents"])))
    assert "admin_reset" not in names
    assert masked.structured_content["rows"] == [{"email": "****"}]
    assert refused.is_error and "guard.sql.destructive.deny" in text_of(refused)
    names, masked, _ = anyio.run(lambda: main(token("ops", ["agents", "admins", "pii-readers"])))
    assert "admin_reset" in names
    assert masked.structured_content["rows"] == [{"email": "ann@example.org"}]
    assert [c["arguments"]["sql"] for c in shop.reached()] == ["SELECT email FROM users WHERE id = 1"] * 2


@pytest.mark.parametrize(
    "bearer",
    [
        None,
        "not-a-jwt",
        token("claude", ["agents"], expires_in=-60),
        token("claude", ["agents"], audience="someone-else"),
        jwt.encode({"sub": "claude", "exp": int(time.time()) + 600, "iss": "https://idp.example", "aud": "mcp-guard"}, "another-secret-of-at-least-32-bytes!", algorithm="HS256"),
    ],
)
def test_listen_refuses_requests_without_a_valid_token(shop: Shop, listening: str, bearer: str | None) -> None:
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    if bearer is not None:
        headers["Authorization"] = f"Bearer {bearer}"
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "query", "arguments": {"sql": "SELECT 1"}}}
    response = httpx2.post(listening, json=body, headers=headers, timeout=10)
    assert response.status_code == 401
    assert shop.reached() == []


def test_listen_holds_until_granted_from_another_process(shop: Shop, listening: str) -> None:
    approvals: list[str] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        found = re.search(r"approval ([0-9a-f-]{36})", message or "")
        if found and not approvals:
            approvals.append(found.group(1))

    async def main() -> Any:
        async with client_for(listening, token("claude", ["agents"])) as client:
            outcome: list[Any] = []
            async with anyio.create_task_group() as tasks:

                async def call() -> None:
                    outcome.append(await client.call_tool("query", {"sql": "DELETE FROM users"}, progress_callback=on_progress))

                tasks.start_soon(call)
                with anyio.fail_after(20):
                    while not approvals:
                        await anyio.sleep(0.05)
                assert shop.reached() == []
                granted = await anyio.to_thread.run_sync(lambda: cli("approve", approvals[0], "--by", "alice", "--store", shop.store))
                assert granted.returncode == 0, granted.stderr
            return outcome[0]

    result = anyio.run(main)
    assert not result.is_error
    assert shop.reached() == [{"tool": "query", "arguments": {"sql": "DELETE FROM users"}}]


@pytest.mark.parametrize("mode", ["auto", "legacy"])
def test_listen_escalation_terminates_the_session(shop: Shop, listening: str, mode: str) -> None:
    async def main() -> tuple[list[Any], Any]:
        async with client_for(listening, token("claude", ["agents"]), mode) as client:
            results = [await client.call_tool("query", {"sql": sql}) for sql in ["DROP TABLE users"] * 3 + ["SELECT 1"]]
            try:  # the session is gone (404), or, without a session id, refused as terminated
                after: Any = await client.call_tool("query", {"sql": "SELECT 2"})
            except Exception as exc:
                after = exc
            return results, after

    results, after = anyio.run(main)
    assert all(r.is_error for r in results)
    assert "guard.session.escalation.terminate" in text_of(results[3])
    assert results[3].meta["subguard"]["effect"] == "terminate"
    if mode == "legacy":  # a session with an id: it is gone
        assert isinstance(after, Exception), after
    else:  # one token, one session: still terminated
        assert after.meta["subguard"]["effect"] == "terminate", after
    assert shop.reached() == []
