"""SIP, SIPS and tel URIs (RFC 3261 section 19.1 and 25.1, RFC 3966) - pure, no I/O.

A :class:`SipUri` stores its parts *unescaped* (``sip:%75ser@host`` has ``user == "user"``) and
re-escapes on serialisation, so ``SipUri.parse(str(u)) == u`` for every parsed ``u``. Octets that
are not valid UTF-8 after unescaping survive as lone surrogates (``surrogateescape``).

URIs of other schemes (``http:``, ``urn:``, ``isbn:`` ...) are kept opaque: everything after the
colon is in ``host``; ``user``/``port``/``params``/``headers`` are empty. ``tel:`` URIs keep the
telephone-subscriber (the number) in ``user``, ``host`` is ``""`` and the parameters are parsed.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass, replace

from sip.errors import SipParseError

__all__ = ["SipUri", "escape", "unescape"]

_ALNUM = string.ascii_letters + string.digits
_UNRESERVED = _ALNUM + "-_.!~*'()"
_USER_SAFE = frozenset(_UNRESERVED + "&=+$,;?/")
_PASSWORD_SAFE = frozenset(_UNRESERVED + "&=+$,")
_PARAM_SAFE = frozenset(_UNRESERVED + "[]/:&+$")
_HEADER_SAFE = frozenset(_UNRESERVED + "[]/?:+$")
_HEX = frozenset(b"0123456789abcdefABCDEF")

_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):(.*)", re.S)
_HOSTNAME_RE = re.compile(r"[A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+)*\.?")
_IPV6_RE = re.compile(r"\[[0-9A-Fa-f:.]+(?:%[A-Za-z0-9_.\-]+)?\]")
_TEL_RE = re.compile(r"[+0-9A-Fa-f*#.()\-pPwW]+")
# Characters never allowed in a URI as it appears on the wire.
_FORBIDDEN_RE = re.compile(r'[\x00-\x20\x7f<>"\\{}|^`]')


def unescape(text: str, what: str = "URI") -> str:
    """Decode ``%XX`` escapes; raise :class:`SipParseError` on a malformed escape."""
    if "%" not in text:
        return text
    raw = text.encode("utf-8", "surrogateescape")
    out = bytearray()
    i = 0
    n = len(raw)
    while i < n:
        b = raw[i]
        if b == 0x25:  # '%'
            pair = raw[i + 1 : i + 3]
            if len(pair) != 2 or pair[0] not in _HEX or pair[1] not in _HEX:
                raise SipParseError(f"bad %-escape in {what}")
            out.append(int(pair, 16))
            i += 3
        else:
            out.append(b)
            i += 1
    return out.decode("utf-8", "surrogateescape")


def escape(text: str, safe: frozenset[str]) -> str:
    """%-escape every character of ``text`` that is not in ``safe`` (as UTF-8 octets)."""
    if all(c in safe for c in text):
        return text
    parts: list[str] = []
    for c in text:
        if c in safe:
            parts.append(c)
        else:
            parts.extend(f"%{b:02X}" for b in c.encode("utf-8", "surrogateescape"))
    return "".join(parts)


def _parse_host_port(text: str) -> tuple[str, int | None]:
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise SipParseError("unterminated IPv6 reference")
        host, rest = text[: end + 1], text[end + 1 :]
        if not _IPV6_RE.fullmatch(host):
            raise SipParseError("bad IPv6 reference")
        if rest and not rest.startswith(":"):
            raise SipParseError("garbage after IPv6 reference")
        port_text = rest[1:] if rest else None
    else:
        host, sep, port_text_ = text.partition(":")
        port_text = port_text_ if sep else None
        if not _HOSTNAME_RE.fullmatch(host):
            raise SipParseError("bad host")
    port: int | None = None
    if port_text is not None:
        if not (port_text.isascii() and port_text.isdigit()) or len(port_text) > 5:
            raise SipParseError("bad port")
        port = int(port_text)
        if port > 65535:
            raise SipParseError("port out of range")
    return host, port


def _parse_uri_params(parts: list[str]) -> tuple[tuple[str, str | None], ...]:
    params: list[tuple[str, str | None]] = []
    for part in parts:
        name, sep, value = part.partition("=")
        if not name:
            raise SipParseError("empty URI parameter")
        params.append((unescape(name), unescape(value) if sep else None))
    return tuple(params)


@dataclass(frozen=True)
class SipUri:
    """A parsed URI. Parameters and headers are kept in order, unescaped."""

    scheme: str
    user: str | None
    password: str | None
    host: str
    port: int | None = None
    params: tuple[tuple[str, str | None], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, text: str) -> SipUri:
        """Parse an absolute URI; raise :class:`SipParseError` if it is malformed."""
        m = _SCHEME_RE.fullmatch(text)
        if m is None:
            raise SipParseError("URI has no scheme")
        scheme, rest = m.group(1).lower(), m.group(2)
        if not rest:
            raise SipParseError("empty URI")
        if _FORBIDDEN_RE.search(rest):
            raise SipParseError("illegal character in URI")
        if scheme in ("sip", "sips"):
            return cls._parse_sip(scheme, rest)
        if scheme == "tel":
            number, *param_parts = rest.split(";")
            if not _TEL_RE.fullmatch(number):
                raise SipParseError("bad tel number")
            return cls(scheme, number, None, "", None, _parse_uri_params(param_parts), ())
        return cls(scheme, None, None, rest, None, (), ())

    @classmethod
    def _parse_sip(cls, scheme: str, rest: str) -> SipUri:
        user: str | None = None
        password: str | None = None
        userinfo, at, hostpart = rest.partition("@")
        if not at:
            hostpart = userinfo
        else:
            user_text, colon, password_text = userinfo.partition(":")
            if not user_text:
                raise SipParseError("empty user part in URI")
            user = unescape(user_text, "URI user")
            password = unescape(password_text, "URI password") if colon else None
        hostparams, question, header_text = hostpart.partition("?")
        hostport, *param_parts = hostparams.split(";")
        host, port = _parse_host_port(hostport)
        params = _parse_uri_params(param_parts)
        headers: list[tuple[str, str]] = []
        if question:
            for item in header_text.split("&"):
                name, eq, value = item.partition("=")
                if not name or not eq:
                    raise SipParseError("bad URI header")
                headers.append((unescape(name), unescape(value)))
        return cls(scheme, user, password, host, port, params, tuple(headers))

    def __str__(self) -> str:
        if self.scheme not in ("sip", "sips", "tel"):
            return f"{self.scheme}:{self.host}"
        out = [self.scheme, ":"]
        if self.scheme == "tel":
            out.append(self.user or "")
        else:
            if self.user is not None:
                out.append(escape(self.user, _USER_SAFE))
                if self.password is not None:
                    out.append(":")
                    out.append(escape(self.password, _PASSWORD_SAFE))
                out.append("@")
            out.append(self.host)
            if self.port is not None:
                out.append(f":{self.port}")
        for name, value in self.params:
            out.append(";")
            out.append(escape(name, _PARAM_SAFE))
            if value is not None:
                out.append("=")
                out.append(escape(value, _PARAM_SAFE))
        if self.headers:
            out.append("?")
            out.append(
                "&".join(
                    f"{escape(n, _HEADER_SAFE)}={escape(v, _HEADER_SAFE)}" for n, v in self.headers
                )
            )
        return "".join(out)

    @property
    def is_sip(self) -> bool:
        """True for ``sip:`` and ``sips:`` URIs."""
        return self.scheme in ("sip", "sips")

    @property
    def host_port(self) -> str:
        """``host`` or ``host:port``."""
        return self.host if self.port is None else f"{self.host}:{self.port}"

    @property
    def transport(self) -> str | None:
        """The ``transport`` URI parameter, lower-cased, if present."""
        value = self.param("transport")
        return value.lower() if value is not None else None

    def param(self, name: str) -> str | None:
        """Value of the first parameter called ``name`` (case-insensitive); None if absent or
        a flag parameter such as ``lr`` (use :meth:`has_param` for those)."""
        lname = name.lower()
        for n, v in self.params:
            if n.lower() == lname:
                return v
        return None

    def has_param(self, name: str) -> bool:
        lname = name.lower()
        return any(n.lower() == lname for n, _ in self.params)

    def with_param(self, name: str, value: str | None = None) -> SipUri:
        """Copy with parameter ``name`` set (replacing an existing one of that name)."""
        return replace(self, params=_set_param(self.params, name, value))

    def without_param(self, name: str) -> SipUri:
        lname = name.lower()
        return replace(self, params=tuple(p for p in self.params if p[0].lower() != lname))


def _set_param(
    params: tuple[tuple[str, str | None], ...], name: str, value: str | None
) -> tuple[tuple[str, str | None], ...]:
    lname = name.lower()
    out: list[tuple[str, str | None]] = []
    done = False
    for n, v in params:
        if n.lower() == lname:
            if not done:
                out.append((name, value))
                done = True
        else:
            out.append((n, v))
    if not done:
        out.append((name, value))
    return tuple(out)
