"""Exceptions of the pure SIP layer.

Whose fault: a :class:`SipParseError` is always the *remote* peer's fault (bad bytes on the wire,
or a message we cannot accept); an :class:`SdpError` is a session description we cannot use.
Both are ``ValueError`` subclasses so that callers who only care about "bad input" can catch
``ValueError``.
"""

from __future__ import annotations

__all__ = ["SdpError", "SipParseError"]


class SipParseError(ValueError):
    """A SIP message (or a part of one: URI, header value) could not be parsed or is invalid.

    ``reason`` is a short human-readable explanation (suitable for a Warning header).
    ``can_respond`` is True when enough of a *request* was read to build a response to it
    (request line, Via, From, To, Call-ID and CSeq present, and not an ACK).
    ``status`` is the status code a UAS should answer with (400 by default; 505 for a bad
    SIP version, 513 for an oversized message).
    """

    def __init__(self, reason: str, *, can_respond: bool = False, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.can_respond = can_respond
        self.status = status

    def __repr__(self) -> str:
        return (
            f"SipParseError({self.reason!r}, can_respond={self.can_respond}, status={self.status})"
        )


class SdpError(ValueError):
    """A session description could not be parsed, or an offer cannot be answered (488)."""
