"""The policy test runner behind `subguard test`: discover `test_…` rules, run them with
request-building builtins, and measure which decision rules they made fire.

Tests are ordinary rules whose names start with `test_` (`todo_test_` skips one), in any
`.guard` file — by convention `*_test.guard` beside the rules they test. Three builtins
exist only while tests run:

- `sql_request(text, context)` — the input document for a SQL text, built by the same
  analysis the engine runs (`context`: `subject`, `resource`, `session`, `dialect`);
- `command_request(text, context)` — the same for a shell command line;
- `tool_request(tool, context)` — the same for an MCP tool call: `tool` is
  `{"server", "name", "arguments", "sql", "command", "listing"}` (`sql` or `command`: the
  text of the argument the proxy analyses; `listing: true` makes a `tool_list` request);
- `decide(document)` — the decision of the loaded policy for an input document:
  `{"effect", "messages", "rules", "reasons", "masks", "errors"}`.
"""

from __future__ import annotations

import difflib
import os
import re
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from subguard.engine import (
    DECISION_RULES,
    SESSION_FIELDS,
    CommandRequest,
    FieldError,
    Policy,
    Resource,
    SqlRequest,
    Subject,
    ToolRequest,
    build_input,
    combine,
    load_policy,
    session_document,
)
from subguard.engine.sources import find_policy_files, is_test_file
from subguard.lang import (
    FUNCTION,
    UNDEFINED_ERRORS,
    BinOp,
    Builtin,
    BuiltinError,
    Module,
    NotLiteral,
    Ref,
    Rule,
    Scalar,
    freeze,
    to_json,
)

__all__ = [
    "Coverage",
    "DecisionTrace",
    "TestReport",
    "TestResult",
    "is_test_file",
    "policy_files",
    "run_tests",
    "test_builtins",
]

PathLike = str | os.PathLike[str]

#: Fields a request context may carry.
_CONTEXT_FIELDS = ("subject", "resource", "session", "dialect", "time_ns", "estimated_rows")

#: The time every built request carries unless the context names one: tests repeat.
TEST_TIME_NS = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z


def policy_files(paths: PathLike | Sequence[PathLike], *, tests: bool = False) -> list[Path]:
    """The `.guard` files of `paths`, without `*_test.guard` files unless `tests`."""
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    return find_policy_files(paths, tests=tests)


# ── request-building builtins ────────────────────────────────────────────────────────


def _fields(what: str, value: Any, allowed: Sequence[str], builtin: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise BuiltinError(f"`{builtin}`: the {what} must be an object")
    plain: dict[str, Any] = to_json(value)
    for key in plain:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), list(allowed), n=1, cutoff=0.6)
            hint = f" (did you mean `{close[0]}`?)" if close else ""
            raise BuiltinError(f"`{builtin}`: `{key}` is not a field of the {what}{hint}")
    return plain


def _context(
    builtin: str, context: Any
) -> tuple[Subject, Resource, dict[str, Any], str | None, int]:
    ctx = _fields("request context", context, _CONTEXT_FIELDS, builtin)
    time_ns = ctx.get("time_ns", TEST_TIME_NS)
    if type(time_ns) is not int:
        raise BuiltinError(f"`{builtin}`: `time_ns` must be an integer")
    dialect = ctx.get("dialect")
    if dialect is not None and not isinstance(dialect, str):
        raise BuiltinError(f"`{builtin}`: `dialect` must be a string")
    try:
        subject = Subject.from_dict(ctx.get("subject") or {})
        resource = Resource.from_dict(ctx.get("resource") or {})
        state = dict(_fields("session", ctx.get("session"), SESSION_FIELDS, builtin))
        session = session_document(state.pop("id", None), state.pop("started_ns", time_ns), **state)
    except FieldError as exc:
        raise BuiltinError(f"`{builtin}`: {exc.message}") from None
    return subject, resource, session, dialect, time_ns


