"""SIP header fields (RFC 3261 sections 7.3, 20 and 25) - pure, no I/O.

:class:`Headers` is an ordered multi-map of ``(name, value)`` pairs. Names are normalised to a
canonical spelling for every header we know (compact forms expanded: ``i`` -> ``Call-ID``) and
compared case-insensitively; values are stored exactly as received after unfolding (so a message
survives ``parse(serialise(m)) == m``). Structured values are parsed on demand by
:class:`NameAddr` (From, To, Contact, Route, ...) and :class:`Via`.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from sip.errors import SipParseError
from sip.uri import SipUri, _set_param

__all__ = [
    "COMPACT_FORMS",
    "MULTI_VALUE_HEADERS",
    "Headers",
    "NameAddr",
    "Params",
    "Via",
    "canonical_name",
    "format_params",
    "is_token",
    "parse_params",
    "quote",
    "split_commas",
]

Params = tuple[tuple[str, str | None], ...]

TOKEN_CHARS = frozenset(string.ascii_letters + string.digits + "-.!%*_+`'~")

COMPACT_FORMS: dict[str, str] = {
    "i": "Call-ID",
    "m": "Contact",
    "e": "Content-Encoding",
    "l": "Content-Length",
    "c": "Content-Type",
    "f": "From",
    "s": "Subject",
    "k": "Supported",
    "t": "To",
    "v": "Via",
    "o": "Event",
    "r": "Refer-To",
    "u": "Allow-Events",
    "x": "Session-Expires",
    "b": "Referred-By",
    "a": "Accept-Contact",
    "j": "Reject-Contact",
    "d": "Request-Disposition",
    "y": "Identity",
    "n": "Identity-Info",
}

_KNOWN = [
    "Accept", "Accept-Contact", "Accept-Encoding", "Accept-Language", "Alert-Info", "Allow",
    "Allow-Events", "Authentication-Info", "Authorization", "Call-ID", "Call-Info", "Contact",
    "Content-Disposition", "Content-Encoding", "Content-Language", "Content-Length",
    "Content-Type", "CSeq", "Date", "Error-Info", "Event", "Expires", "From", "Identity",
    "Identity-Info", "In-Reply-To", "Max-Forwards", "MIME-Version", "Min-Expires", "Min-SE",
    "Organization", "P-Asserted-Identity", "P-Preferred-Identity", "Path", "Priority", "Privacy",
    "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Require", "RAck", "Reason",
    "Record-Route", "Refer-To", "Referred-By", "Reject-Contact", "Replaces", "Reply-To",
    "Request-Disposition", "Require", "Retry-After", "Route", "RSeq", "Server", "Service-Route",
    "Session-Expires", "Subject", "Subscription-State", "Supported", "Timestamp", "To",
    "Unsupported", "User-Agent", "Via", "Warning", "WWW-Authenticate",
]  # fmt: skip

_CANONICAL: dict[str, str] = {name.lower(): name for name in _KNOWN}
_CANONICAL.update(COMPACT_FORMS)

MULTI_VALUE_HEADERS = frozenset(
    name.lower()
    for name in (
        "Via", "Contact", "Route", "Record-Route", "Allow", "Supported", "Require",
        "Proxy-Require", "Unsupported", "Accept", "Accept-Encoding", "Accept-Language",
        "Allow-Events", "Content-Encoding", "Content-Language", "In-Reply-To", "Alert-Info",
        "Call-Info", "Error-Info", "Path", "Service-Route", "P-Asserted-Identity",
        "P-Preferred-Identity", "Reason", "Warning", "Accept-Contact", "Reject-Contact",
        "Privacy",
    )
)  # fmt: skip


def canonical_name(name: str) -> str:
    """Canonical spelling of a header name (compact forms expanded); unknown names unchanged."""
    return _CANONICAL.get(name.lower(), name)


_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+")


def is_token(text: str) -> bool:
    """RFC 3261 ``token`` (the characters of :data:`TOKEN_CHARS`, at least one)."""
    return _TOKEN_RE.fullmatch(text) is not None


def read_quoted(text: str, pos: int) -> tuple[str, int]:
    """Read the quoted-string starting at ``text[pos] == '"'``.

    Returns the unescaped content and the index just after the closing quote.
    """
    out: list[str] = []
    i = pos + 1
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            if i + 1 >= n:
                break
            out.append(text[i + 1])
            i += 2
        elif c == '"':
            return "".join(out), i + 1
        else:
            out.append(c)
            i += 1
    raise SipParseError("unterminated quoted string")


def quote(text: str) -> str:
    """Serialise ``text`` as a quoted-string (escaping quotes, backslashes and controls)."""
    out = ['"']
    for c in text:
        if c in "\r\n":
            out.append(" ")
        elif c in '"\\' or (c < " " and c != "\t") or c == "\x7f":
            out.append("\\" + c)
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def _split_outside_quotes(text: str, sep: str, *, angles: bool) -> list[str]:
    """Split on ``sep`` outside quoted strings (and outside ``<...>`` if ``angles``)."""
    parts: list[str] = []
    start = 0
    in_quote = False
    in_angle = False
    i = 0
    n = len(text)
    while i < n:
        c = text[i]
        if in_quote:
            if c == "\\":
                i += 1
            elif c == '"':
                in_quote = False
        elif c == '"':
            in_quote = True
        elif angles and c == "<":
            in_angle = True
        elif angles and c == ">":
            in_angle = False
        elif c == sep and not in_angle:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return parts


def split_commas(value: str) -> list[str]:
    """Split a comma-separated header value, respecting quoted strings and ``<...>``.

    Empty elements are dropped; elements are stripped.
    """
    if "," not in value:
        v = value.strip()
        return [v] if v else []
    return [p for p in (x.strip() for x in _split_outside_quotes(value, ",", angles=True)) if p]


_PARAM_VALUE_RE = re.compile(r'[^\s;,"<>]+')


def parse_params(text: str) -> Params:
    """Parse ``*( SEMI generic-param )`` (LWS allowed around ``;`` and ``=``).

    Quoted values are kept with their quotes; names keep their case.
    """
    text = text.strip()
    if not text:
        return ()
    if not text.startswith(";"):
        raise SipParseError("expected ';' before parameters")
    params: list[tuple[str, str | None]] = []
    for part in _split_outside_quotes(text[1:], ";", angles=False):
        name, eq, value = part.partition("=")
        name = name.strip()
        if not is_token(name):
            raise SipParseError("bad or empty header parameter")
        if not eq:
            params.append((name, None))
            continue
        value = value.strip()
        if value.startswith('"'):
            _, end = read_quoted(value, 0)
            if end != len(value):
                raise SipParseError("garbage after quoted parameter value")
        elif not _PARAM_VALUE_RE.fullmatch(value):
            raise SipParseError("bad header parameter value")
        params.append((name, value))
    return tuple(params)


def format_params(params: Params) -> str:
    return "".join(f";{n}" if v is None else f";{n}={v}" for n, v in params)


def _get_param(params: Params, name: str) -> str | None:
    lname = name.lower()
    for n, v in params:
        if n.lower() == lname:
            return v
    return None


def _has_param(params: Params, name: str) -> bool:
    lname = name.lower()
    return any(n.lower() == lname for n, _ in params)


@dataclass(frozen=True)
class NameAddr:
    """``[display-name] <uri> *(;param)`` or ``addr-spec *(;param)`` (From, To, Contact, ...)."""

    display_name: str | None
    uri: SipUri
    params: Params = ()

    @classmethod
    def parse(cls, text: str) -> NameAddr:
        s = text.strip()
        if not s:
            raise SipParseError("empty name-addr")
        display: str | None = None
        if s.startswith('"'):
            display, pos = read_quoted(s, 0)
            rest = s[pos:].lstrip()
            if not rest.startswith("<"):
                raise SipParseError("quoted display name not followed by <URI>")
            lt = len(s) - len(rest)
        else:
            lt = s.find("<")
            if lt >= 0:
                words = s[:lt].split()
                if not all(is_token(w) for w in words):
                    raise SipParseError("bad display name (quote it)")
                display = s[:lt].strip() or None
        if lt >= 0:
            gt = s.find(">", lt)
            if gt < 0:
                raise SipParseError("unterminated <URI>")
            uri_text = s[lt + 1 : gt]
            if not uri_text or any(c.isspace() for c in uri_text):
                raise SipParseError("whitespace or nothing inside <URI>")
            uri = SipUri.parse(uri_text)
            params = parse_params(s[gt + 1 :])
        else:
            uri_text, semi, param_text = s.partition(";")
            uri_text = uri_text.strip()
            if any(c.isspace() or c in '?,<>"' for c in uri_text):
                raise SipParseError("URI with ?, comma or spaces must be enclosed in <>")
            uri = SipUri.parse(uri_text)
            params = parse_params(semi + param_text)
        return cls(display, uri, params)

    def __str__(self) -> str:
        prefix = "" if self.display_name is None else quote(self.display_name) + " "
        return f"{prefix}<{self.uri}>{format_params(self.params)}"

    @property
    def tag(self) -> str | None:
        return _get_param(self.params, "tag")

    def param(self, name: str) -> str | None:
        return _get_param(self.params, name)

    def has_param(self, name: str) -> bool:
        return _has_param(self.params, name)

    def with_tag(self, tag: str) -> NameAddr:
        return self.with_param("tag", tag)

    def with_param(self, name: str, value: str | None = None) -> NameAddr:
        return replace(self, params=_set_param(self.params, name, value))


_VIA_RE = re.compile(
    r"""\s*(?P<proto>[A-Za-z0-9.!%*_+`'~\-]+)\s*/\s*(?P<version>[A-Za-z0-9.!%*_+`'~\-]+)
        \s*/\s*(?P<transport>[A-Za-z0-9.!%*_+`'~\-]+)\s+
        (?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_\-.]+)(?:\s*:\s*(?P<port>[0-9]{1,5}))?
        \s*(?P<params>;.*)?""",
    re.X | re.S,
)


@dataclass(frozen=True)
class Via:
    """One Via value: ``SIP/2.0/<transport> <host>[:<port>] *(;param)``."""

    transport: str
    host: str
    port: int | None = None
    params: Params = ()

    @classmethod
    def parse(cls, text: str) -> Via:
        m = _VIA_RE.fullmatch(text)
        if m is None:
            raise SipParseError("malformed Via")
        if m.group("proto").upper() != "SIP" or m.group("version") != "2.0":
            raise SipParseError("Via is not SIP/2.0", status=505)
        port_text = m.group("port")
        port = int(port_text) if port_text is not None else None
        if port is not None and port > 65535:
            raise SipParseError("Via port out of range")
        params = parse_params(m.group("params") or "")
        return cls(m.group("transport").upper(), m.group("host"), port, params)

    def __str__(self) -> str:
        port = "" if self.port is None else f":{self.port}"
        return f"SIP/2.0/{self.transport} {self.host}{port}{format_params(self.params)}"

    @property
    def branch(self) -> str | None:
        return _get_param(self.params, "branch")

    @property
    def sent_by(self) -> tuple[str, int | None]:
        return self.host, self.port

    def param(self, name: str) -> str | None:
        return _get_param(self.params, name)

    def has_param(self, name: str) -> bool:
        return _has_param(self.params, name)

    def with_params(self, **kw: str | None) -> Via:
        """Copy with parameters set or replaced, e.g. ``with_params(received="1.2.3.4",
        rport="5060")``; a value of None writes a flag parameter (``;rport``)."""
        params = self.params
        for name, value in kw.items():
            params = _set_param(params, name, value)
        return replace(self, params=params)


class Headers:
    """Ordered multi-map of header fields with case-insensitive, canonicalised names."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items: list[tuple[str, str]] = []
        for name, value in items:
            self.add(name, value)

    @staticmethod
    def _check(name: str, value: str) -> str:
        if not is_token(name):
            raise ValueError(f"invalid header name {name!r}")
        if "\r" in value or "\n" in value:
            raise ValueError(f"CR/LF in value of header {name!r}")
        return canonical_name(name)

    def get(self, name: str, default: str | None = None) -> str | None:
        """First value of ``name`` (the whole line, not comma-split)."""
        key = canonical_name(name).lower()
        for n, v in self._items:
            if n.lower() == key:
                return v
        return default

    def get_lines(self, name: str) -> list[str]:
        """Every header line called ``name`` in order, not comma-split."""
        key = canonical_name(name).lower()
        return [v for n, v in self._items if n.lower() == key]

    def get_all(self, name: str) -> list[str]:
        """All values of ``name`` in order; comma-separated lists are split for the headers in
        :data:`MULTI_VALUE_HEADERS`."""
        key = canonical_name(name).lower()
        lines = [v for n, v in self._items if n.lower() == key]
        if key not in MULTI_VALUE_HEADERS:
            return lines
        out: list[str] = []
        for line in lines:
            out.extend(split_commas(line))
        return out

    def add(self, name: str, value: str) -> None:
        """Append a header line."""
        self._items.append((self._check(name, value), value))

    def insert(self, index: int, name: str, value: str) -> None:
        """Insert a header line at ``index`` (0 = first), e.g. a new top Via."""
        self._items.insert(index, (self._check(name, value), value))

    def set(self, name: str, value: str) -> None:
        """Replace every ``name`` line with one (at the position of the first), or append."""
        canon = self._check(name, value)
        key = canon.lower()
        out: list[tuple[str, str]] = []
        done = False
        for n, v in self._items:
            if n.lower() == key:
                if not done:
                    out.append((canon, value))
                    done = True
            else:
                out.append((n, v))
        if not done:
            out.append((canon, value))
        self._items = out

    def remove(self, name: str) -> None:
        """Remove every ``name`` line (no error if there is none)."""
        key = canonical_name(name).lower()
        self._items = [(n, v) for n, v in self._items if n.lower() != key]

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def copy(self) -> Headers:
        new = Headers()
        new._items = list(self._items)
        return new

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(list(self._items))

    def __len__(self) -> int:
        return len(self._items)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Headers):
            return NotImplemented
        return [(n.lower(), v) for n, v in self._items] == [(n.lower(), v) for n, v in other._items]

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"
