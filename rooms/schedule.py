"""Activity windows: permanent rooms, scheduled rooms, and the midnight rule.

A scheduled room is active from ``starts_at`` (inclusive) to ``ends_at`` (exclusive). Without an
``ends_at`` it closes at the first midnight after its start, in the start's own UTC offset. Any
room can also be switched off by its ``active`` flag. Time is always passed in.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Protocol

from rooms.errors import InvalidRoom

__all__ = ["MAX_YEAR", "MIN_YEAR", "Window", "is_active", "midnight_after", "resolve_window"]


class Window(Protocol):
    @property
    def active(self) -> bool: ...

    @property
    def permanent(self) -> bool: ...

    @property
    def starts_at(self) -> datetime | None: ...

    @property
    def ends_at(self) -> datetime | None: ...


#: Schedules must lie in these years (UTC), so that offsets and the midnight rule never leave
#: the range of ``datetime``.
MIN_YEAR, MAX_YEAR = 1970, 9998


def _aware(name: str, value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidRoom("naive_datetime", f"{name} must carry a UTC offset")
    return value


def _in_range(name: str, value: datetime) -> datetime:
    _aware(name, value)
    try:
        year = value.astimezone(UTC).year
    except OverflowError:
        year = 0
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise InvalidRoom(
            "datetime_out_of_range", f"{name} must be between {MIN_YEAR} and {MAX_YEAR}"
        )
    return value


def midnight_after(starts_at: datetime) -> datetime:
    """The next 00:00 after ``starts_at``'s day, in ``starts_at``'s own offset."""
    _aware("starts_at", starts_at)
    offset = starts_at.utcoffset()
    assert offset is not None
    local = starts_at.astimezone(timezone(offset))
    day_start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    return day_start + timedelta(days=1)


def resolve_window(
    permanent: bool, starts_at: datetime | None, ends_at: datetime | None
) -> tuple[datetime | None, datetime | None, bool]:
    """Check a room's schedule and fill in the midnight rule.

    Returns ``(starts_at, ends_at, ends_at_auto)``; raises :class:`InvalidRoom`.
    """
    if permanent:
        if starts_at is not None or ends_at is not None:
            raise InvalidRoom(
                "schedule_on_permanent_room",
                "a permanent room has no starts_at/ends_at; set permanent to false",
            )
        return None, None, False
    if starts_at is None:
        raise InvalidRoom("starts_at_required", "starts_at is required when permanent is false")
    _in_range("starts_at", starts_at)
    auto = ends_at is None
    if ends_at is None:
        ends_at = midnight_after(starts_at)
    _in_range("ends_at", ends_at)
    if ends_at <= starts_at:
        raise InvalidRoom("ends_before_start", "ends_at must be after starts_at")
    return starts_at, ends_at, auto


def is_active(room: Window, now: datetime | None = None) -> bool:
    """Whether calls may join ``room`` at ``now`` (default: the current time)."""
    if not room.active:
        return False
    if room.permanent:
        return True
    if room.starts_at is None or room.ends_at is None:
        return False
    now = datetime.now(UTC) if now is None else _aware("now", now)
    return room.starts_at <= now < room.ends_at
