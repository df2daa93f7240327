"""The Engine: analyse a request, evaluate the compiled policy, combine the decision,
record it (write-ahead) — and always return a `Decision`, never raise."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from subguard.command import http_facts, parse_command
from subguard.engine.decision import combine
from subguard.engine.policy import Policy
from subguard.engine.recorder import ApprovalResult, CheckContext, Preflight, Recorder
from subguard.engine.types import (
    CommandRequest,
    Decision,
    Effect,
    EvalError,
    Reason,
    Request,
    Resource,
    SqlRequest,
    Subject,
    build_decision,
)
from subguard.lang import from_json
from subguard.sql import analyze, redact

__all__ = ["Engine", "build_input", "combine"]

#: Resource kinds whose SQL dialect is the kind's own name.
_SQL_KINDS = {
    "postgres": "postgres", "postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql",
    "sqlite": "sqlite", "tsql": "tsql", "mssql": "tsql", "sqlserver": "tsql",
    "snowflake": "snowflake", "bigquery": "bigquery", "duckdb": "duckdb",
}

_NOBODY = Subject("")


def _subject(value: Subject | Mapping[str, Any] | str | None) -> Subject:
    if value is None:
        return _NOBODY
    if isinstance(value, Subject):
        return value
    if isinstance(value, str):
        return Subject(value)
    return Subject(str(value.get("id", "")), value.get("groups") or (), value.get("claims") or {})


def _resource(value: Resource | Mapping[str, Any] | None) -> Resource:
    if value is None:
        return Resource()
    if isinstance(value, Resource):
        return value
    return Resource(
        name=str(value.get("name", "")),
        kind=str(value.get("kind", "")),
        dialect=value.get("dialect"),
        env=str(value.get("env", "")),
        tags=value.get("tags") or {},
        schema=value.get("schema"),
    )


def dialect_for(request: SqlRequest, resource: Resource) -> str | None:
    """The request's dialect, else the resource's, else the one its kind implies."""
    return request.dialect or resource.dialect or _SQL_KINDS.get(resource.kind.lower())


@attrs.frozen
class _Analysed:
    input: dict[str, Any]
    redacted: str
    fingerprint: str | None
    exact_hash: str | None


def _redact_command(text: str, sql_texts: Sequence[str], dialect: str | None) -> str:
    for sql in sql_texts:
        text = text.replace(sql, redact(sql, dialect))
    return text


def build_input(
    request: Request,
    subject: Subject,
    resource: Resource,
    session: Mapping[str, Any],
    time_ns: int,
) -> _Analysed:
    """The input document for one request: the request's facts and its context."""
    sql: Any = None
    command: Any = None
    http: Any = None
    fingerprint: str | None = None
    exact_hash: str | None = None
    if isinstance(request, SqlRequest):
        facts = analyze(request.text, dialect=dialect_for(request, resource), schema=resource.schema)
        sql = facts.to_input()
        redacted, fingerprint, exact_hash = facts.redacted, facts.fingerprint, facts.exact_hash
    elif isinstance(request, CommandRequest):
        parsed = parse_command(request.text)
        dialect = resource.dialect or _SQL_KINDS.get(resource.kind.lower())
        nested = None
        if parsed.sql_texts:
            analysed = [analyze(t, dialect=dialect, schema=resource.schema) for t in parsed.sql_texts]
            nested = _merge_sql([a.to_input() for a in analysed])
        command = parsed.to_input(sql=nested)
        redacted = _redact_command(request.text, parsed.sql_texts, dialect)
    else:
        http = http_facts(request.method, request.path, request.host, request.query)
        redacted = f"{http['method']} {http['path']}"
    document = {
        "subject": {"id": subject.id, "groups": subject.groups, "claims": from_json(dict(subject.claims))},
        "resource": {
            "name": resource.name,
            "kind": resource.kind,
            "dialect": resource.dialect,
            "env": resource.env,
            "tags": from_json(dict(resource.tags)),
        },
        "session": session,
        "request": {"kind": request.kind, "text": redacted, "fingerprint": fingerprint, "time_ns": time_ns},
        "sql": sql,
        "command": command,
        "http": http,
    }
    return _Analysed(document, redacted, fingerprint, exact_hash)


