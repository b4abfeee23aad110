"""Who a participant is in a room: organiser, guest or spectator."""

from __future__ import annotations

import hmac
from enum import StrEnum
from typing import Protocol

__all__ = ["Role", "role_for_pin"]


class Role(StrEnum):
    ORGANISER = "organiser"
    GUEST = "guest"
    SPECTATOR = "spectator"


class _HasPins(Protocol):
    @property
    def pin(self) -> str | None: ...

    @property
    def host_pin(self) -> str | None: ...


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def role_for_pin(room: _HasPins, entered: str | None) -> Role | None:
    """The role a caller gets by typing ``entered``; None: wrong PIN.

    The host PIN makes the caller organiser; the room PIN (or no PIN at all when the room has
    none) makes a guest.
    """
    if room.host_pin and entered is not None and _same(entered, room.host_pin):
        return Role.ORGANISER
    if room.pin is None:
        return Role.GUEST
    if entered is not None and _same(entered, room.pin):
        return Role.GUEST
    return None
