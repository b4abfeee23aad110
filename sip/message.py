"""SIP messages: parse and serialise (RFC 3261 sections 7, 8.2.6, 18.3 and 25) - pure, no I/O.

``parse(bytes) -> Request | Response`` raises :class:`SipParseError` and nothing else.
``serialise(msg) -> bytes`` always writes a correct Content-Length. For every ``m`` returned by
:func:`parse`, ``parse(serialise(m)) == m``: parsing normalises (canonical header names, unfolded
header values, Content-Length rewritten to the body length, canonical Request-URI).

Framing: :func:`parse` treats its input as one datagram (missing Content-Length: the body is the
rest; surplus octets after Content-Length are discarded, RFC 3261 18.3). For stream transports,
:func:`frame_length` finds where the first message in a buffer ends.
"""

from __future__ import annotations

import functools
import re
import secrets
from dataclasses import dataclass

from sip.errors import SipParseError
from sip.headers import (
    COMPACT_FORMS,
    Headers,
    NameAddr,
    Via,
    canonical_name,
    is_token,
    parse_params,
    quote,
    split_commas,
)
from sip.uri import SipUri

__all__ = [
    "BRANCH_MAGIC_COOKIE",
    "COMPACT_FORMS",
    "MAX_MESSAGE_SIZE",
    "REASON_PHRASES",
    "Headers",
    "Message",
    "NameAddr",
    "Request",
    "Response",
    "SipParseError",
    "SipUri",
    "Via",
    "frame_length",
    "make_request",
    "make_response",
    "new_branch",
    "new_call_id",
    "new_tag",
    "parse",
    "parse_error_response",
    "reason_phrase",
    "serialise",
    "split_commas",
    "strip_keepalive",
]

MAX_MESSAGE_SIZE = 65535
BRANCH_MAGIC_COOKIE = "z9hG4bK"
SIP_VERSION = "SIP/2.0"

REASON_PHRASES: dict[int, str] = {
    100: "Trying",
    180: "Ringing",
    181: "Call Is Being Forwarded",
    182: "Queued",
    183: "Session Progress",
    199: "Early Dialog Terminated",
    200: "OK",
    202: "Accepted",
    204: "No Notification",
    300: "Multiple Choices",
    301: "Moved Permanently",
    302: "Moved Temporarily",
    305: "Use Proxy",
    380: "Alternative Service",
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment Required",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    407: "Proxy Authentication Required",
    408: "Request Timeout",
    410: "Gone",
    413: "Request Entity Too Large",
    414: "Request-URI Too Long",
    415: "Unsupported Media Type",
    416: "Unsupported URI Scheme",
    420: "Bad Extension",
    421: "Extension Required",
    422: "Session Interval Too Small",
    423: "Interval Too Brief",
    480: "Temporarily Unavailable",
    481: "Call/Transaction Does Not Exist",
    482: "Loop Detected",
    483: "Too Many Hops",
    484: "Address Incomplete",
    485: "Ambiguous",
    486: "Busy Here",
    487: "Request Terminated",
    488: "Not Acceptable Here",
    489: "Bad Event",
    491: "Request Pending",
    493: "Undecipherable",
    500: "Server Internal Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Server Time-out",
    505: "Version Not Supported",
    513: "Message Too Large",
    580: "Precondition Failure",
    600: "Busy Everywhere",
    603: "Decline",
    604: "Does Not Exist Anywhere",
    606: "Not Acceptable",
}

_CLASS_PHRASES = {
    1: "Provisional",
    2: "Success",
    3: "Redirection",
    4: "Client Error",
    5: "Server Error",
    6: "Global Failure",
}


