"""Statements sqlglot could only read as `exp.Command`, recovered from their tokens.

sqlglot falls back to a command for DO, CALL, PREPARE, EXECUTE, LOCK, VACUUM, EXPLAIN
ANALYZE, many GRANT forms and more. Each is mapped by its leading keyword, and whatever
the statement runs or touches is recovered from the token structure: the body of a
PREPARE, the string an EXECUTE runs, the statements inside a DO block, the tables of a
LOCK or TRUNCATE, the objects of a GRANT.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from sqlglot import exp
from sqlglot.tokenizer_core import TokenType

from subguard.sql._describe import Context, Draft
from subguard.sql._dialects import normalize_name
from subguard.sql._facts import Grant, Statement, Table
from subguard.sql._kinds import command_kind
from subguard.sql._tokens import LITERAL_TYPES, split_statements, tokenize_flat

_NAME_TYPES: Final = frozenset({TokenType.VAR, TokenType.IDENTIFIER})
_STRING_TYPES: Final = LITERAL_TYPES - {TokenType.NUMBER}

#: Words between a command's keyword and the object it names.
_OBJECT_WORDS: Final = frozenset(
    {
        "TABLE", "VIEW", "MATERIALIZED", "INDEX", "SCHEMA", "DATABASE", "FUNCTION",
        "PROCEDURE", "SEQUENCE", "TYPE", "ROLE", "USER", "EXTENSION", "TRIGGER", "POLICY",
        "SERVER", "DOMAIN", "AGGREGATE", "OPERATOR", "COLLATION", "PUBLICATION",
        "SUBSCRIPTION", "TABLESPACE", "RULE", "FOREIGN", "EVENT", "LARGE", "OBJECT", "ON",
        "COLUMN", "CONSTRAINT",
    }
)  # fmt: skip
_MODIFIER_WORDS: Final = frozenset(
    {
        "IF", "NOT", "EXISTS", "ONLY", "CONCURRENTLY", "TEMP", "TEMPORARY", "UNLOGGED",
        "OR", "REPLACE", "GLOBAL", "LOCAL", "FULL", "FREEZE", "VERBOSE", "ANALYZE",
        "ANALYSE", "SKIP_LOCKED", "INTO", "IGNORE", "LOW_PRIORITY", "DELAYED",
        "HIGH_PRIORITY", "QUICK", "FROM", "WITH", "DATA", "NO", "UNIQUE", "RECURSIVE",
        "SECURE", "TRANSIENT", "VOLATILE", "EXTERNAL", "LOCK", "TABLES",
    }
)  # fmt: skip
_TABLE_OBJECT_WORDS: Final = frozenset({"TABLE", "VIEW", "MATERIALIZED", "INDEX", "TABLES"})

#: Command kinds whose named objects are written (the issue's list: creates, alters,
#: renames, drops, truncates, inserts into, updates, deletes from, merges into).
_WRITING: Final = frozenset(
    {"alter", "create", "drop", "truncate", "insert", "update", "delete", "merge"}
)


def _upper(tok: Any) -> str:
    return str(tok.text).upper()


def _skip_parens(tokens: Sequence[Any], i: int) -> int:
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


def _read_name(tokens: Sequence[Any], i: int, dialect: str) -> tuple[list[str], int]:
    """A dotted name starting at `i`: its normalized parts and the index after it."""
    parts: list[str] = []
    while i < len(tokens) and (tokens[i].token_type in _NAME_TYPES or not parts):
        tok = tokens[i]
        if tok.token_type not in _NAME_TYPES and tok.token_type in LITERAL_TYPES:
            break
        parts.append(normalize_name(dialect, tok.text, tok.token_type == TokenType.IDENTIFIER))
        i += 1
        if i < len(tokens) and tokens[i].token_type == TokenType.DOT:
            i += 1
            continue
        break
    return parts, i


def _object_names(tokens: Sequence[Any], dialect: str) -> tuple[str | None, list[list[str]], int]:
    """After the keyword: (object type words, dotted names separated by commas, end index)."""
    i = 1
    words: list[str] = []
    while i < len(tokens):
        tok = tokens[i]
        word = _upper(tok)
        if tok.token_type == TokenType.L_PAREN:
            i = _skip_parens(tokens, i)
            continue
        if tok.token_type != TokenType.IDENTIFIER and word in _OBJECT_WORDS:
            words.append(word)
        elif tok.token_type != TokenType.IDENTIFIER and word in _MODIFIER_WORDS:
            pass
        else:
            break
        i += 1
    names: list[list[str]] = []
    while i < len(tokens) and (tokens[i].token_type in _NAME_TYPES or tokens[i].text):
        if tokens[i].token_type in LITERAL_TYPES or tokens[i].token_type == TokenType.L_PAREN:
            break
        parts, j = _read_name(tokens, i, dialect)
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


def _table(parts: list[str]) -> Table:
    name = parts[-1]
    schema = parts[-2] if len(parts) >= 2 else None
    catalog = parts[-3] if len(parts) >= 3 else None
    return Table(name, schema, catalog, ".".join(parts[-3:]))


def _string_tokens(tokens: Sequence[Any]) -> list[str]:
    return [str(t.text) for t in tokens if t.token_type in _STRING_TYPES]


def _index_of(tokens: Sequence[Any], word: str, start: int = 0) -> int:
    for i in range(start, len(tokens)):
        if tokens[i].token_type != TokenType.IDENTIFIER and _upper(tokens[i]) == word:
            return i
    return -1


def _tail_text(text_tokens: Sequence[Any], i: int, source: str) -> str:
    """Source text from token `i` to the end of the statement (positions from the tokenizer)."""
    if i >= len(text_tokens):
        return ""
    return source[text_tokens[i].start : text_tokens[-1].end + 1]


# --------------------------------------------------------------------------------------


def _statement_text(ctx: Context, text: str, path: str) -> list[Statement]:
    """Text that must be a statement (EXPLAIN's, PREPARE … AS's): when it does not parse,
    an unparseable statement stands for it, so the rules refuse what they cannot read."""
    found = ctx.nested_text(text, path)
    if not found and text.strip():
        found = [Statement(kind="unparseable", path=path, nested=True)]
    return found


def describe_command(
    node: exp.Command, tokens: Sequence[Any], path: str, ctx: Context, *, nested: bool
) -> list[Statement]:
    """Facts of an `exp.Command`: kind from its keyword, the rest from its tokens."""
    keyword = str(node.this or "").upper()
    d = Draft(node, tokens, path, nested)
    d.kind = command_kind(keyword)
    text, toks = _command_source(node, tokens, ctx)
    if toks:
        for step in COMMAND_STEPS:
            step(d, ctx, toks, text)
    return d.finish()


def _command_source(
    node: exp.Command, tokens: Sequence[Any], ctx: Context
) -> tuple[str, list[Any]]:
    """The command's own text and tokens (rebuilt from the node when tokens are not at hand)."""
    body = node.expression
    rest = str(body.this) if isinstance(body, exp.Literal) else str(body or "")
    text = f"{node.this} {rest}"
    try:
        return text, tokenize_flat(text, ctx.dialect)
    except Exception:
        return text, list(tokens)


