"""Token-level work: splitting text into statements, redaction, fingerprints and hashes.

Everything here runs on the dialect's own tokenizer, so what counts as a string, a
comment or a statement boundary is exactly what the parser (and the database) sees.
Working on tokens rather than regenerating SQL from the tree is also what keeps
redaction cheap and lets it cover statements sqlglot only parses as a `Command`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import re
import threading
from collections.abc import Sequence
from typing import Any, Final

from sqlglot.tokenizer_core import TokenType

from subguard.sql._dialects import dialect_object, normalize_name

#: Token types whose text is a literal value: redacted to `PLACEHOLDER`.
LITERAL_TYPES: Final = frozenset(
    {
        TokenType.STRING,
        TokenType.NUMBER,
        TokenType.BIT_STRING,
        TokenType.HEX_STRING,
        TokenType.BYTE_STRING,
        TokenType.NATIONAL_STRING,
        TokenType.NATIONAL_RAW_STRING,
        TokenType.RAW_STRING,
        TokenType.HEREDOC_STRING,
        TokenType.UNICODE_STRING,
    }
)

PLACEHOLDER: Final = "?"

_NO_SPACE_BEFORE: Final = frozenset(
    {TokenType.COMMA, TokenType.R_PAREN, TokenType.DOT, TokenType.SEMICOLON, TokenType.R_BRACKET}
)
_NO_SPACE_AFTER: Final = frozenset({TokenType.L_PAREN, TokenType.DOT, TokenType.L_BRACKET})
_NAME_TYPES: Final = frozenset({TokenType.VAR, TokenType.IDENTIFIER})

# MySQL runs the body of `/*! ... */` (optionally `/*!50001 ... */`) as code, so a guard
# that treated it as a comment would miss `SELECT 1 /*! ; DROP TABLE users */`.
_MYSQL_EXECUTABLE_COMMENT: Final = re.compile(r"/\*M?!\d{0,6}(.*?)\*/", re.DOTALL)


def unhide_executable_comments(text: str, dialect: str) -> str:
    """For MySQL, inline the bodies of executable comments so they are analysed as code."""
    if dialect == "mysql" and "/*!" in text:
        return _MYSQL_EXECUTABLE_COMMENT.sub(lambda m: " " + m.group(1) + " ", text)
    return text


# Building a tokenizer costs about as much as tokenizing a short statement, and a
# tokenizer holds per-call state, so each thread keeps one per dialect (emptied after
# each use, so it does not hold on to the last statement's text).
_LOCAL: Final = threading.local()


def _tokenizer(dialect: str, flat: bool) -> Any:
    try:
        cache: dict[tuple[str, bool], Any] = _LOCAL.tokenizers
    except AttributeError:
        cache = _LOCAL.tokenizers = {}
    tokenizer = cache.get((dialect, flat))
    if tokenizer is None:
        cls = _flat_tokenizer_class(dialect) if flat else dialect_object(dialect).tokenizer_class
        tokenizer = cache[(dialect, flat)] = cls(dialect_object(dialect))
    return tokenizer


def _run(tokenizer: Any, text: str) -> list[Any]:
    try:
        return list(tokenizer.tokenize(text))
    finally:
        tokenizer.tokenize("")  # keep no reference to the statement text between calls


def tokenize(text: str, dialect: str) -> list[Any]:
    """The dialect tokenizer's tokens for `text` (raises sqlglot's `TokenError`)."""
    return _run(_tokenizer(dialect, False), text)


@functools.cache
def _flat_tokenizer_class(dialect: str) -> Any:
    base = dialect_object(dialect).tokenizer_class
    return type(f"Flat{base.__name__}", (base,), {"COMMANDS": set()})


@functools.cache
def command_tokens(dialect: str) -> frozenset[Any]:
    """Token types after which the tokenizer swallows the statement as one string."""
    return frozenset(dialect_object(dialect).tokenizer_class.COMMANDS)


def tokenize_flat(text: str, dialect: str) -> list[Any]:
    """Tokens with command bodies tokenized too.

    The ordinary tokenizer turns everything after PREPARE, EXECUTE, SHOW, … into a single
    string token (the parser then builds an `exp.Command`). Left so, every PREPARE would
    redact to `PREPARE ?` and share one fingerprint, and a command's own structure would
    be invisible; this tokenizer reads those bodies as ordinary tokens.
    """
    return _run(_tokenizer(dialect, True), text)


_ROUTINE_WORDS: Final = frozenset({"TRIGGER", "PROCEDURE", "FUNCTION", "EVENT"})


def _routine_head(current: Sequence[Any]) -> bool:
    """A CREATE [OR REPLACE] [DEFINER = …] TRIGGER/PROCEDURE/FUNCTION/EVENT head so far."""
    return any(
        t.token_type != TokenType.IDENTIFIER and str(t.text).upper() in _ROUTINE_WORDS
        for t in current[1:8]
    )


def split_statements(tokens: Sequence[Any]) -> list[list[Any]]:
    """Token lists of each statement, split where the parser splits: at semicolons.

    A SQL-standard routine body (`CREATE FUNCTION … BEGIN ATOMIC …; …; END`) is one
    statement: semicolons between its BEGIN ATOMIC and the matching END do not split.
    """
    chunks: list[list[Any]] = []
    current: list[Any] = []
    atomic = 0
    for tok in tokens:
        ttype = tok.token_type
        if atomic:
            word = str(tok.text).upper() if ttype != TokenType.IDENTIFIER else ""
            if word in ("BEGIN", "CASE"):
                atomic += 1
            elif word == "END":
                atomic -= 1
            current.append(tok)
            continue
        if (
            current
            and ttype != TokenType.IDENTIFIER
            and str(current[0].text).upper() == "CREATE"
            and (
                (str(tok.text).upper() == "ATOMIC" and str(current[-1].text).upper() == "BEGIN")
                or (str(tok.text).upper() == "BEGIN" and _routine_head(current))
            )
        ):
            # CREATE … BEGIN ATOMIC …; END, and a MySQL/SQLite/T-SQL trigger, procedure or
            # function whose BEGIN … END body holds semicolons: one statement.
            atomic = 1
            current.append(tok)
            continue
        if ttype == TokenType.SEMICOLON:
            if current:
                chunks.append(current)
            current = []
        else:
            current.append(tok)
    if current:
        chunks.append(current)
    return chunks


def _quote(dialect: str, text: str) -> str:
    d = dialect_object(dialect)
    start, end = d.IDENTIFIER_START, d.IDENTIFIER_END
    return f"{start}{text.replace(end, end + end)}{end}"


def _normal_text(tok: Any, dialect: str) -> str:
    """A token's text with keyword case and unquoted-name case normalized."""
    ttype = tok.token_type
    if ttype == TokenType.VAR:
        return normalize_name(dialect, tok.text, False)
    if ttype == TokenType.IDENTIFIER:
        return _quote(dialect, normalize_name(dialect, tok.text, True))
    return str(tok.text).upper()


