"""The Engine: analyse a request, evaluate the compiled policy, combine the decision,
record it (write-ahead) — and always return a `Decision`, never raise."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final

import attrs

from subguard.engine.dataschema import type_errors
from subguard.engine.decision import combine
from subguard.engine.decode import Slow, raw_decoder
from subguard.engine.inputs import (
    DEFAULT_MAX_REQUEST_BYTES,
    SESSION_FIELDS,
    Analysed,
    build_input,
    dialect_for,
    oversize,
    reads_columns,
    request_of,
    resource_of,
    session_document,
    subject_of,
    too_large,
)
from subguard.engine.policy import INPUT_SCHEMA, Policy
from subguard.engine.recorder import (
    ApprovalResult,
    CheckContext,
    Preflight,
    Recorder,
    RecorderBatch,
)
from subguard.engine.types import (
    BatchItem,
    Decision,
    Effect,
    EvalError,
    FieldError,
    Reason,
    Request,
    Resource,
    Subject,
    build_decision,
)
from subguard.sql import schema_tagged

__all__ = [
    "DEFAULT_MAX_REQUEST_BYTES",
    "SESSION_FIELDS",
    "CheckBatch",
    "Engine",
    "build_input",
    "combine",
    "dialect_for",
    "request_of",
    "resource_of",
    "session_document",
    "subject_of",
]

_log = logging.getLogger(__name__)


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
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        secret_patterns: Sequence[str] | None = None,
        column_facts: bool | None = None,
    ) -> None:
        if type(max_request_bytes) is not int or max_request_bytes <= 0:
            raise ValueError("`max_request_bytes` must be a positive integer")
        if column_facts not in (None, True):
            raise ValueError("`column_facts` is None (when needed) or True (always)")
        #: Whether SQL is analysed with column facts for every request. Otherwise column
        #: resolution (the costliest step of the analysis) runs only for a resource whose
        #: schema tags a column (the adapters check tagged columns against the facts):
        #: the policy reads none of `inputs.COLUMN_PATHS`, as `Policy.reads` tells, which
        #: answers yes whenever a rule could reach them otherwise than by name. Decisions
        #: are the same either way; the column fields are then absent from
        #: `decision.input`, and the log records no column names (docs/performance.md).
        self.column_facts = bool(column_facts) or reads_columns(policy.reads)
        self.max_request_bytes = max_request_bytes
        self.policy = policy
        #: Regular expressions of secrets taken out of commands before they are logged
        #: (None: `subguard.command.DEFAULT_SECRET_PATTERNS`).
        self.secret_patterns = tuple(secret_patterns) if secret_patterns is not None else None
        self.log = log
        self.fail_closed = fail_closed
        self._compiled = policy.compiled
        self._decide_rules = policy.decisions.decide
        self._data = policy.data

    # evaluation over a ready input document
    def evaluate(self, input_document: Mapping[str, Any]) -> Decision:
        """Decide on a raw input document (no analysis, no log). Never raises."""
        return self._evaluate(input_document, _clock())

    def _evaluate(self, input_document: Mapping[str, Any], start: int) -> Decision:
        """`evaluate`, timed from `start` (so a check's time includes its analysis)."""
        if type(input_document) is not dict and not isinstance(input_document, Mapping):
            message = f"`input`: must be an object, not {type(input_document).__name__}"
            return self._failure("invalid_request", message, start, {})
        try:
            subject = input_document.get("subject")
            if (type(subject) is dict or isinstance(subject, Mapping)) and type(
                subject.get("groups")
            ) is frozenset:
                # a document the engine built itself is already in the value model
                # (`type(...) is dict` first: an ABC isinstance check costs more)
                document = input_document
            else:
                # a raw (JSON) document: its types are checked before rules see it, so
                # that `"groups": "admins"` is refused, not read as the set of its letters
                # (or `"admins" in "xadminsx"` as membership); one pass when it is plain
                # JSON of the right shape, else the general check names the problem
                try:
                    document = _RAW_DECODE(input_document)
                except Slow:
                    problems = type_errors(
                        input_document, INPUT_SCHEMA, INPUT_SCHEMA.root, "input", complete=False
                    )
                    if problems:
                        return self._failure("invalid_request", problems[0], start, {})
                    document = self._compiled.conform(dict(input_document))
            effect, reasons, masks, errors = self._decide_rules(document, self._data)
        except Exception as exc:  # fail closed on anything unexpected
            return self._failure(
                "engine_error", f"evaluation failed: {type(exc).__name__}", start, input_document
            )
        if errors:
            for error in errors:
                # the rule's message may quote request values: code and place only
                _log.warning(
                    "rule error, failing closed: %s in %s.%s at %s",
                    error.code,
                    error.package,
                    error.rule,
                    error.location,
                )
        return build_decision(
            effect,
            reasons,
            masks,
            errors,
            document,
            self.policy.hash,
            _clock() - start,
        )

    def _failure(
        self, code: str, message: str, start: int, document: Mapping[str, Any]
    ) -> Decision:
        # `message` names types and fields, never a request's values
        _log.warning("request denied, failing closed: %s: %s", code, message)
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
        prepared = self._prepare_or_fail(request, subject, resource, session, start)
        if isinstance(prepared, Decision):
            return prepared
        return self._decide(*prepared, start)

    def _prepare_or_fail(
        self, request: Any, subject: Any, resource: Any, session: Any, start: int
    ) -> tuple[CheckContext, Analysed] | Decision:
        """`_prepare`, or the deny decision naming why the request could not be."""
        try:
            return self._prepare(request, subject, resource, session)
        except FieldError as exc:
            return self._failure("invalid_request", exc.message, start, {})
        except Exception as exc:
            return self._failure(
                "analysis_error", f"request could not be analysed: {type(exc).__name__}", start, {}
            )

    def check_many(
        self,
        items: Iterable[BatchItem | tuple[Request | str, Any, Any, str | None]],
    ) -> list[Decision]:
        """Decide many requests — `BatchItem(request, subject, resource, session)`s or plain
        4-tuples in that order — and record them
        in as few transactions as the log allows (what `eval --batch` uses).

        Decisions equal those of `check` one by one: the log's batch counts the
        decisions staged before a request in the session state the rules see
        (`input.session`), and commits first only where it cannot (the second request
        of a session the log has not seen yet). No decision is returned before the
        commit that holds it.

        Never raises, as `check`: an item that is not a 4-tuple gets a deny decision
        naming the error, and `items` that is not a sequence of them gets one deny."""
        start = time.perf_counter_ns()
        if isinstance(items, str | bytes | bytearray | Mapping) or not isinstance(items, Iterable):
            message = f"`items` must be a sequence of (request, subject, resource, session), not {type(items).__name__}"
            return [self._failure("invalid_request", message, start, {})]
        try:
            listed = list(items)
        except Exception as exc:  # an iterator that raises part-way, say
            return [
                self._failure(
                    "invalid_request", f"`items` could not be read: {type(exc).__name__}", start, {}
                )
            ]
        return self._check_many(listed)

    def batch(self) -> CheckBatch:
        """A batch of requests decided one by one and recorded in one transaction (see
        `CheckBatch`); what `check_many` and the asyncio adapters use."""
        return CheckBatch(self)

    def _check_many(self, items: list[Any]) -> list[Decision]:
        decided: list[Decision] = []
        batch = self.batch()
        for item in items:
            if not isinstance(item, tuple | list) or len(item) != 4:
                message = f"each item must be (request, subject, resource, session), not {type(item).__name__}"
                batch.add_decided(
                    self._failure("invalid_request", message, time.perf_counter_ns(), {})
                )
                continue
            if not batch.add(*item):
                decided.extend(batch.commit())
                batch = self.batch()
                batch.add(*item)  # a fresh batch stages anything
        decided.extend(batch.commit())
        return decided

    def _commit_batch(
        self, batch: RecorderBatch, pending: list[tuple[CheckContext | None, Decision]]
    ) -> list[Decision]:
        """Commit the staged decisions in one transaction; fail closed if it fails."""
        if all(c is None for c, _d in pending):
            return [d for _c, d in pending]
        try:
            recorded = iter(batch.commit())
        except Exception as exc:
            return [self._log_failed(d, exc) if c is not None else d for c, d in pending]
        return [next(recorded) if c is not None else d for c, d in pending]

    def _prepare(
        self, request: Request | str, subject: Any, resource: Any, session: str | None
    ) -> tuple[CheckContext, Analysed]:
        request = request_of(request)
        subj, res = subject_of(subject), resource_of(resource)
        now = time.time_ns()
        size = oversize(request, self.max_request_bytes)
        if size is not None:
            # refused before any analysis: the cost of a request is bounded by its size
            analysed = too_large(
                request,
                subj,
                res,
                session_document(session, now),
                now,
                size,
                self.max_request_bytes,
            )
        else:
            analysed = build_input(
                request,
                subj,
                res,
                session_document(session, now),
                now,
                secret_patterns=self.secret_patterns,
                columns=self.column_facts or schema_tagged(res.schema),
            )
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

    def _evaluate_with_log(
        self,
        ctx: CheckContext,
        analysed: Analysed,
        start: int,
        before: Callable[[CheckContext], Preflight] | None = None,
    ) -> Decision:
        document = analysed.input
        if self.log is not None:
            try:
                preflight: Preflight = (before or self.log.before)(ctx)
            except Exception as exc:
                return self._failure(
                    "log_unavailable",
                    f"decision log unavailable: {type(exc).__name__}",
                    start,
                    document,
                )
            document = {**document, "session": preflight.session}
            if preflight.terminate:
                return Decision(
                    Effect.TERMINATE,
                    (
                        Reason(
                            Effect.TERMINATE, "subguard.log", "containment", preflight.terminate, ""
                        ),
                    ),
                    input=document,
                    policy_hash=self.policy.hash,
                    elapsed_ns=time.perf_counter_ns() - start,
                )
        decision = self._evaluate(document, start)
        if analysed.refusal is not None:
            return _refused(decision, analysed.refusal)
        return decision

    def _decide(self, ctx: CheckContext, analysed: Analysed, start: int) -> Decision:
        decision = self._evaluate_with_log(ctx, analysed, start)
        if self.log is None:
            return decision
        try:
            return self.log.record(ctx, decision)
        except Exception as exc:
            return self._log_failed(decision, exc)

    def _log_failed(self, decision: Decision, exc: Exception) -> Decision:
        _log.error(
            "decision log could not commit (%s); %s",
            type(exc).__name__,
            "failing closed"
            if self.fail_closed
            else "decision returned unrecorded (fail_closed=False)",
        )
        if not self.fail_closed:
            return attrs.evolve(
                decision,
                errors=(
                    *decision.errors,
                    EvalError("log_unavailable", f"decision not recorded: {type(exc).__name__}"),
                ),
            )
        return attrs.evolve(
            decision,
            effect=Effect.DENY,
            reasons=(
                Reason(
                    Effect.DENY,
                    "subguard.log",
                    "write_ahead",
                    f"the decision log could not commit ({type(exc).__name__}); failing closed",
                    "",
                ),
            ),
            masks=(),
            errors=(
                *decision.errors,
                EvalError(
                    "log_unavailable", f"decision log could not commit: {type(exc).__name__}"
                ),
            ),
        )

    def wait_for_approval(self, decision: Decision, timeout: float) -> ApprovalResult:
        """Block until a held decision's approval is granted, refused or expired, or
        `timeout` seconds pass; returns the log's outcome."""
        if self.log is None or decision.approval_id is None:
            raise ValueError("this decision has no approval to wait for")
        return self.log.wait_for_approval(decision.approval_id, timeout)


class CheckBatch:
    """Requests decided one after another and recorded together.

    `add(request, subject, resource, session)` decides a request at once (analysis,
    the log's preflight with the batch's earlier decisions counted in, the rules) and
    stages its decision; it returns False, staging nothing, when the request must wait
    for this batch's commit (the second request of a session the log has not seen yet:
    commit, then add it to a new batch). `commit()` records every staged decision in
    one transaction and returns them all in the order they were added; none is final
    before it (write-ahead), and a failed commit turns them into denials, as `check`
    does. Without a log, `commit` returns the decisions as they are.

    Not thread-safe while adding: add from one thread; once adding has stopped,
    `commit` may run on another (a writer thread, say).
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._batch = engine.log.batch() if engine.log is not None else None
        self._pending: list[tuple[CheckContext | None, Decision]] = []

    def __len__(self) -> int:
        return len(self._pending)

    def add(
        self,
        request: Request | str,
        subject: Any = None,
        resource: Any = None,
        session: str | None = None,
    ) -> bool:
        """Decide `request` and stage its decision; False (nothing staged) when it must
        wait for this batch's commit. Never raises."""
        engine = self._engine
        start = time.perf_counter_ns()
        prepared = engine._prepare_or_fail(request, subject, resource, session, start)
        if isinstance(prepared, Decision):
            self._pending.append((None, prepared))
            return True
        ctx, analysed = prepared
        batch = self._batch
        if batch is None:
            self._pending.append((None, engine._decide(ctx, analysed, start)))
            return True
        if batch.must_commit(ctx):
            return False
        decision = engine._evaluate_with_log(ctx, analysed, start, batch.before)
        batch.stage(ctx, decision)
        self._pending.append((ctx, decision))
        return True

    def add_decided(self, decision: Decision) -> None:
        """Add a decision made without the log (a request refused before analysis): it
        is returned in its place, unrecorded, as `check` would."""
        self._pending.append((None, decision))

    def commit(self) -> list[Decision]:
        """Record the staged decisions in one transaction; every decision, in order."""
        if self._batch is None:
            return [d for _c, d in self._pending]
        return self._engine._commit_batch(self._batch, self._pending)


#: The clock decisions are timed with (a module global: one lookup, not two).
_clock: Final = time.perf_counter_ns

#: The one-pass decoder of raw input documents (see `engine.decode`).
_RAW_DECODE: Final = raw_decoder(INPUT_SCHEMA)


def _refused(decision: Decision, refusal: EvalError) -> Decision:
    """`decision` refused for `refusal` whatever the rules decided (a `terminate` stays)."""
    effect = Effect.TERMINATE if decision.effect is Effect.TERMINATE else Effect.DENY
    kept = tuple(r for r in decision.reasons if r.effect in (Effect.DENY, Effect.TERMINATE))
    return attrs.evolve(
        decision,
        effect=effect,
        reasons=(Reason(Effect.DENY, "subguard", refusal.code, refusal.message, ""), *kept),
        masks=(),
        errors=(*decision.errors, refusal),
    )
