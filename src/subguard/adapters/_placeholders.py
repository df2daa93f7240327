"""Placeholders as the analysis reads them: the numeric styles (`:1`, `?1`) rewritten to
forms the SQL parser knows, outside string literals, quoted names and comments.

Only placeholder tokens change, each into another placeholder, so the statement the
analysis sees has the structure of the one the driver runs; parameter values are never
part of either text.
"""

from __future__ import annotations

import re

__all__ = ["for_analysis"]

# One alternation, scanned left to right: skipped spans first, then the placeholders.
_TOKEN = re.compile(
    r"""
      (?P<skip>
          '(?:[^']|'')*'?            # string literal ('' escapes)
        | "(?:[^"]|"")*"?            # quoted identifier
        | `[^`]*`?                   # MySQL quoted identifier
        | --[^\n]*                   # line comment
        | /\*.*?(?:\*/|\Z)           # block comment (unterminated runs to the end)
        | \$(?P<tag>[A-Za-z_]\w*)?\$.*?(?:\$(?P=tag)?\$|\Z)  # dollar quoting
        | ::                         # a cast, never a placeholder
      )
    | (?P<qnum>\?\d+)                # ?NNN (SQLite)
    | (?<![\w\]:])(?P<colnum>:\d+)(?!\w)   # :NNN (PEP 249 numeric)
    """,
    re.VERBOSE | re.DOTALL,
)


_HINT = re.compile(r"[?:]\d")
_SEEN: dict[str, str] = {}
_SEEN_MAX = 4096


def for_analysis(text: str, *, numeric: bool = True) -> str:
    """`text` with numeric placeholders rewritten (`?1` → `?`, `:1` → `:p1`); unchanged
    for drivers whose placeholders are `%s`/`%(name)s` (`numeric=False`)."""
    if not numeric:
        return text
    seen = _SEEN.get(text)
    if seen is not None:
        return seen
    rewritten = _rewrite(text) if _HINT.search(text) else text
    if len(_SEEN) >= _SEEN_MAX:
        _SEEN.clear()
    if len(text) <= 4096:
        _SEEN[text] = rewritten
    return rewritten


def _rewrite(text: str) -> str:

    def replace(match: re.Match[str]) -> str:
        if match.group("qnum"):
            return "?"
        if match.group("colnum"):
            return ":p" + match.group("colnum")[1:]
        return match.group(0)

    return _TOKEN.sub(replace, text)
