"""Masking result rows: the policy's masks placed on output positions by lineage, and
the strategies that rewrite one value while keeping its column's type."""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from subguard.sql import OutputLineage, ResultLineage

__all__ = [
    "MaskPlan",
    "Unplaceable",
    "mask_key",
    "plan_masks",
    "strategy",
    "tagged_columns",
    "tagged_in_output",
    "unjudged_column",
]

#: What a redacted text value reads as.
REDACTED = "****"
_EMAIL = re.compile(r"^[^@\s]+@([^@\s]+)$")
_PROCESS_KEY = secrets.token_bytes(32)

Mask = Callable[[Any], Any]


class Unplaceable(Exception):
    """A mask the gate cannot place on the result (no lineage for a position)."""


def mask_key(configured: bytes | str | None = None) -> bytes:
    """The HMAC key for `hash`: from configuration, else `SUBGUARD_MASK_KEY`, else a
    random key for this process (stable within it, not across processes)."""
    value = configured if configured is not None else os.environ.get("SUBGUARD_MASK_KEY")
    if value is None or value == "":
        return _PROCESS_KEY
    return value.encode() if isinstance(value, str) else bytes(value)


def _redact(value: Any) -> Any:
    return REDACTED if isinstance(value, str) else None


def _null(_value: Any) -> Any:
    return None


def _hasher(key: bytes) -> Mask:
    def mask(value: Any) -> Any:
        if not isinstance(value, str):
            return None
        digest = hmac.new(key, value.encode("utf-8", "surrogatepass"), hashlib.sha256)
        return "h:" + digest.hexdigest()[:24]

    return mask


def _partial(keep: int) -> Mask:
    def mask(value: Any) -> Any:
        if not isinstance(value, str):
            return None
        if keep <= 0 or len(value) <= keep:
            return REDACTED
        return REDACTED + value[-keep:]

    return mask


def _email(value: Any) -> Any:
    if not isinstance(value, str):
        return None
    match = _EMAIL.match(value)
    return f"{REDACTED}@{match.group(1)}" if match else REDACTED


def strategy(spec: str, key: bytes, *, direct: bool) -> Mask:
    """The function for a strategy name. A strategy that keeps part of a value applies
    only to a direct position; a computed one is masked whole (`substr(ssn, 1, 4)` under
    `partial:4` would otherwise give away other characters than the last four)."""
    name, _, arg = (spec or "redact").strip().lower().partition(":")
    if name == "redact" and not arg:
        return _redact
    if name == "null" and not arg:
        return _null
    if name == "hash" and not arg:
        return _hasher(key)
    if name == "email" and not arg:
        return _email if direct else _redact
    if name == "partial" and arg.isdigit():
        return _partial(int(arg)) if direct else _redact
    raise Unplaceable(f"unknown mask strategy `{spec}`")


_STRENGTH = {"null": 4, "redact": 3, "hash": 2, "email": 1, "partial": 1}


def _strength(spec: str) -> int:
    return _STRENGTH.get((spec or "redact").strip().lower().partition(":")[0], 5)


@attrs.frozen
class MaskPlan:
    """Which result positions to rewrite and how; `masks` is one function per position
    (None: leave it)."""

    masks: tuple[Mask | None, ...]
    #: Per position, the column name the result must carry there (lower case), or None
    #: where the name is the database's choice (a computed column).
    names: tuple[str | None, ...] = ()

    def matches(self, names: Sequence[str]) -> bool:
        """Whether a result with these column names is the one the masks were placed on."""
        if len(names) != len(self.masks):
            return False
        return all(
            want is None or want == _result_name(got) for want, got in zip(self.names, names)
        )

    @property
    def active(self) -> bool:
        return any(m is not None for m in self.masks)

    def apply(self, row: Sequence[Any]) -> Any:
        if len(row) != len(self.masks):
            raise Unplaceable("a result row does not have the analysed number of columns")
        values = [v if m is None else m(v) for v, m in zip(row, self.masks)]
        return type(row)(values) if type(row) is tuple else tuple(values)