def command_objects(d: Draft, ctx: Context, toks: Sequence[Any], text: str) -> None:
    """Tables and the target a DDL/DML/LOCK/VACUUM/COPY command names."""
    if d.kind not in _WRITING | {"lock", "vacuum", "copy", "other", "show"}:
        return
    if d.kind == "insert" and _upper(toks[0]) in ("REPLACE", "UPSERT"):
        # MySQL REPLACE deletes and re-inserts: an upsert, bounded only by listed rows.
        d.upsert = True
        d.has_where = _index_of(toks, "VALUES") >= 0 and _index_of(toks, "SELECT") < 0
    object_type, names, end = _object_names(toks, ctx.dialect)
    d.object_type = object_type
    table_like = object_type is None or bool(set(object_type.upper().split()) & _TABLE_OBJECT_WORDS)
    written = d.kind in _WRITING
    if d.kind == "copy":
        written = _index_of(toks, "FROM", end) >= 0
        d.copy_program = _copy_program(toks)
        d.external_io |= _copy_io(toks, end)
    if d.kind == "vacuum" and _index_of(toks, "INTO") > 0:
        d.external_io.add("server_file")  # SQLite VACUUM INTO '<file>'
    if d.kind == "other" and _upper(toks[0]) == "REFRESH":
        written = True
    if d.kind in ("other", "show") and _upper(toks[0]) not in ("REFRESH", "DESCRIBE", "DESC"):
        return
    for parts in names:
        if not parts:
            continue
        if d.target is None:
            d.target = parts[-1]
        if table_like:
            table = _table(parts)
            d.tables.setdefault(table.qualified, table)
            (d.written if written else d.read).add(table.name)
    if d.kind == "alter":
        # ALTER TABLE a RENAME TO b writes b as well.
        i = _index_of(toks, "RENAME", end)
        j = _index_of(toks, "TO", i) if i >= 0 else -1
        if j >= 0:
            parts, _ = _read_name(toks, j + 1, ctx.dialect)
            if parts and table_like:
                table = _table(parts)
                d.tables.setdefault(table.qualified, table)
                d.written.add(table.name)


def _language(toks: Sequence[Any]) -> str | None:
    at = _index_of(toks, "LANGUAGE")
    if at < 0 or at + 1 >= len(toks):
        return None
    return str(toks[at + 1].text).strip("'\"").lower()


def _copy_io(toks: Sequence[Any], start: int) -> set[str]:
    """Where a COPY command reads or writes: STDIN/STDOUT stay with the client."""
    found: set[str] = set()
    for i in range(start, len(toks) - 1):
        if _upper(toks[i]) not in ("FROM", "TO", "INTO"):
            continue
        nxt = toks[i + 1]
        word = _upper(nxt)
        if word == "PROGRAM":
            found.add("program")
        elif nxt.token_type in _STRING_TYPES:
            found.add("remote" if "://" in str(nxt.text) else "server_file")
        elif str(nxt.text).startswith("@"):
            found.add("remote")
    return found


def _copy_program(toks: Sequence[Any]) -> bool:
    # The real shape: COPY … (FROM | TO) PROGRAM '<command>'.
    for i in range(len(toks) - 1):
        if _upper(toks[i]) in ("FROM", "TO") and _upper(toks[i + 1]) == "PROGRAM":
            return True
    return False


