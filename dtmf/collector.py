"""From digits to what the caller typed.

* :class:`DigitMerger` drops the duplicate when one key press arrives by two transports at
  once (a phone that sends RFC 4733 events *and* leaves the tones in the audio, or a gateway
  that sends both INFO and RFC 4733).
* :class:`DigitCollector` buffers digits (type-ahead included) and cuts them into entries: a
  conference code or PIN ended by ``#``, by reaching a maximum length, or by a pause.

Pure: no I/O and no clock; every call takes the caller's ``now``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from dtmf.events import DIGITS, Digit, Method

__all__ = ["MAX_PENDING", "DigitCollector", "DigitMerger", "Entry"]

#: Digits the collector buffers at most; later ones are dropped until entries are taken.
MAX_PENDING = 64
_MAX_REMEMBERED = 64  # accepted digits the merger keeps at most, whatever the window


@dataclass
class _Accepted:
    digit: str
    method: Method
    at: float
    absorbed: set[Method] = field(default_factory=set)


class DigitMerger:
    """Counts a key press once when it arrives by more than one method.

    A digit from method M is dropped when an *accepted* digit with the same character from
    another method arrived within ``window`` seconds (either side) and has not already
    absorbed a digit from M; the oldest such digit absorbs it. Otherwise it is accepted.
    Digits from the same method are never merged here: each decoder already reports one
    digit per press, so two ``5`` from RFC 4733 are two presses.

    Example: A:5@0 accepted, B:5@0.04 dropped (absorbed by A@0), A:5@0.25 accepted,
    B:5@0.29 dropped (absorbed by A@0.25).

    Memory is bounded: accepted digits older than ``window`` (relative to the newest time
    seen) are forgotten.
    """

    def __init__(self, window: float = 0.5) -> None:
        if window < 0:
            raise ValueError("window must not be negative")
        self.window = window
        self._accepted: list[_Accepted] = []
        self._latest: float | None = None

    def accept(self, digit: Digit) -> bool:
        """True when ``digit`` is a new key press, False when it duplicates one already
        accepted from another method."""
        self._latest = digit.at if self._latest is None else max(self._latest, digit.at)
        horizon = self._latest - self.window
        self._accepted = [a for a in self._accepted if a.at >= horizon]
        for a in self._accepted:
            if (
                a.digit == digit.digit
                and a.method != digit.method
                and digit.method not in a.absorbed
                and abs(digit.at - a.at) <= self.window
            ):
                a.absorbed.add(digit.method)
                return False
        self._accepted.append(_Accepted(digit.digit, digit.method, digit.at))
        if len(self._accepted) > _MAX_REMEMBERED:  # only with a huge window and a key-masher
            del self._accepted[0]
        return True

    def reset(self) -> None:
        """Forget every accepted digit."""
        self._accepted.clear()
        self._latest = None


EndedBy = Literal["terminator", "max_length", "timeout"]


@dataclass(frozen=True)
class Entry:
    """One complete entry: the digits (terminator excluded) and what ended it."""

    digits: str
    ended_by: EndedBy


class DigitCollector:
    """Buffers digits and cuts them into :class:`Entry` values.

    Digits count whenever they are pushed (type-ahead: a caller who knows the code types it
    while the prompt still plays). :meth:`take` returns the next complete entry, if any, and
    removes it from the buffer; what follows it stays buffered for the next entry:

    * a terminator within the first ``max_length + 1`` buffered digits ends an entry
      (``"terminator"``; the terminator is consumed and not part of the entry, and ``""`` is
      possible when the caller just presses it);
    * else ``max_length`` buffered digits are an entry (``"max_length"``; a terminator the
      caller presses after them then makes an empty entry of its own);
    * else, when digits are buffered and none came for ``inter_digit_timeout`` seconds, the
      whole buffer is an entry (``"timeout"``).

    Separately, :meth:`expired` tells when ``overall_timeout`` has passed since construction
    or :meth:`restart`; the caller decides what that means (replay the prompt, hang up).
    ``terminator=""`` disables the terminator; ``math.inf`` disables either timeout.
    """

    def __init__(
        self,
        *,
        now: float,
        terminator: str = "#",
        max_length: int = 16,
        inter_digit_timeout: float = 5.0,
        overall_timeout: float = 120.0,
    ) -> None:
        if terminator and (len(terminator) != 1 or terminator not in DIGITS):
            raise ValueError(f"terminator must be one of {DIGITS!r} or empty")
        if max_length < 1:
            raise ValueError("max_length must be at least 1")
        if inter_digit_timeout <= 0 or overall_timeout <= 0:
            raise ValueError("timeouts must be positive")
        self.terminator = terminator
        self.max_length = max_length
        self.inter_digit_timeout = inter_digit_timeout
        self.overall_timeout = overall_timeout
        self._buffer = ""
        self._last_digit_at: float | None = None
        self._started = now

    def push(self, digit: str, now: float) -> None:
        """Buffer one digit (one character of ``DIGITS``) pressed at ``now``. Digits beyond
        :data:`MAX_PENDING` buffered are dropped."""
        if len(digit) != 1 or digit not in DIGITS:
            raise ValueError(f"not a DTMF digit: {digit!r}")
        if len(self._buffer) >= MAX_PENDING:
            return
        self._buffer += digit
        self._last_digit_at = now

    def take(self, now: float) -> Entry | None:
        """The next complete entry (removed from the buffer), or None when there is none yet."""
        buf = self._buffer
        if self.terminator:
            i = buf.find(self.terminator, 0, self.max_length + 1)
            if i >= 0:
                self._buffer = buf[i + 1 :]
                return Entry(buf[:i], "terminator")
        if len(buf) >= self.max_length:
            self._buffer = buf[self.max_length :]
            return Entry(buf[: self.max_length], "max_length")
        if buf and self._last_digit_at is not None:
            if now - self._last_digit_at >= self.inter_digit_timeout:
                self._buffer = ""
                return Entry(buf, "timeout")
        return None

    def pending(self) -> str:
        """The digits buffered and not yet taken."""
        return self._buffer

    def clear(self) -> None:
        """Drop every buffered digit (e.g. type-ahead that must not count after an error)."""
        self._buffer = ""

    @property
    def deadline(self) -> float:
        """When the overall timeout expires (caller's clock)."""
        return self._started + self.overall_timeout

    def expired(self, now: float) -> bool:
        """True once ``overall_timeout`` has passed since construction or :meth:`restart`."""
        return now >= self.deadline

    def restart(self, now: float) -> None:
        """Start the overall timeout again from ``now`` (e.g. for the next prompt). Buffered
        digits stay: type-ahead still counts."""
        self._started = now

    def _complete(self) -> bool:
        buf = self._buffer
        if self.terminator and self.terminator in buf[: self.max_length + 1]:
            return True
        return len(buf) >= self.max_length

    def next_timeout(self) -> float | None:
        """The earliest time at which :meth:`take` or :meth:`expired` may change its answer
        without another push, for a driver's timer; None when nothing is due (infinite
        timeouts). A time already past means now: an entry is ready (it is the last digit's
        time then), or the overall deadline has passed (stop once :meth:`expired` says so).
        """
        times = [self.deadline]
        if self._buffer and self._last_digit_at is not None:
            if self._complete():
                times.append(self._last_digit_at)
            else:
                times.append(self._last_digit_at + self.inter_digit_timeout)
        finite = [t for t in times if math.isfinite(t)]
        return min(finite) if finite else None
