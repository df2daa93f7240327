"""The MCP guard's server side, on the SDK's low-level server: `tools/list` shows what
the policy lets this subject see, `tools/call` is decided (and recorded) before the
server is called, and a refusal is a tool result with `isError` that names the rule,
its message and the decision id. A held call sends progress notifications while it
waits; `terminate`, a revocation or a kill ends the session.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.shared.exceptions import MCPError

from subguard.adapters._errors import ApprovalRequired, Refused, Terminated
from subguard.adapters.mcp._session import McpSession
from subguard.adapters.mcp._upstream import Upstream
from subguard.engine import Decision

__all__ = ["GuardServer", "refusal"]

#: How often a held call tells the agent it is still waiting (seconds).
PROGRESS_INTERVAL = 1.0


def refusal(exc: Refused) -> types.CallToolResult:
    """The tool result an agent sees for a refused call: the message names the rule, its
    message and the decision id (and, for a hold, the approval id), so the model can
    read why; `_meta` carries the same for programs."""
    effect = (
        "terminate"
        if isinstance(exc, Terminated)
        else "approve"
        if isinstance(exc, ApprovalRequired)
        else "deny"
    )
    meta: dict[str, Any] = {"effect": effect}
    if exc.decision is not None:
        meta["decision"] = str(exc.decision.id)
        meta["rules"] = [f"{r.package}.{r.rule}" for r in exc.decision.reasons]
    if isinstance(exc, ApprovalRequired) and exc.approval_id is not None:
        meta["approval"] = str(exc.approval_id)
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=exc.message)],
        is_error=True,
        _meta={"subguard": meta},
    )


SessionFor = Callable[[ServerRequestContext[Any]], McpSession]


class GuardServer:
    """The low-level server the agent talks to. `session_for(ctx)` names the guarded
    session of a request (one for stdio; per MCP session and token over HTTP);
    `on_terminate(session)` is called once a session has been ended."""

    def __init__(
        self,
        upstream: Upstream,
        session_for: SessionFor,
        *,
        approval_timeout: float,
        on_terminate: Callable[[McpSession], None] | None = None,
    ) -> None:
        self.upstream = upstream
        self.session_for = session_for
        self.approval_timeout = approval_timeout
        self.on_terminate = on_terminate
        self.server: Server[Any] = Server(
            "subguard-mcp",
            version="1",
            instructions="Tool calls pass through subguard: each is decided and recorded before it runs.",
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
        )

    async def _list_tools(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        session = self.session_for(ctx)
        if session.gate.closed:
            raise MCPError(code=types.INVALID_REQUEST, message="the session is closed")
        tools = await self.upstream.tools()
        try:
            shown = await anyio.to_thread.run_sync(session.visible, tools)
        except Refused as exc:
            raise MCPError(code=types.INVALID_REQUEST, message=exc.message) from None
        return types.ListToolsResult(tools=shown)

    async def _call_tool(
        self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        session = self.session_for(ctx)
        arguments = dict(params.arguments or {})
        if not session.knows(params.name) and not session.gate.closed and session.may_relist():
            # an agent may call without listing, or call a tool the server added since:
            # the tools it may call are still those the server lists and the policy shows it
            tools = await self.upstream.tools()
            with contextlib.suppress(Refused):  # a closed gate refuses the call below
                await anyio.to_thread.run_sync(session.visible, tools)
        cancelled = threading.Event()
        waiting = self._progress(ctx, cancelled)
        try:
            admitted = await anyio.to_thread.run_sync(
                lambda: session.admit(
                    params.name, arguments, waiting=waiting, approval_timeout=self.approval_timeout
                ),
                abandon_on_cancel=True,
            )
        except Terminated as exc:
            self._ended(session)
            return refusal(exc)
        except Refused as exc:
            return refusal(exc)
        finally:
            cancelled.set()  # a hold still waiting in its thread stops at its next tick
        result = await self.upstream.call(params.name, arguments)
        if not admitted.decision.masks:
            return result
        try:
            return await anyio.to_thread.run_sync(session.masked, admitted, result)
        except Refused as exc:
            return refusal(exc)

    def _progress(
        self, ctx: ServerRequestContext[Any], cancelled: threading.Event
    ) -> Callable[[Decision, float], None]:
        """The gate's `waiting` callback: a progress notification at most every
        `PROGRESS_INTERVAL` seconds while a call is held (from the gate's worker thread)."""
        last = [-PROGRESS_INTERVAL]
        timeout = self.approval_timeout

        def waiting(decision: Decision, waited: float) -> None:
            if cancelled.is_set():
                raise ApprovalRequired("the held call was cancelled", decision)
            now = time.monotonic()
            if now - last[0] < PROGRESS_INTERVAL:
                return
            last[0] = now
            message = (
                f"held for approval {decision.approval_id}: a responder runs "
                f"`subguard approve {decision.approval_id} --by NAME` ({waited:.0f}s of {timeout:g}s)"
            )
            with contextlib.suppress(
                Exception
            ):  # progress is a courtesy: the hold goes on without it
                anyio.from_thread.run(ctx.session.report_progress, waited, timeout, message)

        return waiting

    def _ended(self, session: McpSession) -> None:
        if self.on_terminate is not None:
            self.on_terminate(session)
