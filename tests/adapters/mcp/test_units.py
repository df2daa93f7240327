"""The MCP guard's pure parts: a call as a request and as the log names it, argument
validation against declared schemas, and masking of structured results."""

from __future__ import annotations

from typing import Any

import mcp_types as types
import pytest
from hypothesis import given
from hypothesis import strategies as st

import subguard
from subguard.adapters._masking import MaskPlan, strategy
from subguard.adapters.mcp import CallProblem, ToolSpec, parse_tool_spec
from subguard.adapters.mcp._calls import Validator, tool_request
from subguard.adapters.mcp._results import Unmaskable, mask_by_name, mask_by_plan
from subguard.engine import Engine, ToolRequest
from subguard.engine.tools import arguments_digest, tool_identity

from .conftest import RULES

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20))
json_values = st.recursive(json_scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3), max_leaves=8)
arguments = st.dictionaries(st.text(min_size=1, max_size=8), json_values, max_size=4)


@given(arguments)
def test_the_log_text_never_holds_an_argument_value(args: dict[str, Any]) -> None:
    request = ToolRequest("srv", "tool", args)
    text, fingerprint, exact = tool_identity(request, None, None)
    digest = arguments_digest(args)
    assert text == f"tool srv/tool args={digest}"
    assert exact and fingerprint.startswith("tool:")


@given(arguments)
def test_argument_order_does_not_change_the_digest(args: dict[str, Any]) -> None:
    reordered = dict(reversed(list(args.items())))
    assert arguments_digest(args) == arguments_digest(reordered)
    assert tool_identity(ToolRequest("s", "t", args), None, None) == tool_identity(ToolRequest("s", "t", reordered), None, None)


def test_different_arguments_are_different_exact_calls() -> None:
    a = tool_identity(ToolRequest("s", "t", {"id": 1}), None, None)
    b = tool_identity(ToolRequest("s", "t", {"id": 2}), None, None)
    assert a[2] != b[2]
    assert a[1] == b[1]  # same shape: a window grant covers both


def test_a_tool_request_is_decided_with_its_sql() -> None:
    engine = Engine(subguard.load_policy(RULES))
    request = tool_request("srv", "query", {"sql": "DELETE FROM users"}, ToolSpec(sql_tools={"query": "sql"}))
    decision = engine.check(request, subject=subguard.Subject("a", groups={"agents"}))
    assert decision.effect.value == "approve"
    assert decision.input["tool"]["name"] == "query"
    assert decision.input["request"]["kind"] == "tool"
    assert "DELETE FROM users" in decision.input["request"]["text"]


def test_a_sql_literal_is_redacted_in_the_text() -> None:
    engine = Engine(subguard.load_policy(RULES))
    request = tool_request("srv", "query", {"sql": "SELECT * FROM users WHERE name = 'zed'"}, ToolSpec(sql_tools={"query": "sql"}))
    decision = engine.check(request, subject="a")
    assert "zed" not in decision.input["request"]["text"]


