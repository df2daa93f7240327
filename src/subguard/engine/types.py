"""The values a proxy hands to the engine and gets back: requests, subjects, decisions."""

from __future__ import annotations

import difflib
import enum
import random
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

import attrs

from subguard.errors import ConfigError
from subguard.sql import validate_schema

__all__ = [
    "CommandRequest",
    "Decision",
    "Effect",
    "EvalError",
    "FieldError",
    "HttpRequest",
    "Reason",
    "Request",
    "Resource",
    "SqlRequest",
    "Subject",
    "ToolRequest",
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


class FieldError(ConfigError, TypeError):
    """A request, subject or resource field of the wrong type or name.

    `code` is `type_error` or `unknown_field`; `field` is the path in the input document
    (`subject.groups`, `resource.tags`, `http.query`). Messages name types, never the
    value: a request's literals must not reach logs or decisions.
    """

    def __init__(self, code: str, field: str, message: str) -> None:
        super().__init__(f"`{field}`: {message}")
        self.code = code
        self.field = field
        self.message = f"`{field}`: {message}"


def _kind(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _string(_instance: Any, attribute: Any, value: Any) -> None:
    """attrs validator: a string (the field's document path is in its metadata)."""
    if not isinstance(value, str):
        raise FieldError(
            "type_error", attribute.metadata["path"], f"must be a string, not {_kind(value)}"
        )


def _optional_string(instance: Any, attribute: Any, value: Any) -> None:
    if value is not None:
        _string(instance, attribute, value)


def _optional_count(_instance: Any, _attribute: Any, value: Any) -> None:
    """attrs validator: a non-negative integer (not a boolean) or None."""
    if value is not None and (type(value) is not int or value < 0):
        raise FieldError(
            "type_error",
            "estimated_rows",
            f"must be a non-negative integer or null, not {_kind(value)}",
        )


def to_string_set(field: str, value: Any) -> frozenset[str]:
    """`value` as a set of strings: a list, tuple or set of them. A string is never a
    set of names (its characters would become groups), so it is a `FieldError`."""
    if type(value) is frozenset and all(type(v) is str for v in value):
        return value
    if isinstance(value, str | bytes | bytearray | Mapping) or not isinstance(value, Iterable):
        raise FieldError(
            "type_error", field, f"must be a list or set of strings, not {_kind(value)}"
        )
    items = tuple(value)
    for item in items:
        if not isinstance(item, str):
            raise FieldError("type_error", field, f"must hold strings only, not {_kind(item)}")
    return frozenset(items)


def to_mapping(field: str, value: Any) -> dict[str, Any]:
    """`value` as an object with string keys; anything else is a `FieldError` (a string
    or a list is not an object, whatever `dict()` would make of it)."""
    if not isinstance(value, Mapping):
        raise FieldError("type_error", field, f"must be an object, not {_kind(value)}")
    for key in value:
        if not isinstance(key, str):
            raise FieldError("type_error", field, f"keys must be strings, not {_kind(key)}")
    return dict(value)


# named converters: the attrs plugin of mypy types `__init__` from them
def _subject_groups(value: Any) -> frozenset[str]:
    return to_string_set("subject.groups", value)


def _subject_claims(value: Any) -> Mapping[str, Any]:
    return to_mapping("subject.claims", value)


def _resource_tags(value: Any) -> Mapping[str, Any]:
    return to_mapping("resource.tags", value)


def _resource_schema(value: Any) -> Mapping[str, Any] | None:
    if value is None:
        return None
    to_mapping("resource.schema", value)  # the type check; the caller's object is kept,
    schema: Mapping[str, Any] = value  # since analysis caches are keyed by its identity
    try:
        validate_schema(schema)  # bad tags are an error, never silently dropped
    except FieldError:
        raise
    except ConfigError as exc:
        raise FieldError(
            "type_error", "resource.schema", str(exc).removeprefix("schema: ")
        ) from exc
    return schema


def _http_query(value: Any) -> Mapping[str, Any]:
    return to_mapping("http.query", value)


def _fields_of(doc: Any, field: str, allowed: tuple[str, ...]) -> Mapping[str, Any]:
    """`doc` as a mapping with no field outside `allowed`, else a `FieldError`."""
    if not isinstance(doc, Mapping):
        raise FieldError("type_error", field, f"must be an object, not {_kind(doc)}")
    for key in doc:
        if key not in allowed:
            name = key if isinstance(key, str) else _kind(key)
            close = difflib.get_close_matches(name, allowed, n=1) if isinstance(key, str) else []
            hint = f" (did you mean `{close[0]}`?)" if close else ""
            raise FieldError("unknown_field", f"{field}.{name}", f"is not a field of {field}{hint}")
    return doc


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
    """Who sends the request: an id, groups, and the proxy's verified claims.

    Strict: a field of the wrong type is a `FieldError`, never coerced (a string is
    not a set of groups).
    """

    id: str = attrs.field(validator=_string, metadata={"path": "subject.id"})
    groups: frozenset[str] = attrs.field(factory=frozenset, converter=_subject_groups)
    claims: Mapping[str, Any] = attrs.field(factory=dict, converter=_subject_claims, eq=False)

    FIELDS = ("id", "groups", "claims")

    @classmethod
    def from_dict(cls, doc: Any, *, field: str = "subject") -> Subject:
        """A subject from a JSON-shaped document: `{"id", "groups", "claims"}`, each
        optional; unknown fields and wrong types are a `FieldError`."""
        doc = _fields_of(doc, field, cls.FIELDS)
        return cls(doc.get("id", ""), doc.get("groups", frozenset()), doc.get("claims", {}))


@attrs.frozen
class Resource:
    """Where the request goes. `schema` (table → column → type or {type, tags}) feeds
    column resolution; it is not part of the input document."""

    name: str = attrs.field(default="", validator=_string, metadata={"path": "resource.name"})
    kind: str = attrs.field(default="", validator=_string, metadata={"path": "resource.kind"})
    dialect: str | None = attrs.field(
        default=None, validator=_optional_string, metadata={"path": "resource.dialect"}
    )
    env: str = attrs.field(default="", validator=_string, metadata={"path": "resource.env"})
    tags: Mapping[str, Any] = attrs.field(factory=dict, converter=_resource_tags, eq=False)
    schema: Mapping[str, Any] | None = attrs.field(
        default=None, converter=_resource_schema, eq=False, repr=False
    )

    FIELDS = ("name", "kind", "dialect", "env", "tags", "schema")

    @classmethod
    def from_dict(cls, doc: Any, *, field: str = "resource") -> Resource:
        """A resource from a JSON-shaped document (every field optional); unknown fields
        and wrong types are a `FieldError`."""
        doc = _fields_of(doc, field, cls.FIELDS)
        return cls(
            name=doc.get("name", ""),
            kind=doc.get("kind", ""),
            dialect=doc.get("dialect"),
            env=doc.get("env", ""),
            tags=doc.get("tags", {}),
            schema=doc.get("schema"),
        )


@attrs.frozen
class SqlRequest:
    """A SQL text as the agent sent it (one or several statements)."""

    text: str = attrs.field(validator=_string, metadata={"path": "sql"})
    dialect: str | None = attrs.field(
        default=None, validator=_optional_string, metadata={"path": "dialect"}
    )
    #: A live fact from the adapter holding the connection: the rows the database expects
    #: the write to touch (`input.sql.statements[0].estimated_rows`). It reaches the input
    #: only when the text is one UPDATE, DELETE or MERGE; `None` when not estimated.
    estimated_rows: int | None = attrs.field(default=None, validator=_optional_count, kw_only=True)

    kind = "sql"


@attrs.frozen
class CommandRequest:
    """A shell command line, as text (`argv` is derived by `subguard.command`)."""

    text: str = attrs.field(validator=_string, metadata={"path": "command"})

    kind = "command"


@attrs.frozen
class HttpRequest:
    """An HTTP request (Kubernetes API calls included)."""

    method: str = attrs.field(validator=_string, metadata={"path": "http.method"})
    path: str = attrs.field(validator=_string, metadata={"path": "http.path"})
    host: str = attrs.field(default="", validator=_string, metadata={"path": "http.host"})
    query: Mapping[str, Any] = attrs.field(factory=dict, converter=_http_query, eq=False)

    kind = "http"

    FIELDS = ("method", "path", "host", "query")

    @classmethod
    def from_dict(cls, doc: Any, *, field: str = "http") -> HttpRequest:
        """An HTTP request from `{"method", "path", "host", "query"}` (method `GET` and
        path `/` by default); unknown fields and wrong types are a `FieldError`."""
        doc = _fields_of(doc, field, cls.FIELDS)
        return cls(
            doc.get("method", "GET"),
            doc.get("path", "/"),
            doc.get("host", ""),
            doc.get("query", {}),
        )


def _tool_arguments(value: Any) -> Mapping[str, Any]:
    return to_mapping("tool.arguments", value)


@attrs.frozen
class ToolRequest:
    """A call of an MCP tool (kind `tool`), or a tool as `tools/list` would show it (kind
    `tool_list`, `listing=True`). `sql` or `command` is the text of the argument the
    proxy analyses as SQL or as a shell command (`input.sql`, `input.command`)."""

    server: str = attrs.field(validator=_string, metadata={"path": "tool.server"})
    name: str = attrs.field(validator=_string, metadata={"path": "tool.name"})
    arguments: Mapping[str, Any] = attrs.field(factory=dict, converter=_tool_arguments, eq=False)
    sql: str | None = attrs.field(
        default=None, validator=_optional_string, metadata={"path": "sql"}
    )
    command: str | None = attrs.field(
        default=None, validator=_optional_string, metadata={"path": "command"}
    )
    dialect: str | None = attrs.field(
        default=None, validator=_optional_string, metadata={"path": "dialect"}
    )
    listing: bool = False

    @property
    def kind(self) -> str:
        return "tool_list" if self.listing else "tool"


Request = SqlRequest | CommandRequest | HttpRequest | ToolRequest


class BatchItem(NamedTuple):
    """One request of `Engine.check_many`: what `check` takes, by name. A plain 4-tuple
    in this order is accepted too."""

    request: Request | str
    subject: Subject | Mapping[str, Any] | str | None = None
    resource: Resource | Mapping[str, Any] | str | None = None
    session: str | None = None


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
    _set_effect,
    _set_reasons,
    _set_masks,
    _set_errors,
    _set_id,
    _set_approval_id,
    _set_input,
    _set_policy_hash,
    _set_elapsed_ns,
) = (
    Decision.__dict__[name].__set__
    for name in (
        "effect",
        "reasons",
        "masks",
        "errors",
        "id",
        "approval_id",
        "input",
        "policy_hash",
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