def command_grants(d: Draft, ctx: Context, toks: Sequence[Any], text: str) -> None:
    """GRANT/REVOKE forms sqlglot leaves as commands, read from their structure."""
    if d.kind not in ("grant", "revoke"):
        return
    action = d.kind
    on = _index_of(toks, "ON")
    to = _index_of(toks, "TO") if action == "grant" else _index_of(toks, "FROM", max(on, 0))
    head_end = on if on >= 0 else (to if to >= 0 else len(toks))
    privileges = frozenset(
        p.strip().lower()
        for p in " ".join(
            _upper(t) if t.token_type != TokenType.COMMA else "," for t in toks[1:head_end]
        ).split(",")
        if p.strip()
    )
    objects: set[str] = set()
    object_type: str | None = None
    if on >= 0:
        j = on + 1
        words: list[str] = []
        end = to if to >= 0 else len(toks)
        while (
            j < end
            and toks[j].token_type != TokenType.IDENTIFIER
            and _upper(toks[j])
            in (
                _OBJECT_WORDS
                | {"ALL", "IN", "TABLES", "SEQUENCES", "FUNCTIONS", "PROCEDURES", "ROUTINES"}
            )
        ):
            words.append(_upper(toks[j]))
            j += 1
        object_type = " ".join(w.lower() for w in words) or "table"
        while j < end:
            parts, k = _read_name(toks, j, ctx.dialect)
            if not parts or k == j:
                j += 1
                continue
            objects.add(parts[-1])
            if object_type in ("table", "view"):
                table = _table(parts)
                d.tables.setdefault(table.qualified, table)
            j = k
    else:
        object_type = "role"
        objects = {p.strip().lower() for p in privileges}
        privileges = frozenset()
    principals: set[str] = set()
    if to >= 0:
        j = to + 1
        while j < len(toks):
            word = _upper(toks[j])
            if word in ("WITH", "GRANTED", "CASCADE", "RESTRICT"):
                break
            if toks[j].token_type in _NAME_TYPES and word not in ("GROUP", "ROLE", "USER"):
                principals.add(
                    normalize_name(
                        ctx.dialect, toks[j].text, toks[j].token_type == TokenType.IDENTIFIER
                    )
                )
            j += 1
    d.object_type = object_type
    d.target = next(iter(objects)) if len(objects) == 1 else None
    d.grants.append(
        Grant(action, privileges, object_type, frozenset(objects), frozenset(principals))
    )


def command_nested(d: Draft, ctx: Context, toks: Sequence[Any], text: str) -> None:
    """What a command runs: PREPARE and EXPLAIN bodies, EXECUTE strings, DO blocks."""
    keyword = _upper(toks[0])
    if d.kind == "prepare":
        as_at = _index_of(toks, "AS")
        from_at = _index_of(toks, "FROM")
        if as_at >= 0 and (from_at < 0 or as_at < from_at):
            d.adopt(_statement_text(ctx, _tail_text(toks, as_at + 1, text), f"{d.path}.prepare"))
        elif from_at >= 0:
            # MySQL: PREPARE s FROM '<statement>'
            for i, s in enumerate(_string_tokens(toks[from_at + 1 :])):
                d.adopt(ctx.nested_text(s, f"{d.path}.prepare" + (f"[{i}]" if i else "")))
    elif d.kind == "execute":
        strings = _string_tokens(toks[1:])
        for i, s in enumerate(strings):
            d.adopt(ctx.nested_text(s, f"{d.path}.execute" + (f"[{i}]" if i else "")))
        j = 2 if len(toks) > 1 and _upper(toks[1]) == "IMMEDIATE" else 1
        if not strings or (j < len(toks) and toks[j].token_type not in _STRING_TYPES):
            if not strings and j < len(toks) and toks[j].token_type not in _NAME_TYPES:
                d.opaque_code = True
            elif strings:
                stmts, known = dynamic_sql(toks[j:], text, ctx, f"{d.path}.execute[d]")
                d.adopt(stmts)
                d.opaque_code = d.opaque_code or not known
    elif d.kind == "explain":
        # EXPLAIN ANALYZE runs its statement; list it whatever the options.
        i = 1
        while i < len(toks) and (
            toks[i].token_type == TokenType.L_PAREN
            or _upper(toks[i])
            in ("ANALYZE", "ANALYSE", "VERBOSE", "QUERY", "PLAN", "FORMAT", "EXTENDED")
        ):
            i = _skip_parens(toks, i) if toks[i].token_type == TokenType.L_PAREN else i + 1
        d.adopt(_statement_text(ctx, _tail_text(toks, i, text), f"{d.path}.explain"))
    elif d.kind == "do":
        bodies = _string_tokens(toks[1:])
        language = _language(toks) or "plpgsql"
        for body in bodies:
            routine_body(d, ctx, body, language, f"{d.path}.do")
        if not bodies:
            d.opaque_code = True
    elif d.kind == "create" and _index_of(toks, "ATOMIC") > 0:
        # SQL-standard body: BEGIN ATOMIC <statements> END, read as SQL.
        at = _index_of(toks, "ATOMIC")
        end = max(i for i, t in enumerate(toks) if _upper(t) == "END" or i == at)
        body = text[toks[at + 1].start : toks[end].start] if end > at + 1 else ""
        routine_body(d, ctx, body, "sql", f"{d.path}.function_body")
    elif d.kind == "create" and (d.object_type or "").endswith(("function", "procedure")):
        as_at = _index_of(toks, "AS")
        bodies = _string_tokens(toks[as_at + 1 :]) if as_at >= 0 else []
        language = _language(toks) or ""
        begin = _index_of(toks, "BEGIN")
        if not bodies and begin > 0:
            # MySQL / T-SQL: BEGIN … END, read like a PL/pgSQL block.
            body = text[toks[begin].start : toks[-1].end + 1]
            routine_body(d, ctx, body, "plpgsql", f"{d.path}.function_body")
        elif not bodies and as_at > 0 and as_at + 1 < len(toks):
            # T-SQL: CREATE PROCEDURE p AS <statement>
            body = text[toks[as_at + 1].start : toks[-1].end + 1]
            routine_body(d, ctx, body, "sql", f"{d.path}.function_body")
        else:
            routine_body(d, ctx, bodies[0] if bodies else None, language, f"{d.path}.function_body")
    elif d.kind == "create" and d.object_type == "trigger":
        # The statement a MySQL/SQLite/T-SQL trigger runs is part of its definition:
        # `… FOR EACH ROW <stmt>`, `… BEGIN <stmts> END`, `… AS <stmt>`. PostgreSQL's
        # `EXECUTE FUNCTION f()` names a function judged when it was created.
        start = -1
        begin = _index_of(toks, "BEGIN")
        row = _index_of(toks, "ROW")
        as_at = _index_of(toks, "AS")
        if begin > 0:
            start = begin + 1
        elif row > 0 and _index_of(toks, "EXECUTE", row) < 0:
            start = row + 1
            while start < len(toks) and _upper(toks[start]) in ("FOLLOWS", "PRECEDES"):
                start += 2
        elif as_at > 0:
            start = as_at + 1
        if 0 < start < len(toks):
            end = len(toks)
            if _upper(toks[-1]) == "END" and begin > 0:
                end -= 1
            body = text[toks[start].start : toks[end - 1].end + 1] if end > start else ""
            found = ctx.nested_text(body, f"{d.path}.trigger_body")
            if body.strip() and not found:
                found = [Statement(kind="unparseable", path=f"{d.path}.trigger_body", nested=True)]
            d.adopt(found)
    elif d.kind == "create" and d.object_type == "rule":
        # CREATE RULE … DO [ALSO | INSTEAD] <statement> | ( <statements> ) | NOTHING
        at = _index_of(toks, "DO")
        k = at + 1
        while 0 < k < len(toks) and _upper(toks[k]) in ("ALSO", "INSTEAD"):
            k += 1
        if at < 0:
            d.opaque_code = True
        elif k < len(toks) and _upper(toks[k]) != "NOTHING":
            inner = _tail_text(toks, k, text).strip()
            if inner.startswith("(") and inner.endswith(")"):
                inner = inner[1:-1]
            found = ctx.nested_text(inner, f"{d.path}.rule_action")
            if not found:
                found = [Statement(kind="unparseable", path=f"{d.path}.rule_action", nested=True)]
            d.adopt(found)
    elif d.kind == "call":
        call: Any
        try:
            call = exp.maybe_parse(_tail_text(toks, 1, text), dialect=ctx.dialect or None)
        except Exception:
            call = None
        if isinstance(call, exp.Func):
            for f in call.find_all(exp.Func):
                d.functions.add(
                    str(f.name).lower() if isinstance(f, exp.Anonymous) else f.sql_name().lower()
                )
            if isinstance(call, exp.Anonymous):
                d.target = str(call.name).lower()
    elif keyword in ("SELECT", "WITH", "VALUES", "TABLE"):
        d.kind = "other"


