"""Decision semantics: which rules decide, the index that finds the definitions that can
fire for a request, what the fired definitions produced, and the decision combined
from it.

The language runs rules; this module knows what `terminate`, `deny`, `approve`,
`allow` and `mask` mean. It names them as the compiler's entrypoints (so their kinds
are checked at load), indexes their definitions by the statement kinds and tables they
require (`lang`'s `Definition.requires`), and hands the index to the compiled policy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
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

__all__ = [
    "DECISION_RULES",
    "ENTRYPOINTS",
    "Combined",
    "Decisions",
    "Fired",
    "Outputs",
    "RuleIndex",
    "combine",
]

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
        "`allow` is a boolean rule: its value must be `true` or `false`"
        if name == "allow"
        else None,
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

#: Other paths whose values the index reads from each input: a requirement on one of
#: them (`f in {…}` over a statement's functions, `"pii" in col.tags`) keeps its
#: definition from running, unconditional or indexed, when the input has none of the
#: values it names. Rules over them loop over statements or columns and the sets in
#: each, which costs more than reading the union of those sets once; a test of a set
#: the document holds (`"dba" in input.subject.groups`) costs no more than reading it,
#: so such paths are left to the rules.
FILTER_PATHS: Final = (
    ("input", "sql", "statements", EACH, "functions", EACH),
    ("input", "sql", "columns_read", EACH, "tags", EACH),
)

#: A definition's requirements on `FILTER_PATHS`: (position in the paths, values).
Filters = tuple[tuple[int, frozenset[str]], ...]


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


def filters(definition: Definition) -> Filters:
    """A definition's requirements on the paths of `FILTER_PATHS`, each a necessary
    condition it states at its top level (some value at the path is one of these),
    after literals that cannot fail with a rule error only: skipping the definition
    then hides no error it would have reported."""
    return tuple(
        (FILTER_PATHS.index(requirement.path), requirement.values)
        for requirement in definition.requires
        if requirement.path in FILTER_PATHS and requirement.after_plain
    )


_UNDEFINED: Final = (KeyError, TypeError, IndexError)
_COLLECTIONS: Final = (tuple, frozenset, list)


def values_at(document: Any, path: Sequence[str]) -> frozenset[Any] | None:
    """Every value at `path` (steps after `input`; `EACH`: every element) in `document`,
    read as generated code reads it: a field missing (or read from a value that is no
    object) is no value, and so is anything but a string (what requirements name).
    None when the answer is not known: an `EACH` over something that is not an array
    or a set (iterating it might fail: a rule error, which a definition that does not
    run would never report)."""
    level: list[Any] = [document]
    steps = path[1:]
    last = len(steps) - 1
    fields: list[str] = []
    for n, step in enumerate(steps):
        if step != EACH:
            fields.append(step)
            if n < last:
                continue
        reached: list[Any] = []
        for value in level:
            try:
                for field in fields:
                    value = value[field]
            except _UNDEFINED:
                continue
            reached.append(value)
        fields = []
        if step != EACH:
            level = reached
            break
        if n == last and len(reached) == 1 and type(reached[0]) is frozenset:
            return reached[0]  # one set, as the document holds it: most inputs
        level = []
        for value in reached:
            if type(value) not in _COLLECTIONS:
                return None
            level.extend(value)
    # requirements name strings, and a string equals only a string: other values
    # (unhashable ones too) are none of them
    return frozenset([value for value in level if isinstance(value, str)])


_EMPTY: Final[frozenset[Any]] = frozenset()

Reader = Callable[[Any], "frozenset[Any] | None"]


def reader(path: Sequence[str], relevant: frozenset[str]) -> Reader:
    """A function of a document: `values_at(document, path) & relevant`, read without
    walking the path step by step when it has the shape of `FILTER_PATHS` (a set in
    each element of an array). Only `relevant` values are kept, so that inputs
    differing in values no filter names share their answer in the index's memo."""
    steps = tuple(path[1:])
    if len(steps) == 5 and steps[2] == steps[4] == EACH and EACH not in (steps[:2] + steps[3:4]):
        a, b, c = steps[0], steps[1], steps[3]

        def read_union(document: Any) -> frozenset[Any] | None:
            try:
                elements = document[a][b]
            except _UNDEFINED:
                return _EMPTY
            if type(elements) not in _COLLECTIONS:
                return None
            union = _EMPTY
            for element in elements:
                try:
                    held = element[c]
                except _UNDEFINED:
                    continue
                if type(held) is frozenset:
                    if not held.isdisjoint(relevant):
                        union = union | (held & relevant)
                    continue
                some = _relevant(held, relevant)
                if some is None:
                    return None
                union = union | some
            return union

        return read_union

    def read_any(document: Any) -> frozenset[Any] | None:
        found = values_at(document, path)
        return None if found is None else found & relevant

    return read_any