#: Normalized (type, text) pairs per dialect and (type, raw text): keywords and names
#: repeat across statements, and the pair object is shared by every part list using it.
_NORMAL_PARTS: Final[dict[str, dict[tuple[Any, str], tuple[Any, str]]]] = {}
_NORMAL_PARTS_LIMIT: Final = 8192


def _normal_parts(dialect: str) -> dict[tuple[Any, str], tuple[Any, str]]:
    cache = _NORMAL_PARTS.get(dialect)
    if cache is None or len(cache) > _NORMAL_PARTS_LIMIT:
        cache = _NORMAL_PARTS[dialect] = {}
    return cache


def render(parts: list[tuple[Any, str]]) -> str:
    out: list[str] = []
    prev_type: Any = None
    for ttype, text in parts:
        if out and not (
            ttype in _NO_SPACE_BEFORE
            or prev_type in _NO_SPACE_AFTER
            or (ttype == TokenType.L_PAREN and prev_type in _NAME_TYPES)
        ):
            out.append(" ")
        out.append(text)
        prev_type = ttype
    return "".join(out)


def normalized_parts(
    chunks: Sequence[Sequence[Any]], dialect: str, *, redact: bool, depth: int = 0
) -> list[tuple[Any, str]]:
    """(type, text) pairs of the statements, literals replaced by `?` when `redact`."""
    return normalized_pair(chunks, dialect, depth)[0 if redact else 1]


