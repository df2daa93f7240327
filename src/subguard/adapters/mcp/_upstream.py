"""The MCP server behind the guard, reached with the SDK's client: a child process over
stdio, or a streamable-HTTP URL. One client per guard process; tool calls are stateless
requests, so every agent session shares it."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import anyio
import mcp_types as types
from mcp import Client, StdioServerParameters

__all__ = ["Upstream", "stdio_upstream", "url_upstream"]


class Upstream:
    """The guarded server: list its tools, call one. Enter it as an async context."""

    def __init__(self, target: StdioServerParameters | str, name: str) -> None:
        self.name = name
        self._client = Client(target, cache=None)
        self._lock = anyio.Lock()

    async def __aenter__(self) -> Upstream:
        await self._client.__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self._client.__aexit__(*exc)

    async def tools(self) -> list[types.Tool]:
        """Every tool the server lists (all pages)."""
        out: list[types.Tool] = []
        cursor: str | None = None
        seen: set[str] = set()
        while True:
            page = await self._client.list_tools(cursor=cursor)
            out.extend(page.tools)
            cursor = page.next_cursor
            if not cursor or cursor in seen:  # a server that loops its cursor ends here
                return out
            seen.add(cursor)

    async def call(self, name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        return await self._client.call_tool(name, arguments)


def stdio_upstream(command: str, args: Sequence[str]) -> Upstream:
    """A server started as a child: it gets this process's environment, as an agent
    host would give it."""
    params = StdioServerParameters(command=command, args=list(args), env=dict(os.environ))
    return Upstream(params, os.path.basename(command) if not args else _server_name(command, args))


def url_upstream(url: str) -> Upstream:
    return Upstream(url, url)


def _server_name(command: str, args: Sequence[str]) -> str:
    """A readable name for the child: the script or module it runs, else the program."""
    for arg in args:
        if not arg.startswith("-"):
            return os.path.basename(arg)
    return os.path.basename(command)