def _relevant(found: Any, relevant: frozenset[str]) -> frozenset[Any] | None:
    """The `relevant` elements of a collection that is not a frozenset (None: not an
    array or a set)."""
    if type(found) not in _COLLECTIONS:
        return None
    return relevant.intersection([value for value in found if isinstance(value, str)])


class RuleIndex:
    """Which decision definitions can fire for an input, found by dictionary lookups: a
    definition whose requirements the input cannot meet is never run. That is what
    keeps 1,000 rules that each name a kind or a table close to the cost of 20.

    `filters` (per definition, as `guards`) are requirements on `FILTER_PATHS`: a
    definition with some is run only when the input has a value each names (or the
    index cannot tell: `values_at`)."""

    def __init__(self, guards: Sequence[Guard], filters: Sequence[Filters] = ()) -> None:
        self.count = len(guards)
        #: definition → its filters (only definitions that have some)
        self.filters = {i: f for i, f in enumerate(filters) if f}
        #: the positions in `FILTER_PATHS` some filter reads, in order
        self.paths = tuple(sorted({p for f in self.filters.values() for p, _v in f}))
        #: what reads each of them (the values some filter names, no others)
        self.readers = tuple(
            reader(
                FILTER_PATHS[p],
                frozenset().union(*(v for f in self.filters.values() for q, v in f if q == p)),
            )
            for p in self.paths
        )
        filtered: list[int] = []  # filters and no kind or table: candidates for any input
        always: list[int] = []
        by_kind: dict[str, list[int]] = {}
        by_table: dict[str, list[int]] = {}
        by_both: dict[tuple[str, str], list[int]] = {}
        for i, (kinds, tables) in enumerate(guards):
            if kinds is None and tables is None:
                (filtered if i in self.filters else always).append(i)
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
        self.filtered = tuple(filtered)
        self.indexed = bool(by_kind or by_table or by_both or filtered)
        #: whether some definition is indexed by table (else kinds alone decide)
        self.tabled = bool(by_table or by_both)
        self._memo: dict[Any, tuple[int, ...]] = {}

    @classmethod
    def of(cls, definitions: Iterable[Definition]) -> RuleIndex:
        listed = list(definitions)
        return cls([guard(d) for d in listed], [filters(d) for d in listed])

    def extra(self, input: Any) -> Sequence[int]:
        """The indexed definitions (not `always`) that can fire for this input.

        They depend only on the statements' kinds, the two table sets and the values
        of `FILTER_PATHS` some filter names, so the answer is kept per (kinds, tables
        read, tables written, those values): requests repeat their shapes, and one
        lookup replaces a lookup per kind and table (`_MEMO_SIZE`)."""
        if not self.indexed:
            return ()
        try:
            sql = input["sql"]
            statements = sql["statements"]
            kinds: Any = (
                (statements[0]["kind"],)
                if len(statements) == 1
                else frozenset([s["kind"] for s in statements])
            )
            key: Any = (kinds, sql["tables_read"], sql["tables_written"]) if self.tabled else kinds
        except (KeyError, TypeError, IndexError):
            if not self.filtered:
                return ()
            kinds = key = ()  # no statement kind or table: only filters can choose
        readers = self.readers
        if readers:
            first = readers[0]
            key = (
                (key, (first(input),))
                if len(readers) == 1
                else (key, (first(input), readers[1](input)))
                if len(readers) == 2
                else (key, tuple([read(input) for read in readers]))
            )
        memo = self._memo
        try:
            found = memo.get(key)
        except TypeError:  # an unhashable part (a document not in the value model)
            return self._lookup(kinds, key)
        if found is None:
            found = self._lookup(kinds, key)
            if len(memo) >= _MEMO_SIZE:
                memo.clear()
            memo[key] = found
        return found

    def _lookup(self, kinds: Any, key: Any) -> tuple[int, ...]:
        seen: tuple[frozenset[Any] | None, ...] = ()
        if self.paths:
            key, seen = key
        table_sets = (key[1], key[2]) if self.tabled and key else ()
        chosen: list[int] = list(self.filtered)
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
        if self.filters:
            chosen = [i for i in chosen if self._meets(i, seen)]
        if len(chosen) > 1:
            return tuple(sorted(set(chosen)))
        return tuple(chosen)

    def _meets(self, i: int, seen: tuple[frozenset[Any] | None, ...]) -> bool:
        """Whether the input has a value each of definition `i`'s filters names (a
        value the index could not read counts as met)."""
        for position, values in self.filters.get(i, ()):
            found = seen[self.paths.index(position)]
            if found is not None and values.isdisjoint(found):
                return False
        return True


