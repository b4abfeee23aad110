"""Digest authentication (RFC 2617 / RFC 7616) for the UAC."""

from __future__ import annotations

import hashlib

import pytest

from sip.auth import (
    Challenge,
    Credentials,
    DigestError,
    authorization_header,
    build_authorization,
    parse_challenge,
)


def _params(value: str) -> dict[str, str]:
    assert value.startswith("Digest ")
    out = {}
    for part in value[7:].split(", "):
        k, _, v = part.partition("=")
        out[k] = v.strip('"')
    return out


def test_rfc2617_example_vector() -> None:
    ch = parse_challenge(
        'Digest realm="testrealm@host.com", qop="auth,auth-int", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", opaque="5ccc069c403ebaf9f0171e9517f40e41"'
    )
    assert ch.qop == ("auth", "auth-int") and ch.algorithm == "MD5"
    value = build_authorization(
        ch, Credentials("Mufasa", "Circle Of Life"), "GET", "/dir/index.html", cnonce="0a4f113b"
    )
    p = _params(value)
    assert p["response"] == "6629fae49393a05397450978507c4ef1"
    assert p["qop"] == "auth" and p["nc"] == "00000001" and p["cnonce"] == "0a4f113b"
    assert p["opaque"] == "5ccc069c403ebaf9f0171e9517f40e41"
    assert p["uri"] == "/dir/index.html" and p["username"] == "Mufasa"


def test_no_qop_rfc2069_style() -> None:
    ch = parse_challenge('Digest realm="asterisk",nonce="abc123"')
    value = build_authorization(ch, Credentials("bob", "secret"), "INVITE", "sip:100@pbx")
    ha1 = hashlib.md5(b"bob:asterisk:secret").hexdigest()
    ha2 = hashlib.md5(b"INVITE:sip:100@pbx").hexdigest()
    expected = hashlib.md5(f"{ha1}:abc123:{ha2}".encode()).hexdigest()
    p = _params(value)
    assert p["response"] == expected
    assert "qop" not in p and "cnonce" not in p


def test_sha256_and_unquoted_params() -> None:
    ch = parse_challenge("Digest realm=r, nonce=n, algorithm=SHA-256, qop=auth, stale=TRUE")
    assert ch.stale and ch.algorithm == "SHA-256"
    p = _params(build_authorization(ch, Credentials("u", "p"), "INVITE", "sip:x@y", cnonce="c"))
    ha1 = hashlib.sha256(b"u:r:p").hexdigest()
    ha2 = hashlib.sha256(b"INVITE:sip:x@y").hexdigest()
    assert p["response"] == hashlib.sha256(f"{ha1}:n:00000001:c:auth:{ha2}".encode()).hexdigest()


@pytest.mark.parametrize(
    "value",
    ['Basic realm="x"', 'Digest realm="x"', 'Digest realm="x", nonce="n", algorithm=FOO'],
)
def test_bad_challenges(value: str) -> None:
    with pytest.raises(DigestError):
        parse_challenge(value)


def test_auth_int_only_is_refused() -> None:
    ch = Challenge(realm="r", nonce="n", qop=("auth-int",))
    with pytest.raises(DigestError):
        build_authorization(ch, Credentials("u", "p"), "INVITE", "sip:x@y")


def test_header_names() -> None:
    assert authorization_header(401) == ("WWW-Authenticate", "Authorization")
    assert authorization_header(407) == ("Proxy-Authenticate", "Proxy-Authorization")
