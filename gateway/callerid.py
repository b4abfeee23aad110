"""Who is calling, and which number they dialled, from a SIP request - pure, no I/O.

Phone networks put the caller's number in the user part of a ``sip:`` (often with
``;user=phone``) or ``tel:`` URI, in P-Asserted-Identity (RFC 3325, set by a trusted trunk) and
in From. Numbers come in every shape: ``+33612345678``, ``0612345678`` (national),
``0033612345678`` (international prefix), ``33612345678`` (country code without ``+``), with
visual separators (``+33-6-12.34.56.78``, ``(06) 12 34 56 78``). :func:`caller_id` and
:func:`dialled_number` normalise them to E.164 with ``phonenumbers``; anything else
(``anonymous``, extensions, names, garbage) gives ``number=None`` and never an exception.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

import phonenumbers

from sip.errors import SipParseError
from sip.headers import NameAddr
from sip.message import Request
from sip.uri import SipUri

__all__ = ["CallerId", "caller_id", "dialled_number", "normalise_number", "same_number"]

MASK = "••"
UNKNOWN_CALLER = "Phone caller"

# Visual separators of RFC 3966 (plus spaces, common in display forms).
_SEPARATORS = str.maketrans("", "", "-.() \t")
_DIGITS = frozenset("0123456789")
_MAX_DIGITS = 20  # E.164 allows 15; leave room for 00 and a national prefix
# User parts that say "no number" (RFC 3323 anonymous, and what trunks send for withheld IDs).
_WITHHELD = frozenset(
    {
        "anonymous",
        "unknown",
        "restricted",
        "unavailable",
        "private",
        "withheld",
        "anonymous.invalid",
    }
)


@dataclass(frozen=True)
class CallerId:
    number: str | None
    """E.164 (``+33612345678``) when the caller ID is a phone number, else None."""
    display_name: str | None
    """The name from the phone network (P-Asserted-Identity or From), cleaned; None if none."""
    raw_user: str | None
    """The user part of the URI the identity came from, as received."""

    def shown(self, *, full: bool) -> str:
        """What the participant list shows: the display name if there is one; else the number,
        its last two digits masked unless ``full``; else the raw user part (masked the same way
        if it is all digits), or "Phone caller"."""
        if self.display_name:
            return self.display_name
        if self.number:
            return self.number if full else _mask(self.number)
        raw = _clean_text(self.raw_user or "")
        if not raw or raw.lower() in _WITHHELD:
            return UNKNOWN_CALLER
        if _is_digit_string(raw):
            return raw if full else _mask(raw)
        return raw


def caller_id(request: Request, region: str) -> CallerId:
    """The caller's identity: P-Asserted-Identity wins over From.

    ``region`` (ISO 3166 code, e.g. ``"FR"``) is how national numbers are read. The number comes
    from the first identity (every P-Asserted-Identity value, then From) that holds one; the
    display name from the first identity that has one. Never raises.
    """
    identities = _identities(request)
    number: str | None = None
    raw_user: str | None = None
    for addr in identities:
        found = _uri_number(addr.uri, region)
        if found is not None:
            number, raw_user = found, addr.uri.user
            break
    if raw_user is None:
        raw_user = next((a.uri.user for a in identities if a.uri.user), None)
    display_name = next(
        (name for name in (_display(a.display_name) for a in identities) if name), None
    )
    return CallerId(number, display_name, raw_user)


def dialled_number(request: Request, region: str) -> str | None:
    """The Request-URI user part (``sip:`` or ``tel:``) as E.164, or None when it is not a
    phone number (a room name, an extension, garbage)."""
    try:
        return _uri_number(request.uri, region)
    except Exception:  # pragma: no cover - defensive: odd input never breaks a call
        return None


def normalise_number(text: str, region: str, *, international: bool = False) -> str | None:
    """``text`` (a number in any of the shapes above) as E.164, or None if it is not one.

    ``international`` says a number without ``+`` most likely starts with its country code
    (``;user=phone`` URIs from some trunks); otherwise national reading comes first.
    """
    try:
        return _normalise(text, region, international=international)
    except Exception:  # pragma: no cover - defensive: phonenumbers on odd input
        return None


def same_number(a: str, b: str, region: str) -> bool:
    """Whether ``a`` and ``b`` are the same phone number once normalised to E.164; False if
    either is not a phone number."""
    na = normalise_number(a, region)
    return na is not None and na == normalise_number(b, region)


# --------------------------------------------------------------------------------------------


def _identities(request: Request) -> list[NameAddr]:
    out: list[NameAddr] = []
    for value in request.headers.get_all("P-Asserted-Identity"):
        addr = _name_addr(value)
        if addr is not None:
            out.append(addr)
    from_ = request.headers.get("From")
    if from_ is not None:
        addr = _name_addr(from_)
        if addr is not None:
            out.append(addr)
    return out


def _name_addr(text: str) -> NameAddr | None:
    try:
        return NameAddr.parse(text)
    except (SipParseError, ValueError):
        return None


def _uri_number(uri: SipUri, region: str) -> str | None:
    """The E.164 number in a ``sip:``/``sips:``/``tel:`` URI's user part, or None."""
    if uri.scheme not in ("sip", "sips", "tel") or not uri.user:
        return None
    # A telephone-subscriber may carry its own parameters (";phone-context=+33;isub=12").
    number, *params = uri.user.split(";")
    context = _phone_context(params) or (
        uri.param("phone-context") if uri.scheme == "tel" else None
    )
    if context and context.startswith("+") and not number.startswith("+"):
        # A local number whose context is a global prefix: read it in that country.
        code = context.translate(_SEPARATORS)[1:]
        if code.isascii() and code.isdigit() and len(code) <= 3:
            local_region = phonenumbers.region_code_for_country_code(int(code))
            if local_region != "ZZ":
                region = local_region
    phone = uri.scheme == "tel" or (uri.param("user") or "").lower() == "phone"
    return normalise_number(number, region, international=phone and uri.scheme != "tel")


