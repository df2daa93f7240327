"""A memory-bounded LRU of analyses, so an agent repeating a query pays a dict lookup."""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from typing import Any, Final, Generic, TypeVar

V = TypeVar("V")

#: Texts longer than this are analysed but not cached: one huge text must not evict
#: hundreds of ordinary ones.
MAX_TEXT_CHARS: Final = 64 * 1024


class LRUCache(Generic[V]):
    """Least-recently-used map bounded by entry count and by estimated bytes.

    The byte estimate per entry is charged once, on insertion, by the caller's `cost`
    (for analyses: the text plus a per-statement allowance); the benchmark checks the
    estimate against measured allocations.
    """

    def __init__(
        self,
        max_entries: int = 4096,
        max_bytes: int = 32 * 1024 * 1024,
        dependents: tuple[LRUCache[Any], ...] = (),
    ) -> None:
        self.dependents = dependents  # emptied with this one (caches derived from it)
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._data: OrderedDict[tuple[str, str, str], tuple[V, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[str, str, str]) -> V | None:
        try:
            with self._lock:
                value, _ = self._data[key]
                self._data.move_to_end(key)
        except KeyError:
            self.misses += 1
            return None
        self.hits += 1
        return value

    def put(self, key: tuple[str, str, str], value: V, cost: int) -> None:
        if len(key[2]) > MAX_TEXT_CHARS or cost > self.max_bytes:
            return
        cost += sys.getsizeof(key[2]) + 200
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._data[key] = (value, cost)
            self._bytes += cost
            while self._data and (
                len(self._data) > self.max_entries or self._bytes > self.max_bytes
            ):
                _, (_, evicted) = self._data.popitem(last=False)
                self._bytes -= evicted

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self._bytes = 0
            self.hits = self.misses = 0
        for cache in self.dependents:
            cache.clear()

    @property
    def estimated_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._data)
