"""Regular expressions for policies, on RE2: matching costs time linear in the text,
whatever the pattern (`^(a+)+$` on agent text cannot backtrack for seconds).

RE2 has no backreferences and no lookaround; a pattern using them is an error — at load
time, with file and line, when the pattern is a constant in the policy; at run time (a
builtin error, so the decision fails closed) when it is computed.
"""

from __future__ import annotations

from typing import Any, Final

import re2  # type: ignore[import-untyped]  # google-re2 ships no type information

__all__ = ["PATTERN_ARGUMENTS", "RegexError", "compile_regex"]

#: The builtins whose argument at this 0-based position is a regular expression.
PATTERN_ARGUMENTS: Final = {
    "regex.match": 0,
    "regex.split": 0,
    "regex.find_n": 0,
    "regex.find_all_string_submatch_n": 0,
    "regex.replace": 1,
}


class RegexError(ValueError):
    """A pattern RE2 cannot compile; the message names RE2's reason, not the pattern
    (a computed pattern may hold request text)."""


def _options(dot_nl: bool) -> Any:
    options = re2.Options()
    options.log_errors = False  # RE2 would print every rejected pattern to stderr
    options.dot_nl = dot_nl
    return options


_PLAIN: Final = _options(False)
_DOT_ALL: Final = _options(True)


def compile_regex(pattern: str, *, dot_all: bool = False) -> Any:
    """`pattern` compiled by RE2 (`dot_all`: `.` matches a newline too); `RegexError`
    when RE2 rejects it."""
    try:
        return re2.compile(pattern, options=_DOT_ALL if dot_all else _PLAIN)
    except re2.error as exc:
        raise RegexError(f"invalid regular expression ({_reason(exc)})") from None
    except (TypeError, ValueError) as exc:  # a NUL byte or a surrogate in the pattern
        raise RegexError(f"invalid regular expression ({type(exc).__name__})") from None


def _reason(exc: BaseException) -> str:
    raw = exc.args[0] if exc.args else ""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    # RE2 appends the offending fragment of the pattern after a colon: keep the reason
    return text.split(":", 1)[0].strip() or "rejected by RE2"