def reason_phrase(status: int) -> str:
    """The default reason phrase for ``status``."""
    return REASON_PHRASES.get(status) or _CLASS_PHRASES.get(status // 100, "Unknown")


# --------------------------------------------------------------------------------------------
# Messages


# A transaction and its dialog read the same From, To and Via values several times per
# message, and every message of a call repeats them: parse each distinct value once. The
# results are frozen values; the caches are bounded, so hostile traffic cannot grow them.
_name_addr = functools.lru_cache(maxsize=1024)(NameAddr.parse)
_via = functools.lru_cache(maxsize=1024)(Via.parse)


class _Accessors:
    """Typed accessors shared by Request and Response. They raise SipParseError when the header
    is missing or malformed (never the case for a message returned by :func:`parse`)."""

    headers: Headers

    def _one(self, name: str) -> str:
        value = self.headers.get(name)
        if value is None:
            raise SipParseError(f"missing {name}")
        return value

    @property
    def call_id(self) -> str:
        return self._one("Call-ID")

    @property
    def cseq(self) -> tuple[int, str]:
        return _parse_cseq(self._one("CSeq"))

    @property
    def vias(self) -> list[Via]:
        return [_via(v) for v in self.headers.get_all("Via")]

    @property
    def top_via(self) -> Via:
        values = self.headers.get_all("Via")
        if not values:
            raise SipParseError("missing Via")
        return _via(values[0])

    @property
    def branch(self) -> str | None:
        return self.top_via.branch

    @property
    def from_(self) -> NameAddr:
        return _name_addr(self._one("From"))

    @property
    def to(self) -> NameAddr:
        return _name_addr(self._one("To"))

    @property
    def from_tag(self) -> str | None:
        return self.from_.tag

    @property
    def to_tag(self) -> str | None:
        return self.to.tag

    @property
    def contact(self) -> list[NameAddr]:
        """Contact values (a ``*`` wildcard is skipped; see :attr:`contact_is_wildcard`)."""
        return [_name_addr(v) for v in self.headers.get_all("Contact") if v != "*"]

    @property
    def contact_is_wildcard(self) -> bool:
        return "*" in self.headers.get_all("Contact")

    @property
    def route(self) -> list[NameAddr]:
        return [_name_addr(v) for v in self.headers.get_all("Route")]

    @property
    def record_route(self) -> list[NameAddr]:
        return [_name_addr(v) for v in self.headers.get_all("Record-Route")]

    @property
    def content_type(self) -> str | None:
        """Media type (``type/subtype``, lower-cased, parameters dropped) or None."""
        value = self.headers.get("Content-Type")
        if value is None:
            return None
        return value.split(";", 1)[0].strip().lower() or None

    @property
    def max_forwards(self) -> int | None:
        value = self.headers.get("Max-Forwards")
        if value is None or not _is_digits(value.strip(), 10):
            return None
        return int(value)

    @property
    def expires(self) -> int | None:
        """Expires header in seconds; None if absent or not a number (huge values clip to
        2**32 - 1)."""
        value = self.headers.get("Expires")
        if value is None or not (value.isascii() and value.isdigit()):
            return None
        return min(int(value[:12]), 2**32 - 1)

    def option_tags(self, name: str) -> list[str]:
        """Tokens of Supported/Require/Proxy-Require/Unsupported, lower-cased."""
        return [v.lower() for v in self.headers.get_all(name)]

    @property
    def supported(self) -> list[str]:
        return self.option_tags("Supported")

    @property
    def require(self) -> list[str]:
        return self.option_tags("Require")


@dataclass(frozen=True, eq=True)
class Request(_Accessors):
    method: str
    uri: SipUri
    headers: Headers
    body: bytes = b""
    version: str = SIP_VERSION

    def __bytes__(self) -> bytes:
        return serialise(self)

    @property
    def start_line(self) -> str:
        return f"{self.method} {self.uri} {self.version}"


@dataclass(frozen=True, eq=True)
class Response(_Accessors):
    status: int
    reason: str
    headers: Headers
    body: bytes = b""
    version: str = SIP_VERSION

    def __bytes__(self) -> bytes:
        return serialise(self)

    @property
    def start_line(self) -> str:
        return f"{self.version} {self.status} {self.reason}"


Message = Request | Response


# --------------------------------------------------------------------------------------------
# Parsing

_CSEQ_RE = re.compile(r"\s*([0-9]+)\s+(\S+)\s*")
_DATE_RE = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} "
    r"[0-9]{2}:[0-9]{2}:[0-9]{2} GMT"
)
_MEDIA_TYPE_RE = re.compile(
    r"([A-Za-z0-9.!%*_+`'~\-]+)\s*/\s*([A-Za-z0-9.!%*_+`'~\-]+)\s*(;.*)?", re.S
)
_CALL_ID_RE = re.compile(r"[\x21-\x7e]+")
_CRLF_SPLIT = re.compile(r"\r?\n")
_LWS = " \t"


