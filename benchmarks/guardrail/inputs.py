"""Seeded generator of varied input documents (pre-extracted facts) for the guardrail benchmark.

Each document is shaped exactly like subguard's input document (`subguard.engine.schema`):
records are dicts, sets are frozensets, arrays are tuples. `to_json` gives the JSON form
(sets become sorted lists, tuples become lists) that Cedar and Rego consume.

The mix covers what the 20-rule guardrail policy discriminates on: selects with and without
LIMIT, reads of PII and secret columns, inserts, updates and deletes with and without a
WHERE (including `WHERE 1=1`), DROP, TRUNCATE, COPY … TO PROGRAM, GRANT/REVOKE, DDL,
data-modifying CTEs (nested statements), multi-statement texts, unparseable text,
protected tables, various groups and environments.
"""

from __future__ import annotations

import random
import zlib
from typing import Any

__all__ = ["CATALOG", "GROUPS", "generate", "to_json"]

#: table → column → tags. Tags drive the masking rules.
CATALOG: dict[str, dict[str, frozenset[str]]] = {
    "users": {
        "id": frozenset(),
        "email": frozenset({"pii"}),
        "full_name": frozenset({"pii"}),
        "ssn": frozenset({"pii", "sensitive"}),
        "created_at": frozenset(),
    },
    "customers": {
        "id": frozenset(),
        "phone": frozenset({"pii"}),
        "address": frozenset({"pii"}),
        "tier": frozenset(),
    },
    "orders": {
        "id": frozenset(),
        "user_id": frozenset(),
        "total": frozenset(),
        "status": frozenset(),
    },
    "products": {"id": frozenset(), "name": frozenset(), "price": frozenset()},
    "inventory": {"product_id": frozenset(), "qty": frozenset(), "warehouse": frozenset()},
    "events": {"id": frozenset(), "kind": frozenset(), "payload": frozenset(), "at": frozenset()},
    "page_views": {"id": frozenset(), "path": frozenset(), "at": frozenset()},
    "audit_log": {"id": frozenset(), "actor": frozenset(), "action": frozenset()},
    "payments": {
        "id": frozenset(),
        "amount": frozenset(),
        "card_number": frozenset({"pii", "pci"}),
    },
    "ledger": {"id": frozenset(), "account": frozenset(), "delta": frozenset()},
    "api_keys": {"id": frozenset(), "owner": frozenset(), "token": frozenset({"secret"})},
    "credentials": {"user_id": frozenset(), "password_hash": frozenset({"secret"})},
}

_TABLES = tuple(CATALOG)
_READ_TABLES = (
    "users", "users", "customers", "orders", "orders", "orders", "products", "inventory",
    "events", "page_views", "audit_log", "payments", "ledger", "api_keys", "credentials",
)
_WRITE_TABLES = (
    "orders", "orders", "inventory", "products", "users", "customers", "events",
    "audit_log", "payments", "ledger", "sessions_tmp",
)

GROUPS = ("agents", "dba", "pii-readers", "ci", "contractors", "auditors")
_GROUP_SETS = (
    ("agents",), ("agents",), ("agents",), ("agents", "pii-readers"), ("agents", "ci"),
    ("dba",), ("dba", "pii-readers"), ("ci",), ("ci",), ("contractors",), ("auditors",), (),
)
_FUNCS = ("count", "lower", "now", "sum", "coalesce", "date_trunc")
_DANGEROUS_FUNCS = ("pg_read_file", "pg_ls_dir", "lo_export", "dblink_exec")


def _generated_table(rng: random.Random) -> str:
    """Tables named like the generated 1,000-rule policy's (`t0` … `t499`)."""
    return f"t{rng.randrange(500)}"


def _column(table: str | None, column: str, in_output: bool) -> dict[str, Any]:
    tags = CATALOG.get(table or "", {}).get(column, frozenset())
    return {
        "table": table,
        "column": column,
        "tags": tags,
        "in_output": in_output,
        "resolved": table is not None,
    }


def _table(name: str) -> dict[str, Any]:
    return {"name": name, "schema": "public", "catalog": None, "qualified": f"public.{name}"}


def _statement(kind: str, **fields: Any) -> dict[str, Any]:
    """A Statement record with every field of the schema, defaults filled in."""
    reads = frozenset(fields.pop("tables_read", ()))
    writes = frozenset(fields.pop("tables_written", ()))
    st: dict[str, Any] = {
        "kind": kind,
        "object_type": None,
        "target": None,
        "tables_read": reads,
        "tables_written": writes,
        "tables": tuple(_table(t) for t in sorted(reads | writes)),
        "columns_read": (),
        "output_columns": (),
        "has_where": False,
        "has_limit": False,
        "functions": frozenset(),
        "copy_program": False,
        "into_outfile": False,
        "grants": (),
        "nested": False,
        "path": "0",
    }
    for key, value in fields.items():
        if key not in st:
            raise KeyError(key)
        st[key] = value
    return st


