"""Settings, privilege changes and ALTER actions, read from a statement's tokens — for
parsed statements and commands alike, so every spelling gets the same facts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from sqlglot.tokenizer_core import TokenType

from subguard.sql._draft import Context, Draft
from subguard.sql._tokwords import (
    NAME_TYPES,
    object_names,
    read_name,
    skip_parens,
    upper,
)

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
        toks[i + k].token_type != TokenType.IDENTIFIER and upper(toks[i + k]) == w
        for k, w in enumerate(words)
    )


def _setting_name(toks: Sequence[Any], i: int, dialect: str) -> tuple[str | None, str | None, int]:
    """`[scope] name` at `i` (also `@@global.name`, `"role"`): (name, scope, next index)."""
    scope: str | None = None
    for words, name in _SET_FORMS:
        if _words_at(toks, i, words):
            return name, scope, i + len(words)
    while (
        i < len(toks) and toks[i].token_type != TokenType.IDENTIFIER and upper(toks[i]) in _SCOPES
    ):
        scope = _SCOPES[upper(toks[i])]
        i += 1
    for words, name in _SET_FORMS:
        if _words_at(toks, i, words):
            return name, scope, i + len(words)
    text = ""
    while i < len(toks):
        tok = toks[i]
        if tok.token_type in (TokenType.EQ, TokenType.COLON_EQ, TokenType.COMMA) or (
            tok.token_type != TokenType.IDENTIFIER and upper(tok) in ("TO", "=")
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
    first = upper(toks[0])
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
            word = upper(toks[1]).lower() if len(toks) > 2 else "database"
            d.settings.append(
                word if word in ("warehouse", "schema", "database", "catalog") else "database"
            )
    elif d.kind in ("grant", "revoke"):
        d.privilege_change = True
    elif first in ("EXEC", "EXECUTE") and len(toks) > 1:
        k = 2 if upper(toks[1]) == "@" or toks[1].token_type == TokenType.PARAMETER else 1
        procedure = ""
        while k < len(toks) and (
            toks[k].token_type in NAME_TYPES or toks[k].token_type == TokenType.DOT
        ):
            if toks[k].token_type in NAME_TYPES:
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
    head = {upper(t) for t in toks[1:6] if t.token_type != TokenType.IDENTIFIER}
    if d.kind == "create" and head & {"TEMP", "TEMPORARY"}:
        d.temporary = True
    if d.kind in ("create", "alter") and head & _OTHER_SERVER_WORDS and "ROLE" not in head:
        d.external_io.add("other_server")
    if d.kind in ("create", "alter") and head & _REMOTE_WORDS:
        d.external_io.add("remote")
    object_type, _, end = object_names(toks, ctx.dialect)
    words = " ".join(upper(t).lower() for t in toks[1:4])
    for kind in ("default privileges", "server role", "application role", "row access policy",
                 "masking policy"):  # fmt: skip
        if words.startswith(kind):
            object_type = kind
    if object_type is None and len(toks) > 1 and upper(toks[1]) in ("GROUP", "LOGIN"):
        object_type = upper(toks[1]).lower()
        parts, end = read_name(toks, 2, ctx.dialect)
        d.target = parts[-1] if parts else d.target
    if object_type in PRIVILEGE_OBJECTS:
        d.privilege_change = True
        if d.object_type is None or d.object_type != object_type:
            d.object_type = object_type
    if d.kind != "alter":
        return
    if _words_at(toks, 1, ("SYSTEM",)) or _words_at(toks, 1, ("ACCOUNT",)):
        d.object_type = d.object_type or upper(toks[1]).lower()
        d.setting_scope = "system"
        end = 2
    actions = _alter_actions(toks, end)
    if upper(toks[0]) == "RENAME":
        actions = {"rename"}  # MySQL RENAME TABLE a TO b
    d.alter_actions |= actions
    if actions & {"owner", "add_member", "drop_member", "row_security"}:
        d.privilege_change = True
    # ALTER SYSTEM / DATABASE / ROLE … SET name = value; ALTER SESSION SET (Snowflake).
    for i in range(end, len(toks)):
        if upper(toks[i]) in ("SET", "RESET") and toks[i].token_type != TokenType.IDENTIFIER:
            if i + 1 < len(toks) and upper(toks[i + 1]) in ("SCHEMA", "TABLESPACE", "DEFAULT", "NOT",
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
        i = skip_parens(toks, i) if toks[i].token_type == TokenType.L_PAREN else i + 1
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
                    extra = _ANYWHERE_ACTIONS.get(upper(tok))
                    if extra is not None and not (
                        extra == "drop" and action in ("drop_member", "row_security")
                    ):
                        actions.add(extra)
        i = j + 1
    return actions


def _classify_action(piece: Sequence[Any]) -> str:
    if not piece or piece[0].token_type == TokenType.IDENTIFIER:
        return "other"
    word = upper(piece[0])
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
        upper(t) == "SECURITY" for t in piece[:5]
    ):
        return "row_security"
    if word in ("ALTER", "MODIFY") and not (len(piece) > 1 and upper(piece[1]) in ("PARTITION",)):
        # ALTER [COLUMN] c <sub-action> / T-SQL ALTER COLUMN c <type> / MySQL MODIFY c <type>
        k = 1
        if k < len(piece) and upper(piece[k]) == "COLUMN":
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