def _phone_context(params: list[str]) -> str | None:
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "phone-context":
            return value.strip()
    return None


def _normalise(text: str, region: str, *, international: bool) -> str | None:
    digits = text.translate(_SEPARATORS)
    plus = digits.startswith("+")
    if plus:
        digits = digits[1:]
    if not digits or len(digits) > _MAX_DIGITS or not set(digits) <= _DIGITS:
        return None
    region = region.upper()
    if plus:
        return _parsed("+" + digits, None, loose=True)
    if international and not digits.startswith("0"):
        found = _parsed("+" + digits, None, loose=False)
        if found is not None:
            return found
    found = _parsed(digits, region, loose=digits.startswith("00"))
    if found is None and not digits.startswith("0"):
        found = _parsed("+" + digits, None, loose=False)
    return found


def _parsed(text: str, region: str | None, *, loose: bool) -> str | None:
    """E.164 of ``text`` read in ``region``; valid numbers only, or merely possible ones when
    ``loose`` (the caller said it is international, a new range may be missing from the
    metadata)."""
    if region is not None and region not in phonenumbers.SUPPORTED_REGIONS:
        return None
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    ok = phonenumbers.is_valid_number(parsed) or (loose and phonenumbers.is_possible_number(parsed))
    if not ok:
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _clean_text(text: str) -> str:
    """Without control characters, lone surrogates or other invisibles; whitespace collapsed."""
    kept = "".join(" " if c.isspace() else c for c in text if unicodedata.category(c)[0] != "C")
    return " ".join(kept.split())


def _display(name: str | None) -> str | None:
    """A display name worth showing: cleaned, quotes trimmed, not empty, and not just a number
    (trunks often repeat the number there, which would defeat masking)."""
    if name is None:
        return None
    cleaned = _clean_text(name).strip("\"' ")
    if not cleaned:
        return None
    if _is_digit_string(cleaned.translate(_SEPARATORS)):
        return None
    return cleaned


def _is_digit_string(text: str) -> bool:
    body = text[1:] if text.startswith("+") else text
    return bool(body) and set(body) <= _DIGITS


def _mask(number: str) -> str:
    return number[:-2] + MASK if len(number) > 2 else MASK
