"""`subguard mcp` over stdio, driven by the MCP SDK's own client in this process and
guarding the SDK-written toolserver in a third: allowed, refused, held then granted by a
responder process, masked, hidden, escalated, killed; nothing refused reaches the server."""

from __future__ import annotations

import re
import time
from typing import Any

import anyio
import pytest
from mcp import Client

from subguard.log import Topic, open_log, read_records

from .conftest import Shop, cli, text_of

pytestmark = pytest.mark.slow

DECISION = re.compile(r"\[decision ([0-9a-f-]{36})\]")


def run(coro: Any) -> Any:
    return anyio.run(coro)


def test_allowed_query_reaches_the_server_and_is_recorded(shop: Shop) -> None:
    async def main() -> Any:
        async with Client(shop.params()) as client:
            return await client.call_tool("query", {"sql": "SELECT id, name FROM users ORDER BY id"})

    result = run(main)
    assert not result.is_error
    assert result.structured_content["rows"] == [{"id": 1, "name": "ann"}, {"id": 2, "name": "bob"}]
    assert shop.reached() == [{"tool": "query", "arguments": {"sql": "SELECT id, name FROM users ORDER BY id"}}]
    with open_log(shop.store) as log:
        decisions = list(read_records(log.store, topics=[Topic.DECISION_RECORDED]))
    assert [d.state["kind"] for d in decisions] == ["tool"]
    assert decisions[0].state["effect"] == "allow"
    text = decisions[0].state["text"]
    assert text.startswith("tool toolserver.py/query args=sha256:")
    assert "sql: SELECT id, name FROM users ORDER BY id" in text


def test_literals_never_reach_the_log(shop: Shop) -> None:
    async def main() -> Any:
        async with Client(shop.params()) as client:
            await client.call_tool("query", {"sql": "SELECT name FROM users WHERE name = 'secret-literal'"})
            await client.call_tool("list_files", {"path": f"{shop.root}/secret-word"})

    run(main)
    with open_log(shop.store) as log:
        states = [r.state for r in read_records(log.store)]
    dumped = repr(states)
    assert "secret-literal" not in dumped
    assert "secret-word" not in dumped
    assert len(shop.reached()) == 2


def test_denied_call_is_an_error_result_naming_rule_and_decision(shop: Shop) -> None:
    async def main() -> Any:
        async with Client(shop.params()) as client:
            refused = await client.call_tool("query", {"sql": "DROP TABLE users"})
            after = await client.call_tool("query", {"sql": "SELECT count(*) AS n FROM users"})
            return refused, after

    refused, after = run(main)
    assert refused.is_error
    text = text_of(refused)
    assert "guard.sql.destructive.deny" in text
    assert "DROP table users is never allowed" in text
    decision = DECISION.search(text)
    assert decision is not None
    assert refused.meta["subguard"]["decision"] == decision.group(1)
    assert not after.is_error  # the session stays usable after a deny
    assert [c["arguments"]["sql"] for c in shop.reached()] == ["SELECT count(*) AS n FROM users"]


@pytest.mark.parametrize(
    ("tool", "arguments", "code"),
    [
        ("no_such_tool", {}, "subguard.mcp.unlisted_tool"),
        ("query", {"sql": 4242.5}, "subguard.mcp.invalid_arguments"),
        ("query", {}, "subguard.mcp.invalid_arguments"),
        ("run", {"command": ["rm", "-rf", "/"]}, "subguard.mcp.invalid_arguments"),
    ],
)
def test_calls_the_server_never_listed_or_that_do_not_fit_its_schema_are_refused(
    shop: Shop, tool: str, arguments: dict[str, Any], code: str
) -> None:
    async def main() -> Any:
        async with Client(shop.params()) as client:
            return await client.call_tool(tool, arguments)

    result = run(main)
    assert result.is_error
    assert code in text_of(result)
    assert "4242.5" not in text_of(result)  # the argument's value is never echoed
    assert shop.reached() == []


def test_command_tool_is_judged_by_the_shell_pack(shop: Shop) -> None:
    async def main() -> Any:
        async with Client(shop.params()) as client:
            refused = await client.call_tool("run", {"command": "rm -rf /var/lib/postgresql"})
            allowed = await client.call_tool("run", {"command": "ls -l /tmp"})
            return refused, allowed

    refused, allowed = run(main)
    assert refused.is_error and "guard.shell.destructive.deny" in text_of(refused)
    assert not allowed.is_error
    assert shop.reached() == [{"tool": "run", "arguments": {"command": "ls -l /tmp"}}]


