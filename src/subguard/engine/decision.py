"""Decision semantics: which rules decide, the index that finds the definitions that can
fire for a request, what the fired definitions produced, and the decision combined
from it.

The language runs rules; this module knows what `terminate`, `deny`, `approve`,
`allow` and `mask` mean. It names them as the compiler's entrypoints (so their kinds
are checked at load), indexes their definitions by the statement kinds and tables they
require (`lang`'s `Definition.requires`), and hands the index to the compiled policy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, NamedTuple

from subguard.caching import bounded_cache
from subguard.engine.types import Effect, EvalError, Reason
from subguard.lang import (
    COMPLETE,
    DEFAULT,
    EACH,
    OBJECT,
    SET,
    CompiledPolicy,
    Definition,
    Entrypoint,
    Fault,
    RuleKind,
    marshal,
)

__all__ = ["DECISION_RULES", "ENTRYPOINTS", "Combined", "Decisions", "Fired", "Outputs", "RuleIndex", "combine"]

#: Rule names with a fixed meaning in every package, and the kinds they may have.
DECISION_RULES: Final[Mapping[str, tuple[RuleKind, ...]]] = {
    "terminate": (SET,),
    "deny": (SET,),
    "approve": (SET,),
    "allow": (COMPLETE, DEFAULT),
    "mask": (SET, OBJECT),
}

_SHAPES: Final = {
    "allow": "a boolean rule (`allow if …`)",
    "mask": "a set or object rule (`mask contains col if …`)",
}

#: The decision rules as the compiler's entrypoints: kinds checked at load.
ENTRYPOINTS: Final = {
    name: Entrypoint(
        kinds,
        f"`{name}` is a decision rule and must be "
        + _SHAPES.get(name, f"a set rule (`{name} contains msg if …`)"),
        "`allow` is a boolean rule: its value must be `true` or `false`" if name == "allow" else None,
    )
    for name, kinds in DECISION_RULES.items()
}


#: The named tuples built per decision (`Fired`, `Outputs`, `Combined`) are built
#: with `tuple.__new__`, which skips a named tuple's Python-level `__new__`: ~0.1 µs
#: each, of a ~11 µs decision (RESULTS.md, 'Per-decision latency, 20 rules').
_new_tuple: Any = tuple.__new__


# ── the index: definitions by the statement kinds and tables they require ──────────

_KIND: Final = ("input", "sql", "statements", EACH, "kind")
_TABLES: Final = frozenset(
    {
        ("input", "sql", "tables_read", EACH),
        ("input", "sql", "tables_written", EACH),
        ("input", "sql", "statements", EACH, "tables_read", EACH),
        ("input", "sql", "statements", EACH, "tables_written", EACH),
    }
)

Guard = tuple[frozenset[str] | None, frozenset[str] | None]


def guard(definition: Definition) -> Guard:
    """The statement kinds and the tables a definition requires (None: any). Each is a
    necessary condition the definition states at its top level: some statement of
    one of these kinds exists; one of these tables is read or written (the tables of
    every statement are in `input.sql.tables_read`/`tables_written`)."""
    kinds: frozenset[str] | None = None
    tables: frozenset[str] | None = None
    for requirement in definition.requires:
        if kinds is None and requirement.path == _KIND:
            kinds = requirement.values
        elif tables is None and requirement.path in _TABLES:
            tables = requirement.values
    return kinds, tables


class RuleIndex:
    """Which decision definitions can fire for an input, found by dictionary lookups: a
    definition whose requirements the input cannot meet is never run. That is what
    keeps 1,000 rules that each name a kind or a table close to the cost of 20."""

    def __init__(self, guards: Sequence[Guard]) -> None:
        self.count = len(guards)
        always: list[int] = []
        by_kind: dict[str, list[int]] = {}
        by_table: dict[str, list[int]] = {}
        by_both: dict[tuple[str, str], list[int]] = {}
        for i, (kinds, tables) in enumerate(guards):
            if kinds is None and tables is None:
                always.append(i)
            elif tables is None:
                for k in kinds or ():
                    by_kind.setdefault(k, []).append(i)
            elif kinds is None:
                for t in tables:
                    by_table.setdefault(t, []).append(i)
            else:
                for k in kinds:
                    for t in tables:
                        by_both.setdefault((k, t), []).append(i)
        self.always = tuple(always)
        self.by_kind = {k: tuple(v) for k, v in by_kind.items()}
        self.by_table = {k: tuple(v) for k, v in by_table.items()}
        self.by_both = {k: tuple(v) for k, v in by_both.items()}
        self.indexed = bool(by_kind or by_table or by_both)

    @classmethod
    def of(cls, definitions: Iterable[Definition]) -> RuleIndex:
        return cls([guard(d) for d in definitions])

    def extra(self, input: Any) -> Sequence[int]:
        """The indexed definitions (not `always`) that can fire for this input."""
        if not self.indexed:
            return ()
        try:
            sql = input["sql"]
            statements = sql["statements"]
            kinds: Any = (statements[0]["kind"],) if len(statements) == 1 else {s["kind"] for s in statements}
            table_sets = (sql["tables_read"], sql["tables_written"]) if self.by_table or self.by_both else ()
        except (KeyError, TypeError, IndexError):
            return ()
        chosen: list[int] = []
        by_kind, by_table, by_both = self.by_kind, self.by_table, self.by_both
        for k in kinds:
            hit = by_kind.get(k)
            if hit:
                chosen.extend(hit)
        for table_set in table_sets:
            for t in table_set:
                hit = by_table.get(t)
                if hit:
                    chosen.extend(hit)
                if by_both:
                    for k in kinds:
                        hit = by_both.get((k, t))
                        if hit:
                            chosen.extend(hit)
        if len(chosen) > 1:
            return sorted(set(chosen))
        return chosen


# ── what the decision rules produced ───────────────────────────────────────────────


class Fired(NamedTuple):
    """One decision-rule definition that produced values for an input (a named tuple:
    one is built per firing rule on the hot path)."""

    package: str
    rule: str
    location: str
    values: tuple[Any, ...]


class Outputs(NamedTuple):
    """Everything the decision rules produced for one input (a named tuple: one per
    decision)."""

    fired: tuple[Fired, ...]
    faults: tuple[Fault, ...]


class Decisions:
    """A compiled policy's decision rules: indexed once at load, run per input."""

    def __init__(self, compiled: CompiledPolicy, *, indexed: bool = True) -> None:
        """`indexed=False` runs every definition for every input: the reference the
        index must agree with (for tests)."""
        self.compiled = compiled
        self.index = RuleIndex.of(compiled.definitions)
        if indexed:
            compiled.select(self.index)
        self._definitions = compiled.definitions
        self._run = compiled.run
        #: package → location of its `default allow := true`
        self._open_defaults = {
            d.package: d.location for d in compiled.defaults if d.rule == "allow" and d.value is True
        }
        self._open_defaults_items = tuple(self._open_defaults.items())

    def outputs(self, input: Any, data: Any) -> Outputs:
        """Run the decision rules that can fire for `input`; each definition that
        produced values is `Fired`.

        `allow` is a complete rule: definitions of one package producing `true` and
        `false` conflict (a fault, so the decision fails closed). A default `allow`
        fires only when no `allow` definition of its package produced a value.
        """
        hits, faults = self._run(input, data)
        definitions = self._definitions
        fired: list[Fired] = []
        decided: set[str] = set()  # packages whose `allow` produced a value
        refused: dict[str, str] | None = None  # package → location of an `allow` that produced false
        new = _new_tuple
        for i, out in hits:
            package, rule, location, _requires = definitions[i]
            if rule == "allow":
                decided.add(package)
                if out[0] is not True and not any(v is True for v in out):
                    if refused is None:
                        refused = {}
                    refused.setdefault(package, location)
                    continue
            fired.append(new(Fired, (package, rule, location, tuple(out))))
        if refused:
            conflicted = {f.package for f in fired if f.rule == "allow" and f.package in refused}
            if conflicted:
                fired = [f for f in fired if not (f.rule == "allow" and f.package in conflicted)]
                faults = [*faults, *(_conflict(p, refused[p]) for p in sorted(conflicted))]
        for package, location in self._open_defaults_items:
            if package not in decided:
                fired.append(Fired(package, "allow", location, (True,)))
        return new(Outputs, (tuple(fired), tuple(faults)))  # type: ignore[no-any-return]