def _is_digits(text: str, max_len: int) -> bool:
    return 0 < len(text) <= max_len and text.isascii() and text.isdigit()


def _parse_cseq(value: str) -> tuple[int, str]:
    m = _CSEQ_RE.fullmatch(value)
    if m is None or not is_token(m.group(2)):
        raise SipParseError("malformed CSeq")
    digits = m.group(1).lstrip("0")
    if len(digits) > 10 or int(digits or "0") >= 2**31:
        raise SipParseError("CSeq number too large")
    return int(digits or "0"), m.group(2)


@dataclass
class _Raw:
    """A leniently split message: start line, unfolded headers, the octets after the blank
    line. ``problem`` is the first framing error seen (None if the head was clean)."""

    start: str
    headers: list[tuple[str, str]]
    rest: bytes
    problem: str | None

    @property
    def is_request(self) -> bool:
        return self.start[:4].upper() != "SIP/" and is_token(self.start.split(" ", 1)[0])

    def get(self, name: str) -> str | None:
        key = canonical_name(name).lower()
        for n, v in self.headers:
            if n.lower() == key:
                return v
        return None

    def respondable(self) -> bool:
        if not self.is_request or self.start.split(" ", 1)[0] == "ACK":
            return False
        return all(self.get(name) is not None for name in ("Via", "From", "To", "Call-ID", "CSeq"))


def _find_head_end(data: bytes) -> tuple[int, int] | None:
    """(index of the end of the header section, index where the body starts) or None."""
    a = data.find(b"\r\n\r\n")
    b = data.find(b"\n\n")
    if a < 0 and b < 0:
        return None
    if b < 0 or (0 <= a < b):
        return a, a + 4
    return b, b + 2


def strip_keepalive(buf: bytes) -> bytes:
    """Drop leading CR/LF octets (RFC 5626 keep-alives, RFC 3261 7.5 stray CRLFs)."""
    return buf.lstrip(b"\r\n")


def _split(data: bytes) -> _Raw:
    data = strip_keepalive(data)
    problem: str | None = None
    end = _find_head_end(data)
    if end is None:
        head, rest = data.rstrip(b"\r\n"), b""
        problem = "no blank line after the headers"
    else:
        head, rest = data[: end[0]], data[end[1] :]
    if not head:
        raise SipParseError("empty message")
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        text = head.decode("utf-8", "replace")
        problem = problem or "header section is not UTF-8"
    lines = _CRLF_SPLIT.split(text.rstrip("\r"))
    start = lines[0]
    headers: list[tuple[str, str]] = []
    for line in lines[1:]:
        if "\r" in line and problem is None:
            problem = "bare CR in header section"
        if line[:1] in (" ", "\t"):
            if not headers:
                problem = problem or "continuation line before any header"
                continue
            name, value = headers[-1]
            cont = line.strip(_LWS)
            headers[-1] = (name, f"{value.rstrip(_LWS)} {cont}" if value else cont)
            continue
        name, colon, value = line.partition(":")
        name = name.rstrip(_LWS)
        if not colon or not is_token(name):
            problem = problem or f"malformed header line {line[:40]!r}"
            continue
        headers.append((canonical_name(name), value.strip(_LWS)))
    headers = [(n, v.strip(_LWS)) for n, v in headers]
    return _Raw(start, headers, rest, problem)


