"""Typed `data`: a policy directory may declare the shape of the `data` document its
rules read, in a `data.schema.json` file beside them, in the type language of the input
schema (`engine.schema`).

The file maps record names to fields and their types; the record named `Data` is the
root of `data`::

    {
      "Data": {"protected_tables": "set<string>", "limits": "Limits", "owners": "object<string>"},
      "Limits": {"max_rows": "number", "note": "string | null"}
    }

When a policy declares its data, rules reading `data.…` are type-checked like `input.…`
(a misspelt field is `unknown_field` at load), and the `data` document is validated at
load: a field of the wrong type, a field a declared record does not have, or a declared
field missing is a `data_type_error` naming the path (records are closed and complete, as
in the input schema; `T | null` lets a field be null, not absent). Data that does not fit
its schema would make rules silently stop firing; it is refused instead.

The root, `Data`, is open: a top-level field no schema declares stays dynamic and
unchecked, as all of `data` is for a policy without a schema file — unless its name is a
near miss of a declared field (`protected_tabels`), which is taken for a typo and refused. So a rule pack can type
its own settings (`data.unbounded_writes`) and still be loaded beside policies whose data
is not declared.

A field may declare a default after `=`, as JSON: `"max_rows": "number = 1000"`, or
`"limits": "Limits = {}"` (a record whose own fields have defaults). A default fills a
field the given data lacks, before the data is validated, so a rule pack can ship
settings that deployments override without having to give them all.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from subguard.errors import Location, PolicyError, PolicyErrors
from subguard.lang import Schema, Type, parse_type

__all__ = [
    "DATA_RECORD",
    "DATA_SCHEMA_FILE",
    "DataSchema",
    "load_data_schema",
    "type_errors",
    "validate_data",
    "with_defaults",
]

#: The schema file's name, in any directory of a policy.
DATA_SCHEMA_FILE = "data.schema.json"

#: The record that types the root of `data`.
DATA_RECORD = "Data"

#: Errors reported for one data document at most: enough to fix it, not a flood.
_MAX_ERRORS = 50


@attrs.frozen
class DataSchema:
    """Data records (name → field → type string) and the files and texts they came from."""

    records: Mapping[str, Mapping[str, str]]
    sources: tuple[tuple[str, str], ...]
    #: Record → field → the JSON value a missing field takes.
    defaults: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)


def _schema_error(message: str, path: str) -> PolicyError:
    return PolicyError("schema_error", message, Location(path, 0, 0))


def load_data_schema(
    files: Sequence[Path], input_records: Mapping[str, object]
) -> DataSchema | None:
    """The merged data schema of `files` (`None` when there are none). Raises
    `PolicyErrors` for a file that is not JSON of records of type strings, a record
    declared twice differently, a name an input record already has, or a type that
    does not parse."""
    if not files:
        return None
    records: dict[str, dict[str, str]] = {}
    origin: dict[str, str] = {}
    sources: list[tuple[str, str]] = []
    errors: list[PolicyError] = []
    for file in files:
        shown = str(file)
        try:
            text = file.read_bytes().decode("utf-8-sig")
            doc = json.loads(text)
        except OSError as exc:
            errors.append(
                PolicyError(
                    "io_error",
                    f"cannot read data schema: {exc.strerror or exc}",
                    Location(shown, 0, 0),
                )
            )
            continue
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            errors.append(_schema_error(f"data schema is not valid JSON: {exc}", shown))
            continue
        sources.append((shown, text))
        if not isinstance(doc, dict) or not all(
            isinstance(fields, dict) and all(isinstance(t, str) for t in fields.values())
            for fields in doc.values()
        ):
            errors.append(
                _schema_error("a data schema maps record names to {field: type string}", shown)
            )
            continue
        for name, fields in doc.items():
            if name in input_records:
                errors.append(
                    _schema_error(f"record `{name}` is already a record of the input schema", shown)
                )
            elif name in records and name != DATA_RECORD and records[name] != fields:
                errors.append(
                    _schema_error(
                        f"record `{name}` is also declared, differently, in `{origin[name]}`", shown
                    )
                )
            elif name == DATA_RECORD and name in records:
                for field, type_text in fields.items():
                    if records[name].get(field, type_text) != type_text:
                        errors.append(
                            _schema_error(
                                f"`data.{field}` is also declared, differently, in `{origin[name]}`",
                                shown,
                            )
                        )
                    records[name][field] = type_text
            else:
                records[name] = dict(fields)
                origin[name] = shown
    defaults: dict[str, dict[str, Any]] = {}
    for name, fields in records.items():
        for field, type_text in list(fields.items()):
            bare, eq, default = type_text.partition("=")
            if not eq:
                continue
            fields[field] = bare.strip()
            try:
                defaults.setdefault(name, {})[field] = json.loads(default)
            except (ValueError, RecursionError):
                errors.append(
                    _schema_error(
                        f"`{name}.{field}`: the default is not valid JSON",
                        origin.get(name, str(files[0])),
                    )
                )
    if not errors and DATA_RECORD not in records:
        errors.append(
            _schema_error(
                f"a data schema declares the record `{DATA_RECORD}`, the root of `data`",
                str(files[0]),
            )
        )
    if not errors:
        known = {**input_records, **records}
        for name, fields in records.items():
            for field, type_text in fields.items():
                try:
                    parse_type(type_text, known)
                except ValueError as exc:
                    errors.append(
                        _schema_error(f"`{name}.{field}`: {exc}", origin.get(name, str(files[0])))
                    )
    if errors:
        raise PolicyErrors(errors)
    return DataSchema(records, tuple(sources), defaults)


def with_defaults(data: Mapping[str, Any], schema: DataSchema) -> dict[str, Any]:
    """`data` with every field it lacks that the schema gives a default, at every level
    of records the data reaches (a copy; what the data gives is kept as given)."""

    def fill(value: Any, record: str, depth: int) -> Any:
        if not isinstance(value, Mapping) or depth > 32:
            return value
        out = dict(value)
        for field, default in schema.defaults.get(record, {}).items():
            if field not in out:
                out[field] = json.loads(json.dumps(default))  # a fresh copy per document
        fields = schema.records.get(record, {})
        for field, item in out.items():
            type_text = fields.get(field)
            if type_text is not None and type_text.strip() in schema.records:
                out[field] = fill(item, type_text.strip(), depth + 1)
        return out

    filled: dict[str, Any] = fill(data, DATA_RECORD, 0)
    return filled


def _near_miss(key: Any, fields: Mapping[str, Any]) -> bool:
    """A field name so close to a declared one that it is taken for a typo of it."""
    return bool(difflib.get_close_matches(str(key), list(fields), n=1, cutoff=0.6))


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, set | frozenset):
        return "set"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def validate_data(data: Mapping[str, Any], schema: Schema, root: Type) -> list[PolicyError]:
    """Every place where the JSON-shaped `data` does not fit `root` (at most a few
    dozen), as `data_type_error`s naming the path; the messages name types, not values."""
    messages = type_errors(data, schema, root, "data", complete=True, open_root=True)
    return [
        PolicyError("data_type_error", message, Location("<data>", 0, 0)) for message in messages
    ]


def type_errors(
    value: Any, schema: Schema, root: Type, where: str, *, complete: bool, open_root: bool = False
) -> list[str]:
    """Where `value` does not fit `root`: a wrong type, a field a record does not have
    (except at the root when `open_root`), and (when `complete`) a field a record has
    that `value` lacks. Messages start with
    the path in backticks and name types, never values."""
    errors: list[str] = []

    def fail(path: str, message: str) -> None:
        if len(errors) < _MAX_ERRORS:
            errors.append(f"`{path}`: {message}")

    def check(value: Any, t: Type, path: str) -> None:
        if value is None:
            if not (t.nullable or t.kind in ("any", "null")):
                fail(path, f"expected {t}, got null")
            return
        kind = t.kind
        if kind == "any":
            return
        if kind == "string" and not isinstance(value, str):
            fail(path, f"expected string, got {_describe(value)}")
        elif kind == "number" and (isinstance(value, bool) or not isinstance(value, int | float)):
            fail(path, f"expected number, got {_describe(value)}")
        elif kind == "boolean" and not isinstance(value, bool):
            fail(path, f"expected boolean, got {_describe(value)}")
        elif kind == "null":
            fail(path, f"expected null, got {_describe(value)}")
        elif kind in ("set", "array"):
            # a string is never a collection of names, nor an object a set of its keys
            allowed = (list, tuple, set, frozenset) if kind == "set" else (list, tuple)
            if not isinstance(value, allowed):
                fail(path, f"expected {t}, got {_describe(value)}")
                return
            for i, item in enumerate(value):
                check(item, t.elem or Type("any"), f"{path}[{i}]")
        elif kind == "object":
            if not isinstance(value, Mapping):
                fail(path, f"expected {t}, got {_describe(value)}")
                return
            for key, item in value.items():
                check(item, t.elem or Type("any"), f"{path}.{key}")
        elif kind == "record":
            if not isinstance(value, Mapping):
                fail(path, f"expected {t.record}, got {_describe(value)}")
                return
            fields = schema.fields(t)
            for key in value:
                if key not in fields and not (
                    open_root and path == where and not _near_miss(key, fields)
                ):
                    fail(f"{path}.{key}", f"is not a field of {t.record}")
            for field, field_type in fields.items():
                if field in value:
                    check(value[field], field_type, f"{path}.{field}")
                elif complete:
                    fail(
                        f"{path}.{field}",
                        f"is missing (declared {field_type}{' | null' if field_type.nullable else ''})",
                    )

    try:
        check(value, root, where)
    except RecursionError:
        fail(where, "nests too deeply to check")
    return errors
