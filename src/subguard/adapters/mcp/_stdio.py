"""Serving one agent over stdin/stdout: one MCP session, one gate, one subguard session.
The session ends when the agent closes stdin, or when the gate closes (a `terminate`,
a revocation of the subject or a kill of the session, made anywhere)."""

from __future__ import annotations

import uuid
from typing import Any

import anyio
from mcp.server.stdio import stdio_server

from subguard.adapters._gate import Gate
from subguard.adapters.mcp._calls import ToolSpec
from subguard.adapters.mcp._proxy import GuardServer
from subguard.adapters.mcp._session import McpSession
from subguard.adapters.mcp._upstream import Upstream
from subguard.engine import Engine, Resource, Subject

__all__ = ["serve_stdio"]

#: After the gate closes, how long the last refusal has to reach the agent.
FLUSH_SECONDS = 0.3


async def serve_stdio(
    engine: Engine,
    upstream: Upstream,
    *,
    subject: Subject,
    resource: Resource,
    spec: ToolSpec,
    approval_timeout: float,
    mask_key: bytes | str | None = None,
    session_id: str | None = None,
    streams: tuple[Any, Any] | None = None,
) -> str | None:
    """Serve until the agent leaves or the session is contained; returns why the gate
    closed (None when the agent simply left)."""
    async with upstream:
        gate = Gate(
            engine,
            subject=subject,
            resource=resource,
            session=session_id or f"mcp-{uuid.uuid4()}",
            mask_key=mask_key,
        )
        closed: list[str] = []
        gate.on_close(lambda exc: closed.append(exc.message))
        session = McpSession(gate, server=upstream.name, spec=spec)
        guard = GuardServer(upstream, lambda _ctx: session, approval_timeout=approval_timeout)
        try:
            if streams is not None:
                await _serve(guard, gate, *streams)
            else:
                async with stdio_server() as (read, write):
                    await _serve(guard, gate, read, write)
        finally:
            gate.close("the MCP session ended")
    return closed[0] if closed and closed[0] != "the MCP session ended" else None


async def _serve(guard: GuardServer, gate: Gate, read: Any, write: Any) -> None:
    async with anyio.create_task_group() as tasks:

        async def serve() -> None:
            await guard.server.run(read, write, guard.server.create_initialization_options())
            tasks.cancel_scope.cancel()

        async def watch() -> None:
            while not gate.closed:
                await anyio.sleep(0.1)
            await anyio.sleep(FLUSH_SECONDS)
            tasks.cancel_scope.cancel()

        tasks.start_soon(serve)
        tasks.start_soon(watch)