@pytest.mark.parametrize("bad", ["query", ":sql", "query:", ""])
def test_tool_spec_must_be_tool_colon_arg(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_tool_spec(bad)


@pytest.mark.parametrize("args", [{}, {"sql": 1}, {"sql": None}, {"sql": ["DROP TABLE x"]}])
def test_a_sql_tool_without_sql_text_is_a_problem(args: dict[str, Any]) -> None:
    with pytest.raises(CallProblem) as info:
        tool_request("srv", "query", args, ToolSpec(sql_tools={"query": "sql"}))
    assert info.value.code == "invalid_arguments"


SCHEMA = {"type": "object", "properties": {"path": {"type": "string", "maxLength": 10}}, "required": ["path"], "additionalProperties": False}


@pytest.mark.parametrize(
    ("args", "where"),
    [({}, "(arguments)"), ({"path": 7}, "path"), ({"path": "x" * 11}, "path"), ({"path": "a", "extra": "secret-value"}, "(arguments)")],
)
def test_validation_names_the_path_never_the_value(args: dict[str, Any], where: str) -> None:
    with pytest.raises(CallProblem) as info:
        Validator(SCHEMA).check(args)
    assert info.value.code == "invalid_arguments"
    assert f"`{where}`" in info.value.message
    assert "secret-value" not in info.value.message and "xxxxxxxxxxx" not in info.value.message


@pytest.mark.parametrize("schema", [None, {"type": "no-such-type"}, {"properties": 3}])
def test_a_missing_or_invalid_schema_refuses_every_call(schema: Any) -> None:
    with pytest.raises(CallProblem) as info:
        Validator(schema).check({})
    assert info.value.code == "invalid_schema"


def test_a_remote_ref_is_never_fetched() -> None:
    with pytest.raises(CallProblem) as info:
        Validator({"$ref": "http://127.0.0.1:9/schema.json"}).check({"x": 1})
    assert info.value.code == "invalid_schema"


def result(structured: Any, *, text: str = "raw", error: bool = False) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], structured_content=structured, is_error=error)


PLAN = MaskPlan((None, strategy("redact", b"k", direct=True)), ("name", "email"))


def test_rows_are_masked_and_the_raw_text_replaced() -> None:
    raw = result({"columns": ["name", "email"], "rows": [{"name": "ann", "email": "ann@x.org"}]}, text="ann@x.org")
    masked = mask_by_plan(raw, PLAN, ["name", "email"])
    assert masked.structured_content == {"columns": ["name", "email"], "rows": [{"name": "ann", "email": "****"}]}
    assert "ann@x.org" not in masked.content[0].text


@pytest.mark.parametrize(
    "structured",
    [
        {"rows": [{"email": "ann@x.org", "name": "ann"}]},  # columns in another order
        {"rows": [{"name": "ann"}]},  # a column missing
        {"rows": [{"name": "ann", "email": "e", "ssn": "s"}]},  # an extra column
        {"first": "ann@x.org", "rows": []},  # a value outside the rows
        {"count": 3, "rows": []},
    ],
)
def test_results_that_cannot_be_masked_reliably_are_refused(structured: Any) -> None:
    with pytest.raises(Unmaskable):
        mask_by_plan(result(structured), PLAN, ["name", "email"])


def test_error_and_unstructured_results_cannot_be_masked() -> None:
    with pytest.raises(Unmaskable):
        mask_by_plan(result(None), PLAN, ["name", "email"])
    with pytest.raises(Unmaskable):
        mask_by_plan(result({"rows": []}, error=True), PLAN, ["name", "email"])
    image = types.CallToolResult(content=[types.ImageContent(type="image", data="AAAA", mime_type="image/png")], structured_content={"rows": []})
    with pytest.raises(Unmaskable):
        mask_by_plan(image, PLAN, ["name", "email"])


def test_masking_by_name_reaches_nested_keys() -> None:
    raw = result({"user": {"Email": "ann@x.org", "tags": ["a"]}, "items": [{"email": {"v": 1}}]})
    masked = mask_by_name(raw, {"users.email": strategy("redact", b"k", direct=True)})
    assert masked.structured_content == {"user": {"Email": "****", "tags": ["a"]}, "items": [{"email": "****"}]}


emails = st.emails()
names = st.text(alphabet="abcdefghij", min_size=1, max_size=8)


@given(st.lists(st.tuples(names, emails), min_size=1, max_size=5))
def test_a_masked_value_never_survives_masking(rows: list[tuple[str, str]]) -> None:
    structured = {"columns": ["name", "email"], "rows": [{"name": n, "email": e} for n, e in rows]}
    raw = result(structured, text=repr(rows))
    masked = mask_by_plan(raw, PLAN, ["name", "email"])
    dumped = repr(masked.structured_content) + masked.content[0].text
    for _name, email in rows:
        assert email not in dumped
    assert [r["name"] for r in masked.structured_content["rows"]] == [n for n, _ in rows]