def test_masked_structured_rows(shop: Shop) -> None:
    async def main() -> Any:
        async with Client(shop.params()) as client:
            return await client.call_tool("query", {"sql": "SELECT name, upper(email) AS contact FROM users ORDER BY id"})

    result = run(main)
    assert not result.is_error
    rows = result.structured_content["rows"]
    assert rows == [{"name": "ann", "contact": "****"}, {"name": "bob", "contact": "****"}]
    assert "example.org" not in text_of(result).lower()


def test_pii_readers_see_the_values(shop: Shop) -> None:
    async def main() -> Any:
        async with Client(shop.params(groups=("agents", "pii-readers"))) as client:
            return await client.call_tool("query", {"sql": "SELECT email FROM users WHERE id = 1"})

    result = run(main)
    assert result.structured_content["rows"] == [{"email": "ann@example.org"}]


def test_hidden_tools_are_not_listed_and_cannot_be_called(shop: Shop) -> None:
    async def main(groups: tuple[str, ...]) -> Any:
        async with Client(shop.params(groups=groups)) as client:
            names = [t.name for t in (await client.list_tools()).tools]
            result = await client.call_tool("admin_reset", {"confirm": True})
            return names, result

    names, result = run(lambda: main(("agents",)))
    assert "admin_reset" not in names and "query" in names
    assert result.is_error and "subguard.mcp.unlisted_tool" in text_of(result)
    assert shop.reached() == []
    names, result = run(lambda: main(("agents", "admins")))
    assert "admin_reset" in names
    assert not result.is_error
    assert shop.reached() == [{"tool": "admin_reset", "arguments": {"confirm": True}}]


def test_file_tool_confined_to_roots(shop: Shop) -> None:
    async def main() -> Any:
        async with Client(shop.params()) as client:
            inside = await client.call_tool("list_files", {"path": str(shop.root)})
            outside = await client.call_tool("list_files", {"path": f"{shop.root}/../.."})
            return inside, outside

    inside, outside = run(main)
    assert not inside.is_error
    assert outside.is_error and "guard.mcp.tools.deny" in text_of(outside)
    assert [c["arguments"]["path"] for c in shop.reached()] == [str(shop.root)]


def test_hold_with_zero_timeout_refuses_at_once_with_the_approval_id(shop: Shop) -> None:
    async def main() -> Any:
        async with Client(shop.params("--approval-timeout", "0")) as client:
            return await client.call_tool("query", {"sql": "DELETE FROM users"})

    result = run(main)
    assert result.is_error
    approval = result.meta["subguard"]["approval"]
    assert f"subguard approve {approval}" in text_of(result)
    assert shop.reached() == []
    # a responder grants it; the agent's retry of the exact call then runs
    granted = cli("approve", approval, "--by", "alice", "--store", shop.store)
    assert granted.returncode == 0, granted.stderr

    async def retry() -> Any:
        async with Client(shop.params("--approval-timeout", "0")) as client:
            return await client.call_tool("query", {"sql": "DELETE FROM users"})

    assert not run(retry).is_error
    assert shop.reached() == [{"tool": "query", "arguments": {"sql": "DELETE FROM users"}}]


def test_held_call_waits_with_progress_then_runs_when_granted_from_another_process(shop: Shop) -> None:
    progress: list[tuple[float, str | None]] = []
    approvals: list[str] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, message))
        found = re.search(r"approval ([0-9a-f-]{36})", message or "")
        if found and not approvals:
            approvals.append(found.group(1))

    async def main() -> Any:
        async with Client(shop.params("--approval-timeout", "30")) as client:
            async with anyio.create_task_group() as tasks:
                outcome: list[Any] = []

                async def call() -> None:
                    outcome.append(await client.call_tool("query", {"sql": "DELETE FROM users"}, progress_callback=on_progress))

                tasks.start_soon(call)
                with anyio.fail_after(20):
                    while not approvals:
                        await anyio.sleep(0.05)
                assert shop.reached() == []  # held: the server has not seen it
                granted = await anyio.to_thread.run_sync(lambda: cli("approve", approvals[0], "--by", "alice", "--store", shop.store))
                assert granted.returncode == 0, granted.stderr
            return outcome[0]

    result = run(main)
    assert not result.is_error
    assert progress and all(m and "subguard approve" in m for _, m in progress)
    assert shop.reached() == [{"tool": "query", "arguments": {"sql": "DELETE FROM users"}}]


def test_refused_approval_is_an_error_result(shop: Shop) -> None:
    approvals: list[str] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        found = re.search(r"approval ([0-9a-f-]{36})", message or "")
        if found and not approvals:
            approvals.append(found.group(1))

    async def main() -> Any:
        async with Client(shop.params("--approval-timeout", "30")) as client:
            outcome: list[Any] = []
            async with anyio.create_task_group() as tasks:

                async def call() -> None:
                    outcome.append(await client.call_tool("query", {"sql": "DELETE FROM users"}, progress_callback=on_progress))

                tasks.start_soon(call)
                with anyio.fail_after(20):
                    while not approvals:
                        await anyio.sleep(0.05)
                await anyio.to_thread.run_sync(lambda: cli("reject", approvals[0], "--by", "alice", "--reason", "not today", "--store", shop.store))
            return outcome[0]

    result = run(main)
    assert result.is_error and "refused" in text_of(result) and "not today" in text_of(result)
    assert shop.reached() == []