# --------------------------------------------------------------------------------------
# procedural bodies (DO blocks, PL/pgSQL functions)

_BLOCK_WORDS: Final = frozenset(
    {"BEGIN", "DECLARE", "THEN", "ELSE", "LOOP", "END", "$$", "EXCEPTION"}
)
_END_WORDS: Final = frozenset({"IF", "LOOP", "CASE", "WHILE", "FOR"})
_CONDITION_HEADS: Final = {"IF": "THEN", "ELSIF": "THEN", "ELSEIF": "THEN", "WHEN": "THEN",
                           "WHILE": "LOOP"}  # fmt: skip

#: Languages whose bodies the analysis reads; any other body is opaque code.
READ_LANGUAGES: Final = frozenset({"sql", "plpgsql", ""})


def procedural_body(text: str, path: str, ctx: Context) -> list[Statement]:
    """Statements a PL/pgSQL-style body runs (see `procedural_read`)."""
    return procedural_read(text, path, ctx)[0]


def procedural_read(text: str, path: str, ctx: Context) -> tuple[list[Statement], bool]:
    """Statements a PL/pgSQL-style body runs, and whether every part of it was read.

    The body is split at semicolons; block keywords, `IF … THEN`, `WHILE … LOOP` and
    `END IF` are stepped over (their conditions read as queries); `RETURN`, `PERFORM`,
    assignments and `RAISE` read as queries; `EXECUTE` of a literal, of `format(…)` or of
    a concatenation is analysed from its literal parts; any other piece must parse as a
    statement. Anything else (a loop over a query string, a cursor, dynamic SQL built
    from variables) leaves the body not fully read: opaque code.
    """
    try:
        toks = tokenize_flat(text, ctx.dialect)
    except Exception:
        return [], False
    out: list[Statement] = []
    fully = True
    counter = {"execute": 0, "statement": 0}

    def query(piece: Sequence[Any], i: int, j: int, prefix: str = "SELECT ") -> bool:
        if i >= j:
            return True
        sql = prefix + text[piece[i].start : piece[j - 1].end + 1]
        found = ctx.nested_text(sql, f"{path}.statement[{counter['statement']}]")
        if not found or found[0].kind in ("unparseable", "other"):
            return False
        counter["statement"] += 1
        out.extend(found)
        return True

    declaring = False
    for piece in split_statements(toks):
        i = 0
        n = len(piece)
        while i < n:
            word = _upper(piece[i]) if piece[i].token_type != TokenType.IDENTIFIER else ""
            if word == "DECLARE":
                declaring = True
                i += 1
            elif word == "BEGIN":
                declaring = False
                i += 1
            elif word == "END":
                i += 1
                if i < n and _upper(piece[i]) in _END_WORDS:
                    i += 1
            elif word in _BLOCK_WORDS:
                i += 1
            elif word in _CONDITION_HEADS:
                stop = _index_of(piece, _CONDITION_HEADS[word], i + 1)
                if stop < 0 or not query(piece, i + 1, stop):
                    fully = False
                    i = n
                    break
                i = stop + 1
            elif word in ("FOR", "FOREACH"):
                # FOR r IN <query> LOOP; FOR i IN 1..10 LOOP; FOR r IN EXECUTE … is dynamic.
                at = _index_of(piece, "IN", i + 1)
                stop = _index_of(piece, "LOOP", at + 1) if at > 0 else -1
                if stop < 0 or at + 1 >= stop:
                    fully = False
                    i = n
                    break
                if _upper(piece[at + 1]) == "EXECUTE":
                    stmts, _ = dynamic_sql(
                        piece[at + 2 : stop], text, ctx, f"{path}.execute[{counter['execute']}]"
                    )
                    counter["execute"] += 1
                    out.extend(stmts)
                    fully = False
                else:
                    source = text[piece[at + 1].start : piece[stop - 1].end + 1]
                    if ".." in source and _upper(piece[at + 1]) != "SELECT":
                        # An integer range: its bounds are expressions, read as a query.
                        found = ctx.nested_text(
                            "SELECT " + source.replace("..", ", "),
                            f"{path}.statement[{counter['statement']}]",
                        )
                        counter["statement"] += 1
                        if not found or found[0].kind != "select":
                            fully = False
                        out.extend(found)
                    elif not query(piece, at + 1, stop, prefix=""):
                        fully = False
                i = stop + 1
            else:
                break
        if i >= n:
            continue
        word = _upper(piece[i]) if piece[i].token_type != TokenType.IDENTIFIER else ""
        if word in ("EXECUTE", "EXEC"):
            j = i + 1
            if j < n and _upper(piece[j]) == "IMMEDIATE":
                j += 1
            stmts, read = dynamic_sql(piece[j:], text, ctx, f"{path}.execute[{counter['execute']}]")
            counter["execute"] += 1
            out.extend(stmts)
            fully = fully and read
            continue
        if word == "RETURN":
            if i + 1 < n and _upper(piece[i + 1]) == "QUERY":
                fully = query(piece, i + 2, n, prefix="") and fully
            elif i + 1 < n and not (n == i + 2 and _upper(piece[i + 1]) in ("NEW", "OLD", "NULL")):
                fully = query(piece, i + 1, n) and fully
            continue
        if word == "PERFORM":
            fully = query(piece, i + 1, n) and fully
            continue
        if word == "NULL" and n == i + 1:
            continue
        if word == "RAISE":
            comma = _index_of_type(piece, TokenType.COMMA, i)
            fully = (comma < 0 or query(piece, comma + 1, n)) and fully
            continue
        if i + 1 < n and piece[i + 1].token_type in (TokenType.COLON_EQ, TokenType.EQ):
            fully = query(piece, i + 2, n) and fully
            continue
        found = ctx.nested_text(
            _tail_text(piece, i, text), f"{path}.statement[{counter['statement']}]"
        )
        if found and found[0].kind not in ("unparseable", "other"):
            out.extend(found)
            counter["statement"] += 1
        elif not declaring:
            fully = False
        # else `name type [:= default]` in a DECLARE section: runs nothing by itself
    return out, fully