#: Input shapes (statement kinds and table sets) whose indexed definitions a `RuleIndex`
#: keeps; past it, it starts again. A hit is one dictionary lookup (~0.2 µs) where the
#: lookups per kind and table cost ~1 µs on the guardrail policy (RESULTS.md, Policy
#: evaluation); 1,024 shapes of a few short strings each are a few hundred KB at most.
_MEMO_SIZE: Final = 1024


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
            d.package: d.location
            for d in compiled.defaults
            if d.rule == "allow" and d.value is True
        }
        self._open_defaults_items = tuple(self._open_defaults.items())
        #: the open defaults as (package, rule, location), as `decide` files what fired
        self._open_default_heads = tuple((p, "allow", loc) for p, loc in self._open_defaults_items)

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
        refused: dict[str, str] | None = (
            None  # package → location of an `allow` that produced false
        )
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

    def decide(self, input: Any, data: Any) -> Combined:
        """`combine(self.outputs(input, data))` in one pass over the definitions that
        produced values: each is filed under its rule as it comes (no `Fired`, no
        `Outputs`), and the decision is built once from the strongest rule that fired.
        The hot path of `Engine.evaluate`; tests hold it equal to the two-step path."""
        hits, faults = self._run(input, data)
        definitions = self._definitions
        by_rule: dict[str, list[Any]] = {}
        defaults = self._open_default_heads
        decided: set[str] | None = None  # packages whose `allow` produced a value
        refused: dict[str, str] | None = (
            None  # package → location of an `allow` that produced false
        )
        for i, out in hits:
            definition = definitions[i]
            rule = definition[1]
            if rule == "allow":
                if defaults:  # only an open default asks which packages decided
                    if decided is None:
                        decided = set()
                    decided.add(definition[0])
                if out[0] is not True and not any(v is True for v in out):
                    if refused is None:
                        refused = {}
                    refused.setdefault(definition[0], definition[2])
                    continue
            filed = by_rule.get(rule)
            if filed is None:
                by_rule[rule] = [(definition, out)]
            else:
                filed.append((definition, out))
        if refused and "allow" in by_rule:
            allowed = by_rule["allow"]
            conflicted = {d[0] for d, _out in allowed if d[0] in refused}
            if conflicted:
                kept = [(d, out) for d, out in allowed if d[0] not in conflicted]
                if kept:
                    by_rule["allow"] = kept
                else:
                    del by_rule["allow"]
                faults = [*faults, *(_conflict(p, refused[p]) for p in sorted(conflicted))]
        for default in defaults:
            if decided is None or default[0] not in decided:
                filed = by_rule.get("allow")
                if filed is None:
                    by_rule["allow"] = [(default, _TRUE)]
                else:
                    filed.append((default, _TRUE))
        return _combine(by_rule, faults)


def _conflict(package: str, location: str) -> Fault:
    # OPA: "complete rules must not produce multiple outputs"; the message is the one
    # evaluating the rule itself gives (`runtime.single`)
    return Fault(
        "conflict", f"rule `{package}.allow` produced different values", package, "allow", location
    )


# ── the decision ───────────────────────────────────────────────────────────────────


class Combined(NamedTuple):
    """The decision combined from what the rules produced (before it is timed and
    recorded): its effect, the reasons, the masks and the rule errors."""

    effect: Effect
    reasons: tuple[Reason, ...]
    masks: tuple[str, ...] | Mapping[str, str]
    errors: tuple[EvalError, ...]


_TRUE: Final = (True,)


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

# The effects as module constants: in Python 3.11 `Effect.DENY` goes through the enum
# metaclass's `__getattr__` hook, a slow attribute lookup on the hot path (`_combine`).
_TERMINATE: Final = Effect.TERMINATE
_DENY: Final = Effect.DENY
_APPROVE: Final = Effect.APPROVE
_ALLOW: Final = Effect.ALLOW
_MASK: Final = Effect.MASK

#: The effect each decision rule's reasons carry.
_EFFECT: Final = {
    "terminate": Effect.TERMINATE,
    "deny": Effect.DENY,
    "approve": Effect.APPROVE,
    "allow": Effect.ALLOW,
    "mask": Effect.MASK,
}


@bounded_cache(
    4096,
    justified_by="RESULTS.md, Policy evaluation, 'Per-decision latency, 20 rules', subguard row: "
    "rules say the same things again and again; a hit costs ~130 ns, building the Reason ~280 ns",
)
def _reason(rule: str, package: str, message: str, location: str) -> Reason:
    """The reason (shared: the same rule says the same thing for many requests). Keyed
    by strings only: an `Effect` in the key would hash through `Enum.__hash__`, a
    Python-level call."""
    return Reason(_EFFECT[rule], package, rule, message, location)