_DUPLICATE = re.compile(r":\d+$")


def _result_name(name: Any) -> str:
    # SQLite names a repeated column of a subquery or CTE `name:1`, `name:2`, …
    return _DUPLICATE.sub("", str(name)).lower()


def _parse_mask(name: str) -> tuple[str | None, str]:
    parts = name.strip().lower().split(".")
    if len(parts) == 1:
        return None, parts[0]
    return parts[-2], parts[-1]


def plan_masks(
    masks: Sequence[str] | Mapping[str, str], lineage: ResultLineage, key: bytes
) -> MaskPlan | None:
    """Place the decision's masks on the result's positions. None: nothing to mask (no
    mask, or no rows). Raises `Unplaceable` when a mask cannot be placed with certainty."""
    wanted = dict(masks) if isinstance(masks, Mapping) else dict.fromkeys(masks, "")
    if not wanted:
        return None
    if not lineage.returns_rows:
        return None
    if lineage.columns is None:
        raise Unplaceable(lineage.problem or "the result's columns cannot be traced")
    parsed = [(_parse_mask(name), spec) for name, spec in wanted.items()]
    for (_table, column), spec in parsed:
        strategy(spec, key, direct=True)  # an unknown strategy refuses even if unused
        if not column:
            raise Unplaceable("a mask names no column")
    out: list[Mask | None] = []
    for position in lineage.columns:
        out.append(_position_mask(position, parsed, key))
    names = tuple(p.name.lower() if p.direct else None for p in lineage.columns)
    return MaskPlan(tuple(out), names)


def _position_mask(
    position: OutputLineage, parsed: list[tuple[tuple[str | None, str], str]], key: bytes
) -> Mask | None:
    if position.opaque:
        raise Unplaceable(f"result column `{position.name}` cannot be traced to its source")
    chosen: str | None = None
    for (table, column), spec in parsed:
        for src_table, src_column in position.sources:
            matches = src_column.lower() == column and (table is None or src_table.lower() == table)
            if matches and (chosen is None or _strength(spec) > _strength(chosen)):
                chosen = spec
    if chosen is None:
        return None
    return strategy(chosen, key, direct=position.direct and len(position.sources) == 1)


def tagged_columns(schema: Mapping[str, Any] | None) -> frozenset[tuple[str, str]]:
    """`(table, column)` (lower case) of every column with a tag in a schema mapping."""
    out: set[tuple[str, str]] = set()
    for table, columns in (schema or {}).items():
        if not isinstance(columns, Mapping):
            continue
        for column, spec in columns.items():
            if isinstance(spec, Mapping) and spec.get("tags"):
                out.add((str(table).rsplit(".", 1)[-1].lower(), str(column).lower()))
    return frozenset(out)


def tagged_in_output(
    lineage: ResultLineage, tagged: frozenset[tuple[str, str]]
) -> frozenset[tuple[str, str]]:
    """The tagged `(table, column)` pairs (lower case) a result's lineage carries."""
    if not tagged or lineage.columns is None:
        return frozenset()
    return frozenset(
        key
        for position in lineage.columns
        for table, column in position.sources
        if (key := (table.lower(), column.lower())) in tagged
    )


def unjudged_column(
    carried: frozenset[tuple[str, str]], columns_read: Sequence[Mapping[str, Any]]
) -> str | None:
    """A tagged column the result carries although the facts the policy decided on do not
    list it as output (the policy could not have masked it), as `table.column`; else None."""
    if not carried:
        return None
    seen = {
        (str(c.get("table") or "").lower(), str(c.get("column") or "").lower())
        for c in columns_read
        if c.get("in_output")
    }
    missed = sorted(carried - seen)
    return f"{missed[0][0]}.{missed[0][1]}" if missed else None
