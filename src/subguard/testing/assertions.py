"""Assertions about what a policy decides, for property tests: "no request from `agents`
that writes to `audit_*` is ever allowed", "every DELETE without a bounding WHERE is at
least held for approval".

Each assertion decides one generated `Case` and raises `PolicyPropertyError` (an
`AssertionError`) naming the request text, the expected and actual effect and the
reasons. Inside `@given`, Hypothesis shrinks the failing case first, so the report is
the smallest SQL or command that breaks the property. `check` runs the `@given` loop
for you.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from subguard.engine import Decision, Effect, Engine, Policy, build_input, session_document
from subguard.testing.runner import TEST_TIME_NS
from subguard.testing.strategies import Case

__all__ = [
    "PolicyPropertyError",
    "Predicate",
    "all_of",
    "assert_at_least",
    "assert_effect",
    "assert_never",
    "assert_never_allowed",
    "check",
    "decide",
    "from_group",
    "kind_in",
    "reads_column_tagged",
    "unbounded_write",
    "writes_to",
]

#: A condition on the input document the rules saw (`decision.input`).
Predicate = Callable[[Mapping[str, Any]], bool]


class PolicyPropertyError(AssertionError):
    """A generated request broke a policy property."""


def _engine(policy: Policy | Engine) -> Engine:
    return policy if isinstance(policy, Engine) else Engine(policy)


def _effect(value: Effect | str) -> Effect:
    return value if isinstance(value, Effect) else Effect(value)


def decide(policy: Policy | Engine, case: Case) -> Decision:
    """The decision for `case`, through the same analysis as `Engine.check` (no log; the
    session has `case.denied` earlier denials)."""
    engine = _engine(policy)
    session = session_document(
        "property-test", TEST_TIME_NS, requests=case.denied, denied=case.denied
    )
    built = build_input(case.request, case.subject, case.resource, session, TEST_TIME_NS)
    return engine.evaluate(built.input)


# ── conditions on the facts ──────────────────────────────────────────────────────────


def _statements(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    found: list[Mapping[str, Any]] = []
    for sql in (document.get("sql"), (document.get("command") or {}).get("sql")):
        if isinstance(sql, Mapping):
            found.extend(sql.get("statements") or ())
    return found


def writes_to(*patterns: str) -> Predicate:
    """The request writes a table whose name matches a glob (`audit_*`)."""

    def holds(document: Mapping[str, Any]) -> bool:
        return any(
            fnmatch.fnmatchcase(table, p)
            for s in _statements(document)
            for table in s.get("tables_written") or ()
            for p in patterns
        )

    holds.__doc__ = f"writes to {', '.join(patterns)}"
    return holds


def kind_in(*kinds: str) -> Predicate:
    """The request runs a statement of one of `kinds` (nested ones included)."""

    def holds(document: Mapping[str, Any]) -> bool:
        return any(s.get("kind") in kinds for s in _statements(document))

    holds.__doc__ = f"runs {' or '.join(k.upper() for k in kinds)}"
    return holds


def unbounded_write(document: Mapping[str, Any]) -> bool:
    """Runs an UPDATE or DELETE without a bounding WHERE (nested ones included)."""
    return any(
        s.get("kind") in ("update", "delete") and not s.get("has_where")
        for s in _statements(document)
    )


def from_group(group: str) -> Predicate:
    """The subject is in `group`."""

    def holds(document: Mapping[str, Any]) -> bool:
        return group in (document.get("subject") or {}).get("groups", ())

    holds.__doc__ = f"comes from group `{group}`"
    return holds


def reads_column_tagged(tag: str, *, in_output: bool | None = None) -> Predicate:
    """The request reads a column tagged `tag` (only into the result, or only not,
    when `in_output` says so)."""

    def holds(document: Mapping[str, Any]) -> bool:
        sql = document.get("sql") or {}
        return any(
            tag in (c.get("tags") or ()) and (in_output is None or c.get("in_output") == in_output)
            for c in sql.get("columns_read") or ()
        )

    holds.__doc__ = f"reads a column tagged `{tag}`"
    return holds


def all_of(*predicates: Predicate) -> Predicate:
    """Every one of `predicates` holds."""

    def holds(document: Mapping[str, Any]) -> bool:
        return all(p(document) for p in predicates)

    holds.__doc__ = " and ".join(
        str(p.__doc__ or getattr(p, "__name__", "?")).split(" (")[0].rstrip(".") for p in predicates
    )
    return holds


# ── assertions ───────────────────────────────────────────────────────────────────────


def _describe(when: Predicate | None) -> str:
    if when is None:
        return ""
    text = (when.__doc__ or when.__name__).strip().splitlines()[0].split(" (")[0]
    return f" that {text[0].lower()}{text[1:].rstrip('.')}" if text else ""


def _fail(
    case: Case, decision: Decision, expected: str, when: Predicate | None
) -> PolicyPropertyError:
    lines = [
        f"a {case.request.kind} request{_describe(when)} was decided `{decision.effect.value}`; expected {expected}",
        f"  request: {case.request.text}",
        f"  subject: {case.subject.id} (groups: {', '.join(sorted(case.subject.groups)) or 'none'})",
        f"  resource: {case.resource.kind or '-'} {case.resource.name}".rstrip(),
    ]
    for reason in decision.reasons:
        where = f"  ({reason.location})" if reason.location else ""
        lines.append(f"  reason: {reason.package}.{reason.rule}: {reason.message}{where}")
    for error in decision.errors:
        lines.append(f"  error: {error.code}: {error.message}")
    return PolicyPropertyError("\n".join(lines))


def assert_at_least(
    policy: Policy | Engine, case: Case, effect: Effect | str, *, when: Predicate | None = None
) -> Decision:
    """The decision for `case` is `effect` or stronger (when `when` holds)."""
    wanted = _effect(effect)
    decision = decide(policy, case)
    if (when is None or when(decision.input)) and decision.effect.rank < wanted.rank:
        raise _fail(case, decision, f"`{wanted.value}` or stronger", when)
    return decision


def assert_never(
    policy: Policy | Engine,
    case: Case,
    effects: Iterable[Effect | str] | Effect | str,
    *,
    when: Predicate | None = None,
) -> Decision:
    """The decision for `case` is none of `effects` (when `when` holds)."""
    banned = {_effect(e) for e in ([effects] if isinstance(effects, str | Effect) else effects)}
    decision = decide(policy, case)
    if (when is None or when(decision.input)) and decision.effect in banned:
        names = " or ".join(f"`{e.value}`" for e in sorted(banned, key=lambda e: e.rank))
        raise _fail(case, decision, f"never {names}", when)
    return decision


def assert_never_allowed(
    policy: Policy | Engine, case: Case, *, when: Predicate | None = None
) -> Decision:
    """`case` is not let through (neither `allow` nor `mask`) when `when` holds."""
    return assert_never(policy, case, (Effect.ALLOW, Effect.MASK), when=when)


def assert_effect(
    policy: Policy | Engine, case: Case, effect: Effect | str, *, when: Predicate | None = None
) -> Decision:
    """The decision for `case` is exactly `effect` (when `when` holds)."""
    wanted = _effect(effect)
    decision = decide(policy, case)
    if (when is None or when(decision.input)) and decision.effect is not wanted:
        raise _fail(case, decision, f"`{wanted.value}`", when)
    return decision


def check(
    policy: Policy | Engine,
    cases: Any,
    *,
    at_least: Effect | str | None = None,
    never: Iterable[Effect | str] | Effect | str | None = None,
    when: Predicate | None = None,
    max_examples: int | None = None,
) -> None:
    """Run a property over `cases` (a strategy of `Case`) with Hypothesis: every case
    for which `when` holds is decided `at_least` that strong and/or `never` one of those
    effects. Raises `PolicyPropertyError` for the smallest case that breaks it."""
    from hypothesis import HealthCheck, given, settings

    if at_least is None and never is None:
        raise ValueError("`check` needs `at_least` or `never`")
    engine = _engine(policy)
    options: dict[str, Any] = {"suppress_health_check": [HealthCheck.too_slow], "deadline": None}
    if max_examples is not None:
        options["max_examples"] = max_examples

    @settings(**options)
    @given(cases)
    def property_holds(case: Case) -> None:
        if at_least is not None:
            assert_at_least(engine, case, at_least, when=when)
        if never is not None:
            assert_never(engine, case, never, when=when)

    property_holds()
