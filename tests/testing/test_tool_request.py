"""`tool_request(tool, context)`, the test builtin for MCP tool calls: the document the
engine builds, and clear errors for a malformed tool."""

from __future__ import annotations

from typing import Any

import pytest

from subguard.lang import BuiltinError
from subguard.testing.runner import tool_input


def test_a_tool_call_document() -> None:
    doc = tool_input({"server": "shop", "name": "query", "arguments": {"sql": "DELETE FROM t"}, "sql": "DELETE FROM t"})
    assert doc["request"]["kind"] == "tool"
    assert doc["tool"]["name"] == "query"
    assert doc["sql"]["statements"][0]["kind"] == "delete"
    assert doc["command"] is None


def test_a_listing_document() -> None:
    doc = tool_input({"name": "query", "listing": True})
    assert doc["request"]["kind"] == "tool_list"
    assert doc["sql"] is None


@pytest.mark.parametrize(
    ("tool", "message"),
    [
        ({"nme": "x"}, "`nme` is not a field of the tool (did you mean `name`?)"),
        ({"name": "x", "listing": "yes"}, "`listing` must be a boolean"),
        ({"name": 3}, "`tool.name`"),
        ({"name": "x", "arguments": ["a"]}, "`tool.arguments`"),
        ({"name": "x", "sql": 1}, "`sql`"),
        ("query", "must be an object"),
    ],
)
def test_malformed_tools_are_errors(tool: Any, message: str) -> None:
    with pytest.raises(BuiltinError) as info:
        tool_input(tool)
    assert message in str(info.value)
