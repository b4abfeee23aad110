"""Database tables of the room store (sqlmodel).

The schema itself is owned by the Alembic migrations in :mod:`rooms.migrations`; these classes
describe the same tables for queries. ``tests/test_rooms_db.py`` checks that the two agree.

Datetimes are stored in UTC: :class:`UtcDateTime` refuses naive values on the way in and gives
back aware UTC values on the way out (SQLite keeps no offset).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlmodel import Field, SQLModel

__all__ = [
    "AllocatedNumber",
    "CallRecord",
    "LinkToken",
    "Room",
    "SettingEntry",
    "UtcDateTime",
    "utcnow",
]


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(sa.types.TypeDecorator[datetime]):
    """A timezone-aware datetime stored in UTC, whatever the database keeps of offsets."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class AllocatedNumber(SQLModel, table=True):
    """Every room number ever handed out; rows are never deleted, so numbers are never reused."""

    __tablename__ = "allocated_numbers"

    number: str = Field(primary_key=True, max_length=10)
    allocated_at: datetime = Field(sa_type=UtcDateTime, nullable=False)


class Room(SQLModel, table=True):
    __tablename__ = "rooms"

    id: str = Field(primary_key=True, max_length=32)
    name: str = Field(max_length=200)
    number: str = Field(
        max_length=10, unique=True, foreign_key="allocated_numbers.number", ondelete="RESTRICT"
    )
    pin: str | None = Field(default=None, max_length=10)
    host_pin: str | None = Field(default=None, max_length=10)
    permanent: bool = True
    starts_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    ends_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    #: Offset of ``starts_at`` as the client gave it, in minutes east of UTC: times are shown in
    #: it, and the midnight rule is computed in it.
    utc_offset_minutes: int | None = None
    #: True when ``ends_at`` came from the midnight rule rather than from the client.
    ends_at_auto: bool = False
    active: bool = True
    waiting_room: bool = False
    wait_for_host: bool = False
    #: Locked by an organiser: new arrivals (but organisers) wait to be admitted.
    locked: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})
    created_at: datetime = Field(sa_type=UtcDateTime, nullable=False)


class LinkToken(SQLModel, table=True):
    """The secret of one join link: one per room and role."""

    __tablename__ = "link_tokens"
    __table_args__ = (sa.UniqueConstraint("room_id", "role", name="uq_link_tokens_room_role"),)

    token: str = Field(primary_key=True, max_length=64)
    room_id: str = Field(foreign_key="rooms.id", ondelete="CASCADE", index=True, max_length=32)
    role: str = Field(max_length=16)


class SettingEntry(SQLModel, table=True):
    """Process-wide values kept across restarts (the admin token's hash)."""

    __tablename__ = "settings"

    key: str = Field(primary_key=True, max_length=64)
    value: str = Field(max_length=500)


class CallRecord(SQLModel, table=True):
    """One call leg (a SIP call, a phone call, a browser): who, where, when, why it ended.

    Written by the gateway's call recorder (:mod:`gateway.records`): inserted when the leg
    starts, updated when it is answered and when it ends. ``room_id`` is no foreign key: the
    records of a deleted room stay. ``node`` names the gateway process that wrote the row
    (host and SIP port), so that it can close its own rows a crash left open.
    """

    __tablename__ = "call_records"
    __table_args__ = (
        sa.Index("ix_call_records_started_at", "started_at"),
        sa.Index("ix_call_records_room_id_started_at", "room_id", "started_at"),
    )

    id: str = Field(primary_key=True, max_length=32)
    room_id: str | None = Field(default=None, max_length=32)
    kind: str = Field(max_length=16)
    display_name: str = Field(max_length=200)
    #: E.164, when the phone network gave one (admin data: shown to admins and organisers).
    caller_number: str | None = Field(default=None, max_length=32)
    codec: str | None = Field(default=None, max_length=32)
    call_id: str | None = Field(default=None, max_length=255)
    node: str = Field(max_length=255)
    started_at: datetime = Field(sa_type=UtcDateTime, nullable=False)
    answered_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UtcDateTime)
    #: Seconds from answer to end (0 for a leg never answered); None while it goes on.
    duration_seconds: float | None = None
    end_reason: str | None = Field(default=None, max_length=16)
    packets_received: int = 0
    packets_sent: int = 0
    packets_lost: int = 0
