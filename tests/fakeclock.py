"""A clock the test moves: fires due timers in time order, as the asyncio driver's
``loop.call_at`` would, with no sleeping and no sockets."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Protocol


class HasTimers(Protocol):
    now: float
    timers: dict[Hashable, float]  # timer key -> when it is due


def advance(harness: HasTimers, until: float, fire: Callable[[Hashable, float], None]) -> None:
    """Fire every timer due by ``until`` (earliest first, ``harness.now`` set to its time; a
    fired timer may start others), then leave the clock at ``until``."""
    while True:
        due = [(t, k) for k, t in harness.timers.items() if t <= until + 1e-9]
        if not due:
            break
        t, k = min(due, key=lambda x: x[0])
        del harness.timers[k]
        harness.now = t
        fire(k, t)
    harness.now = until
