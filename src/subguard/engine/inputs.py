"""The input document: what callers give (a request, a subject, a resource, a session)
turned into the one document the compiled policy reads — the request's analysed facts and
their context — and the refusal of a request too large to analyse."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

import attrs

from subguard.command import http_facts, parse_command, redact_command
from subguard.engine.tools import tool_document, tool_identity
from subguard.engine.types import (
    CommandRequest,
    EvalError,
    FieldError,
    HttpRequest,
    Request,
    Resource,
    SqlRequest,
    Subject,
    ToolRequest,
    to_string_set,
)
from subguard.lang import from_json
from subguard.sql import DIALECT_ALIASES, SqlFacts, Statement, analyze, redact

__all__ = [
    "COLUMN_PATHS",
    "DEFAULT_MAX_REQUEST_BYTES",
    "ESTIMATED_KINDS",
    "SESSION_FIELDS",
    "Analysed",
    "build_input",
    "dialect_for",
    "oversize",
    "reads_columns",
    "request_of",
    "resource_of",
    "session_document",
    "subject_of",
    "too_large",
    "with_estimate",
]

_NOBODY = Subject("")
_NOWHERE = Resource()


def subject_of(value: Subject | Mapping[str, Any] | str | None) -> Subject:
    """The subject a caller named: a `Subject`, an id, a document for `Subject.from_dict`,
    or nobody. Anything else is a `FieldError`."""
    if value is None:
        return _NOBODY
    if isinstance(value, Subject):
        return value
    if isinstance(value, str):
        return Subject(value)
    return Subject.from_dict(value)


def resource_of(value: Resource | Mapping[str, Any] | None) -> Resource:
    """The resource a caller named: a `Resource`, a document for `Resource.from_dict`, or
    none. Anything else is a `FieldError`."""
    if value is None:
        return _NOWHERE
    if isinstance(value, Resource):
        return value
    return Resource.from_dict(value)


def request_of(value: Request | str) -> Request:
    """A request: one of the request types, or SQL text. Anything else is a `FieldError`."""
    if isinstance(value, SqlRequest | CommandRequest | HttpRequest | ToolRequest):
        return value
    if isinstance(value, str):
        return SqlRequest(value)
    raise FieldError(
        "type_error", "request", f"must be a request or SQL text, not {type(value).__name__}"
    )


def _kind_dialect(resource: Resource) -> str | None:
    """The SQL dialect a resource's kind implies (`postgresql` → `postgres`), if any."""
    return DIALECT_ALIASES.get(resource.kind.lower()) or None


def dialect_for(request: SqlRequest, resource: Resource) -> str | None:
    """The request's dialect, else the resource's, else the one its kind implies."""
    return request.dialect or resource.dialect or _kind_dialect(resource)


@attrs.frozen
class Analysed:
    input: dict[str, Any]
    redacted: str
    fingerprint: str | None
    exact_hash: str | None
    #: Why the request is refused whatever the rules say (`too_large`), if it is.
    refusal: EvalError | None = None


#: The largest request text (SQL or command, in UTF-8 bytes) the engine analyses by default.
DEFAULT_MAX_REQUEST_BYTES: Final = 256 * 1024


def oversize(request: Request, limit: int) -> int | None:
    """The size in bytes of a request's text when it is over `limit`, else None."""
    if isinstance(request, SqlRequest | CommandRequest):
        text = request.text
    elif isinstance(request, HttpRequest):
        text = request.path
    else:  # a request kind without a text: its own adapter bounds it
        return None
    if len(text) * 4 <= limit:  # no character is longer than 4 bytes in UTF-8
        return None
    size = len(text.encode("utf-8", "surrogatepass"))
    return size if size > limit else None


def too_large(
    request: Request,
    subject: Subject,
    resource: Resource,
    session: Mapping[str, Any],
    time_ns: int,
    size: int,
    limit: int,
) -> Analysed:
    """The input document of a request too large to analyse: no analysis ran, its text is
    not kept (the log reads a placeholder), its facts say `unparseable`, and the decision
    is refused with `too_large` whatever the rules say."""
    message = f"request too large: {size} bytes, the limit is {limit}"
    placeholder = f"-- not analysed: {size} bytes"
    sql: Any = None
    command: Any = None
    http: Any = None
    unparseable = SqlFacts(
        dialect=dialect_for(request, resource) if isinstance(request, SqlRequest) else None,
        statements=(Statement(kind="unparseable", path="0"),),
        tables_read=frozenset(),
        tables_written=frozenset(),
        columns_read=(),
        functions=frozenset(),
        parse_error=f"line 1, col 1: {message}",
        redacted=placeholder,
        fingerprint="",
        exact_hash="",
    ).to_input()
    if isinstance(request, SqlRequest):
        sql = unparseable
    elif isinstance(request, CommandRequest):
        command = dict(parse_command("").to_input(sql=unparseable))
        if "parse_error" in command:
            command["parse_error"] = message
    elif isinstance(request, HttpRequest):
        http = http_facts(request.method, "/", request.host, None)
    document = _document(
        request, subject, resource, session, placeholder, None, time_ns, sql, command, http
    )
    return Analysed(document, placeholder, None, None, EvalError("too_large", message))


