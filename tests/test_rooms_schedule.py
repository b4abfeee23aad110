"""Activity windows at their edges, timezone-aware (pure: time is passed in)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rooms.errors import InvalidRoom
from rooms.schedule import is_active, midnight_after, resolve_window

PARIS_WINTER = timezone(timedelta(hours=1))
INDIA = timezone(timedelta(hours=5, minutes=30))
PACIFIC = timezone(timedelta(hours=-8))
US = 1e-6


@dataclass(frozen=True)
class Win:
    permanent: bool = False
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    active: bool = True


def scheduled(starts_at: datetime, ends_at: datetime | None = None) -> Win:
    starts, ends, _ = resolve_window(False, starts_at, ends_at)
    return Win(starts_at=starts, ends_at=ends)


def test_permanent_room_is_always_active_unless_switched_off() -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    assert is_active(Win(permanent=True), now)
    assert not is_active(Win(permanent=True, active=False), now)
    assert is_active(Win(permanent=True))  # default: the current time


def test_start_is_inclusive_and_end_exclusive() -> None:
    start = datetime(2026, 3, 10, 9, 0, tzinfo=PARIS_WINTER)
    end = datetime(2026, 3, 10, 11, 0, tzinfo=PARIS_WINTER)
    room = scheduled(start, end)
    assert not is_active(room, start - timedelta(microseconds=1))
    assert is_active(room, start)
    assert is_active(room, end - timedelta(microseconds=1))
    assert not is_active(room, end)


def test_edges_hold_whatever_offset_now_is_given_in() -> None:
    start = datetime(2026, 3, 10, 9, 0, tzinfo=PARIS_WINTER)  # 08:00 UTC
    room = scheduled(start, start + timedelta(hours=1))
    assert is_active(room, datetime(2026, 3, 10, 8, 0, tzinfo=UTC))
    assert is_active(room, datetime(2026, 3, 10, 0, 0, tzinfo=PACIFIC))  # 08:00 UTC
    assert not is_active(room, datetime(2026, 3, 9, 23, 59, 59, tzinfo=PACIFIC))
    assert not is_active(room, datetime(2026, 3, 10, 14, 30, tzinfo=INDIA))  # 09:00 UTC


def test_switched_off_scheduled_room_is_inactive_inside_its_window() -> None:
    start = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)
    room = scheduled(start, start + timedelta(hours=1))
    inactive = Win(starts_at=room.starts_at, ends_at=room.ends_at, active=False)
    assert not is_active(inactive, start)


def test_midnight_rule_uses_the_start_offset() -> None:
    start = datetime(2026, 6, 1, 22, 30, tzinfo=INDIA)  # 17:00 UTC
    starts, ends, auto = resolve_window(False, start, None)
    assert auto
    assert ends == datetime(2026, 6, 2, 0, 0, tzinfo=INDIA)  # 18:30 UTC, not 00:00 UTC
    assert ends.astimezone(UTC) == datetime(2026, 6, 1, 18, 30, tzinfo=UTC)
    room = Win(starts_at=starts, ends_at=ends)
    assert is_active(room, datetime(2026, 6, 1, 18, 29, 59, tzinfo=UTC))
    assert not is_active(room, datetime(2026, 6, 1, 18, 30, tzinfo=UTC))
    # In UTC the start day is still 1 June at 23:59, but the room has closed.
    assert not is_active(room, datetime(2026, 6, 1, 23, 59, tzinfo=UTC))


def test_midnight_rule_with_a_negative_offset_crosses_the_utc_date() -> None:
    start = datetime(2026, 6, 1, 20, 0, tzinfo=PACIFIC)  # 2 June 04:00 UTC
    ends = midnight_after(start)
    assert ends == datetime(2026, 6, 2, 0, 0, tzinfo=PACIFIC)
    assert ends.astimezone(UTC) == datetime(2026, 6, 2, 8, 0, tzinfo=UTC)


def test_start_at_midnight_closes_at_the_next_midnight() -> None:
    start = datetime(2026, 6, 1, 0, 0, tzinfo=PARIS_WINTER)
    assert midnight_after(start) == start + timedelta(days=1)


@given(
    st.datetimes(
        min_value=datetime(1971, 1, 1),
        max_value=datetime(9000, 1, 1),
        timezones=st.builds(
            lambda minutes: timezone(timedelta(minutes=minutes)),
            st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59),
        ),
    )
)
def test_midnight_is_after_start_within_a_day_and_local_midnight(start: datetime) -> None:
    end = midnight_after(start)
    assert start < end <= start + timedelta(days=1)
    assert end.utcoffset() == start.utcoffset()
    assert (end.hour, end.minute, end.second, end.microsecond) == (0, 0, 0, 0)


def test_window_rules() -> None:
    start = datetime(2026, 1, 1, 10, tzinfo=UTC)
    with pytest.raises(InvalidRoom) as caught:
        resolve_window(False, None, None)
    assert caught.value.code == "starts_at_required"
    with pytest.raises(InvalidRoom) as caught:
        resolve_window(False, start, start)
    assert caught.value.code == "ends_before_start"
    with pytest.raises(InvalidRoom) as caught:
        resolve_window(False, start, start - timedelta(hours=1))
    assert caught.value.code == "ends_before_start"
    with pytest.raises(InvalidRoom) as caught:
        resolve_window(False, datetime(2026, 1, 1, 10), None)
    assert caught.value.code == "naive_datetime"
    with pytest.raises(InvalidRoom) as caught:
        resolve_window(False, start, datetime(2026, 1, 1, 12))
    assert caught.value.code == "naive_datetime"
    for far in (datetime(1, 1, 1, tzinfo=INDIA), datetime(9999, 12, 31, 23, tzinfo=PACIFIC),
                datetime(1969, 12, 31, tzinfo=UTC)):  # fmt: skip
        with pytest.raises(InvalidRoom) as caught:
            resolve_window(False, far, None)
        assert caught.value.code == "datetime_out_of_range"
    with pytest.raises(InvalidRoom) as caught:
        resolve_window(False, start, datetime(9999, 12, 31, tzinfo=UTC))
    assert caught.value.code == "datetime_out_of_range"
    with pytest.raises(InvalidRoom) as caught:
        resolve_window(True, start, None)
    assert caught.value.code == "schedule_on_permanent_room"
    assert resolve_window(True, None, None) == (None, None, False)
    assert resolve_window(False, start, start + timedelta(hours=1)) == (
        start,
        start + timedelta(hours=1),
        False,
    )


def test_naive_now_is_refused() -> None:
    room = scheduled(datetime(2026, 1, 1, 10, tzinfo=UTC))
    with pytest.raises(InvalidRoom):
        is_active(room, datetime(2026, 1, 1, 11))
