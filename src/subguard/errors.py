"""The error hierarchy every subguard layer raises: one root, structured details."""

from __future__ import annotations

from typing import Any

__all__ = [
    "AnalysisError",
    "ConfigError",
    "LogError",
    "PolicyError",
    "PolicyErrors",
    "SubguardError",
]


class SubguardError(Exception):
    """The root of every error subguard raises on purpose."""


class PolicyError(SubguardError):
    """One located problem in policy text: a stable code, a place, a message, a hint.

    Codes are API (tests and tools match on them); messages are for people and follow
    Cedar's style: lowercase, no final period, user text in backticks.
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        path: str = "<policy>",
        line: int = 0,
        col: int = 0,
        hint: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.path = path
        self.line = line
        self.col = col
        self.hint = hint

    def __str__(self) -> str:
        text = f"{self.path}:{self.line}:{self.col}: {self.code}: {self.message}"
        if self.hint:
            text += f" ({self.hint})"
        return text

    def __repr__(self) -> str:
        return f"PolicyError({self.code!r}, {self.message!r}, path={self.path!r}, line={self.line}, col={self.col})"

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
        super().__init__(
            first.code, first.message, path=first.path, line=first.line, col=first.col, hint=first.hint
        )
        self.errors = list(errors)

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


class AnalysisError(SubguardError):
    """A request could not be analysed (never raised by `subguard.sql.analyze` itself)."""


class LogError(SubguardError):
    """The decision log could not be opened, read or written."""


class ConfigError(SubguardError):
    """Bad configuration: a store URL, a data file, a request document."""
