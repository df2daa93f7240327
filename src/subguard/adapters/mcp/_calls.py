"""A `tools/call` as a subguard request: the tool must be one the server listed, its
arguments must fit the input schema the server declared, and the argument named by
`--sql-tool` / `--command-tool` becomes the SQL or command the rules judge.

Nothing here reveals an argument's value: validation errors name the argument's path
and the schema keyword that failed, never what the agent sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import jsonschema  # type: ignore[import-untyped]  # no stubs in the venv
import jsonschema.exceptions  # type: ignore[import-untyped]
import jsonschema.validators  # type: ignore[import-untyped]

from subguard.engine import ToolRequest

__all__ = ["CallProblem", "ToolSpec", "Validator", "parse_tool_spec", "tool_request"]


class CallProblem(Exception):
    """Why a call cannot become a request: `code` (`unlisted_tool`, `invalid_arguments`,
    `invalid_schema`) and a message naming no argument value."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@attrs.frozen
class ToolSpec:
    """Which argument of which tool is analysed: `sql_tools` and `command_tools` map a
    tool's name to the name of its argument."""

    sql_tools: Mapping[str, str] = attrs.field(factory=dict)
    command_tools: Mapping[str, str] = attrs.field(factory=dict)
    dialect: str | None = None


def parse_tool_spec(value: str) -> tuple[str, str]:
    """`TOOL:ARG` → `(tool, arg)`; a `ValueError` names what is wrong."""
    tool, sep, arg = value.partition(":")
    if not sep or not tool.strip() or not arg.strip():
        raise ValueError(f"`{value}` is not TOOL:ARG")
    return tool.strip(), arg.strip()


class Validator:
    """Validates one tool's arguments against the input schema its server declared.

    A schema that is itself invalid refuses every call (the server's declaration is the
    only contract the proxy has); remote `$ref`s are never fetched.
    """

    def __init__(self, schema: Mapping[str, Any] | None) -> None:
        self.problem: str | None = None
        self._validator: Any = None
        if not isinstance(schema, Mapping):
            self.problem = "the server declared no input schema for this tool"
            return
        try:
            cls = jsonschema.validators.validator_for(dict(schema))
            cls.check_schema(dict(schema))
            self._validator = cls(dict(schema))
        except jsonschema.exceptions.SchemaError as exc:
            self.problem = (
                f"the tool's input schema is invalid (`{exc.validator}` at `{_path(exc.path)}`)"
            )
        except Exception as exc:  # anything odd in a server's schema: fail closed
            self.problem = f"the tool's input schema cannot be used ({type(exc).__name__})"

    def check(self, arguments: Mapping[str, Any]) -> None:
        """Raise `CallProblem` when `arguments` do not fit the schema."""
        if self.problem is not None:
            raise CallProblem("invalid_schema", self.problem)
        try:
            error = jsonschema.exceptions.best_match(self._validator.iter_errors(dict(arguments)))
        except Exception as exc:  # a `$ref` that cannot be resolved, a regex that does not compile
            raise CallProblem(
                "invalid_schema",
                f"the tool's input schema cannot be applied ({type(exc).__name__})",
            ) from None
        if error is not None:
            raise CallProblem(
                "invalid_arguments",
                f"argument `{_path(error.absolute_path)}` does not satisfy `{error.validator}` of the tool's input schema",
            )


def _path(path: Any) -> str:
    parts = [str(p) for p in path]
    return "/".join(parts) if parts else "(arguments)"


def tool_request(
    server: str, name: str, arguments: Mapping[str, Any], spec: ToolSpec
) -> ToolRequest:
    """The request for one call; `CallProblem` when the analysed argument is missing or
    not a string (a SQL tool called without SQL is not a call the rules can judge)."""
    sql = command = None
    if name in spec.sql_tools:
        sql = _text_argument(arguments, spec.sql_tools[name], "SQL")
    elif name in spec.command_tools:
        command = _text_argument(arguments, spec.command_tools[name], "command")
    return ToolRequest(
        server, name, dict(arguments), sql=sql, command=command, dialect=spec.dialect
    )


def _text_argument(arguments: Mapping[str, Any], argument: str, what: str) -> str:
    value = arguments.get(argument)
    if not isinstance(value, str):
        raise CallProblem(
            "invalid_arguments", f"argument `{argument}` must be the {what} text (a string)"
        )
    return value
