"""The floor: the 20 guardrail rules of policy.guard, hand-written in Python.

Written the way a competent engineer would write it for production: constants hoisted,
one pass over the statements, plain dict/set operations on the input document, no
caching across calls. It returns what subguard's Decision carries for comparison:
`(effect, sorted reasons of the winning effect, sorted masks when the effect is mask)`.

`make_floor_1000` adds the generated rules of the 1,000-rule benchmark (see
`generated.py`): the engineer's version indexes them by (statement kind, table), which
is what a hand-written 1,000-rule check would do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

__all__ = ["Decision", "decide", "make_floor_1000"]

Decision = tuple[str, tuple[str, ...], tuple[str, ...]]

_DANGEROUS_FUNCS = frozenset({"pg_read_file", "pg_ls_dir", "lo_export", "dblink_exec"})
_DESTRUCTIVE = frozenset({"drop", "truncate"})
_PROTECTED = frozenset({"audit_log", "payments", "ledger"})
_SECRET_TABLES = frozenset({"api_keys", "credentials"})
_PRIVILEGE = frozenset({"grant", "revoke"})
_UNBOUNDED = frozenset({"update", "delete"})
_WRITES = frozenset({"insert", "update", "delete", "merge"})
_BIG_TABLES = frozenset({"events", "page_views"})
_DDL = frozenset({"create", "alter"})
_SENSITIVE_TAGS = frozenset({"pci", "sensitive"})


def _combine(
    terminate: set[str], deny: set[str], approve: set[str], allow: bool, mask: set[str]
) -> Decision:
    if terminate:
        return "terminate", tuple(sorted(terminate)), ()
    if deny:
        return "deny", tuple(sorted(deny)), ()
    if approve:
        return "approve", tuple(sorted(approve)), ()
    if allow:
        if mask:
            return "mask", (), tuple(sorted(mask))
        return "allow", (), ()
    return "deny", (), ()


def _rules(doc: Mapping[str, Any]) -> tuple[set[str], set[str], set[str], bool, set[str]]:
    groups = doc["subject"]["groups"]
    env = doc["resource"]["env"]
    session = doc["session"]
    sql = doc["sql"]
    is_dba = "dba" in groups
    tables_written = sql["tables_written"]

    terminate: set[str] = set()
    deny: set[str] = set()
    approve: set[str] = set()
    mask: set[str] = set()

    for s in sql["statements"]:
        kind = s["kind"]
        if kind == "copy" and s["copy_program"]:  # T1
            terminate.add("COPY TO PROGRAM")
        for f in s["functions"] & _DANGEROUS_FUNCS:  # T2
            terminate.add(f"function {f}")
        if kind in _DESTRUCTIVE:  # D1
            deny.add(f"{kind.upper()} is never allowed")
        elif kind == "unparseable":  # D2
            deny.add("unparseable statement")
        elif kind in _PRIVILEGE and not is_dba:  # D5
            deny.add(f"{kind.upper()} needs dba")
        elif kind in _DDL and not is_dba:  # A4
            approve.add(f"{kind.upper()} needs approval")
        if s["into_outfile"]:  # D6
            deny.add("SELECT INTO OUTFILE")
        if kind in _UNBOUNDED and not s["has_where"]:  # A1
            for t in s["tables_written"]:
                approve.add(f"unbounded {kind} of {t}")
        if s["nested"] and kind in _WRITES:  # A2
            approve.add(f"nested {kind}")
        if kind == "select" and not s["has_limit"]:  # A3
            for t in s["tables_read"] & _BIG_TABLES:
                approve.add(f"unlimited read of {t}")

    if session["terminated"]:  # T3
        terminate.add("session terminated")
    if not is_dba:
        for t in tables_written & _PROTECTED:  # D3
            deny.add(f"{t} is protected")
        for t in sql["tables_read"] & _SECRET_TABLES:  # D4
            deny.add(f"reading {t} needs dba")
    if tables_written:
        if env == "prod" and "ci" in groups:  # D7
            deny.add("ci may not write in prod")
        if session["approvals_pending"] > 0:  # A5
            approve.add("write while an approval is pending")

    allow = "agents" in groups or is_dba or ("ci" in groups and env != "prod")  # L1–L3

    pii_reader = "pii-readers" in groups
    for col in sql["columns_read"]:
        tags = col["tags"]
        if (col["in_output"] and "pii" in tags and not pii_reader) or (  # M1
            not is_dba and not tags.isdisjoint(_SENSITIVE_TAGS)  # M2
        ):
            mask.add(f"{col['table']}.{col['column']}")

    return terminate, deny, approve, allow, mask


def decide(doc: Mapping[str, Any]) -> Decision:
    """The 20 rules on one input document."""
    return _combine(*_rules(doc))


def make_floor_1000(
    generated: Iterable[tuple[str, str, str, str, str]],
) -> Callable[[Mapping[str, Any]], Decision]:
    """The 20 rules plus the generated ones, indexed by (statement kind, table).

    `generated` yields `(effect, kind, where, table, message)` with `where` one of
    "written" / "read" (see `generated.py`).
    """
    index: dict[tuple[str, str, str], list[tuple[str, str]]] = {}
    for effect, kind, where, table, message in generated:
        index.setdefault((kind, where, table), []).append((effect, message))

    def decide_1000(doc: Mapping[str, Any]) -> Decision:
        terminate, deny, approve, allow, mask = _rules(doc)
        get = index.get
        for s in doc["sql"]["statements"]:
            kind = s["kind"]
            for where, tables in (("written", s["tables_written"]), ("read", s["tables_read"])):
                for t in tables:
                    hits = get((kind, where, t))
                    if hits:
                        for effect, message in hits:
                            (deny if effect == "deny" else approve).add(message)
        return _combine(terminate, deny, approve, allow, mask)

    return decide_1000