def _index_of_type(tokens: Sequence[Any], ttype: Any, start: int = 0) -> int:
    depth = 0
    for i in range(start, len(tokens)):
        t = tokens[i].token_type
        if t == TokenType.L_PAREN:
            depth += 1
        elif t == TokenType.R_PAREN:
            depth -= 1
        elif t == ttype and depth == 0:
            return i
    return -1


#: The name a dynamic SQL fragment's unknown parts are analysed as.
DYNAMIC_NAME: Final = "sg_dynamic"


def dynamic_sql(
    toks: Sequence[Any], text: str, ctx: Context, path: str
) -> tuple[list[Statement], bool]:
    """What `EXECUTE <expression>` runs, and whether it is fully known.

    A string literal is analysed as it is. `format('<template>', args…)` is analysed
    with its arguments substituted when they are all literals, else with the template's
    `%I`/`%s`/`%L` standing for an unknown name; `'…' || x || '…'` with unknown parts
    likewise. Only a plain literal (or a format of literals) is fully known.
    """
    end = len(toks)
    for k, tok in enumerate(toks):
        if tok.token_type != TokenType.IDENTIFIER and _upper(tok) in ("INTO", "USING") and k:
            end = k
            break
    if end == 0:
        return [], False
    source = text[toks[0].start : toks[end - 1].end + 1]
    try:
        node: Any = exp.maybe_parse(source, dialect=ctx.dialect or None)
    except Exception:
        return [], False
    sql, known = _dynamic_text(node)
    if sql is None:
        return [], False
    return ctx.nested_text(sql, path), known


def _dynamic_text(node: Any) -> tuple[str | None, bool]:
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.Literal) and node.is_string:
        return str(node.this), True
    if isinstance(node, (exp.DPipe, exp.Concat, exp.Add)):
        parts = node.expressions if isinstance(node, exp.Concat) else [node.this, node.expression]
        texts: list[str] = []
        known = True
        for part in parts:
            t, k = _dynamic_text(part)
            texts.append(t if t is not None else DYNAMIC_NAME)
            known = known and k and t is not None
        return "".join(texts), known
    name = str(node.name).lower() if isinstance(node, (exp.Anonymous, exp.Func)) else ""
    if name == "format" or isinstance(node, getattr(exp, "Format", ())):
        args = list(node.expressions) if isinstance(node, exp.Anonymous) else list(node.flatten())
        if not args:
            return None, False
        template, known = _dynamic_text(args[0])
        if template is None:
            return None, False
        values: list[str] = []
        for arg in args[1:]:
            t, k = _dynamic_text(arg)
            known = known and k and t is not None
            values.append(t if t is not None else DYNAMIC_NAME)
        return _apply_format(template, values), known
    return None, False


