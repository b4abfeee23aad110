"""Room numbers: 10 digits, first digit not 0, drawn at random, never handed out twice.

Every number handed out is recorded in ``allocated_numbers`` and that row is never deleted, so a
deleted room's number is not reused. The primary key on that table is what makes numbers unique,
even with several processes; ``rooms.number`` is also unique and refers to it.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from rooms.errors import NumbersExhausted
from rooms.models import AllocatedNumber, utcnow

__all__ = ["MAX_DRAWS", "NUMBER_DIGITS", "allocate_number", "is_room_number", "random_number"]

NUMBER_DIGITS = 10
_LOW = 10 ** (NUMBER_DIGITS - 1)
_SPAN = 9 * _LOW
#: Draws before giving up; with 9e9 numbers a collision is already rare.
MAX_DRAWS = 100


def random_number(randbelow: Callable[[int], int] = secrets.randbelow) -> str:
    """A uniformly random 10-digit number whose first digit is not 0 (CSPRNG)."""
    return str(_LOW + randbelow(_SPAN))


def is_room_number(value: str) -> bool:
    return len(value) == NUMBER_DIGITS and value.isascii() and value.isdigit() and value[0] != "0"


def _claim(session: Session, number: str) -> bool:
    """Record ``number`` unless it is already recorded; True if this call recorded it."""
    allocated_at = utcnow()
    dialect = session.get_bind().dialect.name
    if dialect in ("postgresql", "sqlite"):
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = (
            insert(AllocatedNumber)
            .values(number=number, allocated_at=allocated_at)
            .on_conflict_do_nothing()
            .returning(col(AllocatedNumber.number))
        )
        return session.connection().execute(statement).first() is not None
    taken = session.exec(
        select(AllocatedNumber.number).where(AllocatedNumber.number == number)
    ).first()
    if taken is not None:
        return False
    session.add(AllocatedNumber(number=number, allocated_at=allocated_at))
    session.flush()
    return True


def allocate_number(session: Session, source: Callable[[], str] | None = None) -> str:
    """Record and return a number never handed out before, inside the caller's transaction.

    One ``INSERT ... ON CONFLICT DO NOTHING`` per draw: a number already recorded (by anyone,
    even a concurrent transaction) is skipped and another one drawn.
    """
    draw = source or random_number
    for _ in range(MAX_DRAWS):
        candidate = draw()
        if not is_room_number(candidate):
            raise ValueError(f"number source gave {candidate!r}")
        if _claim(session, candidate):
            return candidate
    raise NumbersExhausted(f"no free room number after {MAX_DRAWS} draws")