def normalized_pair(
    chunks: Sequence[Sequence[Any]], dialect: str, depth: int = 0
) -> tuple[list[tuple[Any, str]], list[tuple[Any, str]]]:
    """`normalized_parts` redacted and not, from one pass over the tokens."""
    shape: list[tuple[Any, str]] = []
    exact: list[tuple[Any, str]] = []
    commands = command_tokens(dialect)
    known = _normal_parts(dialect)
    for i, chunk in enumerate(chunks):
        if i:
            shape.append(_SEMICOLON_PART)
            exact.append(_SEMICOLON_PART)
        if (
            len(chunk) == 2
            and chunk[0].token_type in commands
            and chunk[1].token_type == TokenType.STRING
        ):
            # If the body does not tokenize it stays one literal: redacted whole, never shown.
            with contextlib.suppress(Exception):
                chunk = [chunk[0], *tokenize_flat(chunk[1].text, dialect)]
        for j, tok in enumerate(chunk):
            ttype = tok.token_type
            if ttype in LITERAL_TYPES:
                bodies = (
                    _code_literal(chunk, j, dialect, depth) if ttype != TokenType.NUMBER else None
                )
                if bodies is not None:
                    shape.append((ttype, bodies[0]))
                    exact.append((ttype, bodies[1]))
                else:
                    shape.append((ttype, PLACEHOLDER))
                    # The type name keeps 'a' and a distinct 1 apart in the exact hash.
                    exact.append((ttype, f"{_type_name(ttype)}:{tok.text}"))
            else:
                key = (ttype, tok.text)
                part = known.get(key)
                if part is None:
                    part = known[key] = (ttype, _normal_text(tok, dialect))
                shape.append(part)
                exact.append(part)
    return shape, exact


_SEMICOLON_PART: Final = (TokenType.SEMICOLON, ";")


def redacted_and_hashes(chunks: Sequence[Sequence[Any]], dialect: str) -> tuple[str, str, str]:
    """`render`, shape `digest` and exact `digest` of the statements, in one pass.

    The same values as building both part lists and rendering and hashing them, without
    the intermediate lists: on a long query this pass is as costly as parsing it.
    """
    rendered: list[str] = []
    shape: list[str] = []  # pieces of the hashed stream; `exact` differs only at literals
    exact_at: list[tuple[int, str]] = []
    commands = command_tokens(dialect)
    known = _normal_pieces(dialect)
    number = TokenType.NUMBER
    # Spacing as in `render`: the previous token's "no space after" and "is a name".
    prev_tight = prev_name = False
    for i, chunk in enumerate(chunks):
        if i:
            rendered.append(";")
            shape.append(_SEMICOLON_PIECE)
            prev_tight = prev_name = False
        if (
            len(chunk) == 2
            and chunk[0].token_type in commands
            and chunk[1].token_type == TokenType.STRING
        ):
            with contextlib.suppress(Exception):
                chunk = [chunk[0], *tokenize_flat(chunk[1].text, dialect)]
        for j, tok in enumerate(chunk):
            ttype = tok.token_type
            if ttype in LITERAL_TYPES:
                bodies = _code_literal(chunk, j, dialect, 0) if ttype is not number else None
                name = _type_name(ttype)
                if bodies is not None:
                    text = bodies[0]
                    exact_at.append((len(shape), f"{name}:{len(bodies[1])}:{bodies[1]}"))
                    shape.append(f"{name}:{len(text)}:{text}")
                else:
                    text = PLACEHOLDER
                    value = f"{name}:{tok.text}"
                    exact_at.append((len(shape), f"{name}:{len(value)}:{value}"))
                    shape.append(f"{name}:1:?")
                if rendered and not prev_tight:
                    rendered.append(" ")
                prev_tight = prev_name = False
            else:
                entry = known.get((ttype, tok.text))
                if entry is None:
                    entry = _normal_piece(tok, dialect)
                    known[(ttype, tok.text)] = entry
                text, piece, tight_before, tight_after, is_name, is_l_paren = entry
                shape.append(piece)
                if rendered and not (tight_before or prev_tight or (is_l_paren and prev_name)):
                    rendered.append(" ")
                prev_tight, prev_name = tight_after, is_name
            rendered.append(text)
    shape_body = "".join(shape)
    if exact_at:
        for index, piece in exact_at:
            shape[index] = piece
        exact_body = "".join(shape)
    else:
        exact_body = shape_body
    if shape_body.isascii() and exact_body.isascii():
        return (
            "".join(rendered),
            _digest_ascii("sg-shape", dialect, shape_body),
            _digest_ascii("sg-exact", dialect, exact_body),
        )
    # Outside ASCII the lengths in the hashed stream are byte lengths: the general path.
    shape_parts, exact_parts = normalized_pair(chunks, dialect)
    return (
        "".join(rendered),
        digest("sg-shape", dialect, shape_parts),
        digest("sg-exact", dialect, exact_parts),
    )


def _normal_piece(tok: Any, dialect: str) -> tuple[str, str, bool, bool, bool, bool]:
    """A token's normalized text, its piece of the hashed stream, and how `render` spaces it."""
    ttype = tok.token_type
    text = _normal_text(tok, dialect)
    return (
        text,
        f"{_type_name(ttype)}:{len(text)}:{text}",
        ttype in _NO_SPACE_BEFORE,
        ttype in _NO_SPACE_AFTER,
        ttype in _NAME_TYPES,
        ttype == TokenType.L_PAREN,
    )


