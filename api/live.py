"""The API's view of live calls: who is in a room, and what an admin may do to them.

:class:`LiveCalls` is the protocol the REST routes use; the gateway's conference implements it
and is passed to :func:`api.app.create_app`. :class:`InMemoryLiveCalls` is the default: an
empty registry until something puts participants in it (tests do).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Protocol, runtime_checkable

from aiohttp import web

__all__ = ["LIVE", "InMemoryLiveCalls", "LiveCalls", "Participant", "RoomObserver"]


@dataclass(frozen=True)
class Participant:
    """One participant as the API shows it."""

    id: str
    display_name: str
    kind: str  # "sip", "phone", "browser"
    role: str  # "organiser", "guest", "spectator"
    state: str  # "waiting", "joined"
    muted: bool
    joined_at: datetime
    #: The caller's number in E.164 when the phone network gave one (admins and organisers
    #: see it; ``display_name`` never shows it in full).
    caller_number: str | None = None
    #: Heard talking now (the mixer's talker detection).
    talking: bool = False


class LiveCalls(Protocol):
    """What the REST API asks of the calls in progress. ``None``/``False``: no such participant."""

    async def participants(self, room_id: str) -> list[Participant]: ...

    async def mute(self, room_id: str, participant_id: str, muted: bool) -> Participant | None: ...

    async def admit(self, room_id: str, participant_id: str) -> Participant | None: ...

    async def remove(self, room_id: str, participant_id: str) -> bool: ...

    async def refuse(self, room_id: str, participant_id: str) -> bool | None:
        """Turn a waiting participant away (told why, then its leg ends). None: no such
        participant; False: it is not waiting."""
        ...

    async def admit_all(self, room_id: str) -> list[Participant]:
        """Let every waiting participant in; returns those let in."""
        ...

    async def mute_all(self, room_id: str, muted: bool) -> list[Participant]:
        """Mute (or unmute) everyone but the organisers; returns those changed."""
        ...

    async def ask_unmute(self, room_id: str, participant_id: str) -> bool | None:
        """Ask a muted participant to unmute itself (a prompt or a message). None: no such
        participant; False: it cannot (not muted, or a spectator)."""
        ...

    async def end_room(self, room_id: str) -> None:
        """End every call in the room (the room was deleted)."""
        ...


#: Where :func:`api.app.create_app` keeps the live calls it was given.
LIVE = web.AppKey[LiveCalls]("live")


@runtime_checkable
class RoomObserver(Protocol):
    """Optional extra of a :class:`LiveCalls`: told after a room was changed (PATCH), so calls
    can react (e.g. the room was deactivated or its window moved)."""

    async def room_changed(self, room_id: str) -> None: ...


class InMemoryLiveCalls:
    """A registry of participants kept in memory; empty until :meth:`add` is called."""

    def __init__(self) -> None:
        self.rooms: dict[str, dict[str, Participant]] = {}
        self.ended: list[str] = []
        self.changed: list[str] = []

    def add(self, room_id: str, participant: Participant) -> None:
        self.rooms.setdefault(room_id, {})[participant.id] = participant

    async def participants(self, room_id: str) -> list[Participant]:
        return sorted(self.rooms.get(room_id, {}).values(), key=lambda p: p.joined_at)

    async def mute(self, room_id: str, participant_id: str, muted: bool) -> Participant | None:
        room = self.rooms.get(room_id, {})
        if participant_id not in room:
            return None
        room[participant_id] = replace(room[participant_id], muted=muted)
        return room[participant_id]

    async def admit(self, room_id: str, participant_id: str) -> Participant | None:
        room = self.rooms.get(room_id, {})
        if participant_id not in room:
            return None
        room[participant_id] = replace(room[participant_id], state="joined")
        return room[participant_id]

    async def remove(self, room_id: str, participant_id: str) -> bool:
        return self.rooms.get(room_id, {}).pop(participant_id, None) is not None

    async def refuse(self, room_id: str, participant_id: str) -> bool | None:
        room = self.rooms.get(room_id, {})
        if participant_id not in room:
            return None
        if room[participant_id].state != "waiting":
            return False
        del room[participant_id]
        return True

    async def admit_all(self, room_id: str) -> list[Participant]:
        room = self.rooms.get(room_id, {})
        waiting = [p for p in room.values() if p.state == "waiting"]
        for p in waiting:
            room[p.id] = replace(p, state="joined")
        return [room[p.id] for p in waiting]

    async def mute_all(self, room_id: str, muted: bool) -> list[Participant]:
        room = self.rooms.get(room_id, {})
        changed = [p for p in room.values() if p.role != "organiser" and p.muted != muted]
        for p in changed:
            room[p.id] = replace(p, muted=muted)
        return [room[p.id] for p in changed]

    async def ask_unmute(self, room_id: str, participant_id: str) -> bool | None:
        p = self.rooms.get(room_id, {}).get(participant_id)
        if p is None:
            return None
        return p.muted and p.role != "spectator"

    async def end_room(self, room_id: str) -> None:
        self.rooms.pop(room_id, None)
        self.ended.append(room_id)

    async def room_changed(self, room_id: str) -> None:
        self.changed.append(room_id)
