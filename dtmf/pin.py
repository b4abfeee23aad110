"""PIN policy: constant-time comparison and limits on guessing.

* :func:`pin_matches` compares an entered code with the expected one without leaking, by its
  timing, how much of it (or how long it) was right.
* :class:`PinGuard` locks a key (a room id, or whatever the caller guards) after too many
  wrong codes in a window, across all calls: a brute-forcer who redials gets nowhere.
* :class:`CallTries` is the per-call limit ("three wrong PINs and we hang up").

Pure: no I/O and no clock; every call takes the caller's ``now``.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import OrderedDict, deque
from dataclasses import dataclass, field

__all__ = ["CallTries", "PinGuard", "pin_matches"]


def _digest(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", errors="surrogatepass")).digest()


def pin_matches(entered: str, expected: str) -> bool:
    """True when ``entered == expected``, in time independent of where they differ and of
    their lengths (fixed-size digests of both are compared with ``hmac.compare_digest``).

    An empty ``expected`` matches only an empty entry; whether a room without a PIN asks for
    one at all is the caller's decision.
    """
    return hmac.compare_digest(_digest(entered), _digest(expected))


@dataclass
class _KeyState:
    failures: deque[float] = field(default_factory=deque)  # times, oldest first
    locked_until: float | None = None


class PinGuard:
    """Counts wrong codes per key and locks the key after ``max_failures`` within ``window``
    seconds.

    A lockout lasts ``lockout`` seconds from the failure that engaged it; failures during it
    are not counted, and when it lifts the count starts from zero. A correct code does not
    reset the count (an attacker could interleave a known code with guesses).

    Memory is bounded: failures older than ``window`` are forgotten, and at most
    ``max_keys`` keys are kept; a new key evicts the least recently failed key that is not
    locked (the oldest locked one only when every key is locked), so a flood of keys cannot
    easily lift a lockout.
    """

    def __init__(
        self,
        *,
        max_failures: int = 20,
        window: float = 600.0,
        lockout: float = 600.0,
        max_keys: int = 10000,
    ) -> None:
        if max_failures < 1 or max_keys < 1:
            raise ValueError("max_failures and max_keys must be at least 1")
        if window <= 0 or lockout < 0:
            raise ValueError("window must be positive and lockout not negative")
        self.max_failures = max_failures
        self.window = window
        self.lockout = lockout
        self.max_keys = max_keys
        self._keys: OrderedDict[str, _KeyState] = OrderedDict()  # least recently failed first
        #: Since creation: every wrong code recorded (during a lockout too), lockouts engaged.
        self.failures_total = 0
        self.lockouts_total = 0

    def __len__(self) -> int:
        """Keys currently tracked (at most ``max_keys``)."""
        return len(self._keys)

    def _current(self, key: str, now: float) -> _KeyState | None:
        """The key's state with expired failures and a lifted lockout removed; None (and
        forgotten) when nothing is left."""
        state = self._keys.get(key)
        if state is None:
            return None
        if state.locked_until is not None and now >= state.locked_until:
            state.locked_until = None
        horizon = now - self.window
        while state.failures and state.failures[0] <= horizon:
            state.failures.popleft()
        if state.locked_until is None and not state.failures:
            del self._keys[key]
            return None
        return state

    def _evict_one(self) -> None:
        for key, state in self._keys.items():
            if state.locked_until is None:
                del self._keys[key]
                return
        self._keys.popitem(last=False)

    def failure(self, key: str, now: float) -> bool:
        """Record one wrong code for ``key`` at ``now``. True when this failure engaged a
        lockout (it is the ``max_failures``-th within ``window``); False otherwise, including
        while the key is already locked (such failures are not counted)."""
        state = self._current(key, now)
        if state is None:
            while len(self._keys) >= self.max_keys:
                self._evict_one()
            state = self._keys[key] = _KeyState()
        else:
            self._keys.move_to_end(key)
        self.failures_total += 1
        if state.locked_until is not None:
            return False
        state.failures.append(now)
        if len(state.failures) >= self.max_failures:
            state.failures.clear()
            state.locked_until = now + self.lockout
            self.lockouts_total += 1
            return True
        return False

    def failures(self, key: str, now: float) -> int:
        """Failures of ``key`` that still count towards a lockout at ``now``."""
        state = self._current(key, now)
        return 0 if state is None else len(state.failures)

    def locked(self, key: str, now: float) -> bool:
        """True while ``key`` is locked out."""
        return self.locked_until(key, now) is not None

    def locked_until(self, key: str, now: float) -> float | None:
        """When the lockout of ``key`` lifts, or None when it is not locked at ``now``."""
        state = self._current(key, now)
        return None if state is None else state.locked_until


class CallTries:
    """Tries left within one call: :meth:`fail` after each wrong entry returns True once
    ``max_tries`` have been used (the call should then say goodbye)."""

    def __init__(self, max_tries: int = 3) -> None:
        if max_tries < 1:
            raise ValueError("max_tries must be at least 1")
        self.max_tries = max_tries
        self._used = 0

    def fail(self) -> bool:
        """Use one try; True when none are left."""
        self._used = min(self._used + 1, self.max_tries)
        return self._used >= self.max_tries

    @property
    def remaining(self) -> int:
        """Tries left (0 when exhausted)."""
        return self.max_tries - self._used

    def reset(self) -> None:
        """All tries available again (e.g. the caller moved on to another code)."""
        self._used = 0