# `filed`: what one decision rule produced, as (head, values) pairs in definition order;
# a head is (package, rule, location, …) — a `Definition` or a `Fired`.


def _reasons(filed: list[Any]) -> tuple[Reason, ...]:
    if len(filed) == 1:
        head, values = filed[0]
        if len(values) == 1:  # one definition said one thing: most decisions
            v = values[0]
            return (_reason(head[1], head[0], v if type(v) is str else _message(v), head[2]),)
    return tuple(
        [
            _reason(head[1], head[0], v if type(v) is str else _message(v), head[2])
            for head, values in filed
            for v in (values if len(values) == 1 else sorted(values, key=_message))
        ]
    )


def _masks(filed: list[Any]) -> tuple[Any, list[Reason]]:
    """Mask rules' values: column names (a set rule) or column → strategy (an object
    rule or object values). Returns the masks and one reason per masked column."""
    names: dict[str, str] = {}
    as_object = False
    reasons: list[Reason] = []
    for head, values in filed:
        package, rule, location = head[0], head[1], head[2]
        for value in values:
            if isinstance(value, tuple) and len(value) == 2:
                as_object = True
                column, strategy = _mask_name(value[0]), _message(value[1])
                if names.get(column, strategy) != strategy:
                    raise _MaskConflict(f"column `{column}` has two mask strategies")
                names[column] = strategy
                reasons.append(_reason(rule, package, f"mask {column}", location))
            else:
                name = _mask_name(value)
                names.setdefault(name, "")
                reasons.append(_reason(rule, package, f"mask {name}", location))
    if as_object:
        return dict(sorted(names.items())), reasons
    return tuple(sorted(names)), reasons


def combine(outputs: Outputs) -> Combined:
    """The decision from what the rules produced: the strongest non-empty effect wins,
    a rule error is at least `deny`, nothing decided is `deny` (fail closed)."""
    by_rule: dict[str, list[Any]] = {}
    for fired in outputs.fired:
        if fired.rule in by_rule:
            by_rule[fired.rule].append((fired, fired.values))
        else:
            by_rule[fired.rule] = [(fired, fired.values)]
    return _combine(by_rule, outputs.faults)


def _combine(by_rule: dict[str, list[Any]], faults: Sequence[Fault]) -> Combined:
    """`combine` over what fired, filed by rule (see `_reasons`)."""
    new = _new_tuple
    errors = (
        tuple([EvalError(f.code, f.message, f.package, f.rule, f.location) for f in faults])
        if faults
        else ()
    )
    filed = by_rule.get("terminate")
    if filed is not None:
        return new(Combined, (_TERMINATE, _reasons(filed), (), errors))  # type: ignore[no-any-return]
    filed = by_rule.get("deny")
    if filed is not None:
        return new(Combined, (_DENY, _reasons(filed), (), errors))  # type: ignore[no-any-return]
    if errors:
        failed = tuple(
            Reason(_DENY, e.package, e.rule, f"rule failed: {e.message}", e.location)
            for e in errors
        )
        return new(Combined, (_DENY, failed, (), errors))  # type: ignore[no-any-return]
    filed = by_rule.get("approve")
    if filed is not None:
        return new(Combined, (_APPROVE, _reasons(filed), (), errors))  # type: ignore[no-any-return]
    filed = by_rule.get("allow")
    if filed is not None:
        allowed = (
            [_reason("allow", filed[0][0][0], "allowed", filed[0][0][2])]
            if len(filed) == 1
            else [_reason("allow", head[0], "allowed", head[2]) for head, _values in filed]
        )
        masking = by_rule.get("mask")
        if masking is not None:
            try:
                masks, mask_reasons = _masks(masking)
            except _MaskConflict as exc:
                first = masking[0][0]
                error = EvalError("conflict", str(exc), first[0], first[1], first[2])
                reason = Reason(_DENY, first[0], first[1], f"rule failed: {exc}", first[2])
                return new(Combined, (_DENY, (reason,), (), (*errors, error)))  # type: ignore[no-any-return]
            if masks:
                return new(Combined, (_MASK, (*allowed, *mask_reasons), masks, errors))  # type: ignore[no-any-return]
        return new(Combined, (_ALLOW, tuple(allowed), (), errors))  # type: ignore[no-any-return]
    return new(Combined, (_DENY, (_NO_RULE,), (), errors))  # type: ignore[no-any-return]
