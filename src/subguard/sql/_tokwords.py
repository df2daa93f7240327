"""Reading names, words and strings off a statement's tokens: the shared vocabulary of the
token-level readers (commands sqlglot could not parse, procedural bodies, settings)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from sqlglot.tokenizer_core import TokenType

from subguard.sql._dialects import normalize_name
from subguard.sql._facts import Table
from subguard.sql._tokens import LITERAL_TYPES

NAME_TYPES: Final = frozenset({TokenType.VAR, TokenType.IDENTIFIER})
STRING_TYPES: Final = LITERAL_TYPES - {TokenType.NUMBER}

#: Words between a command's keyword and the object it names.
OBJECT_WORDS: Final = frozenset(
    {
        "TABLE", "VIEW", "MATERIALIZED", "INDEX", "SCHEMA", "DATABASE", "FUNCTION",
        "PROCEDURE", "SEQUENCE", "TYPE", "ROLE", "USER", "EXTENSION", "TRIGGER", "POLICY",
        "SERVER", "DOMAIN", "AGGREGATE", "OPERATOR", "COLLATION", "PUBLICATION",
        "SUBSCRIPTION", "TABLESPACE", "RULE", "FOREIGN", "EVENT", "LARGE", "OBJECT", "ON",
        "COLUMN", "CONSTRAINT",
    }
)  # fmt: skip
MODIFIER_WORDS: Final = frozenset(
    {
        "IF", "NOT", "EXISTS", "ONLY", "CONCURRENTLY", "TEMP", "TEMPORARY", "UNLOGGED",
        "OR", "REPLACE", "GLOBAL", "LOCAL", "FULL", "FREEZE", "VERBOSE", "ANALYZE",
        "ANALYSE", "SKIP_LOCKED", "INTO", "IGNORE", "LOW_PRIORITY", "DELAYED",
        "HIGH_PRIORITY", "QUICK", "FROM", "WITH", "DATA", "NO", "UNIQUE", "RECURSIVE",
        "SECURE", "TRANSIENT", "VOLATILE", "EXTERNAL", "LOCK", "TABLES",
    }
)  # fmt: skip
TABLE_OBJECT_WORDS: Final = frozenset({"TABLE", "VIEW", "MATERIALIZED", "INDEX", "TABLES"})

#: Command kinds whose named objects are written (the issue's list: creates, alters,
#: renames, drops, truncates, inserts into, updates, deletes from, merges into).
WRITING: Final = frozenset(
    {"alter", "create", "drop", "truncate", "insert", "update", "delete", "merge"}
)


def upper(tok: Any) -> str:
    return str(tok.text).upper()


def skip_parens(tokens: Sequence[Any], i: int) -> int:
    depth = 0
    while i < len(tokens):
        t = tokens[i].token_type
        if t == TokenType.L_PAREN:
            depth += 1
        elif t == TokenType.R_PAREN:
            depth -= 1
            if depth <= 0:
                return i + 1
        i += 1
    return i


def read_name(tokens: Sequence[Any], i: int, dialect: str) -> tuple[list[str], int]:
    """A dotted name starting at `i`: its normalized parts and the index after it."""
    parts: list[str] = []
    while i < len(tokens) and (tokens[i].token_type in NAME_TYPES or not parts):
        tok = tokens[i]
        if tok.token_type not in NAME_TYPES and tok.token_type in LITERAL_TYPES:
            break
        parts.append(normalize_name(dialect, tok.text, tok.token_type == TokenType.IDENTIFIER))
        i += 1
        if i < len(tokens) and tokens[i].token_type == TokenType.DOT:
            i += 1
            continue
        break
    return parts, i


def object_names(tokens: Sequence[Any], dialect: str) -> tuple[str | None, list[list[str]], int]:
    """After the keyword: (object type words, dotted names separated by commas, end index)."""
    i = 1
    words: list[str] = []
    while i < len(tokens):
        tok = tokens[i]
        word = upper(tok)
        if tok.token_type == TokenType.L_PAREN:
            i = skip_parens(tokens, i)
            continue
        if tok.token_type != TokenType.IDENTIFIER and word in OBJECT_WORDS:
            words.append(word)
        elif tok.token_type != TokenType.IDENTIFIER and word in MODIFIER_WORDS:
            pass
        else:
            break
        i += 1
    names: list[list[str]] = []
    while i < len(tokens) and (tokens[i].token_type in NAME_TYPES or tokens[i].text):
        if tokens[i].token_type in LITERAL_TYPES or tokens[i].token_type == TokenType.L_PAREN:
            break
        parts, j = read_name(tokens, i, dialect)
        if not parts or j == i:
            break
        names.append(parts)
        i = j
        if i < len(tokens) and tokens[i].token_type == TokenType.COMMA:
            i += 1
            continue
        break
    object_type = " ".join(w.lower() for w in words if w != "ON") or None
    return object_type, names, i


def table_of(parts: list[str]) -> Table:
    name = parts[-1]
    schema = parts[-2] if len(parts) >= 2 else None
    catalog = parts[-3] if len(parts) >= 3 else None
    return Table(name, schema, catalog, ".".join(parts[-3:]))


def string_tokens(tokens: Sequence[Any]) -> list[str]:
    return [str(t.text) for t in tokens if t.token_type in STRING_TYPES]


def index_of(tokens: Sequence[Any], word: str, start: int = 0) -> int:
    for i in range(start, len(tokens)):
        if tokens[i].token_type != TokenType.IDENTIFIER and upper(tokens[i]) == word:
            return i
    return -1


def tail_text(text_tokens: Sequence[Any], i: int, source: str) -> str:
    """Source text from token `i` to the end of the statement (positions from the tokenizer)."""
    if i >= len(text_tokens):
        return ""
    return source[text_tokens[i].start : text_tokens[-1].end + 1]
