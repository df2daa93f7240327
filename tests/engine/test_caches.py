"""Module-level caches in the language and the engine: one helper, bounded, justified."""

from __future__ import annotations

import pytest

import subguard  # noqa: F401  (loads every module that keeps a cache)
from subguard.caching import CACHES, bounded_cache


def test_the_language_and_engine_caches_are_registered_bounded_and_justified() -> None:
    names = set(CACHES)
    assert {
        "subguard.engine.decision._reason",
        "subguard.lang.builtins_text._regex",
        "subguard.lang.builtins_text._glob",
        "subguard.lang.builtins_text._network",
        "subguard.lang.parser._parser",
    } <= names
    for cache in CACHES.values():
        assert cache.maxsize >= 1
        assert cache.justified_by.strip()


def test_a_cache_stays_within_its_bound() -> None:
    calls: list[int] = []

    @bounded_cache(2, justified_by="test")
    def square(x: int) -> int:
        calls.append(x)
        return x * x

    assert [square(i) for i in (1, 2, 1, 3, 1, 2)] == [1, 4, 1, 9, 1, 4]
    assert calls == [1, 2, 3, 2]  # 2 was the least recently used when 3 came in
    assert square.cache_info().currsize == 2  # type: ignore[attr-defined]


@pytest.mark.parametrize(("maxsize", "why"), [(0, "x"), (4, " ")])
def test_an_unbounded_or_unjustified_cache_is_refused(maxsize: int, why: str) -> None:
    with pytest.raises(ValueError):
        bounded_cache(maxsize, justified_by=why)
