"""A short-lived memory of room lookups by number, so answering a call needs no database trip.

Pure bookkeeping, safe between threads (one lock, no I/O): the store puts what it read and drops
what it changed. A value read from the database is stored only if no write of this process
happened while it was read (a generation number), so a lookup racing an edit never puts back
the old room. Another process sharing the database is seen within ``ttl`` seconds: that is the
bound on how stale a room's settings may be on a node that did not make the change.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["MISS", "TtlCache"]

V = TypeVar("V")


class _Miss:
    def __repr__(self) -> str:
        return "MISS"


#: What :meth:`TtlCache.get` returns for a key it does not hold (None is a value: "no room").
MISS = _Miss()


class TtlCache(Generic[V]):
    def __init__(
        self,
        ttl: float,
        *,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[float, V]] = {}
        self._generation = 0

    @property
    def generation(self) -> int:
        """Take this before reading the database; hand it to :meth:`put`."""
        return self._generation

    def get(self, key: str) -> V | _Miss:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return MISS
            if entry[0] <= self._clock():
                del self._entries[key]
                return MISS
            return entry[1]

    def put(self, key: str, value: V, generation: int) -> None:
        """Remember ``value`` unless a write happened since ``generation`` was taken."""
        if self.ttl <= 0:
            return
        with self._lock:
            if generation != self._generation:
                return
            if len(self._entries) >= self.max_entries:
                self._entries.clear()  # a scan of random numbers: start again, never grow
            self._entries[key] = (self._clock() + self.ttl, value)

    def drop(self, *keys: str) -> None:
        """A write changed these keys: forget them and refuse reads already under way."""
        with self._lock:
            self._generation += 1
            for key in keys:
                self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)