def _merge_sql(parts: list[dict[str, Any]]) -> dict[str, Any]:
    if len(parts) == 1:
        return parts[0]
    errors = [p["parse_error"] for p in parts if p["parse_error"]]
    return {
        "dialect": parts[0]["dialect"],
        "statements": tuple(s for p in parts for s in p["statements"]),
        "tables_read": frozenset().union(*(p["tables_read"] for p in parts)),
        "tables_written": frozenset().union(*(p["tables_written"] for p in parts)),
        "columns_read": tuple(c for p in parts for c in p["columns_read"]),
        "functions": frozenset().union(*(p["functions"] for p in parts)),
        "parse_error": "; ".join(errors) if errors else None,
    }


def _session_doc(session_id: str | None, started_ns: int) -> dict[str, Any]:
    return {
        "id": session_id,
        "started_ns": started_ns,
        "requests": 0,
        "denied": 0,
        "approvals_pending": 0,
        "tables_touched": frozenset(),
        "terminated": False,
    }


class Engine:
    """Decides requests with one compiled policy; optionally records each decision.

    >>> import tempfile, pathlib, subguard
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "p.guard").write_text('''package p
    ... deny contains "drop is never allowed" if {
    ...     some s in input.sql.statements
    ...     s.kind == "drop"
    ... }
    ... default allow := true
    ... ''')
    >>> engine = subguard.Engine(subguard.load_policy(d))
    >>> engine.check(subguard.SqlRequest("DROP TABLE users"), subject="ci-bot").effect
    <Effect.DENY: 'deny'>
    >>> engine.check(subguard.SqlRequest("SELECT 1"), subject="ci-bot").effect
    <Effect.ALLOW: 'allow'>
    """

    def __init__(
        self,
        policy: Policy,
        *,
        log: Recorder | None = None,
        fail_closed: bool = True,
    ) -> None:
        self.policy = policy
        self.log = log
        self.fail_closed = fail_closed
        self._compiled = policy.compiled
        self._outputs = policy.decisions.outputs
        self._data = policy.data

    # evaluation over a ready input document
    def evaluate(self, input_document: Mapping[str, Any]) -> Decision:
        """Decide on a raw input document (no analysis, no log). Never raises."""
        return self._evaluate(input_document, time.perf_counter_ns())

    def _evaluate(self, input_document: Mapping[str, Any], start: int) -> Decision:
        """`evaluate`, timed from `start` (so a check's time includes its analysis)."""
        try:
            document = input_document if _is_frozen(input_document) else self._compiled.conform(dict(input_document))
            outputs = self._outputs(document, self._data)
            effect, reasons, masks, errors = combine(outputs)
        except Exception as exc:  # fail closed on anything unexpected
            return self._failure("engine_error", f"evaluation failed: {type(exc).__name__}", start, input_document)
        return build_decision(
            effect, reasons, masks, errors, document, self.policy.hash, time.perf_counter_ns() - start
        )

    def _failure(self, code: str, message: str, start: int, document: Mapping[str, Any]) -> Decision:
        return Decision(
            Effect.DENY,
            (Reason(Effect.DENY, "subguard", code, message, ""),),
            (),
            (EvalError(code, message),),
            input=document,
            policy_hash=self.policy.hash,
            elapsed_ns=time.perf_counter_ns() - start,
        )

    # the whole path for a request
    def check(
        self,
        request: Request | str,
        *,
        subject: Subject | Mapping[str, Any] | str | None = None,
        resource: Resource | Mapping[str, Any] | None = None,
        session: str | None = None,
    ) -> Decision:
        """Analyse, decide and (with a log) record one request. Never raises: any
        failure is a `deny` naming it. With a log, returns only after the decision is
        committed; if the log cannot commit, the effect is `deny` (unless the engine
        was built with `fail_closed=False`)."""
        start = time.perf_counter_ns()
        try:
            ctx, analysed = self._prepare(request, subject, resource, session)
        except Exception as exc:
            return self._failure("analysis_error", f"request could not be analysed: {type(exc).__name__}", start, {})
        return self._decide(ctx, analysed, start)

    def check_many(
        self,
        items: Sequence[tuple[Request | str, Any, Any, str | None]],
    ) -> list[Decision]:
        """Decide many requests `(request, subject, resource, session)` and record them
        in as few transactions as the log allows (what `eval --batch` uses).

        Decisions equal those of `check` one by one: when a request's session already
        has a decision waiting in the batch, the batch is committed first, so that the
        session state the rules see (`input.session`) includes it."""
        if self.log is None:
            return [self.check(r, subject=s, resource=res, session=sess) for r, s, res, sess in items]
        decided: list[Decision] = []
        pending: list[tuple[CheckContext | None, Decision]] = []
        sessions: set[str] = set()
        for request, subject, resource, session in items:
            if session is not None and session in sessions:
                decided.extend(self._record_pending(pending))
                pending, sessions = [], set()
            start = time.perf_counter_ns()
            try:
                ctx, analysed = self._prepare(request, subject, resource, session)
            except Exception as exc:
                failure = self._failure("analysis_error", f"request could not be analysed: {type(exc).__name__}", start, {})
                pending.append((None, failure))
                continue
            pending.append((ctx, self._evaluate_with_log(ctx, analysed, start)))
            if session is not None:
                sessions.add(session)
        decided.extend(self._record_pending(pending))
        return decided

    def _record_pending(self, pending: list[tuple[CheckContext | None, Decision]]) -> list[Decision]:
        """Commit the recordable decisions in one transaction; fail closed if it fails."""
        assert self.log is not None
        recordable = [(c, d) for c, d in pending if c is not None]
        if not recordable:
            return [d for _c, d in pending]
        try:
            recorded = iter(self.log.record_many(recordable))
        except Exception as exc:
            return [self._log_failed(d, exc) if c is not None else d for c, d in pending]
        return [next(recorded) if c is not None else d for c, d in pending]

    def _prepare(self, request: Request | str, subject: Any, resource: Any, session: str | None) -> tuple[CheckContext, _Analysed]:
        if isinstance(request, str):
            request = SqlRequest(request)
        subj, res = _subject(subject), _resource(resource)
        now = time.time_ns()
        analysed = build_input(request, subj, res, _session_doc(session, now), now)
        ctx = CheckContext(
            request=request,
            subject=subj,
            resource=res,
            session_id=session,
            request_kind=request.kind,
            redacted_text=analysed.redacted,
            fingerprint=analysed.fingerprint,
            exact_hash=analysed.exact_hash,
            time_ns=now,
        )
        return ctx, analysed

    def _evaluate_with_log(self, ctx: CheckContext, analysed: _Analysed, start: int) -> Decision:
        document = analysed.input
        if self.log is not None:
            try:
                preflight: Preflight = self.log.before(ctx)
            except Exception as exc:
                return self._failure("log_unavailable", f"decision log unavailable: {type(exc).__name__}", start, document)
            document = {**document, "session": preflight.session}
            if preflight.terminate:
                return Decision(
                    Effect.TERMINATE,
                    (Reason(Effect.TERMINATE, "subguard.log", "containment", preflight.terminate, ""),),
                    input=document,
                    policy_hash=self.policy.hash,
                    elapsed_ns=time.perf_counter_ns() - start,
                )
        return self._evaluate(document, start)

    def _decide(self, ctx: CheckContext, analysed: _Analysed, start: int) -> Decision:
        decision = self._evaluate_with_log(ctx, analysed, start)
        if self.log is None:
            return decision
        try:
            return self.log.record(ctx, decision)
        except Exception as exc:
            return self._log_failed(decision, exc)

    def _log_failed(self, decision: Decision, exc: Exception) -> Decision:
        if not self.fail_closed:
            return attrs.evolve(
                decision, errors=(*decision.errors, EvalError("log_unavailable", f"decision not recorded: {type(exc).__name__}"))
            )
        return attrs.evolve(
            decision,
            effect=Effect.DENY,
            reasons=(Reason(Effect.DENY, "subguard.log", "write_ahead", f"the decision log could not commit ({type(exc).__name__}); failing closed", ""),),
            masks=(),
            errors=(*decision.errors, EvalError("log_unavailable", f"decision log could not commit: {type(exc).__name__}")),
        )

    def wait_for_approval(self, decision: Decision, timeout: float) -> ApprovalResult:
        """Block until a held decision's approval is granted, refused or expired, or
        `timeout` seconds pass; returns the log's outcome."""
        if self.log is None or decision.approval_id is None:
            raise ValueError("this decision has no approval to wait for")
        return self.log.wait_for_approval(decision.approval_id, timeout)


def _is_frozen(document: Mapping[str, Any]) -> bool:
    """Documents the engine built itself are already in the value model."""
    subject = document.get("subject")
    # `type(...) is dict` first: an ABC isinstance check costs more than the rest
    return (type(subject) is dict or isinstance(subject, Mapping)) and type(subject.get("groups")) is frozenset