def _apply_format(template: str, values: list[str]) -> str:
    """PostgreSQL `format`: %I and %s insert the value, %L a quoted literal, %% a percent."""
    out: list[str] = []
    i = 0
    k = 0
    while i < len(template):
        ch = template[i]
        if ch == "%" and i + 1 < len(template):
            spec = template[i + 1]
            if spec == "%":
                out.append("%")
            elif spec in "IsL":
                value = values[k] if k < len(values) else DYNAMIC_NAME
                k += 1
                out.append("'" + value.replace("'", "''") + "'" if spec == "L" else value)
            else:
                out.append(ch + spec)
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def routine_body(d: Draft, ctx: Context, body: str | None, language: str, path: str) -> None:
    """A function's, procedure's or DO block's body: read when it is SQL or PL/pgSQL the
    analysis fully parses, opaque code otherwise (`plpython3u`, C, JavaScript, …)."""
    if body is None or language not in READ_LANGUAGES:
        d.opaque_code = True
        return
    if language == "plpgsql":
        stmts, fully = procedural_read(body, path, ctx)
        d.adopt(stmts)
        d.opaque_code = d.opaque_code or not fully
        return
    children = ctx.nested_text(body, path)
    if not children:
        children = [Statement(kind="unparseable", path=path, nested=True)]
    d.adopt(children)


# --------------------------------------------------------------------------------------
# settings, privilege changes and ALTER actions, read from the statement's tokens
# (for parsed statements and commands alike, so every spelling gets the same facts)

#: Objects whose creation, change or removal changes who may do what.
PRIVILEGE_OBJECTS: Final = frozenset(
    {"role", "user", "group", "login", "policy", "default privileges", "server role",
     "application role", "row access policy", "masking policy"}
)  # fmt: skip

#: T-SQL system procedures that change principals or memberships.
PRIVILEGE_PROCEDURES: Final = frozenset(
    {"sp_addrolemember", "sp_addsrvrolemember", "sp_droprolemember", "sp_dropsrvrolemember",
     "sp_addlogin", "sp_adduser", "sp_grantdbaccess", "sp_grantlogin", "sp_password",
     "sp_change_users_login", "sp_changedbowner", "sp_addrole", "sp_setapprole"}
)  # fmt: skip

#: T-SQL and MySQL procedures that reach outside the database.
PROCEDURE_IO: Final = {
    "xp_cmdshell": "program", "sp_oacreate": "program", "sp_execute_external_script": "program",
    "xp_dirtree": "server_file", "xp_fileexist": "server_file", "xp_subdirs": "server_file",
    "sp_addlinkedserver": "other_server", "sp_addlinkedsrvlogin": "other_server",
    "sp_configure": "program",
}  # fmt: skip

_SCOPES: Final = {
    "SESSION": "session", "LOCAL": "local", "GLOBAL": "global", "PERSIST": "global",
    "PERSIST_ONLY": "global",
}  # fmt: skip

#: `SET <words>` forms that are not `name = value`, and the setting each names.
_SET_FORMS: Final = (
    (("SESSION", "AUTHORIZATION"), "session_authorization"),
    (("SESSION", "CHARACTERISTICS"), "transaction"),
    (("DEFAULT", "ROLE"), "default_role"),
    (("ROLE",), "role"),
    (("PASSWORD",), "password"),
    (("TRANSACTION",), "transaction"),
    (("NAMES",), "names"),
    (("CHARACTER", "SET"), "names"),
    (("CHARSET",), "names"),
    (("TIME", "ZONE"), "timezone"),
    (("CONSTRAINTS",), "constraints"),
)  # fmt: skip

#: Settings whose change is a change of identity or credentials.
_PRIVILEGE_SETTINGS: Final = frozenset({"password", "default_role"})


def _words_at(toks: Sequence[Any], i: int, words: Sequence[str]) -> bool:
    if i + len(words) > len(toks):
        return False
    return all(
        toks[i + k].token_type != TokenType.IDENTIFIER and _upper(toks[i + k]) == w
        for k, w in enumerate(words)
    )


def _setting_name(toks: Sequence[Any], i: int, dialect: str) -> tuple[str | None, str | None, int]:
    """`[scope] name` at `i` (also `@@global.name`, `"role"`): (name, scope, next index)."""
    scope: str | None = None
    for words, name in _SET_FORMS:
        if _words_at(toks, i, words):
            return name, scope, i + len(words)
    while (
        i < len(toks) and toks[i].token_type != TokenType.IDENTIFIER and _upper(toks[i]) in _SCOPES
    ):
        scope = _SCOPES[_upper(toks[i])]
        i += 1
    for words, name in _SET_FORMS:
        if _words_at(toks, i, words):
            return name, scope, i + len(words)
    text = ""
    while i < len(toks):
        tok = toks[i]
        if tok.token_type in (TokenType.EQ, TokenType.COLON_EQ, TokenType.COMMA) or (
            tok.token_type != TokenType.IDENTIFIER and _upper(tok) in ("TO", "=")
        ):
            break
        text += str(tok.text)
        i += 1
        if tok.token_type in (TokenType.PARAMETER,) or str(tok.text) in ("@", "@@"):
            continue
        if i < len(toks) and toks[i].token_type == TokenType.DOT:
            text += "."
            i += 1
            continue
        if not text.endswith(("@", ".")):
            break
    name = text.lower()
    for prefix, sc in (("@@global.", "global"), ("@@persist.", "global"), ("@@persist_only.", "global"),
                       ("@@session.", "session"), ("@@local.", "session"), ("@@", None)):  # fmt: skip
        if name.startswith(prefix):
            name, scope = name[len(prefix) :], sc or scope
            break
    if name.startswith("@"):
        return None, scope, i  # a user variable, not a setting
    return (name or None), scope, i