def _redact_command(
    text: str,
    sql_texts: Sequence[str],
    dialect: str | None,
    secret_patterns: Sequence[str] | None = None,
) -> str:
    """The command as the log keeps it: SQL literals and secrets taken out."""
    for sql in sql_texts:
        text = text.replace(sql, redact(sql, dialect))
    return redact_command(text, secret_patterns)


def build_input(
    request: Request,
    subject: Subject,
    resource: Resource,
    session: Mapping[str, Any],
    time_ns: int,
    *,
    secret_patterns: Sequence[str] | None = None,
    columns: bool = True,
) -> Analysed:
    """The input document for one request: the request's facts and its context.

    `columns=False` analyses SQL without column resolution (`analyze(…, columns=False)`):
    the column fields are absent from `input.sql` and `input.command.sql`. Only for a
    policy that reads none of them (`reads_columns`) and a resource whose schema tags no
    column (see `Engine`)."""
    sql: Any = None
    command: Any = None
    http: Any = None
    tool: Any = None
    fingerprint: str | None = None
    exact_hash: str | None = None
    if isinstance(request, SqlRequest):
        facts = analyze(
            request.text,
            dialect=dialect_for(request, resource),
            schema=resource.schema,
            columns=columns,
        )
        sql = facts.to_input()
        if request.estimated_rows is not None:
            sql = with_estimate(sql, request.estimated_rows)
        redacted, fingerprint, exact_hash = facts.redacted, facts.fingerprint, facts.exact_hash
    elif isinstance(request, CommandRequest):
        parsed = parse_command(request.text)
        dialect = resource.dialect or _kind_dialect(resource)
        nested = None
        if parsed.sql_texts:
            analysed = [
                analyze(t, dialect=dialect, schema=resource.schema, columns=columns)
                for t in parsed.sql_texts
            ]
            nested = _merge_sql([a.to_input() for a in analysed])
        command = parsed.to_input(sql=nested)
        redacted = _redact_command(request.text, parsed.sql_texts, dialect, secret_patterns)
        # a once-grant matches this exact command (the text is never stored, its hash is)
        exact_hash = hashlib.sha256(
            b"command\0" + request.text.encode("utf-8", "surrogatepass")
        ).hexdigest()
    elif isinstance(request, ToolRequest):
        tool, sql, command, redacted, fingerprint, exact_hash = _tool_input(
            request, resource, secret_patterns, columns
        )
    else:
        http = http_facts(request.method, request.path, request.host, request.query)
        redacted = f"{http['method']} {http['path']}"
    document = _document(
        request,
        subject,
        resource,
        session,
        redacted,
        fingerprint,
        time_ns,
        sql,
        command,
        http,
        tool,
    )
    return Analysed(document, redacted, fingerprint, exact_hash)


def _document(
    request: Request,
    subject: Subject,
    resource: Resource,
    session: Mapping[str, Any],
    redacted: str,
    fingerprint: str | None,
    time_ns: int,
    sql: Any,
    command: Any,
    http: Any,
    tool: Any = None,
) -> dict[str, Any]:
    return {
        # most subjects and resources carry no claims or tags: no copy to convert then
        "subject": {
            "id": subject.id,
            "groups": subject.groups,
            "claims": from_json(dict(subject.claims)) if subject.claims else {},
        },
        "resource": {
            "name": resource.name,
            "kind": resource.kind,
            "dialect": resource.dialect,
            "env": resource.env,
            "tags": from_json(dict(resource.tags)) if resource.tags else {},
        },
        "session": session,
        "request": {
            "kind": request.kind,
            "text": redacted,
            "fingerprint": fingerprint,
            "time_ns": time_ns,
        },
        "sql": sql,
        "command": command,
        "http": http,
        "tool": tool,
    }


#: The statement kinds a planner estimate describes.
ESTIMATED_KINDS = frozenset({"update", "delete", "merge"})


def with_estimate(sql: dict[str, Any], estimated_rows: int) -> dict[str, Any]:
    """`input.sql` with `estimated_rows` on its statement when the text is exactly one
    UPDATE, DELETE or MERGE (nothing nested: a data-modifying CTE is a second statement);
    otherwise unchanged, so the field stays null. `sql` is shared (cached): copied."""
    statements = sql["statements"]
    if len(statements) != 1 or statements[0]["kind"] not in ESTIMATED_KINDS:
        return sql
    return {**sql, "statements": ({**statements[0], "estimated_rows": estimated_rows},)}


