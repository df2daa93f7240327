"""Invariants of the MCP guard, explored by Hypothesis through the SDK's own client
(in process, against the guard's low-level server) and a recording upstream:

- nothing refused ever reaches the server, and everything that reaches it was allowed
  by a recorded decision;
- every refusal names a decision id the log holds.
"""

from __future__ import annotations

import re
from typing import Any

import anyio
import mcp_types as types
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client

import subguard
from subguard.adapters._gate import Gate
from subguard.adapters.mcp import GuardServer, McpSession, ToolSpec
from subguard.log import Topic, open_log, read_records

from .conftest import RULES

POLICY = subguard.load_policy(RULES)
STRING = {"type": "object", "properties": {"sql": {"type": "string"}, "command": {"type": "string"}}}
TOOLS = [
    types.Tool(name="query", input_schema={**STRING, "required": ["sql"]}),
    types.Tool(name="run", input_schema={**STRING, "required": ["command"]}),
    types.Tool(name="echo", input_schema={"type": "object"}),
]
SQL = [
    "SELECT 1", "DROP TABLE users", "DELETE FROM users", "SELECT name FROM users WHERE id = 1",
    "SELEC x FRM", "", "select 1; /* x */ drop table users", "WITH d AS (DELETE FROM users RETURNING *) SELECT * FROM d",
    "UPDATE users SET name = 'x' WHERE 1 = 1", "COPY users TO PROGRAM 'sh'",
]
COMMANDS = ["ls -l", "rm -rf /", "psql -c 'DROP TABLE users'", "", "kubectl delete ns prod", "echo $(rm -rf /srv)"]
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10)),
    lambda c: st.lists(c, max_size=2) | st.dictionaries(st.text(max_size=4), c, max_size=2),
    max_leaves=5,
)
calls = st.lists(
    st.one_of(
        st.tuples(st.just("query"), st.fixed_dictionaries({"sql": st.sampled_from(SQL) | json_values})),
        st.tuples(st.just("run"), st.fixed_dictionaries({"command": st.sampled_from(COMMANDS) | json_values})),
        st.tuples(st.sampled_from(["echo", "ghost", "admin"]), st.dictionaries(st.text(max_size=4), json_values, max_size=2)),
    ),
    min_size=1,
    max_size=6,
)
DECISION = re.compile(r"\[decision ([0-9a-f-]{36})\]")


class RecordingUpstream:
    name = "props"

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def tools(self) -> list[types.Tool]:
        return list(TOOLS)

    async def call(self, name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        self.calls.append((name, arguments))
        return types.CallToolResult(content=[types.TextContent(type="text", text="ok")])


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(calls)
def test_nothing_refused_reaches_the_server(sequence: list[tuple[str, dict[str, Any]]]) -> None:
    log = open_log("memory://")
    engine = subguard.Engine(POLICY, log=log)
    gate = Gate(engine, subject=subguard.Subject("agent", groups={"agents"}), resource={"name": "props", "kind": "sqlite"}, session="props-1")
    session = McpSession(gate, server="props", spec=ToolSpec(sql_tools={"query": "sql"}, command_tools={"run": "command"}))
    upstream = RecordingUpstream()
    guard = GuardServer(upstream, lambda _ctx: session, approval_timeout=0)  # type: ignore[arg-type]
    outcomes: list[tuple[bool, types.CallToolResult]] = []

    async def main() -> None:
        async with Client(guard.server) as client:
            for name, arguments in sequence:
                before = len(upstream.calls)
                result = await client.call_tool(name, arguments)
                outcomes.append((len(upstream.calls) > before, result))

    try:
        anyio.run(main)
        records = list(read_records(log.store, topics=[Topic.DECISION_RECORDED]))
    finally:
        gate.close()
        log.close()
    by_id = {r.state["decision"]: r.state for r in records}
    allowed = [r for r in records if r.state["effect"] in ("allow", "mask")]
    assert len(allowed) == len(upstream.calls)  # everything that reached it was allowed
    for reached, result in outcomes:
        if reached:
            assert not result.is_error
            continue
        assert result.is_error
        found = DECISION.search(result.content[0].text)
        assert found is not None
        if result.meta["subguard"]["effect"] != "terminate" or found.group(1) in by_id:
            assert by_id[found.group(1)]["effect"] in ("deny", "approve", "terminate")
