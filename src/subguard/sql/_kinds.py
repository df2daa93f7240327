"""Statement kinds: sqlglot node types and `Command` keywords mapped to DESIGN.md's list."""

from __future__ import annotations

from typing import Any, Final

from sqlglot import exp

#: Kinds exactly as DESIGN.md lists them.
KINDS: Final = (
    "select", "insert", "update", "delete", "merge", "create", "alter", "drop",
    "truncate", "grant", "revoke", "copy", "set", "show", "explain", "call", "do",
    "execute", "prepare", "lock", "vacuum", "transaction", "listen", "unlisten", "notify",
    "other", "unparseable",
)  # fmt: skip


def _types(*pairs: tuple[str, str]) -> tuple[tuple[type, str], ...]:
    # Looked up by name so a node class missing from some sqlglot release is skipped,
    # not an import error.
    return tuple((getattr(exp, name), kind) for name, kind in pairs if hasattr(exp, name))


#: Node type → kind, most specific first. A parsed node of a type listed nowhere is not a
#: statement (sqlglot parses `SELEC * FRM x` as an alias), and is reported as unparseable.
NODE_KINDS: Final = _types(
    ("Select", "select"),
    ("SetOperation", "select"),
    ("Subquery", "select"),
    ("Values", "select"),
    ("Summarize", "select"),
    ("Insert", "insert"),
    ("Update", "update"),
    ("Delete", "delete"),
    ("Merge", "merge"),
    ("Create", "create"),
    ("Alter", "alter"),
    ("Comment", "alter"),
    ("Drop", "drop"),
    ("TruncateTable", "truncate"),
    ("Grant", "grant"),
    ("Revoke", "revoke"),
    ("Copy", "copy"),
    ("LoadData", "copy"),
    ("Export", "copy"),
    ("Put", "copy"),
    ("Get", "copy"),
    ("Set", "set"),
    ("Use", "set"),
    ("Pragma", "set"),
    ("Declare", "set"),
    ("Show", "show"),
    ("Describe", "show"),
    ("Transaction", "transaction"),
    ("Commit", "transaction"),
    ("Rollback", "transaction"),
    ("Execute", "execute"),
    ("ExecuteSql", "execute"),
    ("Lock", "lock"),
    ("Analyze", "vacuum"),
    ("Refresh", "other"),
    ("Kill", "other"),
    ("Cache", "other"),
    ("Uncache", "other"),
    ("Attach", "other"),
    ("Detach", "other"),
    ("Install", "other"),
)

_BY_TYPE: dict[type, str | None] = {}

#: `exp.Command` leading keyword → kind. A command is never a "select": sqlglot fell back
#: to it because it could not read the statement, so nothing about it is known to be safe.
COMMAND_KINDS: Final[dict[str, str]] = {
    "DO": "do",
    "CALL": "call",
    "EXEC": "execute",
    "EXECUTE": "execute",
    "PREPARE": "prepare",
    "LOCK": "lock",
    "UNLOCK": "lock",
    "VACUUM": "vacuum",
    "ANALYZE": "vacuum",
    "ANALYSE": "vacuum",
    "REINDEX": "vacuum",
    "CLUSTER": "vacuum",
    "OPTIMIZE": "vacuum",
    "SET": "set",
    "RESET": "set",
    "USE": "set",
    "PRAGMA": "set",
    "DISCARD": "set",
    "SHOW": "show",
    "DESCRIBE": "show",
    "DESC": "show",
    "EXPLAIN": "explain",
    "GRANT": "grant",
    "REVOKE": "revoke",
    "DENY": "revoke",
    "COPY": "copy",
    "PUT": "copy",
    "GET": "copy",
    "BEGIN": "transaction",
    "START": "transaction",
    "COMMIT": "transaction",
    "ROLLBACK": "transaction",
    "SAVEPOINT": "transaction",
    "RELEASE": "transaction",
    "END": "transaction",
    "ABORT": "transaction",
    "ALTER": "alter",
    "COMMENT": "alter",
    "RENAME": "alter",
    "CREATE": "create",
    "DROP": "drop",
    "TRUNCATE": "truncate",
    "INSERT": "insert",
    "REPLACE": "insert",
    "UPSERT": "insert",
    "UPDATE": "update",
    "DELETE": "delete",
    "MERGE": "merge",
}


def node_kind(node: Any) -> str | None:
    """The kind of a parsed top-level node, or None when it is not a statement."""
    kind = _BY_TYPE.get(type(node), "?")
    if kind != "?":
        return kind
    found: str | None = None
    for cls, k in NODE_KINDS:
        if isinstance(node, cls):
            found = k
            break
    _BY_TYPE[type(node)] = found
    return found


def command_kind(keyword: str) -> str:
    """The kind of an `exp.Command` from its leading keyword (unknown ones are "other")."""
    return COMMAND_KINDS.get(keyword.strip().upper(), "other")
