"""RFC 4733 telephone-events: RTP payloads in, one :class:`~dtmf.events.Digit` per key press out.

A sender reports one key press as a run of RTP packets that all carry the same RTP timestamp
(the event's start): a start packet (marker bit set), continuation packets with a growing
duration, and (usually) three redundant end packets with the E bit set. Any of them can be
lost, repeated or reordered. The receiver therefore identifies an event by ``(ssrc, RTP
timestamp)`` and emits the digit on the *first* packet it sees of an event it has not seen,
whatever kind of packet that is: a lost start packet still yields the digit, and the redundant
end packets and retransmissions yield nothing.

Payload layout (RFC 4733 section 2.3)::

     0                   1                   2                   3
     0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
    |     event     |E|R| volume    |          duration             |

Pure: no I/O and no clock; the caller passes ``now`` (stamped on the digit).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from dtmf.events import DIGITS, Digit

__all__ = ["TelephoneEvent", "TelephoneEventReceiver", "parse_telephone_event"]

_TS_MOD = 1 << 32
_HALF = 1 << 31


@dataclass(frozen=True)
class TelephoneEvent:
    """One decoded telephone-event payload (the first four bytes of it)."""

    event: int  # 0-255; 0-15 are the DTMF digits
    end: bool  # the E bit
    volume: int  # 0-63, in -dBm0 (0 is loudest)
    duration: int  # 0-65535, in RTP timestamp units since the event's start


def parse_telephone_event(payload: bytes) -> TelephoneEvent | None:
    """Decode a telephone-event payload, or None when it is shorter than four bytes.

    Only the first event block is read; anything after it (a second block, padding) is
    ignored. The R bit is reserved and ignored.
    """
    if len(payload) < 4:
        return None
    return TelephoneEvent(
        event=payload[0],
        end=bool(payload[1] & 0x80),
        volume=payload[1] & 0x3F,
        duration=(payload[2] << 8) | payload[3],
    )


def _behind(a: int, b: int) -> int | None:
    """How many timestamp units ``a`` is behind ``b`` (0 when equal) in RTP serial arithmetic,
    or None when ``a`` is ahead of ``b``. Correct across the wrap at 2**32."""
    d = (b - a) % _TS_MOD
    return d if d < _HALF else None


class TelephoneEventReceiver:
    """Turns the telephone-event packets of one RTP stream into digits, one per event.

    ``feed`` returns a :class:`Digit` (method ``"rfc4733"``) on the first packet of a new
    event and None for every other packet (retransmitted start, continuation, the redundant
    end packets, late packets of an event already emitted), for payloads shorter than four
    bytes and for event codes above 15 (non-DTMF tones). It never raises on any bytes.

    ``duration_ms`` is the duration the first packet seen reports (0 or a few ms for a start
    packet, the full length when only the end packets arrived); the digit is already out when
    later packets tell more, so their durations update nothing.

    The last ``history`` event timestamps are remembered, so a late or reordered packet of a
    recent event is not re-emitted. A packet whose timestamp is at or behind the newest
    *forgotten* event (by up to ``stale_seconds`` of RTP clock, serial arithmetic, so the
    wrap at 2**32 is handled) is taken as a very late packet of a forgotten event and
    ignored; one further behind is taken as a sender that restarted its timestamps, i.e. a
    new event. A new SSRC resets all state.
    """

    def __init__(
        self, clock_rate: int = 8000, *, history: int = 16, stale_seconds: float = 10.0
    ) -> None:
        if clock_rate <= 0:
            raise ValueError("clock_rate must be positive")
        if history < 1:
            raise ValueError("history must be at least 1")
        self.clock_rate = clock_rate
        self._history = history
        self._stale_units = int(stale_seconds * clock_rate)
        self._ssrc: int | None = None
        self._recent: deque[int] = deque()
        self._forgotten: int | None = None  # newest timestamp evicted from _recent

    def reset(self) -> None:
        """Forget every event seen (as a new SSRC does)."""
        self._ssrc = None
        self._recent.clear()
        self._forgotten = None

    def feed(
        self,
        payload: bytes,
        timestamp: int,
        now: float,
        *,
        marker: bool = False,
        ssrc: int = 0,
    ) -> Digit | None:
        """Feed one telephone-event RTP packet (payload, RTP timestamp, arrival time).

        Returns the digit when this packet is the first seen of a new event, else None.
        ``marker`` (set on an event's start packet) is accepted for completeness but not
        needed: events are told apart by their timestamp.
        """
        ev = parse_telephone_event(payload)
        if ev is None or ev.event >= len(DIGITS):
            return None
        ts = timestamp % _TS_MOD
        ssrc %= _TS_MOD
        if ssrc != self._ssrc:
            self.reset()
            self._ssrc = ssrc
        if ts in self._recent or self._is_stale(ts):
            return None
        self._remember(ts)
        duration_ms = (ev.duration * 1000 + self.clock_rate // 2) // self.clock_rate
        return Digit(DIGITS[ev.event], "rfc4733", now, duration_ms)

    def _is_stale(self, ts: int) -> bool:
        if self._forgotten is None:
            return False
        d = _behind(ts, self._forgotten)
        return d is not None and d <= self._stale_units

    def _remember(self, ts: int) -> None:
        self._recent.append(ts)
        if len(self._recent) > self._history:
            old = self._recent.popleft()
            if not self._is_stale(old):  # newer, or a restarted timeline: the new floor
                self._forgotten = old