def _conflict(package: str, location: str) -> Fault:
    # OPA: "complete rules must not produce multiple outputs"; the message is the one
    # evaluating the rule itself gives (`runtime.single`)
    return Fault("conflict", f"rule `{package}.allow` produced different values", package, "allow", location)


# ── the decision ───────────────────────────────────────────────────────────────────


class Combined(NamedTuple):
    """The decision combined from what the rules produced (before it is timed and
    recorded): its effect, the reasons, the masks and the rule errors."""

    effect: Effect
    reasons: tuple[Reason, ...]
    masks: tuple[str, ...] | Mapping[str, str]
    errors: tuple[EvalError, ...]




def _message(value: Any) -> str:
    return value if isinstance(value, str) else marshal(value)


def _mask_name(value: Any) -> str:
    if type(value) is str:
        return value
    if isinstance(value, Mapping) and "column" in value:
        table = value.get("table")
        return f"{table}.{value['column']}" if table else str(value["column"])
    return _message(value)


class _MaskConflict(Exception):
    pass


_NO_RULE = Reason(Effect.DENY, "subguard", "default", "no rule allowed the request", "")


@bounded_cache(
    4096,
    justified_by="RESULTS.md, Policy evaluation, 'Per-decision latency, 20 rules', subguard row: "
    "rules say the same things again and again; a hit costs ~130 ns, building the Reason ~280 ns",
)
def _reason(effect: Effect, package: str, rule: str, message: str, location: str) -> Reason:
    """The reason (shared: the same rule says the same thing for many requests)."""
    return Reason(effect, package, rule, message, location)


