"""Procedural bodies (DO blocks, PL/pgSQL and SQL routines) and dynamic SQL (`EXECUTE
…`, `format(…)`), read statement by statement from their tokens."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from sqlglot import exp
from sqlglot.tokenizer_core import TokenType

from subguard.sql._draft import Context, Draft
from subguard.sql._facts import Statement
from subguard.sql._tokens import split_statements, tokenize_flat
from subguard.sql._tokwords import (
    index_of,
    tail_text,
    upper,
)

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
            word = upper(piece[i]) if piece[i].token_type != TokenType.IDENTIFIER else ""
            if word == "DECLARE":
                declaring = True
                i += 1
            elif word == "BEGIN":
                declaring = False
                i += 1
            elif word == "END":
                i += 1
                if i < n and upper(piece[i]) in _END_WORDS:
                    i += 1
            elif word in _BLOCK_WORDS:
                i += 1
            elif word in _CONDITION_HEADS:
                stop = index_of(piece, _CONDITION_HEADS[word], i + 1)
                if stop < 0 or not query(piece, i + 1, stop):
                    fully = False
                    i = n
                    break
                i = stop + 1
            elif word in ("FOR", "FOREACH"):
                # FOR r IN <query> LOOP; FOR i IN 1..10 LOOP; FOR r IN EXECUTE … is dynamic.
                at = index_of(piece, "IN", i + 1)
                stop = index_of(piece, "LOOP", at + 1) if at > 0 else -1
                if stop < 0 or at + 1 >= stop:
                    fully = False
                    i = n
                    break
                if upper(piece[at + 1]) == "EXECUTE":
                    stmts, _ = dynamic_sql(
                        piece[at + 2 : stop], text, ctx, f"{path}.execute[{counter['execute']}]"
                    )
                    counter["execute"] += 1
                    out.extend(stmts)
                    fully = False
                else:
                    source = text[piece[at + 1].start : piece[stop - 1].end + 1]
                    if ".." in source and upper(piece[at + 1]) != "SELECT":
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
        word = upper(piece[i]) if piece[i].token_type != TokenType.IDENTIFIER else ""
        if word in ("EXECUTE", "EXEC"):
            j = i + 1
            if j < n and upper(piece[j]) == "IMMEDIATE":
                j += 1
            stmts, read = dynamic_sql(piece[j:], text, ctx, f"{path}.execute[{counter['execute']}]")
            counter["execute"] += 1
            out.extend(stmts)
            fully = fully and read
            continue
        if word == "RETURN":
            if i + 1 < n and upper(piece[i + 1]) == "QUERY":
                fully = query(piece, i + 2, n, prefix="") and fully
            elif i + 1 < n and not (n == i + 2 and upper(piece[i + 1]) in ("NEW", "OLD", "NULL")):
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
            tail_text(piece, i, text), f"{path}.statement[{counter['statement']}]"
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
        if tok.token_type != TokenType.IDENTIFIER and upper(tok) in ("INTO", "USING") and k:
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
