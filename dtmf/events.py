"""What every DTMF source produces: one :class:`Digit` per key press.

The DTMF package is pure: no asyncio, no sockets and no clock of its own. Callers pass the
time (``now``, seconds on any monotonic clock) with every input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["DIGITS", "Digit", "Method"]

#: RFC 4733 events 0-15, in event-code order.
DIGITS = "0123456789*#ABCD"

Method = Literal["rfc4733", "info", "inband"]


@dataclass(frozen=True)
class Digit:
    """One key press, as one of the three transports reported it."""

    digit: str  # one character of DIGITS
    method: Method
    at: float  # when it was recognised (the caller's clock, seconds)
    duration_ms: int | None = None  # when the transport tells it
