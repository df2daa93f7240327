"""`analyze`, `redact` and `fingerprint`: the package's entry points, which never raise."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any, Final

from sqlglot import exp
from sqlglot.tokenizer_core import TokenType

from subguard.errors import ConfigError
from subguard.sql._cache import LRUCache
from subguard.sql._control import control_kind, notify_statement, notify_words
from subguard.sql._describe import describe
from subguard.sql._dialects import UnknownDialect, canonical_dialect, normalize_name
from subguard.sql._draft import Context
from subguard.sql._facts import SqlFacts, Statement, merge_columns
from subguard.sql._parse import parse_piece
from subguard.sql._schema import Schema, as_schema
from subguard.sql._shape import literal_free, shape_safe
from subguard.sql._tokens import (
    UNTOKENIZABLE_REDACTED,
    digest,
    normalized_parts,
    redacted_and_hashes,
    redacted_text,
    split_statements,
    tokenize,
    unhide_executable_comments,
    untokenizable_digest,
)

#: Analyses shared by every text of one shape, keyed by (dialect, schema version, shape
#: hash); only texts whose facts `_shape` proves literal-independent are stored here.
SHAPE_CACHE: Final[LRUCache[SqlFacts]] = LRUCache(max_entries=2048, max_bytes=16 * 1024 * 1024)

#: The process-wide analysis cache (see `LRUCache` for its bounds), consulted first;
#: clearing it clears the shape cache too.
CACHE: Final[LRUCache[SqlFacts]] = LRUCache(dependents=(SHAPE_CACHE,))

_TOKENIZE_ERROR: Final = (
    "line 1, col 1: cannot tokenize text (unterminated string, quoted name or comment?)"
)


def _unparseable(path: str, tokens: Any = (), *, nested: bool = False) -> Statement:
    into_outfile = False
    io: set[str] = set()
    words = [str(t.text).upper() for t in tokens]
    for a, b in itertools.pairwise(words):
        if a == "INTO" and b in ("OUTFILE", "DUMPFILE"):
            into_outfile = True
            io.add("server_file")
        if b == "INFILE" or (a, b) == ("BULK", "INSERT"):
            io.add("server_file")  # MySQL LOAD DATA [LOCAL] INFILE, T-SQL BULK INSERT
        if a in ("OPENROWSET", "OPENDATASOURCE", "OPENQUERY") or b in (
            "OPENROWSET",
            "OPENDATASOURCE",
        ):
            io.add("other_server")
    return Statement(
        kind="unparseable",
        path=path,
        nested=nested,
        into_outfile=into_outfile,
        external_io=frozenset(io),
    )


def _analyse_pieces(
    text: str,
    pieces: list[list[Any]],
    ctx: Context,
    prefix: str,
    nested: bool,
    shareable: list[bool] | None = None,
) -> tuple[list[Statement], str | None]:
    """Facts of each piece; `shareable` (when given) collects, per piece, `_shape`'s
    verdict on whether its facts hold for every value of its literals."""
    statements: list[Statement] = []
    verdicts: list[bool] = [] if shareable is None else shareable
    first_error: str | None = None
    for i, chunk in enumerate(pieces):
        if prefix:
            path = prefix if len(pieces) == 1 else f"{prefix}[{i}]"
        else:
            path = str(i)
        if _atomic_body(chunk):
            # CREATE … BEGIN ATOMIC …; END holds semicolons sqlglot would split at: read it
            # as a command, whose body the command steps analyse as SQL.
            rest = text[chunk[1].start : chunk[-1].end + 1] if len(chunk) > 1 else ""
            node = exp.Command(this="CREATE", expression=exp.Literal.string(rest))
            verdicts.append(False)
            statements.extend(describe(node, chunk, path, ctx, nested=nested))
            continue
        if ctx.dialect == "postgres" and notify_words(chunk):
            # LISTEN, UNLISTEN, NOTIFY: read from their tokens, or refused; never parsed
            # as anything else. The channel is a name; a NOTIFY's payload is dropped.
            verdicts.append(True)
            statements.append(_notify(chunk, text, path, ctx.dialect, nested))
            first_error = first_error or _notify_error(chunk, text, statements[-1], i, pieces)
            continue
        piece = parse_piece(chunk, text, ctx.dialect)
        if piece.node is None:
            control = control_kind(chunk)
            if control is not None:
                verdicts.append(literal_free(chunk))
                statements.append(Statement(kind=control, path=path, nested=nested))
                continue
            keyword = str(chunk[0].text).upper()
            if keyword in _MAINTENANCE and chunk[0].token_type != TokenType.IDENTIFIER:
                # CLUSTER, REINDEX, … that sqlglot cannot read: a command of that kind.
                rest = text[chunk[1].start : chunk[-1].end + 1] if len(chunk) > 1 else ""
                node = exp.Command(this=keyword, expression=exp.Literal.string(rest))
                verdicts.append(False)
                statements.extend(describe(node, chunk, path, ctx, nested=nested))
                continue
            first_error = first_error or (
                f"statement {i + 1}: {piece.error}" if len(pieces) > 1 else piece.error
            )
            verdicts.append(False)
            statements.append(_unparseable(path, chunk, nested=nested))
            continue
        _fold_identifiers(piece.node, ctx.dialect)
        if shareable is not None:
            verdicts.append(shape_safe(piece.node, chunk))
        statements.extend(describe(piece.node, chunk, path, ctx, nested=nested))
    return statements, first_error


def _notify(chunk: list[Any], text: str, path: str, dialect: str, nested: bool) -> Statement:
    found = notify_statement(chunk)
    if found is None:
        return _unparseable(path, chunk, nested=nested)
    kind, tok = found
    channel = None
    if tok is not None:
        quoted = tok.token_type == TokenType.IDENTIFIER
        channel = normalize_name(dialect, str(tok.text), quoted)
    return Statement(kind=kind, path=path, object_type="channel", target=channel, nested=nested)


def _notify_error(
    chunk: list[Any], text: str, statement: Statement, i: int, pieces: list[list[Any]]
) -> str | None:
    if statement.kind != "unparseable":
        return None
    start = int(chunk[0].start)
    where = f"line {chunk[0].line}, col {start - text.rfind(chr(10), 0, start)}"
    error = f"{where}: not a LISTEN, UNLISTEN or NOTIFY statement PostgreSQL accepts"
    return f"statement {i + 1}: {error}" if len(pieces) > 1 else error


#: Maintenance commands read from their tokens when sqlglot cannot parse them.
_MAINTENANCE: Final = frozenset({"CLUSTER", "REINDEX", "VACUUM", "ANALYZE", "ANALYSE", "OPTIMIZE"})


def _fold_identifiers(node: Any, dialect: str) -> None:
    """Fold every identifier as the database resolves it, in place, before any step runs.

    sqlglot's scopes match CTE and alias names by their text: `WITH T AS (…) SELECT x
    FROM t` would otherwise read `t` as a real table and lose the CTE's columns (and
    their masks).
    """
    for ident in node.find_all(exp.Identifier):
        text = ident.this
        if isinstance(text, str):
            folded = normalize_name(dialect, text, bool(ident.quoted))
            if folded != text:
                ident.set("this", folded)


def _atomic_body(chunk: list[Any]) -> bool:
    """A CREATE whose body holds semicolons (BEGIN ATOMIC, or BEGIN … END of a routine)."""
    if not chunk or str(chunk[0].text).upper() != "CREATE":
        return False
    return any(t.token_type == TokenType.SEMICOLON for t in chunk) or any(
        str(a.text).upper() == "BEGIN" and str(b.text).upper() == "ATOMIC"
        for a, b in itertools.pairwise(chunk)
    )


def _nested_text(text: str, path: str, ctx: Context) -> list[Statement]:
    """Analyse SQL found inside a statement; text that does not parse yields nothing."""
    try:
        tokens = tokenize(text, ctx.dialect)
    except Exception:
        return []
    statements, error = _analyse_pieces(text, split_statements(tokens), ctx, path, True)
    if error is not None and all(s.kind == "unparseable" for s in statements):
        return []
    return statements


def _facts(
    dialect: str,
    statements: list[Statement],
    parse_error: str | None,
    redacted: str,
    fingerprint_: str,
    exact: str,
    column_facts: bool = True,
) -> SqlFacts:
    top = [s for s in statements if not s.nested]
    if len(top) == 1:
        # One statement: its sets are the text's, and its columns are already merged.
        only = top[0]
        read, written, functions = only.tables_read, only.tables_written, only.functions
        columns = only.columns_read
    else:
        read = frozenset().union(*(s.tables_read for s in top))
        written = frozenset().union(*(s.tables_written for s in top))
        functions = frozenset().union(*(s.functions for s in top))
        columns = merge_columns([c for s in top for c in s.columns_read])
    return SqlFacts(
        dialect=dialect or None,
        statements=tuple(statements),
        tables_read=read,
        tables_written=written,
        columns_read=columns,
        functions=functions,
        parse_error=parse_error,
        redacted=redacted,
        fingerprint=fingerprint_,
        exact_hash=exact,
        column_facts=column_facts,
    )


def _analyse(
    text: str, dialect: str, schema: Schema | None, version: str = "", columns: bool = True
) -> SqlFacts:
    source = unhide_executable_comments(text, dialect)
    try:
        tokens = tokenize(source, dialect)
    except Exception:
        return _facts(
            dialect,
            [_unparseable("0")],
            _TOKENIZE_ERROR,
            UNTOKENIZABLE_REDACTED,
            untokenizable_digest("sg-shape", dialect, text),
            untokenizable_digest("sg-exact", dialect, text),
            columns,
        )
    chunks = split_statements(tokens)
    redacted, shape, exact = redacted_and_hashes(chunks, dialect)
    if not chunks:
        return _facts(
            dialect,
            [_unparseable("0")],
            "line 1, col 1: empty text, no statement",
            "",
            shape,
            exact,
            columns,
        )
    shape_key = (dialect, version, shape)
    shared = SHAPE_CACHE.get(shape_key)
    if shared is not None:
        return _with_exact_hash(shared, exact)
    ctx = Context(dialect, schema, _nested_text, columns=columns)
    verdicts: list[bool] = []
    try:
        statements, error = _analyse_pieces(source, chunks, ctx, "", False, verdicts)
    except Exception as exc:  # never raise: an analysis bug must fail closed, not open
        statements = [_unparseable("0")]
        error = f"line 1, col 1: analysis failed ({type(exc).__name__})"
        verdicts = [False]
    facts = _facts(dialect, statements, error, redacted, shape, exact, columns)
    if error is None and verdicts and all(verdicts):
        facts.to_input()  # built once, shared by every text of the shape
        SHAPE_CACHE.put(shape_key, facts, _cost(facts, redacted))
    return facts


def _with_exact_hash(shared: SqlFacts, exact: str) -> SqlFacts:
    """The shape's facts for one text of it: only the exact hash differs (the redacted
    text and the fingerprint are functions of the shape)."""
    # the constructor, not `attrs.evolve` (which reads the class's fields on every call):
    # every field but the exact hash is the shape's (a test holds the two equal)
    facts = SqlFacts(
        shared.dialect,
        shared.statements,
        shared.tables_read,
        shared.tables_written,
        shared.columns_read,
        shared.functions,
        shared.parse_error,
        shared.redacted,
        shared.fingerprint,
        exact,
        shared.column_facts,
    )
    object.__setattr__(facts, "_input", shared.to_input())
    return facts


def _cost(facts: SqlFacts, text: str) -> int:
    # A rough allowance per statement and per column; the benchmark reports how it
    # compares with measured allocations.
    n_cols = sum(len(s.columns_read) + len(s.output_columns) for s in facts.statements)
    return 2 * len(text) + len(facts.redacted) + 2500 * len(facts.statements) + 400 * n_cols + 1500


def analyze(
    text: str,
    *,
    dialect: str | None = None,
    schema: Mapping[str, Any] | Schema | None = None,
    columns: bool = True,
) -> SqlFacts:
    """Analyse SQL text into facts; never raises.

    `columns=False` skips column resolution, the costliest step (a pass over sqlglot's
    scopes resolving every column against the schema): `columns_read`, each statement's
    `output_columns` and `columns_written_from` are not computed, and `facts.column_facts`
    is false. `to_input()` then leaves those fields out (absent, not empty: a rule reading
    one finds it undefined, never "no columns"), so only a caller whose policy reads none
    of them, and who places no mask and checks no tagged column from them, may ask for it
    (the engine decides this: see `Engine` and docs/performance.md). Every other fact is
    the same as with columns: tables (read, written, qualified), kinds, functions,
    `has_where`, `has_limit`, nested statements, parse errors. Both kinds of analysis are
    cached apart: one without columns is never served to a caller that asked for them.

    >>> facts = analyze("DELETE FROM users WHERE 1=1", dialect="postgres")
    >>> facts.statements[0].kind, facts.statements[0].has_where, sorted(facts.tables_written)
    ('delete', False, ['users'])
    """
    if not isinstance(text, str):
        text = str(text)
    try:
        name = canonical_dialect(dialect)
    except UnknownDialect:
        return _unknown_dialect(text, dialect)
    try:
        sch = as_schema(schema, name)
    except Exception as exc:
        # A schema that cannot be read is never dropped (that would turn every mask into
        # an allow): the request is unparseable, with the reason.
        return _bad_schema(text, name, exc)
    version = sch.version if sch is not None else ""
    # the variant without columns is cached under a version of its own (both caches)
    key = (name, version if columns else version + _NO_COLUMNS, text)
    hit = CACHE.get(key)
    if hit is not None:
        return hit
    facts = _analyse(text, name, sch, key[1], columns)
    CACHE.put(key, facts, _cost(facts, text))
    return facts


#: Appended to the schema version in the cache keys of analyses without column facts.
_NO_COLUMNS: Final = "\0no-columns"


def _bad_schema(text: str, dialect: str, exc: Exception) -> SqlFacts:
    reason = (
        str(exc) if isinstance(exc, ConfigError) else f"schema: unreadable ({type(exc).__name__})"
    )
    base = _analyse(text, dialect, None)
    return SqlFacts(
        dialect=dialect or None,
        statements=(_unparseable("0"),),
        tables_read=base.tables_read,
        tables_written=base.tables_written,
        columns_read=(),
        functions=base.functions,
        parse_error=f"line 1, col 1: {reason}",
        redacted=base.redacted,
        fingerprint=base.fingerprint,
        exact_hash=base.exact_hash,
    )


def _unknown_dialect(text: str, dialect: Any) -> SqlFacts:
    shown = str(dialect)[:40].replace("`", "'")
    base = _analyse(text, "", None)
    return SqlFacts(
        dialect=None,
        statements=(_unparseable("0"),),
        tables_read=frozenset(),
        tables_written=frozenset(),
        columns_read=(),
        functions=frozenset(),
        parse_error=f"line 1, col 1: unknown dialect `{shown}`",
        redacted=base.redacted,
        fingerprint=base.fingerprint,
        exact_hash=base.exact_hash,
    )


def redact(text: str, dialect: str | None = None) -> str:
    """The text with every literal replaced by `?`, normalized; what the log stores.

    >>> redact("select * from users where email = 'a@b.c' and id > 42", "postgres")
    'SELECT * FROM users WHERE email = ? AND id > ?'
    """
    try:
        name = canonical_dialect(dialect)
    except UnknownDialect:
        name = ""
    source = unhide_executable_comments(text, name)
    try:
        return redacted_text(split_statements(tokenize(source, name)), name)
    except Exception:
        return UNTOKENIZABLE_REDACTED


def fingerprint(text: str, dialect: str | None = None) -> str:
    """Stable hex hash of the redacted, normalized text: one value per statement shape.

    >>> fingerprint("SELECT 1") == fingerprint("select   2 -- two")
    True
    """
    try:
        name = canonical_dialect(dialect)
    except UnknownDialect:
        name = ""
    source = unhide_executable_comments(text, name)
    try:
        chunks = split_statements(tokenize(source, name))
    except Exception:
        return untokenizable_digest("sg-shape", name, text)
    return digest("sg-shape", name, normalized_parts(chunks, name, redact=True))