def _parse_start_line(start: str) -> tuple[str, SipUri] | tuple[int, str]:
    if start[:4].upper() == "SIP/":
        version, _, rest = start.partition(" ")
        if version.upper() != SIP_VERSION:
            raise SipParseError("unsupported SIP version", status=505)
        code, _, reason = rest.partition(" ")
        if not (len(code) == 3 and code.isascii() and code.isdigit()):
            raise SipParseError("bad status code")
        status = int(code)
        if not 100 <= status <= 699:
            raise SipParseError("status code out of range")
        if "\r" in reason:
            raise SipParseError("bad reason phrase")
        return status, reason
    parts = start.split(" ")
    if len(parts) != 3 or not all(parts):
        raise SipParseError("malformed request line")
    method, uri_text, version = parts
    if not is_token(method):
        raise SipParseError("bad method")
    if version.upper() != SIP_VERSION:
        if version.upper().startswith("SIP/"):
            raise SipParseError("unsupported SIP version", status=505)
        raise SipParseError("malformed request line")
    uri = SipUri.parse(uri_text)
    if uri.headers:
        raise SipParseError("Request-URI must not contain headers")
    return method, uri


def _single(headers: Headers, name: str, *, required: bool) -> str | None:
    lines = headers.get_lines(name)
    if len(lines) > 1:
        raise SipParseError(f"more than one {name}")
    if not lines:
        if required:
            raise SipParseError(f"missing {name}")
        return None
    return lines[0]


def _validate(headers: Headers, method: str | None) -> None:
    """Check the headers every element relies on; raise SipParseError on the first problem."""
    vias = headers.get_all("Via")
    if not vias:
        raise SipParseError("missing Via")
    for via in vias:
        _via(via)
    for name in ("From", "To"):
        value = _single(headers, name, required=True)
        assert value is not None
        _name_addr(value)
    call_id = _single(headers, "Call-ID", required=True)
    assert call_id is not None
    if not _CALL_ID_RE.fullmatch(call_id):
        raise SipParseError("malformed Call-ID")
    cseq = _single(headers, "CSeq", required=True)
    assert cseq is not None
    _, cseq_method = _parse_cseq(cseq)
    if method is not None and cseq_method != method:
        raise SipParseError("CSeq method does not match the request method")
    max_forwards = _single(headers, "Max-Forwards", required=False)
    if max_forwards is not None and not (_is_digits(max_forwards, 10) and int(max_forwards) <= 255):
        raise SipParseError("bad Max-Forwards")
    for name in ("Contact", "Route", "Record-Route"):
        for value in headers.get_all(name):
            if name == "Contact" and value == "*":
                continue
            _name_addr(value)
    date = _single(headers, "Date", required=False)
    if date is not None and not _DATE_RE.fullmatch(date):
        raise SipParseError("malformed Date")
    content_type = _single(headers, "Content-Type", required=False)
    if content_type is not None:
        m = _MEDIA_TYPE_RE.fullmatch(content_type)
        if m is None:
            raise SipParseError("malformed Content-Type")
        parse_params(m.group(3) or "")


def _build(raw: _Raw) -> Message:
    if raw.problem is not None:
        raise SipParseError(raw.problem)
    first = _parse_start_line(raw.start)
    headers = Headers(raw.headers)
    method = first[0] if isinstance(first[0], str) else None
    _validate(headers, method)
    length_text = _single(headers, "Content-Length", required=False)
    if length_text is None:
        body = raw.rest
        headers.add("Content-Length", str(len(body)))
    else:
        if not _is_digits(length_text, 10):
            raise SipParseError("bad Content-Length")
        length = int(length_text)
        if length > len(raw.rest):
            raise SipParseError("Content-Length larger than the message")
        body = raw.rest[:length]
        headers.set("Content-Length", str(length))
    if isinstance(first[0], str):
        assert isinstance(first[1], SipUri)
        return Request(first[0], first[1], headers, body)
    assert isinstance(first[1], str)
    return Response(first[0], first[1], headers, body)


