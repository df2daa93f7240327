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

from subguard.sql._dialects import normalize_name
from subguard.sql._draft import Context, Draft
from subguard.sql._facts import Grant, Statement
from subguard.sql._kinds import command_kind
from subguard.sql._procedural import dynamic_sql, routine_body
from subguard.sql._settings import token_facts
from subguard.sql._tokens import tokenize_flat
from subguard.sql._tokwords import (
    NAME_TYPES,
    OBJECT_WORDS,
    STRING_TYPES,
    TABLE_OBJECT_WORDS,
    WRITING,
    index_of,
    object_names,
    read_name,
    skip_parens,
    string_tokens,
    table_of,
    tail_text,
    upper,
)

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
    if d.kind not in WRITING | {"lock", "vacuum", "copy", "other", "show"}:
        return
    if d.kind == "insert" and upper(toks[0]) in ("REPLACE", "UPSERT"):
        # MySQL REPLACE deletes and re-inserts: an upsert, bounded only by listed rows.
        d.upsert = True
        d.has_where = index_of(toks, "VALUES") >= 0 and index_of(toks, "SELECT") < 0
    object_type, names, end = object_names(toks, ctx.dialect)
    d.object_type = object_type
    table_like = object_type is None or bool(set(object_type.upper().split()) & TABLE_OBJECT_WORDS)
    written = d.kind in WRITING
    if d.kind == "copy":
        written = index_of(toks, "FROM", end) >= 0
        d.copy_program = _copy_program(toks)
        d.external_io |= _copy_io(toks, end)
    if d.kind == "vacuum" and index_of(toks, "INTO") > 0:
        d.external_io.add("server_file")  # SQLite VACUUM INTO '<file>'
    if d.kind == "other" and upper(toks[0]) == "REFRESH":
        written = True
    if d.kind in ("other", "show") and upper(toks[0]) not in ("REFRESH", "DESCRIBE", "DESC"):
        return
    for parts in names:
        if not parts:
            continue
        if d.target is None:
            d.target = parts[-1]
        if table_like:
            table = table_of(parts)
            d.tables.setdefault(table.qualified, table)
            (d.written if written else d.read).add(table.name)
    if d.kind == "alter":
        # ALTER TABLE a RENAME TO b writes b as well.
        i = index_of(toks, "RENAME", end)
        j = index_of(toks, "TO", i) if i >= 0 else -1
        if j >= 0:
            parts, _ = read_name(toks, j + 1, ctx.dialect)
            if parts and table_like:
                table = table_of(parts)
                d.tables.setdefault(table.qualified, table)
                d.written.add(table.name)


def _language(toks: Sequence[Any]) -> str | None:
    at = index_of(toks, "LANGUAGE")
    if at < 0 or at + 1 >= len(toks):
        return None
    return str(toks[at + 1].text).strip("'\"").lower()


def _copy_io(toks: Sequence[Any], start: int) -> set[str]:
    """Where a COPY command reads or writes: STDIN/STDOUT stay with the client."""
    found: set[str] = set()
    for i in range(start, len(toks) - 1):
        if upper(toks[i]) not in ("FROM", "TO", "INTO"):
            continue
        nxt = toks[i + 1]
        word = upper(nxt)
        if word == "PROGRAM":
            found.add("program")
        elif nxt.token_type in STRING_TYPES:
            found.add("remote" if "://" in str(nxt.text) else "server_file")
        elif str(nxt.text).startswith("@"):
            found.add("remote")
    return found


def _copy_program(toks: Sequence[Any]) -> bool:
    # The real shape: COPY … (FROM | TO) PROGRAM '<command>'.
    for i in range(len(toks) - 1):
        if upper(toks[i]) in ("FROM", "TO") and upper(toks[i + 1]) == "PROGRAM":
            return True
    return False