def _select(rng: random.Random) -> tuple[dict[str, Any], str]:
    if rng.random() < 0.04:
        table = _generated_table(rng)
        cols: list[str] = ["id"]
    else:
        table = rng.choice(_READ_TABLES)
        cols = rng.sample(list(CATALOG[table]), k=rng.randint(1, len(CATALOG[table])))
    tables = {table}
    columns = [_column(table, c, True) for c in cols]
    join = ""
    if rng.random() < 0.2 and table in CATALOG:
        other = rng.choice(("orders", "users", "customers"))
        if other != table:
            tables.add(other)
            extra = rng.choice(list(CATALOG[other]))
            columns.append(_column(other, extra, True))
            join = f" JOIN {other} ON true"
    if rng.random() < 0.1:
        columns.append(_column(None, "unknown_col", False))  # unresolved reference
    has_where = rng.random() < 0.6
    has_limit = rng.random() < 0.5
    funcs: set[str] = set()
    if rng.random() < 0.3:
        funcs.add(rng.choice(_FUNCS))
    if rng.random() < 0.03:
        funcs.add(rng.choice(_DANGEROUS_FUNCS))
    into_outfile = rng.random() < 0.015
    outputs = tuple(
        {"name": c["column"], "sources": (c,)} for c in columns if c["in_output"]
    )
    text = f"SELECT {', '.join(c['column'] for c in columns)} FROM {table}{join}"
    if has_where:
        text += " WHERE id = ?"
    if has_limit:
        text += " LIMIT ?"
    if into_outfile:
        text += " INTO OUTFILE ?"
    st = _statement(
        "select",
        tables_read=tables,
        columns_read=tuple(columns),
        output_columns=outputs,
        has_where=has_where,
        has_limit=has_limit,
        functions=frozenset(funcs),
        into_outfile=into_outfile,
    )
    return st, text


def _write_table(rng: random.Random) -> str:
    return _generated_table(rng) if rng.random() < 0.06 else rng.choice(_WRITE_TABLES)


def _write(rng: random.Random, kind: str) -> tuple[dict[str, Any], str]:
    table = _write_table(rng)
    if kind == "insert":
        if rng.random() < 0.3:
            src = rng.choice(("orders", "events", "users"))
            cols = tuple(_column(src, c, False) for c in list(CATALOG[src])[:2])
            st = _statement(
                "insert", target=table, tables_written={table}, tables_read={src},
                columns_read=cols, object_type="table",
            )
            return st, f"INSERT INTO {table} SELECT * FROM {src}"
        st = _statement("insert", target=table, tables_written={table}, object_type="table")
        return st, f"INSERT INTO {table} VALUES (?, ?)"
    r = rng.random()
    has_where = r < 0.7
    where = " WHERE id = ?" if has_where else (" WHERE 1 = 1" if r < 0.8 else "")
    reads = {table} if has_where else set()
    if kind == "update":
        text = f"UPDATE {table} SET status = ?{where}"
    else:
        text = f"DELETE FROM {table}{where}"
    st = _statement(
        kind, target=table, tables_written={table}, tables_read=reads,
        has_where=has_where, object_type="table",
    )
    return st, text


def _ddl(rng: random.Random, kind: str) -> tuple[dict[str, Any], str]:
    table = rng.choice((*_TABLES, "tmp_report", "scratch"))
    object_type = "index" if kind == "create" and rng.random() < 0.3 else "table"
    text = f"{kind.upper()} {object_type.upper()} {table}"
    if kind == "truncate":
        text = f"TRUNCATE {table}"
    writes = {table} if kind in ("drop", "truncate", "alter") else set()
    st = _statement(kind, target=table, object_type=object_type, tables_written=writes)
    return st, text


def _copy(rng: random.Random) -> tuple[dict[str, Any], str]:
    table = rng.choice(("orders", "events", "users", "payments"))
    program = rng.random() < 0.3
    if rng.random() < 0.3:  # COPY ... FROM: a write
        st = _statement("copy", target=table, tables_written={table}, object_type="table")
        return st, f"COPY {table} FROM STDIN"
    st = _statement(
        "copy", target=table, tables_read={table}, copy_program=program, object_type="table"
    )
    return st, f"COPY {table} TO PROGRAM ?" if program else f"COPY {table} TO STDOUT"


def _grant(rng: random.Random, kind: str) -> tuple[dict[str, Any], str]:
    table = rng.choice(_TABLES)
    principal = rng.choice(("reporting", "agent_role", "public"))
    privs = frozenset(rng.sample(("select", "insert", "update", "delete"), k=rng.randint(1, 2)))
    grant = {
        "action": kind,
        "privileges": privs,
        "object_type": "table",
        "objects": frozenset({table}),
        "principals": frozenset({principal}),
    }
    st = _statement(kind, target=table, object_type="table", grants=(grant,))
    verb = "TO" if kind == "grant" else "FROM"
    return st, f"{kind.upper()} {', '.join(sorted(privs)).upper()} ON {table} {verb} {principal}"