def _tool_input(
    request: ToolRequest,
    resource: Resource,
    secret_patterns: Sequence[str] | None = None,
    columns: bool = True,
) -> tuple[Any, Any, Any, str, str, str]:
    """`(tool, sql, command, redacted, fingerprint, exact_hash)` for an MCP tool call: its
    analysed argument goes through the same analysis as a SQL or command request."""
    sql: Any = None
    command: Any = None
    text: str | None = None
    shape: str | None = None
    if request.sql is not None:
        facts = analyze(
            request.sql,
            dialect=request.dialect or resource.dialect or _kind_dialect(resource),
            schema=resource.schema,
            columns=columns,
        )
        sql, text, shape = facts.to_input(), facts.redacted, facts.fingerprint
    elif request.command is not None:
        parsed = parse_command(request.command)
        dialect = request.dialect or resource.dialect or _kind_dialect(resource)
        nested = None
        if parsed.sql_texts:
            nested = _merge_sql(
                [
                    analyze(t, dialect=dialect, schema=resource.schema, columns=columns).to_input()
                    for t in parsed.sql_texts
                ]
            )
        command = parsed.to_input(sql=nested)
        text = _redact_command(request.command, parsed.sql_texts, dialect, secret_patterns)
    redacted, fingerprint, exact_hash = tool_identity(request, text, shape)
    return tool_document(request), sql, command, redacted, fingerprint, exact_hash


def _merge_sql(parts: list[dict[str, Any]]) -> dict[str, Any]:
    if len(parts) == 1:
        return parts[0]
    errors = [p["parse_error"] for p in parts if p["parse_error"]]
    merged = {
        "dialect": parts[0]["dialect"],
        "statements": tuple(s for p in parts for s in p["statements"]),
        "tables_read": frozenset().union(*(p["tables_read"] for p in parts)),
        "tables_written": frozenset().union(*(p["tables_written"] for p in parts)),
        "columns_read": tuple(c for p in parts for c in p.get("columns_read", ())),
        "functions": frozenset().union(*(p["functions"] for p in parts)),
        "parse_error": "; ".join(errors) if errors else None,
    }
    if not all("columns_read" in p for p in parts):
        del merged["columns_read"]  # not computed (see `build_input`)
    return merged


#: Every path of the input document whose value column resolution computes.
COLUMN_PATHS: Final = tuple(
    f"{root}.{field}"
    for root in ("input.sql", "input.command.sql")
    for field in (
        "columns_read",
        "statements[i].columns_read",
        "statements[i].output_columns",
        "statements[i].columns_written_from",
    )
)


def reads_columns(reads: Callable[[str], bool]) -> bool:
    """Whether a policy (its `Policy.reads`) may read any column fact (`COLUMN_PATHS`)."""
    return any(reads(path) for path in COLUMN_PATHS)


#: The fields of `input.session`.
SESSION_FIELDS = (
    "id",
    "started_ns",
    "requests",
    "denied",
    "approvals_pending",
    "tables_touched",
    "terminated",
)


def session_document(session_id: str | None, started_ns: int, **state: Any) -> dict[str, Any]:
    """`input.session` for a session with no history yet, or with the `state` given
    (`requests`, `denied`, `approvals_pending`, `tables_touched`, `terminated`). The one
    builder of the document: the engine, the test runner and property tests use it."""
    document: dict[str, Any] = {
        "id": session_id,
        "started_ns": started_ns,
        "requests": 0,
        "denied": 0,
        "approvals_pending": 0,
        "tables_touched": frozenset(),
        "terminated": False,
    }
    if session_id is not None and not isinstance(session_id, str):
        raise FieldError(
            "type_error", "session.id", f"must be a string, not {type(session_id).__name__}"
        )
    for key, value in state.items():
        if key not in document:
            raise FieldError("unknown_field", f"session.{key}", "is not a field of session")
        document[key] = _SESSION_STATE[key](value)
    return document


def _count(field: str) -> Any:
    def convert(value: Any) -> int:
        if type(value) is not int or value < 0:
            raise FieldError("type_error", field, "must be a non-negative integer")
        return value

    return convert


def _flag(value: Any) -> bool:
    if type(value) is not bool:
        raise FieldError("type_error", "session.terminated", "must be a boolean")
    return value


_SESSION_STATE: dict[str, Any] = {
    "started_ns": _count("session.started_ns"),
    "requests": _count("session.requests"),
    "denied": _count("session.denied"),
    "approvals_pending": _count("session.approvals_pending"),
    "tables_touched": lambda value: to_string_set("session.tables_touched", value),
    "terminated": _flag,
}
