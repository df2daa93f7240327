"""Transaction and session-control statements sqlglot cannot parse, read from their tokens.

`START TRANSACTION READ ONLY`, `BEGIN READ ONLY`, `SAVEPOINT a`, `RELEASE SAVEPOINT a`,
`ABORT`, `DISCARD ALL`, `DEALLOCATE p` and their relatives are routine in every client
session. Each is matched against its whole grammar, token by token: a piece with anything
left over is not one of them and stays unparseable.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from sqlglot.tokenizer_core import TokenType

_NAME_TYPES: Final = frozenset({TokenType.VAR, TokenType.IDENTIFIER})

#: Transaction modes, as word sequences (`READ ONLY`, `ISOLATION LEVEL READ COMMITTED`).
_MODES: Final = (
    ("READ", "ONLY"), ("READ", "WRITE"), ("NOT", "DEFERRABLE"), ("DEFERRABLE",),
    ("ISOLATION", "LEVEL", "SERIALIZABLE"), ("ISOLATION", "LEVEL", "REPEATABLE", "READ"),
    ("ISOLATION", "LEVEL", "READ", "COMMITTED"), ("ISOLATION", "LEVEL", "READ", "UNCOMMITTED"),
    ("WITH", "CONSISTENT", "SNAPSHOT"),
)  # fmt: skip


class _Reader:
    def __init__(self, tokens: Sequence[Any]) -> None:
        self.tokens = tokens
        self.i = 0

    def done(self) -> bool:
        return self.i >= len(self.tokens)

    def word(self, *words: str) -> bool:
        """Consume the words in order if they come next (keywords, never quoted names)."""
        j = self.i
        for w in words:
            if j >= len(self.tokens):
                return False
            tok = self.tokens[j]
            if tok.token_type == TokenType.IDENTIFIER or str(tok.text).upper() != w:
                return False
            j += 1
        self.i = j
        return True

    def any_word(self, *words: str) -> bool:
        return any(self.word(w) for w in words)

    def name(self) -> bool:
        if self.done():
            return False
        tok = self.tokens[self.i]
        if tok.token_type in _NAME_TYPES or str(tok.text).isidentifier():
            self.i += 1
            return True
        return False

    def modes(self) -> None:
        while True:
            if not any(self.word(*m) for m in _MODES):
                return
            if not self.done() and self.tokens[self.i].token_type == TokenType.COMMA:
                self.i += 1

    def chain(self) -> None:
        if self.word("AND", "NO", "CHAIN") or self.word("AND", "CHAIN"):
            return


def control_kind(tokens: Sequence[Any]) -> str | None:
    """The kind of a transaction/session-control statement, or None when it is not one."""
    if not tokens:
        return None
    r = _Reader(tokens)
    kind: str | None = None
    if r.word("START", "TRANSACTION"):
        r.modes()
        kind = "transaction"
    elif r.word("BEGIN"):
        r.any_word("DEFERRED", "IMMEDIATE", "EXCLUSIVE")
        if r.any_word("WORK", "TRANSACTION", "TRAN"):
            pass
        r.modes()
        kind = "transaction"
    elif r.word("SAVEPOINT"):
        kind = "transaction" if r.name() else None
    elif r.word("SAVE"):
        # T-SQL: SAVE TRAN[SACTION] name
        kind = "transaction" if r.any_word("TRAN", "TRANSACTION") and r.name() else None
    elif r.word("RELEASE"):
        r.word("SAVEPOINT")
        kind = "transaction" if r.name() else None
    elif r.any_word("ABORT", "COMMIT", "END", "ROLLBACK"):
        r.any_word("WORK", "TRANSACTION", "TRAN")
        if r.word("TO"):
            r.word("SAVEPOINT")
            if not r.name():
                return None
        r.chain()
        kind = "transaction"
    elif r.word("DISCARD"):
        kind = "set" if r.any_word("ALL", "PLANS", "SEQUENCES", "TEMP", "TEMPORARY") else None
    elif r.word("DEALLOCATE"):
        r.word("PREPARE")
        kind = "prepare" if (r.word("ALL") or r.name()) else None
    return kind if kind is not None and r.done() else None


#: The words that start PostgreSQL's asynchronous-notification statements.
NOTIFY_WORDS: Final = frozenset({"LISTEN", "UNLISTEN", "NOTIFY"})

#: Token types of PostgreSQL's string constants (a NOTIFY payload): '…', E'…', U&'…',
#: $$…$$. Bit and hex strings (B'…', X'…') are not payloads; the server rejects them.
_PAYLOAD_TYPES: Final = frozenset(
    {
        TokenType.STRING,
        TokenType.BYTE_STRING,
        TokenType.UNICODE_STRING,
        TokenType.HEREDOC_STRING,
    }
)


def notify_words(tokens: Sequence[Any]) -> bool:
    """Whether a piece starts with LISTEN, UNLISTEN or NOTIFY (as a keyword, not a
    quoted name): then it is one of them or nothing, never read any other way."""
    if not tokens:
        return False
    first = tokens[0]
    return first.token_type != TokenType.IDENTIFIER and str(first.text).upper() in NOTIFY_WORDS


def _channel(tok: Any) -> bool:
    """A channel's name: a name, quoted or not, or a keyword used as one (never a
    string constant, whose text may read as a name)."""
    if tok.token_type in _NAME_TYPES:
        return True
    return "STRING" not in tok.token_type.name and str(tok.text).isidentifier()


def notify_statement(tokens: Sequence[Any]) -> tuple[str, Any] | None:
    """`LISTEN channel`, `UNLISTEN channel`, `UNLISTEN *` or `NOTIFY channel [, 'payload']`
    matched against PostgreSQL's whole grammar: the kind (`listen`, `unlisten`, `notify`)
    and the channel's token (None for `UNLISTEN *`), or None when the piece is anything
    else. The payload is a single string constant and is never returned."""
    if not notify_words(tokens):
        return None
    r = _Reader(tokens)
    kind = str(tokens[0].text).lower()
    r.i = 1
    if kind == "unlisten" and len(tokens) == 2 and tokens[1].token_type == TokenType.STAR:
        return kind, None
    if r.done() or tokens[r.i].token_type == TokenType.STAR:
        return None
    channel = tokens[r.i]
    if not _channel(channel):
        return None
    r.i += 1
    if kind == "notify" and not r.done():
        if tokens[r.i].token_type != TokenType.COMMA:
            return None
        r.i += 1
        if r.done() or tokens[r.i].token_type not in _PAYLOAD_TYPES:
            return None
        r.i += 1
    return (kind, channel) if r.done() else None
