"""The process's log output: human text (the default) or one JSON object per line, every line
about a call carrying its ids, and no secret ever written.

:func:`configure` installs one handler on the root logger (standard error) with two filters,
whatever the format:

- :class:`CallContextFilter` gives each record the ids of the call it is about: ``call_id``
  (the SIP Call-ID), ``room_id`` and ``participant`` (the id the REST API shows). They come
  from ``extra=`` when the log call passes them (:func:`ids`), else from the call the running
  code handles (:func:`enter_call`, a context variable: asyncio tasks started while handling a
  call copy it, so a phone menu's task logs with its call's ids), else, for a participant
  alone, from the participant's call as :func:`attach` recorded it.
- :class:`RedactFilter` rewrites what would leak: bearer tokens and ``token=`` values (join
  links in aiohttp's access log), ``pin=`` values, and phone numbers (E.164, or the digits of a
  ``sip:``/``tel:`` user part), of which only the last two digits are shown.

:class:`JsonFormatter` writes ``time`` (ISO 8601, UTC), ``level``, ``logger``, ``message``, the
ids when known and ``exception`` when there is one.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections import OrderedDict
from contextvars import ContextVar, Token
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Protocol

__all__ = [
    "ID_FIELDS",
    "CallContext",
    "CallContextFilter",
    "JsonFormatter",
    "RedactFilter",
    "TextFormatter",
    "attach",
    "configure",
    "current",
    "enter_call",
    "ids",
    "leave_call",
    "redact",
]

#: Record attributes naming what a line is about, in the order they are written.
ID_FIELDS = ("call_id", "room_id", "participant")

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class _Member(Protocol):
    """What the logs read of a :class:`~gateway.conference.Member`."""

    id: str
    room_id: str


@dataclass
class CallContext:
    """The call that the running code handles. Mutable: the member is attached once the
    call has one, and its room is read when a line is written (the phone menu finds it)."""

    call_id: str | None = None
    member: _Member | None = None

    def fields(self) -> dict[str, str]:
        found: dict[str, str] = {}
        if self.call_id:
            found["call_id"] = self.call_id
        if self.member is not None:
            if self.member.room_id:
                found["room_id"] = self.member.room_id
            found["participant"] = self.member.id
        return found


_CURRENT: ContextVar[CallContext | None] = ContextVar("gateway_call", default=None)

#: Participant id -> SIP Call-ID, for lines that name a participant only (the conference's).
#: Bounded: the oldest are forgotten first.
_CALL_OF: OrderedDict[str, str] = OrderedDict()
_CALL_OF_MAX = 50_000


def enter_call(call_id: str | None, member: _Member | None = None) -> Token[CallContext | None]:
    """From here on (in this context and the tasks it starts), lines are about this call."""
    if member is not None and call_id:
        _remember(member.id, call_id)
    return _CURRENT.set(CallContext(call_id, member))


def leave_call(token: Token[CallContext | None]) -> None:
    _CURRENT.reset(token)


def current() -> CallContext | None:
    """The call being handled, if any (a component may keep it to log with it later)."""
    return _CURRENT.get()


def attach(member: _Member) -> None:
    """The call being handled now has this member (the participant of its leg)."""
    context = _CURRENT.get()
    if context is None:
        return
    context.member = member
    if context.call_id:
        _remember(member.id, context.call_id)


def _remember(participant: str, call_id: str) -> None:
    _CALL_OF[participant] = call_id
    _CALL_OF.move_to_end(participant)
    while len(_CALL_OF) > _CALL_OF_MAX:
        _CALL_OF.popitem(last=False)


def ids(
    member: _Member | None = None,
    *,
    call_id: str | None = None,
    context: CallContext | None = None,
) -> dict[str, str]:
    """``extra=`` for a log call about a member (or a kept :class:`CallContext`)."""
    found = context.fields() if context is not None else {}
    if member is not None:
        found["participant"] = member.id
        if member.room_id:
            found["room_id"] = member.room_id
    if call_id:
        found["call_id"] = call_id
    return found


class CallContextFilter(logging.Filter):
    """Gives every record the ids of its call (see the module's description)."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _CURRENT.get()
        if context is not None:
            for name, value in context.fields().items():
                if not getattr(record, name, None):
                    setattr(record, name, value)
        participant = getattr(record, "participant", None)
        if participant and not getattr(record, "call_id", None):
            call_id = _CALL_OF.get(str(participant))
            if call_id:
                record.call_id = call_id
        return True


# -- redaction -------------------------------------------------------------------------------
_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]+")
_TOKEN = re.compile(r"(?i)\b((?:access_)?token)=[^&\s\"'#;,]+")
_PIN = re.compile(r"(?i)\b((?:host_)?pin[\"']?\s*[:=]\s*[\"']?)\d+")
#: An E.164 number, or the digits of a sip:/tel: user part, anywhere in a line.
_E164 = re.compile(r"(?<![\w+])\+\d{5,15}(?!\d)")
_URI_USER = re.compile(r"(?i)\b((?:sips?|tel):)(\+?)(\d{5,})(?=[@;>\s\"']|$)")
MASK = "*"


def _mask_digits(digits: str) -> str:
    """All but the last two digits masked."""
    return MASK * max(len(digits) - 2, 0) + digits[-2:]


def redact(text: str) -> str:
    """``text`` with tokens, PINs and phone numbers (but their last two digits) masked."""
    text = _BEARER.sub(r"\1 [redacted]", text)
    text = _TOKEN.sub(r"\1=[redacted]", text)
    text = _PIN.sub(r"\1[redacted]", text)
    text = _URI_USER.sub(lambda m: m[1] + m[2] + _mask_digits(m[3]), text)
    return _E164.sub(lambda m: "+" + _mask_digits(m[0][1:]), text)


class RedactFilter(logging.Filter):
    """Rewrites each record's message (its arguments merged in) and exception text through
    :func:`redact`, before any formatter sees it."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


# -- formats ---------------------------------------------------------------------------------
class TextFormatter(logging.Formatter):
    """The human format, with the call's ids at the end of a line about a call."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        known = [f"{name}={getattr(record, name)}" for name in ID_FIELDS if _has(record, name)]
        if not known:
            return line
        first, newline, rest = line.partition("\n")
        return f"{first} [{' '.join(known)}]{newline}{rest}"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in ID_FIELDS:
            if _has(record, name):
                entry[name] = str(getattr(record, name))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        return json.dumps(entry, ensure_ascii=False)


def _has(record: logging.LogRecord, name: str) -> bool:
    return bool(getattr(record, name, None))


def configure(level: str, fmt: str = "text", stream: IO[str] | None = None) -> logging.Handler:
    """Log at ``level`` to ``stream`` (standard error) in ``fmt`` (``text`` or ``json``),
    through the id and redaction filters. Replaces any handler the root logger had."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(CallContextFilter())
    handler.addFilter(RedactFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    return handler