def command_grants(d: Draft, ctx: Context, toks: Sequence[Any], text: str) -> None:
    """GRANT/REVOKE forms sqlglot leaves as commands, read from their structure."""
    if d.kind not in ("grant", "revoke"):
        return
    action = d.kind
    on = index_of(toks, "ON")
    to = index_of(toks, "TO") if action == "grant" else index_of(toks, "FROM", max(on, 0))
    head_end = on if on >= 0 else (to if to >= 0 else len(toks))
    privileges = frozenset(
        p.strip().lower()
        for p in " ".join(
            upper(t) if t.token_type != TokenType.COMMA else "," for t in toks[1:head_end]
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
            and upper(toks[j])
            in (
                OBJECT_WORDS
                | {"ALL", "IN", "TABLES", "SEQUENCES", "FUNCTIONS", "PROCEDURES", "ROUTINES"}
            )
        ):
            words.append(upper(toks[j]))
            j += 1
        object_type = " ".join(w.lower() for w in words) or "table"
        while j < end:
            parts, k = read_name(toks, j, ctx.dialect)
            if not parts or k == j:
                j += 1
                continue
            objects.add(parts[-1])
            if object_type in ("table", "view"):
                table = table_of(parts)
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
            word = upper(toks[j])
            if word in ("WITH", "GRANTED", "CASCADE", "RESTRICT"):
                break
            if toks[j].token_type in NAME_TYPES and word not in ("GROUP", "ROLE", "USER"):
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
    keyword = upper(toks[0])
    if d.kind == "prepare":
        as_at = index_of(toks, "AS")
        from_at = index_of(toks, "FROM")
        if as_at >= 0 and (from_at < 0 or as_at < from_at):
            d.adopt(_statement_text(ctx, tail_text(toks, as_at + 1, text), f"{d.path}.prepare"))
        elif from_at >= 0:
            # MySQL: PREPARE s FROM '<statement>'
            for i, s in enumerate(string_tokens(toks[from_at + 1 :])):
                d.adopt(ctx.nested_text(s, f"{d.path}.prepare" + (f"[{i}]" if i else "")))
    elif d.kind == "execute":
        strings = string_tokens(toks[1:])
        for i, s in enumerate(strings):
            d.adopt(ctx.nested_text(s, f"{d.path}.execute" + (f"[{i}]" if i else "")))
        j = 2 if len(toks) > 1 and upper(toks[1]) == "IMMEDIATE" else 1
        if not strings or (j < len(toks) and toks[j].token_type not in STRING_TYPES):
            if not strings and j < len(toks) and toks[j].token_type not in NAME_TYPES:
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
            or upper(toks[i])
            in ("ANALYZE", "ANALYSE", "VERBOSE", "QUERY", "PLAN", "FORMAT", "EXTENDED")
        ):
            i = skip_parens(toks, i) if toks[i].token_type == TokenType.L_PAREN else i + 1
        d.adopt(_statement_text(ctx, tail_text(toks, i, text), f"{d.path}.explain"))
    elif d.kind == "do":
        bodies = string_tokens(toks[1:])
        language = _language(toks) or "plpgsql"
        for body in bodies:
            routine_body(d, ctx, body, language, f"{d.path}.do")
        if not bodies:
            d.opaque_code = True
    elif d.kind == "create" and index_of(toks, "ATOMIC") > 0:
        # SQL-standard body: BEGIN ATOMIC <statements> END, read as SQL.
        at = index_of(toks, "ATOMIC")
        end = max(i for i, t in enumerate(toks) if upper(t) == "END" or i == at)
        body = text[toks[at + 1].start : toks[end].start] if end > at + 1 else ""
        routine_body(d, ctx, body, "sql", f"{d.path}.function_body")
    elif d.kind == "create" and (d.object_type or "").endswith(("function", "procedure")):
        as_at = index_of(toks, "AS")
        bodies = string_tokens(toks[as_at + 1 :]) if as_at >= 0 else []
        language = _language(toks) or ""
        begin = index_of(toks, "BEGIN")
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
        begin = index_of(toks, "BEGIN")
        row = index_of(toks, "ROW")
        as_at = index_of(toks, "AS")
        if begin > 0:
            start = begin + 1
        elif row > 0 and index_of(toks, "EXECUTE", row) < 0:
            start = row + 1
            while start < len(toks) and upper(toks[start]) in ("FOLLOWS", "PRECEDES"):
                start += 2
        elif as_at > 0:
            start = as_at + 1
        if 0 < start < len(toks):
            end = len(toks)
            if upper(toks[-1]) == "END" and begin > 0:
                end -= 1
            body = text[toks[start].start : toks[end - 1].end + 1] if end > start else ""
            found = ctx.nested_text(body, f"{d.path}.trigger_body")
            if body.strip() and not found:
                found = [Statement(kind="unparseable", path=f"{d.path}.trigger_body", nested=True)]
            d.adopt(found)
    elif d.kind == "create" and d.object_type == "rule":
        # CREATE RULE … DO [ALSO | INSTEAD] <statement> | ( <statements> ) | NOTHING
        at = index_of(toks, "DO")
        k = at + 1
        while 0 < k < len(toks) and upper(toks[k]) in ("ALSO", "INSTEAD"):
            k += 1
        if at < 0:
            d.opaque_code = True
        elif k < len(toks) and upper(toks[k]) != "NOTHING":
            inner = tail_text(toks, k, text).strip()
            if inner.startswith("(") and inner.endswith(")"):
                inner = inner[1:-1]
            found = ctx.nested_text(inner, f"{d.path}.rule_action")
            if not found:
                found = [Statement(kind="unparseable", path=f"{d.path}.rule_action", nested=True)]
            d.adopt(found)
    elif d.kind == "call":
        call: Any
        try:
            call = exp.maybe_parse(tail_text(toks, 1, text), dialect=ctx.dialect or None)
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


COMMAND_STEPS: Final = (command_objects, command_grants, command_nested, token_facts)
