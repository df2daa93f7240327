"""Loading a policy: `.guard` files and data, parsed, checked and compiled once."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from subguard.engine.decision import ENTRYPOINTS, Decisions
from subguard.engine.schema import INPUT_TYPE, RECORDS
from subguard.errors import Location, PolicyError, PolicyErrors
from subguard.lang import (
    Builtin,
    CompiledPolicy,
    Module,
    Schema,
    compile_policy,
    from_json,
    parse_module,
    read_source,
)

__all__ = ["INPUT_SCHEMA", "Policy", "find_policy_files", "load_policy", "policy_from_sources"]

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


def find_policy_files(paths: Iterable[PathLike]) -> list[Path]:
    """Files named directly, and every `.guard` file below directories except tests
    (`*_test.guard`), in stable order."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            # `*_test.guard` files hold `subguard test`'s tests: they use its test-only
            # builtins and never decide requests (a test file named directly still loads)
            found.extend(
                sorted(
                    p for p in path.rglob("*.guard") if p.is_file() and not p.name.endswith("_test.guard")
                )
            )
        elif path.exists():
            found.append(path)
        else:
            raise PolicyError("io_error", "no such file or directory", Location(str(path), 0, 0))
    return found


def load_policy(
    paths: PathLike | Sequence[PathLike],
    *,
    data: Mapping[str, Any] | None = None,
    builtins: Mapping[str, Builtin] | None = None,
) -> Policy:
    """Load, check and compile the policy in `paths` (files or directories).

    Raises `PolicyErrors` with every error found in every file.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "p.guard").write_text('package p\\ndeny contains "no" if input.subject.id == "x"\\n')
    >>> load_policy(d).packages
    ('p',)
    """
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    sources: list[tuple[str, str]] = []
    errors: list[PolicyError] = []
    try:
        files = find_policy_files(paths)
    except PolicyError as exc:
        raise PolicyErrors([exc]) from None
    for file in files:
        try:
            sources.append((str(file), read_source(file)))
        except PolicyError as exc:
            errors.append(exc)
    if errors:
        raise PolicyErrors(errors)
    return policy_from_sources(sources, data=data, builtins=builtins)


def policy_from_sources(
    sources: Sequence[tuple[str, str]],
    *,
    data: Mapping[str, Any] | None = None,
    builtins: Mapping[str, Builtin] | None = None,
) -> Policy:
    """Compile `(path, text)` pairs; the path only names the source in errors."""
    modules: list[Module] = []
    errors: list[PolicyError] = []
    for path, text in sources:
        try:
            modules.append(parse_module(text, path))
        except PolicyErrors as exc:
            errors.extend(exc.errors)
        except PolicyError as exc:
            errors.append(exc)
    if not sources:
        errors.append(PolicyError("no_policy", "no `.guard` files found", Location("<policy>", 0, 0)))
    if errors:
        raise PolicyErrors(errors)
    compiled = compile_policy(modules, schema=INPUT_SCHEMA, builtins=builtins, entrypoints=ENTRYPOINTS)
    digest = hashlib.sha256()
    for path, text in sorted(sources):
        digest.update(path.encode())
        digest.update(b"\0")
        digest.update(text.encode())
        digest.update(b"\0")
    return Policy(
        tuple(modules),
        compiled,
        Decisions(compiled),
        from_json(dict(data or {})),
        digest.hexdigest(),
        tuple(p for p, _ in sources),
    )
