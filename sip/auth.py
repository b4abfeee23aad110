"""Digest authentication for the UAC (RFC 2617, RFC 7616, RFC 3261 22) - pure, no I/O.

Parse a ``WWW-Authenticate`` / ``Proxy-Authenticate`` challenge and build the matching
``Authorization`` / ``Proxy-Authorization`` value. MD5 (and MD5-sess, SHA-256 of RFC 8760) with
``qop=auth``, or no qop at all (RFC 2069 compatibility). ``auth-int`` is not implemented: a
challenge offering only ``auth-int`` is refused with :class:`DigestError`.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from sip.headers import read_quoted

__all__ = [
    "Challenge",
    "Credentials",
    "DigestError",
    "authorization_header",
    "build_authorization",
    "parse_challenge",
]

_HASHES = {"MD5": "md5", "MD5-SESS": "md5", "SHA-256": "sha256", "SHA-256-SESS": "sha256"}


class DigestError(ValueError):
    """A challenge we cannot parse or answer (the remote side's fault)."""


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str
    realm: str | None = None  # None: answer any realm


@dataclass(frozen=True)
class Challenge:
    realm: str
    nonce: str
    algorithm: str = "MD5"
    qop: tuple[str, ...] = ()
    opaque: str | None = None
    stale: bool = False


def _parse_auth_params(text: str) -> dict[str, str]:
    params: dict[str, str] = {}
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t,":
            i += 1
        if i >= n:
            break
        eq = text.find("=", i)
        if eq < 0:
            raise DigestError("auth-param without '='")
        name = text[i:eq].strip().lower()
        i = eq + 1
        while i < n and text[i] in " \t":
            i += 1
        if i < n and text[i] == '"':
            try:
                value, i = read_quoted(text, i)
            except ValueError as exc:
                raise DigestError(str(exc)) from exc
        else:
            end = text.find(",", i)
            end = n if end < 0 else end
            value = text[i:end].strip()
            i = end
        params[name] = value
    return params


def parse_challenge(value: str) -> Challenge:
    """Parse ``Digest realm="...", nonce="...", qop="auth", ...``."""
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "digest":
        raise DigestError(f"unsupported authentication scheme {scheme!r}")
    params = _parse_auth_params(rest)
    if "realm" not in params or "nonce" not in params:
        raise DigestError("challenge without realm or nonce")
    algorithm = params.get("algorithm", "MD5").upper()
    if algorithm not in _HASHES:
        raise DigestError(f"unsupported digest algorithm {algorithm}")
    qop = tuple(q.strip().lower() for q in params.get("qop", "").split(",") if q.strip())
    return Challenge(
        realm=params["realm"],
        nonce=params["nonce"],
        algorithm=algorithm,
        qop=qop,
        opaque=params.get("opaque"),
        stale=params.get("stale", "").lower() == "true",
    )


def _h(algorithm: str, data: str) -> str:
    return hashlib.new(_HASHES[algorithm], data.encode("utf-8")).hexdigest()


def build_authorization(
    challenge: Challenge,
    credentials: Credentials,
    method: str,
    uri: str,
    *,
    cnonce: str | None = None,
    nc: int = 1,
) -> str:
    """The ``Digest ...`` credentials answering ``challenge`` for ``method`` on ``uri`` (the
    Request-URI as a string)."""
    alg = challenge.algorithm
    if challenge.qop and "auth" not in challenge.qop:
        raise DigestError("challenge offers no qop=auth")
    use_qop = "auth" in challenge.qop
    sess = alg.endswith("-SESS")
    if (use_qop or sess) and cnonce is None:
        cnonce = secrets.token_hex(8)
    ha1 = _h(alg, f"{credentials.username}:{challenge.realm}:{credentials.password}")
    if sess:
        ha1 = _h(alg, f"{ha1}:{challenge.nonce}:{cnonce}")
    ha2 = _h(alg, f"{method}:{uri}")
    nc_text = f"{nc:08x}"
    if use_qop:
        response = _h(alg, f"{ha1}:{challenge.nonce}:{nc_text}:{cnonce}:auth:{ha2}")
    else:
        response = _h(alg, f"{ha1}:{challenge.nonce}:{ha2}")
    parts = [
        f'username="{credentials.username}"',
        f'realm="{challenge.realm}"',
        f'nonce="{challenge.nonce}"',
        f'uri="{uri}"',
        f'response="{response}"',
        f"algorithm={alg}",
    ]
    if use_qop or sess:
        parts.append(f'cnonce="{cnonce}"')
    if use_qop:
        parts += ["qop=auth", f"nc={nc_text}"]
    if challenge.opaque is not None:
        parts.append(f'opaque="{challenge.opaque}"')
    return "Digest " + ", ".join(parts)


def authorization_header(status: int) -> tuple[str, str]:
    """(challenge header, credentials header) names for a 401 or 407."""
    if status == 407:
        return "Proxy-Authenticate", "Proxy-Authorization"
    return "WWW-Authenticate", "Authorization"
