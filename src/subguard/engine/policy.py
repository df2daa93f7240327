"""Loading a policy: `.guard` files and data, parsed, checked and compiled once."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final

import attrs

from subguard.engine.dataschema import (
    DATA_RECORD,
    DataSchema,
    load_data_schema,
    validate_data,
    with_defaults,
)
from subguard.engine.decision import ENTRYPOINTS, Decisions
from subguard.engine.policycache import parse_cached
from subguard.engine.schema import INPUT_TYPE, RECORDS
from subguard.engine.sources import find_policy_files, read_policy_source, scan_policy_paths
from subguard.errors import Location, PolicyError, PolicyErrors
from subguard.lang import (
    EACH,
    Builtin,
    CompiledPolicy,
    Module,
    Schema,
    compile_policy,
    conform,
    from_json,
    parse_module,
)

__all__ = [
    "DEFAULT_MAX_POLICY_BYTES",
    "DEFAULT_MAX_RULES",
    "INPUT_SCHEMA",
    "Policy",
    "find_policy_files",
    "load_policy",
    "policy_from_sources",
]

#: The most `.guard` source (UTF-8 bytes, every file together) a policy may have by
#: default (`SUBGUARD_MAX_POLICY_BYTES`); the bundled packs are under a tenth of it.
DEFAULT_MAX_POLICY_BYTES: Final = 1024 * 1024
#: The most rule definitions (every package together) by default (`SUBGUARD_MAX_RULES`).
DEFAULT_MAX_RULES: Final = 5000

# A line that starts a rule definition, as idiomatic policy text is laid out (heads at
# column 0): counted before parsing, so that a file of a hundred thousand one-line rules
# fails at once instead of after minutes of parsing. The exact count follows the parse.
_RULE_HEAD: Final = re.compile(
    r"^(?:default[ \t]+)?(?!package\b|import\b|default\b)[A-Za-z_][A-Za-z0-9_]*"
    r"(?:[ \t]*(?::=|=|\(|\[|\{)|[ \t]+(?:if|contains)\b|[ \t]*$)",
    re.MULTILINE,
)


def _limit(value: int | None, variable: str, default: int) -> int:
    """A limit given by the caller, else by the environment variable, else the default.
    A malformed variable is a load error (every command that loads a policy reports it)."""
    if value is not None:
        if type(value) is not int or value <= 0:
            raise ValueError("policy limits must be positive integers")
        return value
    raw = os.environ.get(variable)
    if raw is None or not raw.strip():
        return default
    try:
        parsed = int(raw)
    except ValueError:
        parsed = 0
    if parsed <= 0:
        raise PolicyErrors(
            [
                PolicyError(
                    "bad_limit",
                    f"`{variable}` must be a positive integer",
                    Location("<environment>", 0, 0),
                )
            ]
        )
    return parsed


def _check_size(sources: Sequence[tuple[str, str]], max_bytes: int) -> None:
    sizes = [len(text.encode("utf-8", "surrogatepass")) for _path, text in sources]
    total = sum(sizes)
    if total <= max_bytes:
        return
    running = 0
    for (path, _text), size in zip(sources, sizes):
        running += size
        if running > max_bytes:  # the file that crosses the limit
            raise PolicyErrors(
                [
                    PolicyError(
                        "policy_too_large",
                        f"policy sources are {total:,} bytes; the limit is {max_bytes:,}",
                        Location(path, 1, 1),
                        hint="raise the limit with `max_policy_bytes=` or SUBGUARD_MAX_POLICY_BYTES",
                    )
                ]
            )


def _too_many_rules(path: str, line: int, max_rules: int) -> PolicyErrors:
    return PolicyErrors(
        [
            PolicyError(
                "too_many_rules",
                f"the policy defines more than {max_rules} rules",
                Location(path, line, 1),
                hint="raise the limit with `max_rules=` or SUBGUARD_MAX_RULES",
            )
        ]
    )


def _check_rule_heads(sources: Sequence[tuple[str, str]], max_rules: int) -> None:
    seen = 0
    for path, text in sources:
        for match in _RULE_HEAD.finditer(text):
            seen += 1
            if seen > max_rules:
                raise _too_many_rules(path, text.count("\n", 0, match.start()) + 1, max_rules)


#: The input document's schema, as the type checker sees it.
INPUT_SCHEMA = Schema.from_strings(RECORDS, INPUT_TYPE)

PathLike = str | os.PathLike[str]


@attrs.frozen
class Policy:
    """Compiled rules plus the `data` document they read. Load once, decide many."""

    modules: tuple[Module, ...] = attrs.field(repr=False)
    compiled: CompiledPolicy = attrs.field(repr=False)
    #: The decision rules, indexed: `decisions.outputs(input, data)` runs them.
    decisions: Decisions = attrs.field(repr=False)
    data: Mapping[str, Any] = attrs.field(repr=False)
    #: sha256 over every source's path and text: the release a decision cites.
    hash: str
    files: tuple[str, ...]

    @property
    def packages(self) -> tuple[str, ...]:
        return self.compiled.packages

    def reads(self, path: str) -> bool:
        """Whether a loaded rule may read `path` of the input document, written as in
        the docs (`input.sql.statements[i].estimated_rows`): adapters compute costly
        live facts only when it does."""
        steps = [
            EACH if step in ("[i]", "[*]", "[_]") else step
            for step in path.replace("[", ".[").split(".")
            if step
        ]
        return self.compiled.reads(steps)


def load_policy(
    paths: PathLike | Sequence[PathLike],
    *,
    data: Mapping[str, Any] | None = None,
    builtins: Mapping[str, Builtin] | None = None,
    tests: bool = False,
    parse_cache: bool = False,
    max_policy_bytes: int | None = None,
    max_rules: int | None = None,
    texts: Mapping[str, str] | None = None,
) -> Policy:
    """Load, check and compile the policy in `paths` (files or directories; `*_test.guard`
    files in directories only with `tests`). A `data.schema.json` beside the rules types
    `data` (see `engine.dataschema`): rules are checked against it and `data` validated.

    `texts` maps a policy file's path to the text that stands for its contents, such as
    an editor's unsaved buffer: a file found under `paths` is read from it instead of the
    disk, and a file named in `paths` that exists only there is loaded too.

    Raises `PolicyErrors` with every error found in every file. With `parse_cache`,
    parsed sources are kept on disk for the next load (see `engine.policycache`). A policy larger than
    `max_policy_bytes` or with more than `max_rules` definitions is refused
    (`policy_too_large`, `too_many_rules`; defaults `DEFAULT_MAX_POLICY_BYTES`,
    `DEFAULT_MAX_RULES`, or the `SUBGUARD_MAX_POLICY_BYTES`/`SUBGUARD_MAX_RULES`
    environment variables).

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "p.guard").write_text('package p\\ndeny contains "no" if input.subject.id == "x"\\n')
    >>> load_policy(d).packages
    ('p',)
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    overrides = {os.path.abspath(path): text for path, text in (texts or {}).items()}
    # a file named directly that exists only as given text (a buffer not yet saved)
    unsaved = [
        path for path in paths
        if os.path.abspath(path) in overrides and not os.path.lexists(path)
    ]  # fmt: skip
    sources: list[tuple[str, str]] = []
    errors: list[PolicyError] = []
    files, schema_files = scan_policy_paths(
        [path for path in paths if path not in unsaved], tests=tests
    )  # `PolicyErrors` for every path it cannot read
    data_schema = load_data_schema(schema_files, RECORDS)
    for file in [*files, *(Path(path) for path in unsaved)]:
        text = overrides.get(os.path.abspath(file))
        if text is not None:
            sources.append((str(file), text))
            continue
        try:
            sources.append((str(file), read_policy_source(file)))
        except PolicyError as exc:
            errors.append(exc)
    if errors:
        raise PolicyErrors(errors)
    return policy_from_sources(
        sources,
        data=data,
        builtins=builtins,
        data_schema=data_schema,
        parse_cache=parse_cache,
        max_policy_bytes=max_policy_bytes,
        max_rules=max_rules,
    )