def sql_input(text: str, context: Any = None) -> dict[str, Any]:
    """The input document for SQL `text`, as the engine builds it (see `sql_request`)."""
    if not isinstance(text, str):
        raise BuiltinError("`sql_request`: the SQL text must be a string")
    subject, resource, session, dialect, time_ns = _context("sql_request", context)
    # the live fact an adapter holding a connection adds to a single write
    estimate = context.get("estimated_rows") if isinstance(context, Mapping) else None
    try:
        request = SqlRequest(text, dialect, estimated_rows=estimate)
    except FieldError as exc:
        raise BuiltinError(f"`sql_request`: {exc.message}") from None
    built = build_input(request, subject, resource, session, time_ns)
    document: dict[str, Any] = freeze(built.input)
    return document


def command_input(text: str, context: Any = None) -> dict[str, Any]:
    """The input document for a shell command line (see `command_request`)."""
    if not isinstance(text, str):
        raise BuiltinError("`command_request`: the command must be a string")
    subject, resource, session, _, time_ns = _context("command_request", context)
    if not resource.kind:
        resource = attrs.evolve(resource, kind="shell")
    built = build_input(CommandRequest(text), subject, resource, session, time_ns)
    document: dict[str, Any] = freeze(built.input)
    return document


_TOOL_FIELDS = ("server", "name", "arguments", "sql", "command", "listing")


def tool_input(tool: Any, context: Any = None) -> dict[str, Any]:
    """The input document for an MCP tool call (see `tool_request`)."""
    fields = _fields("tool", tool, _TOOL_FIELDS, "tool_request")
    subject, resource, session, dialect, time_ns = _context("tool_request", context)
    listing = fields.get("listing", False)
    if type(listing) is not bool:
        raise BuiltinError("`tool_request`: `listing` must be a boolean")
    try:
        request = ToolRequest(
            fields.get("server", ""),
            fields.get("name", ""),
            fields.get("arguments", {}),
            sql=fields.get("sql"),
            command=fields.get("command"),
            dialect=dialect,
            listing=listing,
        )
    except FieldError as exc:
        raise BuiltinError(f"`tool_request`: {exc.message}") from None
    built = build_input(request, subject, resource, session, time_ns)
    document: dict[str, Any] = freeze(built.input)
    return document


@attrs.frozen
class DecisionTrace:
    """One decision a test asked for: the request it was about and what came out."""

    request: str
    effect: str
    reasons: tuple[tuple[str, str, str], ...]  # (rule, message, location)
    masks: Any
    errors: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "request": self.request,
            "effect": self.effect,
            "reasons": [{"rule": r, "message": m, "location": loc} for r, m, loc in self.reasons],
            "masks": self.masks,
            "errors": list(self.errors),
        }


class _Recorder:
    """What the builtins need at run time: the compiled policy (set after loading) and
    where to note decisions and the decision rules that fired."""

    def __init__(self) -> None:
        self.policy: Policy | None = None
        self.fired: set[str] = set()
        self.decisions: list[DecisionTrace] = []

    def decide(self, document: Any) -> dict[str, Any]:
        if self.policy is None:
            raise BuiltinError("`decide`: no policy is loaded")
        if not isinstance(document, Mapping):
            raise BuiltinError("`decide`: the argument must be an input document (an object)")
        outputs = self.policy.decisions.outputs(document, self.policy.data)
        for fired in outputs.fired:
            self.fired.add(fired.location)
        effect, reasons, masks, errors = combine(outputs)
        request = document.get("request")
        text = request.get("text", "") if isinstance(request, Mapping) else ""
        plain_masks = to_json(dict(masks) if isinstance(masks, Mapping) else list(masks))
        self.decisions.append(
            DecisionTrace(
                str(text),
                effect.value,
                tuple((f"{r.package}.{r.rule}", r.message, r.location) for r in reasons),
                plain_masks,
                tuple(f"{e.code}: {e.message}" for e in errors),
            )
        )
        result: dict[str, Any] = freeze(
            {
                "effect": effect.value,
                "messages": {r.message for r in reasons},
                "rules": {f"{r.package}.{r.rule}" for r in reasons},
                "reasons": [r.as_dict() for r in reasons],
                "masks": plain_masks,
                "errors": [e.as_dict() for e in errors],
            }
        )
        return result


