"""Where a policy comes from: the one walker of policy paths, the one reader of policy
files, and the one loader of `--data` documents (the CLI, the test runner, the pytest
plugin and backtest all use these).

Fail closed: a directory that cannot be listed, a dangling `.guard` symlink, a `.guard`
entry that is not a regular file or a symlink loop is a load error naming the path —
never a file silently skipped, since its deny rules would vanish with it.
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from subguard.errors import ConfigError, Location, PolicyError, PolicyErrors
from subguard.lang import read_source

__all__ = [
    "DATA_SCHEMA_FILE",
    "find_policy_files",
    "is_test_file",
    "load_data",
    "read_policy_source",
    "scan_policy_paths",
]

PathLike = str | os.PathLike[str]

_BOM = "\ufeff"


def is_test_file(path: PathLike) -> bool:
    """`*_test.guard` files hold `subguard test`'s tests: they use its test-only builtins
    and never decide requests, so a directory walk leaves them out unless asked."""
    return Path(path).name.endswith("_test.guard")


def _error(code: str, message: str, path: Path | str) -> PolicyError:
    return PolicyError(code, message, Location(str(path), 0, 0))


#: The file beside the rules that declares the shape of `data` (see `engine.dataschema`).
DATA_SCHEMA_FILE = "data.schema.json"


def _walk(
    root: Path, tests: bool, found: list[Path], schemas: list[Path], errors: list[PolicyError]
) -> None:
    """Every `.guard` file below `root`, following directory symlinks (a symlinked rule
    directory is part of the policy) but not round a loop: a link back to a directory
    above it is `symlink_loop`; a directory reached a second time by another link is
    walked once (its files are already in)."""
    seen: set[tuple[int, int]] = set()
    pending: list[tuple[Path, frozenset[tuple[int, int]]]] = [(root, frozenset())]
    while pending:
        directory, ancestors = pending.pop()
        try:
            info = directory.stat()
        except OSError as exc:
            errors.append(
                _error(
                    "io_error", f"cannot read policy directory: {exc.strerror or exc}", directory
                )
            )
            continue
        key = (info.st_dev, info.st_ino)
        if key in ancestors:
            errors.append(
                _error("symlink_loop", "a symlink leads back to a directory above it", directory)
            )
            continue
        if key in seen:
            continue
        seen.add(key)
        ancestors = ancestors | {key}
        try:
            entries = sorted(os.scandir(directory), key=lambda e: e.name)
        except OSError as exc:
            errors.append(
                _error(
                    "io_error", f"cannot read policy directory: {exc.strerror or exc}", directory
                )
            )
            continue
        subdirectories: list[Path] = []
        for entry in entries:
            path = Path(entry.path)
            try:
                mode = os.stat(path).st_mode  # follows symlinks
            except FileNotFoundError:
                if (
                    entry.name.endswith(".guard")
                    or entry.name == DATA_SCHEMA_FILE
                    or entry.is_symlink()
                ):
                    # a dangling link: its rules (or its directory's) are missing
                    errors.append(
                        _error("io_error", "dangling symlink: its target does not exist", path)
                    )
                continue
            except OSError as exc:
                errors.append(
                    _error("io_error", f"cannot read policy path: {exc.strerror or exc}", path)
                )
                continue
            if stat.S_ISDIR(mode):
                subdirectories.append(path)
            elif entry.name == DATA_SCHEMA_FILE:
                schemas.append(path)
            elif entry.name.endswith(".guard"):
                if not stat.S_ISREG(mode):
                    errors.append(_error("io_error", "policy path is not a regular file", path))
                elif tests or not is_test_file(path):
                    found.append(path)
        pending.extend((sub, ancestors) for sub in reversed(subdirectories))


def find_policy_files(paths: Iterable[PathLike], *, tests: bool = False) -> list[Path]:
    """Files named directly, and every `.guard` file below directories (`*_test.guard`
    files only with `tests`), in stable order, each once.

    Raises `PolicyErrors` listing every path that could not be read: a missing path, a
    directory that cannot be listed, a dangling symlink, a special file."""
    return scan_policy_paths(paths, tests=tests)[0]


def scan_policy_paths(
    paths: Iterable[PathLike], *, tests: bool = False
) -> tuple[list[Path], list[Path]]:
    """The policy files of `paths` (as `find_policy_files`) and the data schema files
    (`data.schema.json`) found beside them or named directly."""
    found: list[Path] = []
    schemas: list[Path] = []
    errors: list[PolicyError] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            walked: list[Path] = []
            _walk(path, tests, walked, schemas, errors)
            found.extend(sorted(walked))
        elif path.exists() and path.name == DATA_SCHEMA_FILE:
            schemas.append(path)
        elif path.exists():
            found.append(path)
        elif path.is_symlink():
            errors.append(_error("io_error", "dangling symlink: its target does not exist", path))
        else:
            errors.append(_error("io_error", "no such file or directory", path))
    if errors:
        raise PolicyErrors(errors)
    return list(dict.fromkeys(found)), sorted(dict.fromkeys(schemas))


def read_policy_source(path: Path) -> str:
    """A policy file's text (refused clearly when too large or not UTF-8). A leading
    UTF-8 byte order mark, as some Windows editors write, is dropped."""
    text = read_source(path)
    return text[1:] if text.startswith(_BOM) else text


def _merge(into: dict[str, Any], more: Mapping[str, Any]) -> None:
    for key, value in more.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def load_data(files: Iterable[PathLike]) -> dict[str, Any]:
    """The `data` document: each file's JSON object merged at the root, later files
    winning key by key (objects merge deeply). Raises `ConfigError` naming the file when
    one cannot be read, is not JSON or does not hold an object."""
    data: dict[str, Any] = {}
    for name in files:
        try:
            raw = Path(name).read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read data file `{name}`: {exc.strerror or exc}") from None
        if raw.startswith(_BOM.encode()):
            raw = raw[len(_BOM.encode()) :]
        try:
            value = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise ConfigError(f"data file `{name}` is not valid JSON: not UTF-8") from None
        except (ValueError, RecursionError) as exc:
            raise ConfigError(f"data file `{name}` is not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise ConfigError(f"data file `{name}` must hold a JSON object")
        _merge(data, value)
    return data
