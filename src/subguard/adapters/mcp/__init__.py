"""The MCP guard: an MCP server's tool calls decided, recorded and enforced before they
reach the server (`subguard mcp`).

- `_calls`: a `tools/call` as a request of kind `tool` (listed tools only, arguments
  validated against the declared input schema, the SQL or command argument analysed);
- `_session`: one agent session under a gate (listing, admitting, masking);
- `_results`: masking structured results;
- `_proxy`: the SDK's low-level server that the agent talks to;
- `_upstream`: the guarded server, through the SDK's client (stdio child or URL);
- `_stdio`, `_http`: serving the agent over stdio or streamable HTTP;
- `_tokens`: bearer-token verification for `--listen`.
"""

from __future__ import annotations

from subguard.adapters.mcp._calls import CallProblem, ToolSpec, parse_tool_spec
from subguard.adapters.mcp._proxy import GuardServer, refusal
from subguard.adapters.mcp._session import McpSession
from subguard.adapters.mcp._stdio import serve_stdio
from subguard.adapters.mcp._upstream import Upstream, stdio_upstream, url_upstream

__all__ = [
    "CallProblem",
    "GuardServer",
    "McpSession",
    "ToolSpec",
    "Upstream",
    "parse_tool_spec",
    "refusal",
    "serve_stdio",
    "stdio_upstream",
    "url_upstream",
]