def parse(data: bytes) -> Message:
    """Parse one SIP message (a datagram, or one frame cut with :func:`frame_length`).

    Raises :class:`SipParseError` (and nothing else) for anything we will not accept; its
    ``can_respond`` says whether :func:`parse_error_response` can build a 400 for it.
    """
    raw: _Raw | None = None
    try:
        raw = _split(bytes(data))
        if len(data) > MAX_MESSAGE_SIZE:
            raise SipParseError("message too large", status=513)
        return _build(raw)
    except SipParseError as exc:
        if raw is not None and raw.respondable() and not exc.can_respond:
            raise SipParseError(exc.reason, can_respond=True, status=exc.status) from None
        raise
    except (ValueError, IndexError, UnicodeError, OverflowError) as exc:  # pragma: no cover
        # Defensive: a parser bug must still look like bad input to the transport.
        raise SipParseError(f"malformed message ({type(exc).__name__})") from None


def _find_content_length(head: bytes) -> int | None:
    """Content-Length (full or compact, possibly folded) of a raw header section."""
    found: int | None = None
    lines = _CRLF_SPLIT.split(head.decode("latin-1"))
    for i, line in enumerate(lines[1:], start=1):
        name, colon, value = line.partition(":")
        if not colon or canonical_name(name.strip(_LWS)) != "Content-Length":
            continue
        j = i + 1
        while j < len(lines) and lines[j][:1] in (" ", "\t"):
            value += " " + lines[j]
            j += 1
        value = value.strip(_LWS)
        if not _is_digits(value, 10):
            raise SipParseError("bad Content-Length")
        if found is not None and found != int(value):
            raise SipParseError("conflicting Content-Length")
        found = int(value)
    return found


def frame_length(buffer: bytes) -> int | None:
    """Length of the first complete message in a stream buffer, or None if more is needed.

    The length counts leading CRLF keep-alives, so ``buffer[:n]`` is the frame to
    :func:`parse` and ``buffer[n:]`` what remains. A buffer holding only CRLFs gives None (use
    :func:`strip_keepalive`). Raises :class:`SipParseError` for a missing or bad Content-Length,
    a start line that is not SIP, or a message longer than :data:`MAX_MESSAGE_SIZE`.
    """
    skipped = len(buffer) - len(strip_keepalive(buffer))
    data = buffer[skipped:]
    if not data:
        return None
    line_end = data.find(b"\n")
    if line_end >= 0:
        start = data[:line_end].rstrip(b"\r")
        # Lenient on purpose: a malformed request line is parse()'s to refuse (with a 400).
        if b"SIP/" not in start.upper():
            raise SipParseError("not a SIP start line")
    end = _find_head_end(data)
    if end is None:
        if len(data) > MAX_MESSAGE_SIZE:
            raise SipParseError("message too large", status=513)
        return None
    length = _find_content_length(data[: end[0]])
    if length is None:
        raise SipParseError("missing Content-Length on a stream transport")
    total = end[1] + length
    if total > MAX_MESSAGE_SIZE:
        raise SipParseError("message too large", status=513)
    if len(data) < total:
        return None
    return skipped + total


# --------------------------------------------------------------------------------------------
# Serialising


def serialise(msg: Message) -> bytes:
    """Wire form of ``msg`` with a correct Content-Length (rewritten in place, or appended)."""
    lines = [msg.start_line]
    length = str(len(msg.body))
    wrote_length = False
    for name, value in msg.headers.items():
        if name == "Content-Length":
            if wrote_length:
                continue
            value = length
            wrote_length = True
        lines.append(f"{name}: {value}")
    if not wrote_length:
        lines.append(f"Content-Length: {length}")
    lines.append("")
    lines.append("")
    return "\r\n".join(lines).encode("utf-8") + msg.body


# --------------------------------------------------------------------------------------------
# Building


