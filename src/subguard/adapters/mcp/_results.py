"""Masking a tool's result: the rows of its structured content (objects in lists)
rewritten by the decision's mask plan, the unstructured copy replaced by the masked one.

A result that cannot be masked reliably is refused (`Unmaskable`), never returned as
it came: no structured content, an error result, content other than text, a row whose
columns are not the analysed ones, or a value outside the rows that could carry data.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import mcp_types as types

from subguard.adapters._masking import REDACTED, MaskPlan

__all__ = ["Unmaskable", "mask_by_name", "mask_by_plan"]


class Unmaskable(Exception):
    """The result cannot be masked with certainty; the message says why."""


def _structured(result: types.CallToolResult) -> dict[str, Any]:
    if result.is_error:
        raise Unmaskable("the tool returned an error, whose text cannot be masked")
    structured = result.structured_content
    if not isinstance(structured, dict):
        raise Unmaskable("the tool's result has no structured content to mask")
    for block in result.content:
        if not isinstance(block, types.TextContent):
            raise Unmaskable(
                f"the tool's result holds `{block.type}` content, which cannot be masked"
            )
    return structured


def _rebuilt(_result: types.CallToolResult, structured: dict[str, Any]) -> types.CallToolResult:
    # the unstructured copy the server sent carries the unmasked values: replace it
    text = json.dumps(structured, ensure_ascii=False, indent=2, default=str)
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)],
        structured_content=structured,
        is_error=False,
    )


def mask_by_plan(
    result: types.CallToolResult, plan: MaskPlan | None, columns: Sequence[str]
) -> types.CallToolResult:
    """Mask a SQL tool's result: every object inside a list is a row and must have the
    analysed columns, in order; outside rows only column names, booleans and nulls may
    appear (a number or a string there could be a masked value)."""
    structured = _structured(result)
    known = {c.lower() for c in columns}

    def walk(value: Any, in_list: bool) -> Any:
        if isinstance(value, dict):
            if in_list:
                return _mask_row(value, plan)
            return {k: walk(v, False) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, True) for v in value]
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in known:
            return value
        raise Unmaskable("the tool's result holds a value outside its rows")

    return _rebuilt(result, walk(structured, False))


def _mask_row(row: dict[str, Any], plan: MaskPlan | None) -> dict[str, Any]:
    if plan is None:
        raise Unmaskable("the tool's result has rows where the analysis expects none")
    names = list(row)
    if not plan.matches(names):
        raise Unmaskable("a row of the tool's result does not have the analysed columns")
    values = plan.apply(tuple(row.values()))
    return dict(zip(names, values))


def mask_by_name(
    result: types.CallToolResult, masks: Mapping[str, Callable[[Any], Any]]
) -> types.CallToolResult:
    """Mask a tool's result by column name alone (a tool with no SQL to trace): every
    object key, at any depth, named by a mask (`email` or `users.email` both name the
    key `email`) has its value rewritten; a masked key holding an object or a list is
    replaced whole."""
    structured = _structured(result)
    wanted = {name.rsplit(".", 1)[-1].lower(): mask for name, mask in masks.items()}

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                mask = wanted.get(str(k).lower())
                if mask is None:
                    out[k] = walk(v)
                elif isinstance(v, dict | list):
                    out[k] = REDACTED
                else:
                    out[k] = mask(v)
            return out
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return _rebuilt(result, walk(structured))
