"""The shared decision corpus (`tests/cases/*.json`) through the MCP guard: each SQL or
command case becomes a call of a `query` or `run` tool, made with the MCP SDK's client
(in process, against the guard's low-level server). An `allow` or `mask` reaches the
server; every other effect is an error result naming the case's rules and a decision id,
and the server is never called. A policy whose rules refuse the subject everything also
hide the tool from it (a `tool_list` request): the call is then refused as unlisted.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import Client

import subguard
from subguard.adapters._gate import Gate
from subguard.adapters.mcp import GuardServer, McpSession, ToolSpec
from subguard.adapters.mcp._session import _hides
from subguard.engine import ToolRequest
from subguard.log import open_log

CASES = Path(__file__).resolve().parents[2] / "cases"
DECISION = re.compile(r"\[decision ([0-9a-f-]{36})\]")
TOOLS = [
    types.Tool(name="query", input_schema={"type": "object", "properties": {"sql": {"type": "string"}}, "required": ["sql"]}),
    types.Tool(name="run", input_schema={"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}),
]


def _cases() -> list[Any]:
    params = []
    for file in sorted(CASES.glob("*.json")):
        doc = json.loads(file.read_text(encoding="utf-8"))
        for case in doc["cases"]:
            if "request" not in case or "xfail" in case:
                continue
            params.append(pytest.param(doc, case, id=f"{file.stem}:{case['name']}"))
    return params


class Upstream:
    name = "corpus"

    def __init__(self) -> None:
        self.calls = 0

    async def tools(self) -> list[types.Tool]:
        return list(TOOLS)

    async def call(self, name: str, arguments: dict[str, Any]) -> types.CallToolResult:
        self.calls += 1
        # no rows: a mask has nothing to rewrite, so every allowed call comes back
        return types.CallToolResult(content=[types.TextContent(type="text", text="{}")], structured_content={"rows": []})


def test_the_corpus_has_requests() -> None:
    assert len(_cases()) >= 60


@pytest.mark.parametrize(("doc", "case"), _cases())
def test_case_through_the_mcp_guard(doc: dict[str, Any], case: dict[str, Any], tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    for name, text in doc["policy"].items():
        (rules / name).write_text(text, encoding="utf-8")
    request = case["request"]
    expect = case["expect"]
    log = open_log("memory://")
    engine = subguard.Engine(subguard.load_policy(rules, data=doc.get("data", {})), log=log)
    resource = subguard.Resource.from_dict(request.get("resource") or {})
    if request.get("dialect"):
        resource = subguard.Resource(resource.name, resource.kind, request["dialect"], resource.env, resource.tags, resource.schema)
    subject = request.get("subject") or ""
    gate = Gate(engine, subject=subject if isinstance(subject, str) else subguard.Subject.from_dict(subject), resource=resource, session="corpus")
    spec = ToolSpec(sql_tools={"query": "sql"}, command_tools={"run": "command"})
    session = McpSession(gate, server="corpus", spec=spec)
    upstream = Upstream()
    guard = GuardServer(upstream, lambda _ctx: session, approval_timeout=0)  # type: ignore[arg-type]
    name, arguments = ("query", {"sql": request["sql"]}) if "sql" in request else ("run", {"command": request["command"]})

    async def main() -> types.CallToolResult:
        async with Client(guard.server) as client:
            return await client.call_tool(name, arguments)

    try:
        result = anyio.run(main)
    finally:
        gate.close()
        log.close()
    effect = expect["effect"]
    listing = subguard.Engine(engine.policy).check(
        ToolRequest("corpus", name, {}, listing=True), subject=gate.subject, resource=resource, session="corpus"
    )
    if _hides(listing):
        assert effect not in ("allow", "mask"), f"a tool the subject may call is hidden: {listing}"
        assert upstream.calls == 0
        assert result.is_error and "subguard.mcp.unlisted_tool" in result.content[0].text
        return
    if effect in ("allow", "mask"):
        assert upstream.calls == 1, result
        assert not result.is_error
        return
    assert upstream.calls == 0
    assert result.is_error
    text = result.content[0].text
    assert DECISION.search(text), text
    assert result.meta["subguard"]["effect"] == effect
    for reason in expect.get("reasons", []):
        assert f"{reason['package']}.{reason['rule']}" in text