def _skip_value(toks: Sequence[Any], i: int) -> int:
    depth = 0
    while i < len(toks):
        t = toks[i].token_type
        if t == TokenType.L_PAREN:
            depth += 1
        elif t == TokenType.R_PAREN:
            depth -= 1
        elif t == TokenType.COMMA and depth <= 0:
            return i
        i += 1
    return i


def _read_settings(d: Draft, toks: Sequence[Any], start: int, dialect: str, *, many: bool) -> None:
    i = start
    while i < len(toks):
        name, scope, i = _setting_name(toks, i, dialect)
        if name is not None:
            d.settings.append(name)
            if name in _PRIVILEGE_SETTINGS:
                d.privilege_change = True
        if scope is not None and d.setting_scope in (None, "session", "local"):
            d.setting_scope = scope
        i = _skip_value(toks, i)
        if not many or i >= len(toks):
            return
        i += 1  # the comma between MySQL assignments


def token_facts(d: Draft, ctx: Context, toks: Sequence[Any], text: str) -> None:
    """Settings, privilege changes and ALTER actions, whatever node the parser made."""
    if not toks:
        return
    first = _upper(toks[0])
    if first in ("PUT", "GET") and d.kind == "copy":
        d.external_io.add("remote")  # Snowflake stage transfers
    if first == "SET" and d.kind == "set":
        _read_settings(d, toks, 1, ctx.dialect, many=ctx.dialect in ("mysql", "", "tsql"))
    elif first == "RESET" and d.kind == "set":
        name, _, _ = _setting_name(toks, 1, ctx.dialect)
        d.settings.append(name or "all")
        d.setting_scope = "reset"
    elif first == "USE" and d.kind == "set":
        if _words_at(toks, 1, ("ROLE",)) or _words_at(toks, 1, ("SECONDARY", "ROLES")):
            d.settings.append("role")
        else:
            word = _upper(toks[1]).lower() if len(toks) > 2 else "database"
            d.settings.append(
                word if word in ("warehouse", "schema", "database", "catalog") else "database"
            )
    elif d.kind in ("grant", "revoke"):
        d.privilege_change = True
    elif first in ("EXEC", "EXECUTE") and len(toks) > 1:
        k = 2 if _upper(toks[1]) == "@" or toks[1].token_type == TokenType.PARAMETER else 1
        procedure = ""
        while k < len(toks) and (
            toks[k].token_type in _NAME_TYPES or toks[k].token_type == TokenType.DOT
        ):
            if toks[k].token_type in _NAME_TYPES:
                procedure = str(toks[k].text).lower()
            k += 1
        if procedure in PRIVILEGE_PROCEDURES:
            d.privilege_change = True
        if procedure in PROCEDURE_IO:
            d.external_io.add(PROCEDURE_IO[procedure])
        if procedure:
            d.functions.add(procedure)
    elif d.kind in ("create", "alter", "drop"):
        _ddl_token_facts(d, ctx, toks)
    if d.functions & PRIVILEGE_PROCEDURES:
        d.privilege_change = True


_OTHER_SERVER_WORDS: Final = frozenset({"SERVER", "FOREIGN", "MAPPING", "SUBSCRIPTION", "LINK"})
_REMOTE_WORDS: Final = frozenset({"STAGE", "INTEGRATION", "EXTERNAL", "CONNECTION"})


def _ddl_token_facts(d: Draft, ctx: Context, toks: Sequence[Any]) -> None:
    head = {_upper(t) for t in toks[1:6] if t.token_type != TokenType.IDENTIFIER}
    if d.kind == "create" and head & {"TEMP", "TEMPORARY"}:
        d.temporary = True
    if d.kind in ("create", "alter") and head & _OTHER_SERVER_WORDS and "ROLE" not in head:
        d.external_io.add("other_server")
    if d.kind in ("create", "alter") and head & _REMOTE_WORDS:
        d.external_io.add("remote")
    object_type, _, end = _object_names(toks, ctx.dialect)
    words = " ".join(_upper(t).lower() for t in toks[1:4])
    for kind in ("default privileges", "server role", "application role", "row access policy",
                 "masking policy"):  # fmt: skip
        if words.startswith(kind):
            object_type = kind
    if object_type is None and len(toks) > 1 and _upper(toks[1]) in ("GROUP", "LOGIN"):
        object_type = _upper(toks[1]).lower()
        parts, end = _read_name(toks, 2, ctx.dialect)
        d.target = parts[-1] if parts else d.target
    if object_type in PRIVILEGE_OBJECTS:
        d.privilege_change = True
        if d.object_type is None or d.object_type != object_type:
            d.object_type = object_type
    if d.kind != "alter":
        return
    if _words_at(toks, 1, ("SYSTEM",)) or _words_at(toks, 1, ("ACCOUNT",)):
        d.object_type = d.object_type or _upper(toks[1]).lower()
        d.setting_scope = "system"
        end = 2
    actions = _alter_actions(toks, end)
    if _upper(toks[0]) == "RENAME":
        actions = {"rename"}  # MySQL RENAME TABLE a TO b
    d.alter_actions |= actions
    if actions & {"owner", "add_member", "drop_member", "row_security"}:
        d.privilege_change = True
    # ALTER SYSTEM / DATABASE / ROLE … SET name = value; ALTER SESSION SET (Snowflake).
    for i in range(end, len(toks)):
        if _upper(toks[i]) in ("SET", "RESET") and toks[i].token_type != TokenType.IDENTIFIER:
            if i + 1 < len(toks) and _upper(toks[i + 1]) in ("SCHEMA", "TABLESPACE", "DEFAULT", "NOT",
                                                          "DATA", "LOGGED", "UNLOGGED", "WITHOUT",
                                                          "ACCESS", "STATISTICS", "STORAGE",
                                                          "COMPRESSION", "OPTIONS", "("):  # fmt: skip
                break
            if d.object_type in (
                None,
                "system",
                "account",
                "database",
                "role",
                "user",
                "session",
            ) or (d.object_type or "").endswith("session"):
                scope = "system" if d.setting_scope == "system" else (d.object_type or "session")
                _read_settings(d, toks, i + 1, ctx.dialect, many=True)
                d.setting_scope = scope
            break


