"""One decision per input document, for each engine the benchmark compares.

Every decider takes subguard's input document (frozensets, tuples, dicts) and returns
`(effect, sorted reasons, sorted masks)`, like `floor.decide`; the cost of converting the
document into what the engine consumes is part of the decision.

* `floor.decide` — the hand-written floor.
* `RegoDecider` — regopy: policy.rego compiled once with `Interpreter.build`, then per
  decision `set_input` + `query_bundle_entrypoint` on the `decision` entrypoint.
* `CedarDecider` — cedarpy: policy.cedar parsed once into a `PolicySet`, then per
  decision one `is_authorized` call with entities and context built from the document.
  Cedar reports which rules fired, not messages or columns: reasons and masks are `()`.
* `subguard_decide` / `SubguardDecider` — subguard's engine on policy.guard.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from .floor import Decision
from .inputs import to_json

__all__ = [
    "HERE",
    "CedarDecider",
    "RegoDecider",
    "SubguardDecider",
    "cedar_request",
    "subguard_decide",
]

HERE = Path(__file__).resolve().parent
GUARD_POLICY = HERE / "policy.guard"
REGO_POLICY = HERE / "policy.rego"
CEDAR_POLICY = HERE / "policy.cedar"
REGO_ENTRYPOINT = "guard/bench/decision"


def _combine(terminate: bool, deny: bool, approve: bool, allow: bool, mask: bool) -> str:
    if terminate:
        return "terminate"
    if deny:
        return "deny"
    if approve:
        return "approve"
    if allow:
        return "mask" if mask else "allow"
    return "deny"


# ── regopy ───────────────────────────────────────────────────────────────────────────


class RegoDecider:
    """policy.rego as a compiled regopy bundle; one entrypoint query per decision."""

    def __init__(self, path: Path = REGO_POLICY, entrypoint: str = REGO_ENTRYPOINT) -> None:
        import regopy

        self._input = regopy.Input
        self.entrypoint = entrypoint
        builder = regopy.Interpreter()
        builder.add_module(path.name, path.read_text())
        self.bundle = builder.build(None, [entrypoint])
        self.runtime = regopy.Interpreter()

    def __call__(self, doc: Mapping[str, Any]) -> Decision:
        rt = self.runtime
        rt.set_input(self._input(to_json(doc)))
        out = rt.query_bundle_entrypoint(self.bundle, self.entrypoint)
        if not out.ok() or not out.results:
            raise RuntimeError(f"regopy: {out}")
        d = out.results[0].expressions[0]
        return d["effect"], tuple(sorted(d["reasons"])), tuple(sorted(d["masks"]))


# ── cedarpy ──────────────────────────────────────────────────────────────────────────

_FLAG_PAIRS = (("has_where", "where", "nowhere"), ("has_limit", "limit", "nolimit"))
_FLAGS = ("copy_program", "into_outfile", "nested")


def cedar_request(doc: Mapping[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The Cedar request and entities for one document (see policy.cedar's header)."""
    subject = doc["subject"]
    resource = doc["resource"]
    session = doc["session"]
    sql = doc["sql"]
    kinds: set[str] = set()
    flags: set[str] = set()
    atoms: set[str] = set()
    for s in sql["statements"]:
        k = s["kind"]
        kinds.add(k)
        fs = [on if s[field] else off for field, on, off in _FLAG_PAIRS]
        fs.extend(f for f in _FLAGS if s[f])
        flags.update(fs)
        for f in fs:
            prefix = f"{k}:{f}"
            atoms.add(prefix)
            atoms.update(f"{prefix}:read:{t}" for t in s["tables_read"])
            atoms.update(f"{prefix}:write:{t}" for t in s["tables_written"])
    column_tags: set[str] = set()
    output_tags: set[str] = set()
    for c in sql["columns_read"]:
        column_tags.update(c["tags"])
        if c["in_output"]:
            output_tags.update(c["tags"])
    principal = {"type": "User", "id": subject["id"]}
    db = {"type": "Database", "id": resource["name"]}
    entities = [
        {
            "uid": principal,
            "attrs": {},
            "parents": [{"type": "Group", "id": g} for g in subject["groups"]],
        },
        {"uid": db, "attrs": {"env": resource["env"]}, "parents": []},
    ]
    request = {
        "principal": principal,
        "action": {"type": "Action", "id": "evaluate"},
        "resource": db,
        "context": {
            "kinds": list(kinds),
            "flags": list(flags),
            "atoms": list(atoms),
            "functions": list(sql["functions"]),
            "tables_read": list(sql["tables_read"]),
            "tables_written": list(sql["tables_written"]),
            "column_tags": list(column_tags),
            "output_column_tags": list(output_tags),
            "session_terminated": session["terminated"],
            "approvals_pending": session["approvals_pending"],
        },
    }
    return request, entities


class CedarDecider:
    """policy.cedar parsed once; one `is_authorized` call per decision."""

    def __init__(self, path: Path = CEDAR_POLICY) -> None:
        import cedarpy

        self._is_authorized = cedarpy.is_authorized
        self.policies = cedarpy.PolicySet.from_str(path.read_text())

    def fired(self, doc: Mapping[str, Any]) -> set[str]:
        """The @id of every rule that fired."""
        request, entities = cedar_request(doc)
        result = self._is_authorized(request, self.policies, entities)
        if result.diagnostics.errors:
            raise RuntimeError(f"cedar: {result.diagnostics.errors}")
        return set(result.diagnostics.id_annotations_by_reason.values())

    def __call__(self, doc: Mapping[str, Any]) -> Decision:
        letters = {rule[0] for rule in self.fired(doc)}
        effect = _combine("T" in letters, "D" in letters, "A" in letters, "L" in letters,
                          "M" in letters)
        return effect, (), ()


# ── subguard ─────────────────────────────────────────────────────────────────────────


class SubguardDecider:
    """subguard's engine on a .guard policy (policy.guard unless told otherwise)."""

    def __init__(self, paths: Sequence[Path | str] = (GUARD_POLICY,)) -> None:
        import subguard

        self.policy = subguard.load_policy([str(p) for p in paths])
        self.engine = subguard.Engine(self.policy)
        self.evaluate: Callable[[Mapping[str, Any]], Any] = self.engine.evaluate

    def __call__(self, doc: Mapping[str, Any]) -> Decision:
        return decision_tuple(self.evaluate(doc))


def decision_tuple(decision: Any) -> Decision:
    """A subguard Decision as `(effect, sorted reasons, sorted masks)`.

    Reasons are the messages of the rules named after the winning effect (terminate,
    deny, approve); masks count only when the effect is mask — as the floor reports them.
    """
    effect = decision.effect.value
    reasons: tuple[str, ...] = ()
    masks: tuple[str, ...] = ()
    if effect in ("terminate", "deny", "approve"):
        reasons = tuple(sorted({r.message for r in decision.reasons if r.rule == effect}))
    elif effect == "mask":
        masks = tuple(sorted(decision.masks))
    return effect, reasons, masks


def subguard_decide(inputs: Sequence[Mapping[str, Any]]) -> list[Decision]:
    """subguard's decisions on `inputs` with policy.guard:

        policy = subguard.load_policy(["benchmarks/guardrail/policy.guard"])
        engine = subguard.Engine(policy)
        decision = engine.evaluate(input_doc)
    """
    decide = SubguardDecider()
    return [decide(doc) for doc in inputs]