def test_session_escalation_terminates_and_ends_the_session(shop: Shop) -> None:
    async def main() -> Any:
        results = []
        async with Client(shop.params()) as client:
            for _ in range(3):
                results.append(await client.call_tool("query", {"sql": "DROP TABLE users"}))
            results.append(await client.call_tool("query", {"sql": "SELECT 1"}))
            await anyio.sleep(1.0)
            with pytest.raises(Exception):  # noqa: B017 - the session is gone: any transport error
                with anyio.fail_after(10):
                    await client.call_tool("query", {"sql": "SELECT 1"})
        return results

    results = run(main)
    assert all(r.is_error for r in results)
    assert "guard.session.escalation.terminate" in text_of(results[3])
    assert results[3].meta["subguard"]["effect"] == "terminate"
    assert shop.reached() == []


def test_kill_from_another_process_ends_the_session(shop: Shop) -> None:
    async def main() -> float:
        async with Client(shop.params("--session", "mcp-kill-me")) as client:
            assert not (await client.call_tool("query", {"sql": "SELECT 1"})).is_error
            killed = await anyio.to_thread.run_sync(lambda: cli("kill", "mcp-kill-me", "--by", "alice", "--store", shop.store))
            assert killed.returncode == 0, killed.stderr
            started = time.monotonic()
            with pytest.raises(Exception):  # noqa: B017
                with anyio.fail_after(10):
                    while True:  # the guard process exits: the next call fails
                        await client.call_tool("query", {"sql": "SELECT 1"})
                        await anyio.sleep(0.1)
            return time.monotonic() - started

    assert run(main) < 5
    assert len(shop.reached()) == 1


def test_revocation_from_another_process_ends_an_idle_session(shop: Shop) -> None:
    async def main() -> float:
        async with Client(shop.params(subject="contractor")) as client:
            assert not (await client.call_tool("query", {"sql": "SELECT 1"})).is_error
            revoked = await anyio.to_thread.run_sync(lambda: cli("revoke", "contractor", "--reason", "offboarded", "--by", "alice", "--store", shop.store))
            assert revoked.returncode == 0, revoked.stderr
            started = time.monotonic()
            await anyio.sleep(2.0)  # idle: the guard closes on its own, not on the next call
            with pytest.raises(Exception):  # noqa: B017
                with anyio.fail_after(10):
                    await client.call_tool("query", {"sql": "SELECT 1"})
            return time.monotonic() - started

    run(main)
    assert len(shop.reached()) == 1


def test_the_session_replays_from_the_log(shop: Shop) -> None:
    async def main() -> None:
        async with Client(shop.params("--session", "mcp-replay-me")) as client:
            await client.call_tool("query", {"sql": "SELECT name FROM users WHERE id = 1"})
            await client.call_tool("query", {"sql": "DROP TABLE users"})

    run(main)
    replay = cli("replay", "mcp-replay-me", "--store", shop.store, "--format", "jsonl")
    assert replay.returncode == 0, replay.stderr
    lines = [__import__("json").loads(line) for line in replay.stdout.splitlines() if line.strip()]
    effects = [line.get("effect") for line in lines if line.get("effect")]
    assert effects == ["allow", "deny"]
    assert "DROP TABLE users" in replay.stdout and "WHERE id = ?" in replay.stdout
    verify = cli("verify", "--store", shop.store)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def test_kill_while_a_call_is_held_refuses_it_and_ends_the_session(shop: Shop) -> None:
    approvals: list[str] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        if message and not approvals:
            approvals.append(message)

    async def main() -> Any:
        async with Client(shop.params("--session", "mcp-held-kill", "--approval-timeout", "30")) as client:
            outcome: list[Any] = []
            async with anyio.create_task_group() as tasks:

                async def call() -> None:
                    outcome.append(await client.call_tool("query", {"sql": "DELETE FROM users"}, progress_callback=on_progress))

                tasks.start_soon(call)
                with anyio.fail_after(20):
                    while not approvals:
                        await anyio.sleep(0.05)
                killed = await anyio.to_thread.run_sync(lambda: cli("kill", "mcp-held-kill", "--by", "alice", "--store", shop.store))
                assert killed.returncode == 0, killed.stderr
            return outcome[0]

    result = run(main)
    assert result.is_error
    assert result.meta["subguard"]["effect"] == "terminate"
    assert "mcp-held-kill" in text_of(result)
    assert shop.reached() == []
