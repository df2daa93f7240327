"""A cache on disk of parsed policy sources, so a one-shot command skips the grammar.

Parsing is most of a one-shot `subguard eval`: the cache keeps each source's parsed
module in the user cache directory (`platformdirs`; `SUBGUARD_CACHE_DIR` overrides it,
an empty value turns the cache off), named by a hash of the source's path and text, the
subguard version and `subguard.lang.parser_digest()` (the grammar and the language's
own source), so a change of either parses the source again. Type checking and compiling
still run on every load, so every error a policy can have is still reported; sources
that do not parse are never cached.

Safe to delete at any time. An entry that cannot be read or is not a parsed module is
ignored and rebuilt (`subguard.lang.load_module` builds nothing but AST nodes). The
directory is the user's own (created 0700); a directory or entry that another user
could write is never read — the same trust as Python's own `__pycache__`.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import stat
import tempfile
from pathlib import Path
from typing import Final

from subguard.lang import Module, dump_module, load_module, parse_module, parser_digest

__all__ = ["cache_dir", "parse_cached"]

_SUFFIX: Final = ".module"


def cache_dir() -> Path | None:
    """The directory of cached modules, or None when caching is off."""
    override = os.environ.get("SUBGUARD_CACHE_DIR")
    if override is not None:
        return Path(override) if override.strip() else None
    import platformdirs

    return Path(platformdirs.user_cache_dir("subguard", appauthor=False)) / "modules"


@functools.cache
def _key_prefix() -> bytes:
    from importlib.metadata import PackageNotFoundError, version

    try:
        release = version("subguard")
    except PackageNotFoundError:  # pragma: no cover - a source tree never installed
        release = "0+unknown"
    return f"{release}\0{parser_digest()}\0".encode()


def _entry_name(text: str, path: str) -> str:
    h = hashlib.sha256(_key_prefix())
    for part in (path, text):
        data = part.encode("utf-8", "surrogatepass")
        h.update(len(data).to_bytes(8, "big"))
        h.update(data)
    return h.hexdigest() + _SUFFIX


def _private(st: os.stat_result) -> bool:
    """Owned by this user and writable by no one else."""
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return False
    getuid = getattr(os, "getuid", None)
    return getuid is None or st.st_uid == getuid()


def _read(entry: Path) -> Module | None:
    try:
        with open(entry, "rb") as handle:
            if not (_private(os.fstat(handle.fileno())) and _private(entry.parent.stat())):
                return None
            data = handle.read()
    except OSError:
        return None
    return load_module(data)


def _write(entry: Path, module: Module) -> None:
    try:
        entry.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not _private(entry.parent.stat()):
            return
        data = dump_module(module)
        fd, tmp = tempfile.mkstemp(dir=entry.parent, prefix=".tmp-", suffix=_SUFFIX)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, entry)  # readers see the old entry or the new, never half
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except (OSError, RecursionError, TypeError, ValueError):
        return  # a cache that cannot be written is only slower


def parse_cached(text: str, path: str) -> Module:
    """`parse_module(text, path)`, read from the cache when an entry exists."""
    where = cache_dir()
    if where is None:
        return parse_module(text, path)
    entry = where / _entry_name(text, path)
    cached = _read(entry)
    if cached is not None:
        return cached
    module = parse_module(text, path)
    _write(entry, module)
    return module