def test_builtins(recorder: Any = None) -> dict[str, Builtin]:
    """The builtins tests may call. `recorder` (internal) collects decisions."""
    rec = recorder if recorder is not None else _Recorder()
    return {
        "sql_request": Builtin("sql_request", 2, sql_input, "any"),
        "command_request": Builtin("command_request", 2, command_input, "any"),
        "tool_request": Builtin("tool_request", 2, tool_input, "any"),
        "decide": Builtin("decide", 1, rec.decide, "any"),
    }


test_builtins.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


# ── results ──────────────────────────────────────────────────────────────────────────


@attrs.frozen
class TestResult:
    """One test rule's outcome: `pass`, `fail`, `skip` or `error`."""

    __test__ = False

    package: str
    rule: str
    location: str
    status: str
    message: str = ""
    expected: tuple[str, ...] = ()
    decisions: tuple[DecisionTrace, ...] = ()
    duration_s: float = 0.0

    @property
    def name(self) -> str:
        return f"{self.package}.{self.rule}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "package": self.package,
            "rule": self.rule,
            "location": self.location,
            "status": self.status,
            "message": self.message,
            "expected": list(self.expected),
            "decisions": [d.as_dict() for d in self.decisions],
            "duration_s": round(self.duration_s, 6),
        }


@attrs.frozen
class Coverage:
    """Decision-rule definitions (outside test files) that some test made fire."""

    covered: tuple[str, ...]
    #: `file:line rule` of each definition no test made fire
    missed: tuple[tuple[str, str], ...]

    @property
    def total(self) -> int:
        return len(self.covered) + len(self.missed)

    @property
    def percent(self) -> float:
        return 100.0 if not self.total else 100.0 * len(self.covered) / self.total

    def as_dict(self) -> dict[str, Any]:
        return {
            "percent": round(self.percent, 2),
            "covered": len(self.covered),
            "total": self.total,
            "not_covered": [{"location": loc, "rule": rule} for loc, rule in self.missed],
        }


@attrs.frozen
class TestReport:
    """Everything one run found."""

    __test__ = False

    results: tuple[TestResult, ...]
    coverage: Coverage | None = None
    duration_s: float = 0.0

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if r.status == status)

    @property
    def ok(self) -> bool:
        return all(r.status in ("pass", "skip") for r in self.results)

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "results": [r.as_dict() for r in self.results],
            "summary": {s: self.count(s) for s in ("pass", "fail", "skip", "error")},
            "duration_s": round(self.duration_s, 6),
        }
        if self.coverage is not None:
            out["coverage"] = self.coverage.as_dict()
        return out


# ── running ──────────────────────────────────────────────────────────────────────────


def _file_of(location: str) -> str:
    return location.rsplit(":", 1)[0]


def _test_rules(policy: Policy) -> list[tuple[Module, Rule]]:
    found: list[tuple[Module, Rule]] = []
    seen: set[tuple[str, str]] = set()
    for module in policy.modules:
        package = ".".join(module.package)
        for rule in module.rules:
            if not (rule.name.startswith("test_") or rule.name.startswith("todo_test_")):
                continue
            if rule.kind == FUNCTION or (package, rule.name) in seen:
                continue
            seen.add((package, rule.name))
            found.append((module, rule))
    return found


