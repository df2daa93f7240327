"""Loading a policy: `.guard` files and data, parsed, checked and compiled once."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from subguard.engine.schema import INPUT_TYPE, RECORDS
from subguard.engine.sources import find_policy_files, read_policy_source
from subguard.errors import PolicyError, PolicyErrors
from subguard.lang import ast
from subguard.lang.builtins import Builtin
from subguard.lang.compiler import CompiledPolicy, compile_policy
from subguard.lang.parser import parse_module
from subguard.lang.types import Schema
from subguard.lang.values import from_json

__all__ = ["INPUT_SCHEMA", "Policy", "find_policy_files", "load_policy", "policy_from_sources"]

#: The input document's schema, as the type checker sees it.
INPUT_SCHEMA = Schema.from_strings(RECORDS, INPUT_TYPE)

PathLike = str | os.PathLike[str]


@attrs.frozen
class Policy:
    """Compiled rules plus the `data` document they read. Load once, decide many."""

    modules: tuple[ast.Module, ...] = attrs.field(repr=False)
    compiled: CompiledPolicy = attrs.field(repr=False)
    data: Mapping[str, Any] = attrs.field(repr=False)
    #: sha256 over every source's path and text: the release a decision cites.
    hash: str
    files: tuple[str, ...]

    @property
    def packages(self) -> tuple[str, ...]:
        return self.compiled.packages


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
    files = find_policy_files(paths)  # `PolicyErrors` for every path it cannot read
    for file in files:
        try:
            sources.append((str(file), read_policy_source(file)))
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
    modules: list[ast.Module] = []
    errors: list[PolicyError] = []
    for path, text in sources:
        try:
            modules.append(parse_module(text, path))
        except PolicyErrors as exc:
            errors.extend(exc.errors)
        except PolicyError as exc:
            errors.append(exc)
    if not sources:
        errors.append(PolicyError("no_policy", "no `.guard` files found", path="<policy>", line=0, col=0))
    if errors:
        raise PolicyErrors(errors)
    compiled = compile_policy(modules, schema=INPUT_SCHEMA, builtins=builtins)
    digest = hashlib.sha256()
    for path, text in sorted(sources):
        digest.update(path.encode())
        digest.update(b"\0")
        digest.update(text.encode())
        digest.update(b"\0")
    return Policy(
        tuple(modules),
        compiled,
        from_json(dict(data or {})),
        digest.hexdigest(),
        tuple(p for p, _ in sources),
    )
