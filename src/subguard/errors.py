"""The error hierarchy every subguard layer raises: one root, structured details."""

from __future__ import annotations

from typing import Any

import attrs

__all__ = [
    "AnalysisError",
    "ConfigError",
    "Location",
    "LogError",
    "PolicyError",
    "PolicyErrors",
    "SubguardError",
]


class SubguardError(Exception):
    """The root of every error subguard raises on purpose."""


@attrs.frozen
class Location:
    """A span of policy text: where it starts (1-based line and column) and, when known,
    where it ends. `line` 0 means the whole file (or no file at all)."""

    path: str = "<policy>"
    line: int = 0
    col: int = 0
    end_line: int = 0
    end_col: int = 0

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"

    @property
    def short(self) -> str:
        """`file:line`, as a decision cites a rule."""
        return f"{self.path}:{self.line}"


class PolicyError(SubguardError):
    """One located problem in policy text: a stable code, a place, a message, a hint.

    Codes are API (tests and tools match on them); messages are for people and follow
    Cedar's style: lowercase, no final period, user text in backticks.
    """

    def __init__(
        self,
        code: str,
        message: str,
        location: Location = Location(),
        *,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.location = location
        self.hint = hint

    @property
    def path(self) -> str:
        return self.location.path

    @property
    def line(self) -> int:
        return self.location.line

    @property
    def col(self) -> int:
        return self.location.col

    def __str__(self) -> str:
        text = f"{self.location}: {self.code}: {self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return text

    def __repr__(self) -> str:
        return f"PolicyError({self.code!r}, {self.message!r}, {self.location!r})"

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "path": self.path,
            "line": self.line,
            "col": self.col,
            "hint": self.hint,
        }


class PolicyErrors(PolicyError):
    """Several policy errors collected by the compiler's stages, raised together.

    It is itself a `PolicyError` (the first one), so a caller that handles one handles all.
    """

    def __init__(self, errors: list[PolicyError]) -> None:
        if not errors:
            raise ValueError("PolicyErrors needs at least one error")
        first = errors[0]
        super().__init__(first.code, first.message, first.location, hint=first.hint)
        self.errors = list(errors)

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


class AnalysisError(SubguardError):
    """A request could not be analysed (never raised by `subguard.sql.analyze` itself)."""


class LogError(SubguardError):
    """The decision log could not be opened, read or written."""


class ConfigError(SubguardError):
    """Bad configuration: a store URL, a data file, a request document."""