def _expected_effects(rule: Rule) -> tuple[str, ...]:
    """The effects a test compares `.effect` against, for the failure report."""
    found: list[str] = []

    def is_effect(e: Any) -> bool:
        return (
            isinstance(e, Ref)
            and bool(e.path)
            and isinstance(e.path[-1], Scalar)
            and e.path[-1].value == "effect"
        )

    def visit(node: Any) -> None:
        if isinstance(node, BinOp) and node.op == "==":
            for a, b in ((node.left, node.right), (node.right, node.left)):
                if is_effect(a) and isinstance(b, Scalar) and isinstance(b.value, str):
                    found.append(b.value)
        if isinstance(node, NotLiteral):
            return  # `not d.effect == "allow"` is no expectation of `allow`
        if attrs.has(type(node)):
            for field in attrs.fields(type(node)):
                visit(getattr(node, field.name))
        elif isinstance(node, tuple):
            for item in node:
                visit(item)

    for literal in rule.body:
        visit(literal)
    if rule.value is not None:
        visit(rule.value)
    return tuple(dict.fromkeys(found))


def _trace_definitions(policy: Policy, recorder: _Recorder) -> None:
    """Note decision-rule definitions that fire when a test names a rule directly
    (`deny with input as …`) as well as through `decide`."""
    policy.compiled.watch_definitions(recorder.fired.add)


def _coverage(policy: Policy, test_files: set[str], fired: set[str]) -> Coverage:
    covered: list[str] = []
    missed: list[tuple[str, str]] = []
    for name, locations in sorted(policy.compiled.rule_locations().items()):
        if name.rsplit(".", 1)[1] not in DECISION_RULES:
            continue
        for location in locations:
            if _file_of(location) in test_files:
                continue
            if location in fired:
                covered.append(location)
            else:
                missed.append((location, name))
    missed.sort(
        key=lambda m: (
            _file_of(m[0]),
            int(m[0].rsplit(":", 1)[1]) if m[0].rsplit(":", 1)[1].isdigit() else 0,
        )
    )
    return Coverage(tuple(covered), tuple(missed))


def run_tests(
    paths: PathLike | Sequence[PathLike],
    *,
    run: str | None = None,
    data: Mapping[str, Any] | None = None,
    coverage: bool = False,
) -> TestReport:
    """Load the rules and tests in `paths` and run every test whose `package.rule`
    matches `run` (a regular expression). Raises `PolicyErrors` when the policy does
    not compile, `re.error` for a bad `run` pattern."""
    started = time.perf_counter()
    pattern = re.compile(run) if run else None
    recorder = _Recorder()
    policy = load_policy(paths, data=data, builtins=test_builtins(recorder), tests=True)
    recorder.policy = policy
    if coverage:
        _trace_definitions(policy, recorder)
    tests = _test_rules(policy)
    test_files = {f for f in policy.files if is_test_file(f)} | {m.path for m, _ in tests}
    results: list[TestResult] = []
    for module, rule in tests:
        package = ".".join(module.package)
        name = f"{package}.{rule.name}"
        if pattern is not None and not pattern.search(name):
            continue
        location = rule.loc.short
        if rule.name.startswith("todo_"):
            results.append(TestResult(package, rule.name, location, "skip", "marked todo"))
            continue
        recorder.decisions = []
        begin = time.perf_counter()
        status, message = "pass", ""
        try:
            value = policy.compiled.evaluate_rule(name, {}, policy.data)
        except UNDEFINED_ERRORS:
            status, message = "fail", "the test's body did not hold"
        except Exception as exc:  # a rule error (conflict, a failing builtin) is the test's
            status, message = "error", str(exc) or type(exc).__name__
        else:
            if value is False:
                status, message = "fail", "the test's value is false"
        elapsed = time.perf_counter() - begin
        expected = _expected_effects(rule) if status != "pass" else ()
        results.append(
            TestResult(
                package,
                rule.name,
                location,
                status,
                message,
                expected,
                tuple(recorder.decisions),
                elapsed,
            )
        )
    report_coverage = _coverage(policy, test_files, recorder.fired) if coverage else None
    return TestReport(tuple(results), report_coverage, time.perf_counter() - started)
