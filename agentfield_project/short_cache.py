"""A per-process cache of facts that change rarely, kept for AGENTFIELD_API_KEY_CACHE_SECONDS.

The same window as a revoked key's: what a request may see is decided from facts at most that old
(a node's owner, an execution's owners). Bounded by clearing it whole when it grows too large.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Iterable
from typing import Generic, TypeVar

from django.conf import settings

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

MAX_ENTRIES = 10_000


class ShortCache(Generic[K, V]):
    """`get(key, load)`: the value loaded at most AGENTFIELD_API_KEY_CACHE_SECONDS ago, else `load(key)` now."""

    def __init__(self) -> None:
        self._entries: dict[K, tuple[V, float]] = {}

    def get(self, key: K, load: Callable[[K], V]) -> V:
        cached = self._entries.get(key)
        if self._fresh(cached, time.monotonic()):
            return cached[0]
        value = load(key)  # an exception is not remembered
        self._store({key: value})
        return value

    def prime(self, keys: Iterable[K], load_many: Callable[[list[K]], dict[K, V]]) -> None:
        """Load the `keys` that are missing or stale with one `load_many(those keys)`; a later `get`
        of them is then answered from here. A key `load_many` leaves out is not remembered."""
        now = time.monotonic()
        missing = [key for key in dict.fromkeys(keys) if not self._fresh(self._entries.get(key), now)]
        if missing:
            self._store(load_many(missing))

    @staticmethod
    def _fresh(cached: tuple[V, float] | None, now: float) -> bool:
        return cached is not None and now - cached[1] < settings.AGENTFIELD_API_KEY_CACHE_SECONDS

    def _store(self, loaded: dict[K, V]) -> None:
        if len(self._entries) + len(loaded) > MAX_ENTRIES:
            self._entries.clear()
        loaded_at = time.monotonic()
        self._entries.update((key, (value, loaded_at)) for key, value in loaded.items())

    def forget(self, key: K | None = None) -> None:
        """Drop `key` (every key without one)."""
        if key is None:
            self._entries.clear()
        else:
            self._entries.pop(key, None)
