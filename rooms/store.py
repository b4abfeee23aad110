"""The room store: the one place rooms are created, read, changed and deleted.

Synchronous (sqlmodel sessions); async callers run the methods in a thread
(``await asyncio.to_thread(store.get, room_id)``). Results are plain frozen :class:`RoomData`
values, safe to pass between threads. Rules (PINs, schedule) are checked here, so every caller
gets the same answers; a broken rule raises :class:`~rooms.errors.InvalidRoom`.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import threading
import uuid
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import Engine, delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from rooms import numbers
from rooms.admin import AdminAuth, ensure_admin_token
from rooms.cache import MISS, TtlCache
from rooms.errors import InvalidRoom, NumbersExhausted
from rooms.models import LinkToken, Room, utcnow
from rooms.pins import check_pins
from rooms.roles import Role
from rooms.schedule import is_active, resolve_window

__all__ = [
    "WRITABLE_FIELDS",
    "AdminAuth",
    "InvalidRoom",
    "RoomData",
    "RoomSpec",
    "RoomStore",
    "ensure_admin_token",
    "new_link_token",
]

logger = logging.getLogger(__name__)

#: Fields a client may set on create and change with PATCH.
WRITABLE_FIELDS = frozenset(
    {
        "name",
        "permanent",
        "starts_at",
        "ends_at",
        "pin",
        "host_pin",
        "waiting_room",
        "wait_for_host",
        "locked",
        "active",
    }
)
_CREATE_ATTEMPTS = 5


def new_link_token() -> str:
    """A join-link secret: 192 random bits, URL-safe."""
    return secrets.token_urlsafe(24)


@dataclass(frozen=True)
class RoomSpec:
    """What a client asks for; defaults are the contract's."""

    name: str
    permanent: bool = True
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    pin: str | None = None
    host_pin: str | None = None
    waiting_room: bool = False
    wait_for_host: bool = False
    locked: bool = False
    active: bool = True


@dataclass(frozen=True)
class RoomData:
    """A stored room. ``active`` is the admin switch; see :meth:`is_active_at` for calls."""

    id: str
    name: str
    number: str
    pin: str | None
    host_pin: str | None
    permanent: bool
    starts_at: datetime | None
    ends_at: datetime | None
    active: bool
    waiting_room: bool
    wait_for_host: bool
    created_at: datetime
    locked: bool = False
    tokens: Mapping[Role, str] = field(default_factory=dict)
    ends_at_auto: bool = False

    def is_active_at(self, now: datetime | None = None) -> bool:
        """The admin switch and the schedule together: may calls join now?"""
        return is_active(self, now)

    def role_for_token(self, token: str) -> Role | None:
        """The role whose link token is ``token`` (constant-time comparison); None: no match."""
        found: Role | None = None
        presented = token.encode("utf-8", "surrogatepass")
        for role, secret in self.tokens.items():
            if hmac.compare_digest(presented, secret.encode()):
                found = role
        return found


def _local(value: datetime | None, offset_minutes: int | None) -> datetime | None:
    if value is None or offset_minutes is None:
        return value
    return value.astimezone(timezone(timedelta(minutes=offset_minutes)))