def _reasons(effect: Effect, fired: list[Any]) -> list[Reason]:
    return [
        _reason(effect, f.package, f.rule, v if type(v) is str else _message(v), f.location)
        for f in fired
        for v in (f.values if len(f.values) == 1 else sorted(f.values, key=_message))
    ]


def _masks(fired: list[Any]) -> tuple[Any, list[Reason]]:
    """Mask rules' values: column names (a set rule) or column → strategy (an object
    rule or object values). Returns the masks and one reason per masked column."""
    names: dict[str, str] = {}
    as_object = False
    reasons: list[Reason] = []
    for f in fired:
        for value in f.values:
            if isinstance(value, tuple) and len(value) == 2:
                as_object = True
                column, strategy = _mask_name(value[0]), _message(value[1])
                if names.get(column, strategy) != strategy:
                    raise _MaskConflict(f"column `{column}` has two mask strategies")
                names[column] = strategy
                reasons.append(Reason(Effect.MASK, f.package, f.rule, f"mask {_mask_name(value[0])}", f.location))
            else:
                name = _mask_name(value)
                names.setdefault(name, "")
                reasons.append(Reason(Effect.MASK, f.package, f.rule, f"mask {name}", f.location))
    if as_object:
        return dict(sorted(names.items())), reasons
    return tuple(sorted(names)), reasons


def combine(outputs: Outputs) -> Combined:
    """The decision from what the rules produced: the strongest non-empty effect wins,
    a rule error is at least `deny`, nothing decided is `deny` (fail closed)."""
    by_rule: dict[str, list[Any]] = {}
    for fired in outputs.fired:
        if fired.rule in by_rule:
            by_rule[fired.rule].append(fired)
        else:
            by_rule[fired.rule] = [fired]
    errors = (
        tuple(EvalError(f.code, f.message, f.package, f.rule, f.location) for f in outputs.faults)
        if outputs.faults
        else ()
    )
    if "terminate" in by_rule:
        return _new_tuple(Combined, (Effect.TERMINATE, tuple(_reasons(Effect.TERMINATE, by_rule["terminate"])), (), errors))  # type: ignore[no-any-return]
    if "deny" in by_rule:
        return _new_tuple(Combined, (Effect.DENY, tuple(_reasons(Effect.DENY, by_rule["deny"])), (), errors))  # type: ignore[no-any-return]
    if errors:
        failed = tuple(
            Reason(Effect.DENY, e.package, e.rule, f"rule failed: {e.message}", e.location) for e in errors
        )
        return _new_tuple(Combined, (Effect.DENY, failed, (), errors))  # type: ignore[no-any-return]
    if "approve" in by_rule:
        return _new_tuple(Combined, (Effect.APPROVE, tuple(_reasons(Effect.APPROVE, by_rule["approve"])), (), errors))  # type: ignore[no-any-return]
    if "allow" in by_rule:
        allowed = [_reason(Effect.ALLOW, f.package, f.rule, "allowed", f.location) for f in by_rule["allow"]]
        if "mask" in by_rule:
            try:
                masks, mask_reasons = _masks(by_rule["mask"])
            except _MaskConflict as exc:
                first = by_rule["mask"][0]
                error = EvalError("conflict", str(exc), first.package, first.rule, first.location)
                reason = Reason(Effect.DENY, first.package, first.rule, f"rule failed: {exc}", first.location)
                return _new_tuple(Combined, (Effect.DENY, (reason,), (), (*errors, error)))  # type: ignore[no-any-return]
            if masks:
                return _new_tuple(Combined, (Effect.MASK, (*allowed, *mask_reasons), masks, errors))  # type: ignore[no-any-return]
        return _new_tuple(Combined, (Effect.ALLOW, tuple(allowed), (), errors))  # type: ignore[no-any-return]
    return _new_tuple(Combined, (Effect.DENY, (_NO_RULE,), (), errors))  # type: ignore[no-any-return]

