"""Module-level caches: one way to keep them, bounded, each with the measurement that
justifies it.

A cache trades memory and a lookup for work saved; it earns its place only where a
benchmark shows the work matters. `bounded_cache` is `functools.lru_cache` with a
required bound and a required `justified_by` (the benchmark row, or the measurement,
that shows the saving), recorded in `CACHES` so tests and tools can list, check and
clear every cache the package keeps.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar, cast

__all__ = ["CACHES", "Cache", "bounded_cache", "clear_caches"]

_F = TypeVar("_F", bound=Callable[..., Any])


class Cache(NamedTuple):
    """One module-level cache: where it is, its bound, and why it exists."""

    name: str
    maxsize: int
    justified_by: str
    cache_info: Callable[[], Any]
    cache_clear: Callable[[], None]


#: Every cache `bounded_cache` made, by `module.function`.
CACHES: dict[str, Cache] = {}


def bounded_cache(maxsize: int, *, justified_by: str) -> Callable[[_F], _F]:
    """Cache a pure function's results, least recently used first out past `maxsize`."""
    if maxsize < 1:
        raise ValueError("a cache needs a bound of at least 1")
    if not justified_by.strip():
        raise ValueError("a cache needs the measurement that justifies it")

    def wrap(fn: _F) -> _F:
        cached = functools.lru_cache(maxsize=maxsize)(fn)
        name = f"{fn.__module__}.{fn.__qualname__}"
        CACHES[name] = Cache(name, maxsize, justified_by, cached.cache_info, cached.cache_clear)
        return cast(_F, cached)

    return wrap


def clear_caches() -> None:
    """Empty every cache (for tests that measure cold paths)."""
    for cache in CACHES.values():
        cache.cache_clear()