def new_branch() -> str:
    """A fresh RFC 3261 branch (with the magic cookie)."""
    return BRANCH_MAGIC_COOKIE + secrets.token_hex(10)


def new_tag() -> str:
    return secrets.token_hex(8)


def new_call_id(host: str) -> str:
    return f"{secrets.token_hex(16)}@{host}"


def make_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    content_type: str | None = None,
) -> Response:
    """A response to ``request`` per RFC 3261 8.2.6 (and 12.1.1 for Record-Route).

    Copies every Via line in order, From, To (adding ``;tag=to_tag`` when given, the To has no
    tag and ``status != 100``), Call-ID, CSeq, Record-Route for 101-299 and Timestamp for 100.
    ``headers`` are appended, then Content-Type (if given) and Content-Length.
    """
    out = Headers()
    for value in request.headers.get_lines("Via"):
        out.add("Via", value)
    out.add("From", request.headers.get("From") or "")
    to = request.headers.get("To") or ""
    if to_tag is not None and status != 100 and request.to_tag is None:
        to = f"{to};tag={to_tag}"
    out.add("To", to)
    out.add("Call-ID", request.headers.get("Call-ID") or "")
    out.add("CSeq", request.headers.get("CSeq") or "")
    if 100 < status < 300:
        for value in request.headers.get_lines("Record-Route"):
            out.add("Record-Route", value)
    if status == 100:
        timestamp = request.headers.get("Timestamp")
        if timestamp is not None:
            out.add("Timestamp", timestamp)
    for name, value in headers or ():
        out.add(name, value)
    if content_type is not None:
        out.set("Content-Type", content_type)
    out.set("Content-Length", str(len(body)))
    return Response(status, reason if reason is not None else reason_phrase(status), out, body)


def make_request(
    method: str,
    uri: SipUri,
    *,
    via: Via | str,
    from_: NameAddr | str,
    to: NameAddr | str,
    call_id: str,
    cseq: int,
    max_forwards: int | None = 70,
    contact: NameAddr | str | None = None,
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    content_type: str | None = None,
) -> Request:
    """A request with the mandatory headers in the usual order; ``headers`` are appended."""
    out = Headers()
    out.add("Via", str(via))
    if max_forwards is not None:
        out.add("Max-Forwards", str(max_forwards))
    out.add("From", str(from_))
    out.add("To", str(to))
    out.add("Call-ID", call_id)
    out.add("CSeq", f"{cseq} {method}")
    if contact is not None:
        out.add("Contact", str(contact))
    for name, value in headers or ():
        out.add(name, value)
    if content_type is not None:
        out.set("Content-Type", content_type)
    out.set("Content-Length", str(len(body)))
    return Request(method, uri, out, body)


def parse_error_response(data: bytes, error: SipParseError) -> Response | None:
    """Best-effort response (400, or ``error.status``) to a request that failed to parse.

    None when ``error.can_respond`` is false (responses, ACKs, requests missing Via, From, To,
    Call-ID or CSeq). The reason is given in a ``Warning: 399 gateway "..."`` header.
    """
    if not error.can_respond:
        return None
    try:
        raw = _split(bytes(data))
    except SipParseError:
        return None
    if not raw.respondable():
        return None
    out = Headers()
    try:
        for name, value in raw.headers:
            if name == "Via":
                out.add("Via", value)
        out.add("From", raw.get("From") or "")
        to = raw.get("To") or ""
        try:
            has_tag = NameAddr.parse(to).tag is not None
        except SipParseError:
            has_tag = True  # leave a To we cannot parse alone
        out.add("To", to if has_tag else f"{to};tag={new_tag()}")
        out.add("Call-ID", raw.get("Call-ID") or "")
        out.add("CSeq", raw.get("CSeq") or "")
        out.add("Warning", f"399 gateway {quote(error.reason)}")
        out.add("Content-Length", "0")
    except ValueError:
        return None
    return Response(error.status, reason_phrase(error.status), out)
