"""DTMF in SIP INFO requests: the body in, one :class:`~dtmf.events.Digit` (or None) out.

Two body formats are in the wild:

* ``application/dtmf-relay`` (Cisco and most PBXs)::

      Signal=5
      Duration=160

  keys case-insensitive, spaces around ``=`` allowed, CRLF or LF line ends; Duration in ms.
* ``application/dtmf``: the body is just the digit (a ``Signal=`` body sent under this
  type by mistake is accepted too).

Besides ``0-9 * # A-D`` (any case), some devices send the RFC 4733 event number instead of
the character for the non-numeric keys: 10 for ``*``, 11 for ``#`` and 12-15 for ``A-D``.

The body comes from the network: anything unexpected yields None, never an exception.
"""

from __future__ import annotations

from dtmf.events import DIGITS, Digit

__all__ = ["DTMF_CONTENT_TYPES", "is_dtmf_info", "parse_info", "parse_signal"]

DTMF_RELAY = "application/dtmf-relay"
DTMF = "application/dtmf"
DTMF_CONTENT_TYPES = frozenset({DTMF_RELAY, DTMF})

_MAX_DURATION_MS = 3_600_000  # larger values are nonsense; reported as unknown (None)


def _media_type(content_type: str | None) -> str | None:
    """``type/subtype`` lowercased, without parameters; None when absent."""
    if content_type is None:
        return None
    return content_type.split(";", 1)[0].strip().lower()


def is_dtmf_info(content_type: str | None) -> bool:
    """True when an INFO with this Content-Type carries a digit we can parse (so the call
    should answer it 200 and feed the body to :func:`parse_info`)."""
    return _media_type(content_type) in DTMF_CONTENT_TYPES


def _small_int(text: str, max_digits: int) -> int | None:
    """A plain ASCII decimal of at most ``max_digits`` digits, else None (no sign, no
    Unicode digits, no huge numbers)."""
    if not text or len(text) > max_digits or not (text.isascii() and text.isdigit()):
        return None
    return int(text)


def parse_signal(text: str) -> str | None:
    """One digit from a Signal value: ``0-9``, ``*``, ``#``, ``A-D`` (any case) or the event
    number 10-15 for ``* # A B C D``; None for anything else."""
    value = text.strip()
    if len(value) == 1 and value.upper() in DIGITS:
        return value.upper()
    n = _small_int(value, 2)
    if n is not None and n < len(DIGITS):
        return DIGITS[n]
    return None


def _parse_relay(text: str) -> tuple[str, int | None] | None:
    signal: str | None = None
    duration: int | None = None
    seen_signal = seen_duration = False
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if not sep:
            continue
        key = key.strip().lower()
        if key == "signal" and not seen_signal:
            seen_signal = True
            signal = parse_signal(value)
        elif key == "duration" and not seen_duration:
            seen_duration = True
            ms = _small_int(value.strip(), 7)
            duration = ms if ms is not None and ms <= _MAX_DURATION_MS else None
    if signal is None:
        return None
    return signal, duration


def parse_info(content_type: str | None, body: bytes, now: float) -> Digit | None:
    """The digit an INFO body carries (method ``"info"``, stamped ``now``), or None when the
    Content-Type is not a DTMF one or the body has no valid digit. Never raises.

    For ``application/dtmf-relay`` the first Signal line counts, and Duration (ms) becomes
    ``duration_ms`` when present and sane (else None: the digit still counts).
    """
    media = _media_type(content_type)
    if media not in DTMF_CONTENT_TYPES:
        return None
    text = body.decode("utf-8", errors="replace")
    if media == DTMF_RELAY:
        parsed = _parse_relay(text)
        if parsed is None:
            return None
        digit, duration = parsed
        return Digit(digit, "info", now, duration)
    single = parse_signal(text)
    if single is not None:
        return Digit(single, "info", now)
    # Some devices label a dtmf-relay body application/dtmf; accept that too.
    parsed = _parse_relay(text)
    return None if parsed is None else Digit(parsed[0], "info", now, parsed[1])
