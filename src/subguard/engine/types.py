"""The values a proxy hands to the engine and gets back: requests, subjects, decisions."""

from __future__ import annotations

import enum
import random
import uuid
from collections.abc import Mapping
from typing import Any, NamedTuple

import attrs

from subguard.sql import validate_schema

__all__ = [
    "CommandRequest",
    "Decision",
    "Effect",
    "EvalError",
    "HttpRequest",
    "Reason",
    "Request",
    "Resource",
    "SqlRequest",
    "Subject",
]


class Effect(enum.Enum):
    """What happens to a request, weakest first; the strongest non-empty one wins."""

    ALLOW = "allow"
    MASK = "mask"
    APPROVE = "approve"
    DENY = "deny"
    TERMINATE = "terminate"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def __str__(self) -> str:
        return self.value


_RANK = {e: i for i, e in enumerate(Effect)}


def _frozenset(value: Any) -> frozenset[str]:
    return frozenset(str(v) for v in (value or ()))


def _mapping(value: Any) -> Mapping[str, Any]:
    return dict(value or {})


_getrandbits = random.getrandbits
_new_uuid = object.__new__
# the slot descriptors of uuid.UUID, and the enum member looked up once: both are
# costly attribute lookups on a path taken once per decision
_set_int = uuid.UUID.int.__set__  # type: ignore[attr-defined, misc]
_set_is_safe = uuid.UUID.is_safe.__set__  # type: ignore[attr-defined, misc]
_UNKNOWN_SAFETY = uuid.SafeUUID.unknown
_V4_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_V4_SET = (0x4000 << 64) | (0x8000 << 48)


def new_decision_id() -> uuid.UUID:
    """A random (version 4) UUID, built without `uuid.UUID.__init__`'s validation: one is
    made per decision on the hot path. Decision ids name records; they are not secrets,
    so the non-cryptographic generator is enough."""
    value = _new_uuid(uuid.UUID)
    _set_int(value, (_getrandbits(128) & _V4_CLEAR) | _V4_SET)
    _set_is_safe(value, _UNKNOWN_SAFETY)
    return value


@attrs.frozen
class Subject:
    """Who sends the request: an id, groups, and the proxy's verified claims."""

    id: str
    groups: frozenset[str] = attrs.field(factory=frozenset, converter=_frozenset)
    claims: Mapping[str, Any] = attrs.field(factory=dict, converter=_mapping, eq=False)


@attrs.frozen
class Resource:
    """Where the request goes. `schema` (table → column → type or {type, tags}) feeds
    column resolution; it is not part of the input document."""

    name: str = ""
    kind: str = ""
    dialect: str | None = None
    env: str = ""
    tags: Mapping[str, Any] = attrs.field(factory=dict, converter=_mapping, eq=False)
    schema: Mapping[str, Any] | None = attrs.field(
        default=None, eq=False, repr=False, validator=lambda _, __, v: validate_schema(v)
    )


@attrs.frozen
class SqlRequest:
    """A SQL text as the agent sent it (one or several statements)."""

    text: str
    dialect: str | None = None

    kind = "sql"


@attrs.frozen
class CommandRequest:
    """A shell command line, as text (`argv` is derived by `subguard.command`)."""

    text: str

    kind = "command"


@attrs.frozen
class HttpRequest:
    """An HTTP request (Kubernetes API calls included)."""

    method: str
    path: str
    host: str = ""
    query: Mapping[str, Any] = attrs.field(factory=dict, converter=_mapping, eq=False)

    kind = "http"


Request = SqlRequest | CommandRequest | HttpRequest


class Reason(NamedTuple):
    """One rule that contributed to a decision, and what it said.

    A named tuple rather than an attrs class: decisions build several on the hot path.
    """

    effect: Effect
    package: str
    rule: str
    message: str
    location: str

    def as_dict(self) -> dict[str, str]:
        return {
            "effect": self.effect.value,
            "rule": self.rule,
            "package": self.package,
            "message": self.message,
            "location": self.location,
        }


class EvalError(NamedTuple):
    """A runtime error inside a rule; the decision it touched fails closed."""

    code: str
    message: str
    package: str = ""
    rule: str = ""
    location: str = ""

    def as_dict(self) -> dict[str, str]:
        return {
            "code": self.code,
            "message": self.message,
            "package": self.package,
            "rule": self.rule,
            "location": self.location,
        }


@attrs.frozen
class Decision:
    """The engine's answer for one request. `check` always returns one, never raises.

    `masks` is a tuple of column names, or a mapping column → strategy when a rule said
    how. `input` is the document the rules saw (request text redacted).
    """

    effect: Effect
    reasons: tuple[Reason, ...] = ()
    masks: tuple[str, ...] | Mapping[str, str] = ()
    errors: tuple[EvalError, ...] = ()
    id: uuid.UUID = attrs.field(factory=new_decision_id)
    approval_id: uuid.UUID | None = None
    input: Mapping[str, Any] = attrs.field(factory=dict, eq=False, repr=False)
    policy_hash: str = ""
    elapsed_ns: int = 0

    @property
    def allowed(self) -> bool:
        return self.effect in (Effect.ALLOW, Effect.MASK)

    def as_dict(self) -> dict[str, Any]:
        """The `subguard eval` JSON shape; other tools depend on it."""
        masks: Any = dict(self.masks) if isinstance(self.masks, Mapping) else list(self.masks)
        out: dict[str, Any] = {
            "id": str(self.id),
            "effect": self.effect.value,
            "reasons": [r.as_dict() for r in self.reasons],
            "masks": masks,
            "errors": [e.as_dict() for e in self.errors],
        }
        if self.approval_id is not None:
            out["approval_id"] = str(self.approval_id)
        return out


_new_object = object.__new__
(
    _set_effect, _set_reasons, _set_masks, _set_errors, _set_id, _set_approval_id,
    _set_input, _set_policy_hash, _set_elapsed_ns,
) = (
    Decision.__dict__[name].__set__
    for name in (
        "effect", "reasons", "masks", "errors", "id", "approval_id", "input", "policy_hash",
        "elapsed_ns",
    )
)


def build_decision(
    effect: Effect,
    reasons: tuple[Reason, ...],
    masks: tuple[str, ...] | Mapping[str, str],
    errors: tuple[EvalError, ...],
    input: Mapping[str, Any],
    policy_hash: str,
    elapsed_ns: int,
) -> Decision:
    """A new `Decision` (fresh id, no approval) built through its slots: the engine's
    hot path makes one per request, and attrs' frozen `__init__` costs half again as
    much. Equal to `Decision(effect, reasons, masks, errors, input=…, …)`."""
    decision: Decision = _new_object(Decision)
    _set_effect(decision, effect)
    _set_reasons(decision, reasons)
    _set_masks(decision, masks)
    _set_errors(decision, errors)
    _set_id(decision, new_decision_id())
    _set_approval_id(decision, None)
    _set_input(decision, input)
    _set_policy_hash(decision, policy_hash)
    _set_elapsed_ns(decision, elapsed_ns)
    return decision