def policy_from_sources(
    sources: Sequence[tuple[str, str]],
    *,
    data: Mapping[str, Any] | None = None,
    builtins: Mapping[str, Builtin] | None = None,
    data_schema: DataSchema | None = None,
    parse_cache: bool = False,
    max_policy_bytes: int | None = None,
    max_rules: int | None = None,
) -> Policy:
    """Compile `(path, text)` pairs; the path only names the source in errors. With a
    `data_schema`, `data` is validated against it and rules reading it type-checked.
    The limits are `load_policy`'s."""
    max_bytes = _limit(max_policy_bytes, "SUBGUARD_MAX_POLICY_BYTES", DEFAULT_MAX_POLICY_BYTES)
    rules_limit = _limit(max_rules, "SUBGUARD_MAX_RULES", DEFAULT_MAX_RULES)
    _check_size(sources, max_bytes)
    _check_rule_heads(sources, rules_limit)
    modules: list[Module] = []
    errors: list[PolicyError] = []
    defined = 0
    for path, text in sources:
        try:
            text = text.removeprefix("\ufeff")  # a byte order mark is no text
            module = parse_cached(text, path) if parse_cache else parse_module(text, path)
        except PolicyErrors as exc:
            errors.extend(exc.errors)
            continue
        except PolicyError as exc:
            errors.append(exc)
            continue
        modules.append(module)
        defined += len(module.rules)
        if defined > rules_limit:
            raise _too_many_rules(
                path,
                module.rules[len(module.rules) - (defined - rules_limit)].loc.line,
                rules_limit,
            )
    if not sources:
        errors.append(
            PolicyError("no_policy", "no `.guard` files found", Location("<policy>", 0, 0))
        )
    if errors:
        raise PolicyErrors(errors)
    schema = INPUT_SCHEMA
    if data_schema is not None and data_schema.defaults:
        data = with_defaults(data or {}, data_schema)
    data_document = from_json(dict(data or {}))
    if data_schema is not None:
        schema = Schema.from_strings(
            {**RECORDS, **data_schema.records}, INPUT_TYPE, data=DATA_RECORD
        )
        assert schema.data is not None
        data_errors = validate_data(dict(data or {}), schema, schema.data)
        if data_errors:
            raise PolicyErrors(data_errors)
        data_document = conform(data_document, schema.data, schema)
    compiled = compile_policy(modules, schema=schema, builtins=builtins, entrypoints=ENTRYPOINTS)
    digest = hashlib.sha256()
    for path, text in sorted([*sources, *(data_schema.sources if data_schema is not None else ())]):
        digest.update(path.encode())
        digest.update(b"\0")
        digest.update(text.encode())
        digest.update(b"\0")
    return Policy(
        tuple(modules),
        compiled,
        Decisions(compiled),
        data_document,
        digest.hexdigest(),
        tuple(p for p, _ in sources),
    )