def _cte_write(rng: random.Random) -> tuple[list[dict[str, Any]], str]:
    """`WITH x AS (DELETE … RETURNING *) SELECT * FROM x`: an outer select plus a nested write."""
    kind = rng.choice(("delete", "update", "insert"))
    inner, inner_text = _write(rng, kind)
    inner["nested"] = True
    inner["path"] = "0.with.0"
    outer = _statement("select", tables_read=frozenset(), has_limit=rng.random() < 0.5)
    return [outer, inner], f"WITH x AS ({inner_text} RETURNING *) SELECT * FROM x"


def _misc(rng: random.Random) -> tuple[dict[str, Any], str]:
    kind = rng.choice(("set", "show", "explain", "transaction"))
    text = {"set": "SET statement_timeout = ?", "show": "SHOW search_path",
            "explain": "EXPLAIN SELECT 1", "transaction": "BEGIN"}[kind]
    return _statement(kind), text


_KINDS = (
    ("select", 40), ("insert", 8), ("update", 10), ("delete", 8), ("cte", 3),
    ("drop", 3), ("truncate", 2), ("create", 3), ("alter", 2), ("copy", 4),
    ("grant", 2), ("revoke", 1), ("misc", 4), ("unparseable", 2),
)
_KIND_NAMES = tuple(k for k, _ in _KINDS)
_KIND_WEIGHTS = tuple(w for _, w in _KINDS)


def _one(rng: random.Random) -> tuple[list[dict[str, Any]], str, str | None]:
    kind = rng.choices(_KIND_NAMES, _KIND_WEIGHTS)[0]
    if kind == "select":
        st, text = _select(rng)
    elif kind in ("insert", "update", "delete"):
        st, text = _write(rng, kind)
    elif kind == "cte":
        sts, text = _cte_write(rng)
        return sts, text, None
    elif kind in ("drop", "truncate", "create", "alter"):
        st, text = _ddl(rng, kind)
    elif kind == "copy":
        st, text = _copy(rng)
    elif kind in ("grant", "revoke"):
        st, text = _grant(rng, kind)
    elif kind == "misc":
        st, text = _misc(rng)
    else:
        st = _statement("unparseable")
        return [st], "SELEC * FORM users", "Invalid expression / Unexpected token. Line 1, Col: 5."
    return [st], text, None


def _document(rng: random.Random, index: int) -> dict[str, Any]:
    n_statements = rng.choices((1, 2, 3, 5), (70, 18, 9, 3))[0]
    statements: list[dict[str, Any]] = []
    texts: list[str] = []
    parse_error: str | None = None
    for _ in range(n_statements):
        sts, text, err = _one(rng)
        base = len(statements)
        for st in sts:
            # Paths index top-level statements; nested ones keep their suffix.
            suffix = st["path"].partition(".")[2]
            st["path"] = f"{base}.{suffix}" if suffix else str(base)
        statements.extend(sts)
        texts.append(text)
        parse_error = parse_error or err
    tables_read = frozenset().union(*(s["tables_read"] for s in statements))
    tables_written = frozenset().union(*(s["tables_written"] for s in statements))
    columns_read = tuple(c for s in statements for c in s["columns_read"])
    functions = frozenset().union(*(s["functions"] for s in statements))

    groups = frozenset(rng.choice(_GROUP_SETS))
    env = rng.choices(("prod", "staging", "dev"), (60, 25, 15))[0]
    subject_id = f"{rng.choice(('agent', 'ci', 'svc', 'human'))}-{rng.randrange(40)}"
    started = 1_700_000_000_000_000_000 + rng.randrange(10**12)
    r = rng.random()
    text = "; ".join(texts)
    return {
        "subject": {
            "id": subject_id,
            "groups": groups,
            "claims": {"iss": "https://idp.example.com", "sub": subject_id},
        },
        "resource": {
            "name": f"{env}-db",
            "kind": "postgres",
            "dialect": "postgres",
            "env": env,
            "tags": {"team": "core"},
        },
        "session": {
            "id": f"s-{index}",
            "started_ns": started,
            "requests": rng.randrange(50),
            "denied": rng.randrange(3),
            "approvals_pending": 1 if r < 0.06 else 0,
            "tables_touched": frozenset(rng.sample(_TABLES, k=rng.randint(0, 3))),
            "terminated": r > 0.98,
        },
        "request": {
            "kind": "sql",
            "text": text,
            "fingerprint": f"{zlib.crc32(text.encode()):08x}" if rng.random() < 0.9 else None,
            "time_ns": started + rng.randrange(10**11),
        },
        "sql": {
            "dialect": "postgres",
            "statements": tuple(statements),
            "tables_read": tables_read,
            "tables_written": tables_written,
            "columns_read": columns_read,
            "functions": functions,
            "parse_error": parse_error,
        },
        "command": None,
        "http": None,
    }


def generate(n: int = 1000, seed: int = 20240601) -> list[dict[str, Any]]:
    """`n` varied input documents, the same for the same seed."""
    rng = random.Random(seed)
    return [_document(rng, i) for i in range(n)]


def to_json(value: Any) -> Any:
    """The JSON form: frozensets → sorted lists, tuples → lists, dicts recursively."""
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, frozenset | set):
        return sorted(to_json(v) for v in value)
    if isinstance(value, tuple | list):
        return [to_json(v) for v in value]
    return value