#: ALTER action words and the action each names.
_ACTION_WORDS: Final = {
    "ADD": "add", "DROP": "drop", "RENAME": "rename", "OWNER": "owner", "ATTACH": "attach",
    "DETACH": "detach", "MODIFY": "type", "CHANGE": "type", "ENABLE": "enable",
    "DISABLE": "disable", "VALIDATE": "validate", "INHERIT": "inherit", "CLUSTER": "cluster",
    "REPLICA": "replica", "SWAP": "rename", "SUSPEND": "suspend", "RESUME": "resume",
    "REFRESH": "refresh", "UNSET": "set", "SET": "set", "RESET": "set", "NO": "inherit",
    "FORCE": "row_security", "REORGANIZE": "partition", "EXCHANGE": "partition",
    "TRUNCATE": "drop", "COALESCE": "partition", "REBUILD": "partition", "DISCARD": "drop",
    "IMPORT": "add", "CONVERT": "type", "ALGORITHM": "option", "LOCK": "option",
    "ALTER": "alter_column", "WITH": "option", "NOCHECK": "option", "CHECK": "validate",
    "SWITCH": "partition", "REMOVE": "drop", "SPLIT": "partition", "MERGE": "partition",
}  # fmt: skip

_COLUMN_SUBACTIONS: Final = (
    (("TYPE",), "type"), (("SET", "DATA", "TYPE"), "type"), (("DROP", "DEFAULT"), "drop_default"),
    (("DROP", "NOT", "NULL"), "drop_not_null"), (("DROP", "EXPRESSION"), "drop_expression"),
    (("DROP", "IDENTITY"), "drop_identity"), (("SET", "DEFAULT"), "set_default"),
    (("SET", "NOT", "NULL"), "set_not_null"), (("DROP",), "drop"),
)  # fmt: skip


#: Action keywords that count wherever they stand in an action (`ALTER TABLE users*
#: DROP …`, `ALTER FUNCTION f(int) OWNER TO …`), unless a column sub-action names them.
_ANYWHERE_ACTIONS: Final = {
    "DROP": "drop", "RENAME": "rename", "OWNER": "owner", "DETACH": "detach",
    "ATTACH": "attach",
}  # fmt: skip
_COLUMN_ONLY: Final = frozenset(
    {"drop_default", "drop_not_null", "drop_expression", "drop_identity", "type", "set_default",
     "set_not_null", "alter_column"}
)  # fmt: skip


def _alter_actions(toks: Sequence[Any], start: int) -> set[str]:
    actions: set[str] = set()
    i = start
    # Past what follows the name but is no action: `*` (descendants), an argument list.
    while i < len(toks) and (toks[i].token_type in (TokenType.STAR, TokenType.L_PAREN)):
        i = _skip_parens(toks, i) if toks[i].token_type == TokenType.L_PAREN else i + 1
    while i < len(toks):
        j = _skip_value(toks, i)
        piece = toks[i:j]
        action = _classify_action(piece)
        actions.add(action)
        if action not in _COLUMN_ONLY:
            depth = 0
            for tok in piece:
                if tok.token_type == TokenType.L_PAREN:
                    depth += 1
                elif tok.token_type == TokenType.R_PAREN:
                    depth -= 1
                elif depth == 0 and tok.token_type != TokenType.IDENTIFIER:
                    extra = _ANYWHERE_ACTIONS.get(_upper(tok))
                    if extra is not None and not (
                        extra == "drop" and action in ("drop_member", "row_security")
                    ):
                        actions.add(extra)
        i = j + 1
    return actions


def _classify_action(piece: Sequence[Any]) -> str:
    if not piece or piece[0].token_type == TokenType.IDENTIFIER:
        return "other"
    word = _upper(piece[0])
    if word == "OWNER":
        return "owner"
    if word == "ADD" and _words_at(piece, 1, ("MEMBER",)):
        return "add_member"
    if word == "ADD" and any(_words_at(piece, 1, (w,)) for w in ("USER", "ROLE")):
        return "add_member"
    if word == "DROP" and _words_at(piece, 1, ("MEMBER",)):
        return "drop_member"
    if word == "DROP" and any(_words_at(piece, 1, (w,)) for w in ("USER", "ROLE")):
        return "drop_member"
    if word in ("ENABLE", "DISABLE", "NO", "FORCE") and any(
        _upper(t) == "SECURITY" for t in piece[:5]
    ):
        return "row_security"
    if word in ("ALTER", "MODIFY") and not (len(piece) > 1 and _upper(piece[1]) in ("PARTITION",)):
        # ALTER [COLUMN] c <sub-action> / T-SQL ALTER COLUMN c <type> / MySQL MODIFY c <type>
        k = 1
        if k < len(piece) and _upper(piece[k]) == "COLUMN":
            k += 1
        k += 1  # the column name
        for words, action in _COLUMN_SUBACTIONS:
            if _words_at(piece, k, words):
                return action
        return "type"
    if word == "SET" and _words_at(piece, 1, ("SCHEMA",)):
        return "set_schema"
    return _ACTION_WORDS.get(word, "other")


#: The steps for a command, in order.
COMMAND_STEPS: Final = (command_objects, command_grants, command_nested, token_facts)
