"""Turning text into statement nodes: tokenize once, split at semicolons, parse each piece.

Each piece is parsed on its own so one bad statement cannot hide the good ones around it
(`DROP TABLE x; SELEC …` still shows the DROP), and every failure becomes a positioned,
literal-free message instead of an exception.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Final

import attrs
from sqlglot.errors import ParseError
from sqlglot.tokenizer_core import TokenType

from subguard.sql._dialects import dialect_object
from subguard.sql._kinds import node_kind


@attrs.frozen
class Piece:
    """One statement's tokens and either its parsed node or a reason it is unparseable."""

    tokens: Sequence[Any]
    node: Any = None
    error: str | None = None


def token_kind(tok: Any) -> str:
    """A token's kind for messages: its type name, never its text (which may be a secret)."""
    return str(tok.token_type.name).lower()


def _error_at(tokens: Sequence[Any], line: int, col: int) -> str:
    near = None
    for tok in tokens:
        if (tok.line, tok.col) >= (line, col):
            near = tok
            break
    if near is None and tokens:
        near = tokens[-1]
    what = f"unexpected {token_kind(near)} token" if near is not None else "unexpected end"
    return f"line {line}, col {col}: {what}"


def _start(tok: Any, text: str) -> tuple[int, int]:
    """Line and column where a token starts (sqlglot's own `col` is where it ends)."""
    start = int(tok.start)
    return int(tok.line), start - text.rfind("\n", 0, start)


#: How deep parentheses may nest in one statement (subqueries, expressions, lists).
MAX_NESTING: Final = 100
#: How many queries (SELECT blocks: subqueries, CTEs, UNION branches) one statement may hold.
MAX_QUERIES: Final = 256
#: How many names (tables, columns, aliases) one statement may hold: each is resolved
#: through the statement's scopes, the costliest part of the analysis per byte.
MAX_NAMES: Final = 5000

_NAMES: Final = frozenset({TokenType.VAR, TokenType.IDENTIFIER})


def complexity_error(tokens: Sequence[Any], text: str) -> str | None:
    """Why a statement is too deep or too large to analyse in bounded time, or None.

    Checked on the tokens, before parsing: sqlglot's parser and scopes recurse once per
    level of nesting and relate every query to every other, so a statement beyond these
    limits would cost quadratic time or exhaust the stack. It is unparseable instead,
    which the rules refuse; nothing is silently cut short.
    """
    depth = deepest = queries = names = 0
    for tok in tokens:
        kind = tok.token_type
        if kind == TokenType.L_PAREN:
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > MAX_NESTING:
                    line, col = _start(tok, text)
                    return f"line {line}, col {col}: too complex (parentheses nested deeper than {MAX_NESTING})"
        elif kind == TokenType.R_PAREN:
            depth -= 1
        elif kind == TokenType.SELECT:
            queries += 1
            if queries > MAX_QUERIES:
                line, col = _start(tok, text)
                return f"line {line}, col {col}: too complex (more than {MAX_QUERIES} queries in one statement)"
        elif kind in _NAMES:
            names += 1
            if names > MAX_NAMES:
                line, col = _start(tok, text)
                return f"line {line}, col {col}: too complex (more than {MAX_NAMES} names in one statement)"
    return None


# A parser resets itself on every call but is not safe to share between threads, and
# building one per statement is a measurable share of parsing a short one. Each thread
# keeps one per dialect.
_LOCAL: Final = threading.local()


def _parser(dialect: str) -> Any:
    try:
        cache: dict[str, Any] = _LOCAL.parsers
    except AttributeError:
        cache = _LOCAL.parsers = {}
    parser = cache.get(dialect)
    if parser is None:
        parser = cache[dialect] = dialect_object(dialect).parser()
    return parser


def parse_piece(tokens: Sequence[Any], text: str, dialect: str) -> Piece:
    """Parse one statement's tokens; never raises."""
    too_complex = complexity_error(tokens, text)
    if too_complex is not None:
        return Piece(tokens, None, too_complex)
    parser = _parser(dialect)
    try:
        nodes = parser.parse(list(tokens), text)
    except ParseError as exc:
        line, col = _start(tokens[0], text)
        errs = exc.errors or [{}]
        err_line = int(errs[0].get("line") or line)
        err_col = int(errs[0].get("col") or col)
        return Piece(tokens, None, _error_at(tokens, err_line, err_col))
    except Exception as exc:  # sqlglot raises plain errors on some malformed input
        line, col = _start(tokens[0], text)
        return Piece(
            tokens,
            None,
            f"line {line}, col {col}: cannot parse statement ({type(exc).__name__})",
        )
    finally:
        parser.reset()  # keep no reference to the statement's text and tokens
    real = [n for n in nodes if n is not None]
    if len(real) != 1:
        line, col = _start(tokens[0], text)
        return Piece(tokens, None, f"line {line}, col {col}: expected one statement")
    node = real[0]
    if node_kind(node) is None and type(node).__name__ != "Command":
        line, col = _start(tokens[0], text)
        kind = type(node).__name__.lower()
        return Piece(
            tokens,
            None,
            f"line {line}, col {col}: not a statement (reads as {kind} expression)",
        )
    return Piece(tokens, node, None)