def _offset_minutes(value: datetime | None) -> int | None:
    if value is None:
        return None
    offset = value.utcoffset()
    assert offset is not None
    return int(offset.total_seconds() // 60)


def _data(room: Room, tokens: Mapping[Role, str]) -> RoomData:
    return RoomData(
        id=room.id,
        name=room.name,
        number=room.number,
        pin=room.pin,
        host_pin=room.host_pin,
        permanent=room.permanent,
        starts_at=_local(room.starts_at, room.utc_offset_minutes),
        ends_at=_local(room.ends_at, room.utc_offset_minutes),
        active=room.active,
        waiting_room=room.waiting_room,
        wait_for_host=room.wait_for_host,
        locked=room.locked,
        created_at=room.created_at,
        tokens=dict(tokens),
        ends_at_auto=room.ends_at_auto,
    )


def _validated(spec: RoomSpec) -> tuple[RoomSpec, bool]:
    """Check a whole room (create, or the merged result of a change); fill the midnight rule."""
    name = spec.name
    if not isinstance(name, str) or not 1 <= len(name) <= 200:
        raise InvalidRoom("invalid_name", "name must be 1 to 200 characters")
    if "\x00" in name:
        raise InvalidRoom("invalid_name", "name must not contain NUL characters")
    check_pins(spec.pin, spec.host_pin)
    starts_at, ends_at, auto = resolve_window(spec.permanent, spec.starts_at, spec.ends_at)
    return replace(spec, starts_at=starts_at, ends_at=ends_at), auto


class RoomStore:
    """Rooms in the database behind ``engine`` (schema already upgraded).

    Lookups by number (every incoming call makes one) are remembered for ``cache_seconds``;
    this store's own writes take effect at once, another process's within that time.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        number_source: Callable[[], str] | None = None,
        cache_seconds: float = 2.0,
    ) -> None:
        self.engine = engine
        self._number_source = number_source
        self._by_number: TtlCache[RoomData | None] = TtlCache(cache_seconds)
        # SQLite has one writer at a time and may refuse (not wait for) a reader that turns
        # writer; writes of this process take turns instead.
        self._write_lock: AbstractContextManager[object] = (
            threading.Lock() if engine.dialect.name == "sqlite" else nullcontext()
        )

    def _draw(self) -> str:
        # Looked up at call time so tests can substitute ``rooms.numbers.random_number``.
        return (self._number_source or numbers.random_number)()

    def _tokens(self, session: Session, room_ids: list[str]) -> dict[str, dict[Role, str]]:
        out: dict[str, dict[Role, str]] = {room_id: {} for room_id in room_ids}
        if room_ids:
            rows = session.exec(select(LinkToken).where(col(LinkToken.room_id).in_(room_ids)))
            for row in rows:
                out[row.room_id][Role(row.role)] = row.token
        return out

    # -- create ------------------------------------------------------------------------------
    def create(self, spec: RoomSpec) -> RoomData:
        spec, auto = _validated(spec)
        last: IntegrityError | None = None
        for _ in range(_CREATE_ATTEMPTS):
            try:
                with self._write_lock:
                    return self._insert(spec, auto)
            except IntegrityError as exc:  # a concurrent writer took the number: draw again
                logger.warning("room creation collided, retrying: %s", exc.orig)
                last = exc
        raise NumbersExhausted("could not store the room") from last

    def _insert(self, spec: RoomSpec, auto: bool) -> RoomData:
        with Session(self.engine, expire_on_commit=False) as session:
            number = numbers.allocate_number(session, self._draw)
            room = Room(
                id=uuid.uuid4().hex,
                name=spec.name,
                number=number,
                pin=spec.pin,
                host_pin=spec.host_pin,
                permanent=spec.permanent,
                starts_at=spec.starts_at,
                ends_at=spec.ends_at,
                utc_offset_minutes=_offset_minutes(spec.starts_at),
                ends_at_auto=auto,
                active=spec.active,
                waiting_room=spec.waiting_room,
                wait_for_host=spec.wait_for_host,
                locked=spec.locked,
                created_at=utcnow(),
            )
            session.add(room)
            session.flush()
            tokens = {role: new_link_token() for role in Role}
            for role, token in tokens.items():
                session.add(LinkToken(token=token, room_id=room.id, role=role.value))
            session.commit()
            self._by_number.drop(number)  # someone may have dialled it before it existed
            session.refresh(room)
            return _data(room, tokens)

    # -- read --------------------------------------------------------------------------------
    def list(self) -> list[RoomData]:
        with Session(self.engine) as session:
            rooms = list(session.exec(select(Room).order_by(col(Room.created_at), col(Room.id))))
            tokens = self._tokens(session, [r.id for r in rooms])
            return [_data(r, tokens[r.id]) for r in rooms]

    def get(self, room_id: str) -> RoomData | None:
        with Session(self.engine) as session:
            room = session.get(Room, room_id)
            if room is None:
                return None
            return _data(room, self._tokens(session, [room.id])[room.id])

    def find_by_number(self, number: str) -> RoomData | None:
        """The room with this number (a SIP user part or a phone-menu code); None: no room."""
        if not numbers.is_room_number(number):
            return None
        found = self._by_number.get(number)
        if found is not MISS:
            return found  # type: ignore[return-value]
        generation = self._by_number.generation
        with Session(self.engine) as session:
            room = session.exec(select(Room).where(Room.number == number)).first()
            data = None if room is None else _data(room, self._tokens(session, [room.id])[room.id])
        self._by_number.put(number, data, generation)
        return data

    def cached_by_number(self, number: str) -> tuple[bool, RoomData | None]:
        """(True, room or None) when :meth:`find_by_number` would answer from memory; else
        (False, None): the caller then runs ``find_by_number`` in a thread."""
        if not numbers.is_room_number(number):
            return True, None
        found = self._by_number.get(number)
        if found is MISS:
            return False, None
        return True, found  # type: ignore[return-value]

    def find_link(self, number: str, token: str) -> tuple[RoomData, Role] | None:
        """The room and role a join link ``/join/NUMBER?token=TOKEN`` stands for; None: bad link."""
        room = self.find_by_number(number)
        if room is None:
            return None
        role = room.role_for_token(token)
        return None if role is None else (room, role)

    def find_token(self, token: str) -> tuple[str, Role] | None:
        """The room id and role of a link token, whatever the room; None: no such link."""
        if not token or len(token) > 64:
            return None
        with Session(self.engine) as session:
            row = session.get(LinkToken, token)
            return None if row is None else (row.room_id, Role(row.role))

    # -- change ------------------------------------------------------------------------------
    def update(self, room_id: str, changes: Mapping[str, Any]) -> RoomData | None:
        """Apply ``changes`` (writable fields only) and check the merged room; None: no room.

        Switching a room to permanent drops its schedule unless the same change sets one
        (which is then refused). A derived ``ends_at`` (midnight rule) follows a new
        ``starts_at``; ``"ends_at": None`` on a scheduled room asks for the midnight rule.
        """
        unknown = set(changes) - WRITABLE_FIELDS
        if unknown:
            raise InvalidRoom("unknown_field", f"not writable: {', '.join(sorted(unknown))}")
        with self._write_lock, Session(self.engine, expire_on_commit=False) as session:
            room = session.get(Room, room_id)
            if room is None:
                return None
            current = _data(room, {})
            merged: dict[str, Any] = {
                name: getattr(current, name) for name in WRITABLE_FIELDS if name != "ends_at"
            }
            merged.update({k: v for k, v in changes.items() if k != "ends_at"})
            if "ends_at" in changes:
                merged["ends_at"] = changes["ends_at"]
            elif current.ends_at_auto:
                merged["ends_at"] = None  # derived: recompute the midnight rule
            else:
                merged["ends_at"] = current.ends_at
            if changes.get("permanent") is True:
                for key in ("starts_at", "ends_at"):
                    if key not in changes:
                        merged[key] = None
            spec, auto = _validated(RoomSpec(**merged))
            room.name = spec.name
            room.permanent = spec.permanent
            room.starts_at = spec.starts_at
            room.ends_at = spec.ends_at
            room.utc_offset_minutes = _offset_minutes(spec.starts_at)
            room.ends_at_auto = auto
            room.pin = spec.pin
            room.host_pin = spec.host_pin
            room.waiting_room = spec.waiting_room
            room.wait_for_host = spec.wait_for_host
            room.locked = spec.locked
            room.active = spec.active
            session.add(room)
            session.commit()
            self._by_number.drop(room.number)
            session.refresh(room)
            return _data(room, self._tokens(session, [room.id])[room.id])

    def delete(self, room_id: str) -> bool:
        """Delete a room and its links; its number stays allocated forever. False: no room."""
        with self._write_lock, Session(self.engine) as session:
            room = session.get(Room, room_id)
            if room is None:
                return False
            session.execute(delete(LinkToken).where(col(LinkToken.room_id) == room_id))
            session.delete(room)
            session.commit()
            self._by_number.drop(room.number)
            return True
