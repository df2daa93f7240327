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
            d.adopt(ctx.nested_text(_tail_text(toks, as_at + 1, text), f"{d.path}.prepare"))
        elif from_at >= 0:
            # MySQL: PREPARE s FROM '<statement>'
            for i, s in enumerate(_string_tokens(toks[from_at + 1 :])):
                d.adopt(ctx.nested_text(s, f"{d.path}.prepare" + (f"[{i}]" if i else "")))
    elif d.kind == "execute":
        strings = _string_tokens(toks[1:])
        for i, s in enumerate(strings):
            d.adopt(ctx.nested_text(s, f"{d.path}.execute" + (f"[{i}]" if i else "")))
    elif d.kind == "explain":
        # EXPLAIN ANALYZE runs its statement; list it whatever the options.
        i = 1
        while i < len(toks) and (
            toks[i].token_type == TokenType.L_PAREN
            or _upper(toks[i])
            in ("ANALYZE", "ANALYSE", "VERBOSE", "QUERY", "PLAN", "FORMAT", "EXTENDED")
        ):
            i = _skip_parens(toks, i) if toks[i].token_type == TokenType.L_PAREN else i + 1
        d.adopt(ctx.nested_text(_tail_text(toks, i, text), f"{d.path}.explain"))
    elif d.kind == "do":
        for body in _string_tokens(toks[1:]):
            d.adopt(procedural_body(body, f"{d.path}.do", ctx))
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
    {"BEGIN", "DECLARE", "THEN", "ELSE", "LOOP", "END", "IF", "ELSIF", "ELSEIF", "$$"}
)


def procedural_body(text: str, path: str, ctx: Context) -> list[Statement]:
    """Statements a PL/pgSQL-style body runs: `EXECUTE '<literal>'` and plain static SQL.

    The body is split at semicolons; block keywords at the start of a piece are dropped;
    a piece that parses as a data-changing or DDL statement is listed. Dynamic SQL built
    from expressions cannot be known and is left to the kind ("do") to refuse.
    """
    try:
        toks = tokenize_flat(text, ctx.dialect)
    except Exception:
        return []
    out: list[Statement] = []
    executes = 0
    statements = 0
    for piece in split_statements(toks):
        i = 0
        while i < len(piece) and _upper(piece[i]) in _BLOCK_WORDS:
            i += 1
        if i >= len(piece):
            continue
        if _upper(piece[i]) in ("EXECUTE", "EXEC"):
            j = i + 1
            if j < len(piece) and _upper(piece[j]) == "IMMEDIATE":
                j += 1
            if j < len(piece) and piece[j].token_type in _STRING_TYPES:
                out.extend(ctx.nested_text(str(piece[j].text), f"{path}.execute[{executes}]"))
            executes += 1
            continue
        found = ctx.nested_text(_tail_text(piece, i, text), f"{path}.statement[{statements}]")
        if found and found[0].kind not in ("unparseable", "other", "transaction", "set"):
            out.extend(found)
            statements += 1
    return out


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
        parts, _ = _read_name(toks, k, ctx.dialect)
        if parts and parts[-1].lower() in PRIVILEGE_PROCEDURES:
            d.privilege_change = True
    elif d.kind in ("create", "alter", "drop"):
        _ddl_token_facts(d, ctx, toks)
    if d.functions & PRIVILEGE_PROCEDURES:
        d.privilege_change = True


def _ddl_token_facts(d: Draft, ctx: Context, toks: Sequence[Any]) -> None:
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


def _alter_actions(toks: Sequence[Any], start: int) -> set[str]:
    actions: set[str] = set()
    i = start
    while i < len(toks):
        j = _skip_value(toks, i)
        actions.add(_classify_action(toks[i:j]))
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
