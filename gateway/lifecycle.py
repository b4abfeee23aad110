"""What happens to each call leg, told to whoever keeps count: call records, metrics.

The call handlers (SIP, phone menu, browsers) report every leg's life to one
:class:`CallObserver`: it started (the INVITE or the browser's join was taken in), it was
answered (the caller is connected: in a room, its waiting room or the phone menu), it was
refused before being answered, it ended. :class:`Observers` fans the reports out to any
number of observers and never lets one of them fail a call: an observer that raises is
logged and the call goes on.

Observers are called on the event loop, from signalling and sometimes from the media tick:
they must not block (a database write goes to a thread or a queue of its own).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol

__all__ = ["END_REASONS", "KINDS", "CallObserver", "LegInfo", "LegTotals", "Observers"]

logger = logging.getLogger(__name__)

#: Kinds of legs, as the REST API shows participants.
KINDS = ("sip", "phone", "browser")

#: Why a leg ended.
END_REASONS = (
    "hangup",  # the caller hung up (BYE, CANCEL, the browser left or closed)
    "removed",  # a moderator removed it
    "room_ended",  # the room was deleted, deactivated or its window closed
    "timeout",  # no media for GATEWAY_RTP_TIMEOUT, or the phone menu timed out
    "refused",  # turned away: a waiting-room refusal, a locked or inactive room
    "wrong_pin",  # too many wrong codes or PINs at the phone menu
    "shutdown",  # the gateway stopped (or its drain time ran out)
    "failed",  # anything else: an error, a failed negotiation
)


@dataclass(frozen=True)
class LegInfo:
    """One leg as records and metrics see it. ``id`` is the participant id the REST API
    shows; ``call_id`` the SIP Call-ID (None for a browser)."""

    id: str
    kind: str  # one of KINDS
    display_name: str
    call_id: str | None = None
    #: E.164 when the caller gave one (never written to logs in full).
    caller_number: str | None = None
    room_id: str | None = None  # None until known (the phone menu asks for it)
    codec: str | None = None  # e.g. "PCMU", "G722", "opus"

    def with_room(self, room_id: str | None) -> LegInfo:
        return replace(self, room_id=room_id)


@dataclass(frozen=True)
class LegTotals:
    """The media counters of a leg when it ended."""

    packets_received: int = 0
    packets_sent: int = 0
    packets_lost: int = 0


class CallObserver(Protocol):
    def leg_started(self, leg: LegInfo, at: datetime) -> None:
        """A leg was taken in (before it is answered)."""
        ...

    def leg_answered(self, leg: LegInfo, at: datetime) -> None:
        """The caller is connected (``leg.room_id`` may still be None at the phone menu)."""
        ...

    def leg_updated(self, leg: LegInfo) -> None:
        """What is known of the leg changed: the phone menu found its room, a codec was
        negotiated."""
        ...

    def leg_ended(
        self, leg: LegInfo, at: datetime, reason: str, totals: LegTotals | None = None
    ) -> None:
        """The leg is over; ``reason`` is one of :data:`END_REASONS`. Called once per leg
        that started."""
        ...

    def call_refused(self, kind: str, status: int) -> None:
        """A call was refused before any leg started (e.g. 404, 480, 503 overload)."""
        ...


class Observers:
    """A :class:`CallObserver` that tells each of its observers, in order, and swallows
    (and logs) what they raise."""

    def __init__(self, *observers: CallObserver) -> None:
        self._observers: list[CallObserver] = list(observers)

    def add(self, observer: CallObserver) -> None:
        self._observers.append(observer)

    def _tell(self, call: Callable[[CallObserver], None]) -> None:
        for observer in self._observers:
            try:
                call(observer)
            except Exception:
                logger.exception("call observer %r failed", observer)

    def leg_started(self, leg: LegInfo, at: datetime) -> None:
        self._tell(lambda o: o.leg_started(leg, at))

    def leg_answered(self, leg: LegInfo, at: datetime) -> None:
        self._tell(lambda o: o.leg_answered(leg, at))

    def leg_updated(self, leg: LegInfo) -> None:
        self._tell(lambda o: o.leg_updated(leg))

    def leg_ended(
        self, leg: LegInfo, at: datetime, reason: str, totals: LegTotals | None = None
    ) -> None:
        self._tell(lambda o: o.leg_ended(leg, at, reason, totals))

    def call_refused(self, kind: str, status: int) -> None:
        self._tell(lambda o: o.call_refused(kind, status))
