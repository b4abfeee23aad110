"""Errors of the room store; each says what is wrong with a room, in a stable code."""

from __future__ import annotations

__all__ = ["InvalidRoom", "NumbersExhausted"]


class InvalidRoom(ValueError):
    """The room as asked for breaks a rule (PINs, schedule); the client's fault."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class NumbersExhausted(RuntimeError):
    """No free number was found after many random draws (never expected in practice)."""