_SEMICOLON_PIECE: Final = "SEMICOLON:1:;"

#: Per dialect, (type, raw text) → `_normal_piece` of such a token.
_NORMAL_PIECES: Final[
    dict[str, dict[tuple[Any, str], tuple[str, str, bool, bool, bool, bool]]]
] = {}


def _normal_pieces(dialect: str) -> dict[tuple[Any, str], tuple[str, str, bool, bool, bool, bool]]:
    cache = _NORMAL_PIECES.get(dialect)
    if cache is None or len(cache) > _NORMAL_PARTS_LIMIT:
        cache = _NORMAL_PIECES[dialect] = {}
    return cache


#: Words after which a string is SQL the database will run (dynamic SQL, routine bodies).
_CODE_CONTEXT: Final = frozenset({"EXECUTE", "EXEC", "IMMEDIATE", "DO", "AS", "FROM", "("})
_CODE_STATEMENTS: Final = frozenset({"DO", "EXECUTE", "EXEC", "PREPARE", "CREATE"})


def _code_literal(chunk: Sequence[Any], j: int, dialect: str, depth: int) -> tuple[str, str] | None:
    """The normalized text, redacted and not, of a string the statement runs as SQL, else None.

    Without this every `EXECUTE '…'`, `DO $$…$$` and function body would redact to `?`
    and share one fingerprint, so approving one shape would approve them all. Only
    strings in a running position are opened, so an ordinary value such as
    `note = 'select the best'` is never shown.
    """
    if depth >= 3 or j == 0:
        return None
    if depth == 0 and str(chunk[0].text).upper() not in _CODE_STATEMENTS:
        return None
    prev = str(chunk[j - 1].text).upper()
    if prev not in _CODE_CONTEXT:
        return None
    if prev == "FROM" and str(chunk[0].text).upper() != "PREPARE":
        return None
    if prev == "(" and (j < 2 or str(chunk[j - 2].text).upper() not in ("EXEC", "EXECUTE")):
        return None
    try:
        inner = split_statements(tokenize_flat(str(chunk[j].text), dialect))
    except Exception:
        return None
    shape, exact = normalized_pair(inner, dialect, depth + 1)
    return "$$ " + render(shape) + " $$", "$$ " + render(exact) + " $$"


def redacted_text(chunks: Sequence[Sequence[Any]], dialect: str) -> str:
    """The statements as normalized text with every literal replaced by `?`."""
    return render(normalized_parts(chunks, dialect, redact=True))


def digest(kind: str, dialect: str, parts: Sequence[tuple[Any, str]]) -> str:
    """A stable hex hash of typed token texts (unambiguous: each part is length-prefixed)."""
    names = _TYPE_NAMES
    body = "".join([f"{names.get(tt) or _type_name(tt)}:{len(tx)}:{tx}" for tt, tx in parts])
    if body.isascii():
        # For ASCII, characters are bytes, so one encode gives the same stream as per-part
        # encoding with byte lengths.
        return _digest_ascii(kind, dialect, body)
    h = hashlib.blake2b(digest_size=16, person=kind.encode()[:16])
    h.update(dialect.encode() + b"\0")
    for ttype, text in parts:
        data = text.encode("utf-8", "surrogatepass")
        h.update(f"{_type_name(ttype)}:{len(data)}:".encode())
        h.update(data)
    return h.hexdigest()


def _digest_ascii(kind: str, dialect: str, body: str) -> str:
    h = hashlib.blake2b(digest_size=16, person=kind.encode()[:16])
    h.update(dialect.encode() + b"\0")
    h.update(body.encode())
    return h.hexdigest()


_TYPE_NAMES: Final[dict[Any, str]] = {}


def _type_name(ttype: Any) -> str:
    name = _TYPE_NAMES.get(ttype)
    if name is None:
        name = _TYPE_NAMES[ttype] = str(ttype.name)
    return name


def untokenizable_digest(kind: str, dialect: str, text: str) -> str:
    """Hash for text the tokenizer rejects: of the raw text, so two such texts never share one."""
    h = hashlib.blake2b(digest_size=16, person=kind.encode()[:16])
    h.update(b"untokenizable\0" + dialect.encode() + b"\0")
    h.update(text.encode("utf-8", "surrogatepass"))
    return h.hexdigest()


UNTOKENIZABLE_REDACTED: Final = "<untokenizable statement>"
