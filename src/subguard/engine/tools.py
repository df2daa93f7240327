"""Facts of an MCP tool call (`input.tool`) and how the log names it without its values.

A tool call's arguments reach the rules (`input.tool.arguments`) but never the log: the
log gets the tool's name, the redacted SQL or command of the analysed argument, and a
digest of the arguments. The digest (`exact_hash`) lets a once-grant match this exact
call; the shape (`fingerprint`: tool, argument names, and the SQL's or command's shape)
lets a window grant match calls of the same form.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping
from typing import Any

from subguard.engine.types import ToolRequest
from subguard.lang import from_json

__all__ = ["arguments_digest", "tool_document", "tool_identity"]


def _canonical(value: Any) -> bytes:
    # sorted keys: the same arguments in another order are the same call
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8", "surrogatepass"
    )


def arguments_digest(arguments: Mapping[str, Any]) -> str:
    """`sha256:` and the first 32 hex digits of the canonical JSON of `arguments`."""
    try:
        encoded = _canonical(dict(arguments))
    except (TypeError, ValueError):
        # not JSON (never so from MCP): a digest no other call shares, so no grant matches
        encoded = uuid.uuid4().bytes
    return "sha256:" + hashlib.sha256(encoded).hexdigest()[:32]


def tool_document(request: ToolRequest) -> dict[str, Any]:
    """`input.tool`: the server, the tool's name and its arguments (JSON values)."""
    return {
        "server": request.server,
        "name": request.name,
        "arguments": from_json(dict(request.arguments)),
    }


def _shape(value: Any) -> Any:
    """The structure of a JSON value with its scalars replaced by their types."""
    if isinstance(value, Mapping):
        return {str(k): _shape(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_shape(v) for v in value]
    return type(value).__name__


def tool_identity(
    request: ToolRequest, analysed_text: str | None, analysed_shape: str | None
) -> tuple[str, str, str]:
    """`(redacted text, fingerprint, exact hash)` of a tool call for the log.

    `analysed_text` is the redacted SQL or command of the analysed argument (None when
    the call has none); `analysed_shape` its fingerprint, if it has one.
    """
    digest = arguments_digest(request.arguments)
    head = (
        f"{request.kind} {request.server}/{request.name}"
        if request.server
        else f"{request.kind} {request.name}"
    )
    text = f"{head} args={digest}"
    if analysed_text is not None:
        text += f" {'sql' if request.sql is not None else 'command'}: {analysed_text}"
    others = {
        k: v for k, v in request.arguments.items() if k not in _analysed_argument_names(request)
    }
    shape = {
        "kind": request.kind,
        "server": request.server,
        "name": request.name,
        "arguments": _shape(others),
        "analysed": analysed_shape if analysed_shape is not None else analysed_text,
    }
    fingerprint = "tool:" + hashlib.sha256(_canonical(shape)).hexdigest()[:32]
    exact = hashlib.sha256(
        _canonical({"kind": request.kind, "server": request.server, "name": request.name})
        + b"\0"
        + digest.encode()
    ).hexdigest()
    return text, fingerprint, exact


def _analysed_argument_names(request: ToolRequest) -> frozenset[str]:
    """The argument whose text was analysed: its literals are in the analysed shape."""
    text = request.sql if request.sql is not None else request.command
    if text is None:
        return frozenset()
    return frozenset(k for k, v in request.arguments.items() if v == text)
