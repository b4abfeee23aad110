"""RFC 4475 torture messages against sip.message.parse.

Each file's expectation comes from the RFC section it is described in (see the README in the
test data directory). Invalid messages must raise SipParseError and nothing else; application
layer cases (3.3) parse, and the test asserts what a receiver needs to detect to answer as the
RFC says.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sip.message import (
    BRANCH_MAGIC_COOKIE,
    Request,
    Response,
    SipParseError,
    parse,
    parse_error_response,
    serialise,
)

# ../shared beside the checkout, as on the developers' machines and in CI.
DATA = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "rfc4475"
if not DATA.is_dir():  # pragma: no cover
    pytest.skip("RFC 4475 test data not available", allow_module_level=True)


def load(name: str) -> bytes:
    return (DATA / f"{name}.dat").read_bytes()


def parse_request(name: str) -> Request:
    msg = parse(load(name))
    assert isinstance(msg, Request)
    assert parse(serialise(msg)) == msg
    return msg


def parse_response(name: str) -> Response:
    msg = parse(load(name))
    assert isinstance(msg, Response)
    assert parse(serialise(msg)) == msg
    return msg


VALID = [
    "wsinv",
    "intmeth",
    "esc01",
    "escnull",
    "esc02",
    "lwsdisp",
    "longreq",
    "dblreq",
    "semiuri",
    "transports",
    "mpart01",
    "unreason",
    "noreason",
]
APPLICATION = [
    "insuf",
    "unkscm",
    "novelsc",
    "unksm2",
    "bext01",
    "invut",
    "regaut01",
    "multi01",
    "mcl01",
    "bcast",
    "zeromf",
    "cparam01",
    "cparam02",
    "regescrt",
    "sdp01",
]

# 3.1.2: name -> (status a UAS answers with, or None when no response can/should be sent).
INVALID: dict[str, int | None] = {
    "badinv01": 400,  # empty Via/Contact parameters ";;,;,,"
    "clerr": 400,  # Content-Length 9999 larger than the datagram
    "ncl": 400,  # negative Content-Length
    "scalar02": 400,  # CSeq number beyond 2**31 - 1 (also Max-Forwards 300)
    "scalarlg": None,  # a *response* with a huge CSeq: dropped, never answered
    "quotbal": 400,  # unterminated quoted display name in To
    "ltgtruri": 400,  # Request-URI enclosed in <>
    "lwsruri": 400,  # whitespace inside the Request-URI
    "lwsstart": 400,  # more than one SP between request-line elements
    "trws": 400,  # trailing whitespace after SIP-Version
    "escruri": 400,  # escaped headers in the Request-URI
    "baddate": 400,  # Date not in GMT
    "regbadct": 400,  # Contact URI with '?' not enclosed in <>
    "badaspec": 400,  # whitespace inside <...>
    "baddn": 400,  # unquoted display name with a comma (and no blank line)
    "badvers": 505,  # SIP/7.0
    "mismatch01": 400,  # CSeq method differs from the request method
    "mismatch02": 400,  # same, with an unknown method
    "bigcode": None,  # response with a 10-digit status code: dropped
}


def test_every_file_is_classified() -> None:
    names = {p.stem for p in DATA.glob("*.dat")}
    classified = set(VALID) | set(APPLICATION) | set(INVALID) | {"badbranch", "inv2543"}
    assert names == classified
    assert len(names) == 49


@pytest.mark.parametrize("name", VALID)
def test_valid_messages_parse_and_round_trip(name: str) -> None:
    msg = parse(load(name))
    assert parse(serialise(msg)) == msg
    assert serialise(parse(serialise(msg))) == serialise(msg)


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_messages_are_refused(name: str) -> None:
    data = load(name)
    with pytest.raises(SipParseError) as info:
        parse(data)
    status = INVALID[name]
    assert info.value.can_respond is (status is not None)
    response = parse_error_response(data, info.value)
    if status is None:
        assert response is None
        return
    assert response is not None
    assert response.status == status
    assert response.headers.get("Warning") is not None
    # The response carries the request's identifiers so the client can match it.
    raw_call_id = next(
        line.split(":", 1)[1].strip()
        for line in data.decode("utf-8", "replace").split("\r\n")
        if line.lower().startswith("call-id")
    )
    assert response.headers.get("Call-ID") == raw_call_id
    assert response.headers.get("Via") is not None
    # Best effort: the copied headers may themselves be malformed, but the bytes are writable.
    assert serialise(response).startswith(f"SIP/2.0 {status} ".encode())


# ---- 3.1.1 valid messages: key fields --------------------------------------------------------


def test_wsinv() -> None:
    m = parse_request("wsinv")
    assert m.method == "INVITE"
    assert str(m.uri) == "sip:vivekg@chair-dnrc.example.com;unknownparam"
    assert m.call_id == "wsinv.ndaksdj@192.0.2.1"
    assert m.cseq == (9, "INVITE")
    assert m.max_forwards == 68
    assert m.to.uri.user == "vivekg" and m.to_tag == "1918181833n"
    assert m.from_.display_name == 'J Rosenberg \\"'
    assert m.from_tag == "98asjd8"
    assert [(v.transport, v.host, v.branch) for v in m.vias] == [
        ("UDP", "192.0.2.2", "390skdjuw"),
        ("TCP", "spindle.example.com", "z9hG4bK9ikj8"),
        ("UDP", "192.168.255.111", "z9hG4bK30239"),
    ]
    assert m.headers.get("Subject") == ""
    assert m.headers.get("NewFangledHeader") == "newfangled value continued newfangled value"
    assert m.headers.get("UnknownHeaderWithUnusualValue") == ";;,,;;,;"
    assert str(m.route[0].uri) == "sip:services.example.com;lr;unknownwith=value;unknown-no-value"
    (contact,) = m.contact
    assert contact.display_name == 'Quoted string ""'
    assert contact.param("newparam") == "newvalue"
    assert contact.has_param("secondparam") and contact.param("q") == "0.33"
    assert m.content_type == "application/sdp"
    assert len(m.body) == 150 and m.body.startswith(b"v=0\r\n")


def test_intmeth() -> None:
    m = parse_request("intmeth")
    assert m.method == "!interesting-Method0123456789_*+`.%indeed'~"
    assert m.cseq == (139122385, m.method)
    assert m.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert m.uri.password == "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)"
    assert m.uri.host == "example.com"
    assert m.to.display_name == "BEL:\x07 NUL:\x00 DEL:\x7f"
    assert m.to.uri.user == "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*"
    assert m.from_.display_name == "token1~` token2'+_ token3*%!.-"
    assert m.from_tag == "_token~1'+`*%!-."
    assert m.from_.param("fromParam''~+*_!.-%") == '"работающий"'
    assert m.call_id == "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"][?}{"
    assert m.headers.get("extensionHeader-!.%*+_`'~") == "\ufeff大停電"
    assert m.top_via.branch == "z9hG4bK-.!%66*_+`'~"
    assert m.max_forwards == 255


def test_esc01() -> None:
    m = parse_request("esc01")
    assert m.uri.user == "sips:user@example.com"
    assert m.uri.host == "example.net"
    assert m.to.uri.user == "user"
    assert m.from_.uri.user == "I have spaces"
    assert m.call_id == "esc01.239409asdfakjkn23onasd0-3234"
    (contact,) = m.contact
    assert contact.uri.user == "caller"
    assert contact.uri.params == (("lr", None), ("name", "value%41"))
    assert m.content_type == "application/sdp"  # compact "C"


def test_escnull() -> None:
    m = parse_request("escnull")
    assert m.to.uri.user == "null-\x00-null"
    assert m.from_.uri.user == "null-\x00-null"
    assert [c.uri.user for c in m.contact] == ["\x00", "\x00\x00"]
    assert str(m.contact[0].uri) == "sip:%00@host5.example.com"


def test_esc02() -> None:
    m = parse_request("esc02")
    # An unknown method: "%47" is not unescaped in a method token, so this is not REGISTER.
    assert m.method == "RE%47IST%45R" != "REGISTER"
    assert m.cseq == (29344, "RE%47IST%45R")
    assert m.to.display_name == "%Z%45"
    assert m.top_via.branch == "z9hG4bK209%fzsnel234"
    # "C%6Fntact" is an unknown header, not a Contact.
    assert [c.uri.host for c in m.contact] == ["host1.example.com", "host3.example.com"]
    assert m.headers.get("C%6Fntact") == "<sip:alias2@host2.example.com>"


def test_lwsdisp() -> None:
    m = parse_request("lwsdisp")
    assert m.from_.display_name == "caller"
    assert m.from_.uri.user == "caller" and m.from_tag == "323"


def test_longreq() -> None:
    m = parse_request("longreq")
    assert len(m.vias) == 34
    assert [v.host for v in m.vias[:3]] == [
        "sip33.example.com",
        "sip32.example.com",
        "sip31.example.com",
    ]
    assert m.to.display_name is not None and m.to.display_name.endswith("proportion")
    assert m.to.uri.port == 6000
    assert m.to.uri.params[-1][1] is None
    assert m.from_tag is not None and len(m.from_tag) > 100
    assert m.call_id.startswith("longreq.onereally")
    assert len(m.body) == 150


def test_dblreq_only_first_message_is_taken() -> None:
    m = parse_request("dblreq")
    assert m.method == "REGISTER"
    assert m.cseq == (8, "REGISTER")
    assert m.call_id == "dblreq.0ha0isndaksdj99sdfafnl3lk233412"
    assert m.body == b""


def test_semiuri() -> None:
    m = parse_request("semiuri")
    assert m.uri.user == "user;par=u@example.net"
    assert m.uri.host == "example.com"
    assert m.uri.params == ()
    assert m.headers.get_all("Accept") == [
        "application/sdp",
        "application/pkcs7-mime",
        "multipart/mixed",
        "multipart/signed",
        "message/sip",
        "message/sipfrag",
    ]


def test_transports() -> None:
    m = parse_request("transports")
    assert [v.transport for v in m.vias] == ["UDP", "SCTP", "TLS", "UNKNOWN", "TCP"]
    assert m.call_id == "transports.kijh4akdnaqjkwendsasfdj"


def test_mpart01_binary_body() -> None:
    m = parse_request("mpart01")
    assert m.content_type == "multipart/mixed"
    assert len(m.body) == 553
    assert m.body.startswith(b"--7a9cbec02ceef655\r\n")
    assert m.top_via.has_param("rport") and m.top_via.port == 5070


def test_unreason() -> None:
    m = parse_response("unreason")
    assert m.status == 200
    assert m.reason == "= 2**3 * 5**2 но сто девяносто девять - простое"
    assert len(m.body) == 154


def test_noreason() -> None:
    m = parse_response("noreason")
    assert m.status == 100 and m.reason == ""
    assert m.to_tag == "902jndnke3"


# ---- 3.2 transaction layer -------------------------------------------------------------------


def test_badbranch_parses_with_bare_cookie() -> None:
    """The branch is only the magic cookie: parse it; the transaction layer must not treat it
    as a unique RFC 3261 branch (it carries no randomness)."""
    m = parse_request("badbranch")
    assert m.top_via.branch == BRANCH_MAGIC_COOKIE


# ---- 3.3 application layer -------------------------------------------------------------------


def test_insuf_missing_headers() -> None:
    """RFC: answer 400. To, From and Call-ID are missing, so no response the client could match
    can be built: can_respond is false and the transport drops it."""
    with pytest.raises(SipParseError) as info:
        parse(load("insuf"))
    assert not info.value.can_respond
    assert parse_error_response(load("insuf"), info.value) is None


@pytest.mark.parametrize(
    ("name", "uri"),
    [
        ("unkscm", "nobodyknowsthisscheme:totallyopaquecontent"),
        ("novelsc", "soap.beep://192.0.2.103:3002"),
    ],
)
def test_unknown_request_uri_scheme_is_detectable(name: str, uri: str) -> None:
    """Parse; the UAS answers 416 Unsupported URI Scheme because the URI is not sip/sips."""
    m = parse_request(name)
    assert not m.uri.is_sip
    assert str(m.uri) == uri


def test_unksm2() -> None:
    """REGISTER whose To is not a SIP URI: parse; a registrar answers 416."""
    m = parse_request("unksm2")
    assert m.to.uri.scheme == "isbn" and not m.to.uri.is_sip
    assert m.from_.uri.scheme == "http"
    assert m.contact[0].uri.scheme == "name"


def test_bext01_unknown_extensions() -> None:
    """Parse; the UAS answers 420 listing the Require tags in Unsupported."""
    m = parse_request("bext01")
    assert m.require == ["nothingsupportsthis", "nothingsupportsthiseither"]
    assert m.option_tags("Proxy-Require") == [
        "noproxiessupportthis",
        "nordoanyproxiessupportthis",
    ]


def test_invut_unknown_content_type() -> None:
    """Parse; the UAS answers 415 (the body is not application/sdp)."""
    m = parse_request("invut")
    assert m.content_type == "application/unknownformat"
    assert len(m.body) == 40


def test_regaut01_unknown_auth_scheme() -> None:
    m = parse_request("regaut01")
    assert m.headers.get("Authorization") == "NoOneKnowsThisScheme opaque-data=here"


@pytest.mark.parametrize("name", ["multi01", "mcl01"])
def test_duplicated_singleton_headers_get_400(name: str) -> None:
    """multi01 (two Call-IDs, CSeqs, Froms, Tos) and mcl01 (two Content-Lengths): the RFC says
    answer 400; the request is refused with can_respond so the transport can."""
    data = load(name)
    with pytest.raises(SipParseError) as info:
        parse(data)
    assert info.value.can_respond
    response = parse_error_response(data, info.value)
    assert response is not None and response.status == 400


def test_bcast() -> None:
    m = parse_response("bcast")
    assert m.vias[1].host == "255.255.255.255"


def test_zeromf() -> None:
    """Parse; Max-Forwards 0 (a proxy answers 483)."""
    assert parse_request("zeromf").max_forwards == 0


def test_cparam01_param_belongs_to_contact() -> None:
    (contact,) = parse_request("cparam01").contact
    assert contact.params == (("unknownparam", None),)
    assert contact.uri.params == ()
    assert contact.uri.user == "+19725552222"


def test_cparam02_param_belongs_to_uri() -> None:
    (contact,) = parse_request("cparam02").contact
    assert contact.params == ()
    assert contact.uri.params == (("unknownparam", None),)


def test_regescrt() -> None:
    (contact,) = parse_request("regescrt").contact
    assert contact.uri.headers == (("Route", "<sip:sip.example.com>"),)


def test_sdp01() -> None:
    """Parse; the body is SDP but Accept offers only text/nobodyKnowsThis: answer 415."""
    m = parse_request("sdp01")
    assert m.content_type == "application/sdp"
    assert m.headers.get_all("Accept") == ["text/nobodyKnowsThis"]


# ---- 3.4 backward compatibility --------------------------------------------------------------


def test_inv2543() -> None:
    """RFC 2543 request: no branch, no From tag, no Max-Forwards, no Content-Length."""
    m = parse_request("inv2543")
    assert m.top_via.branch is None
    assert m.from_tag is None
    assert m.max_forwards is None
    assert m.body.startswith(b"v=0\r\n") and m.body.endswith(b"RTP/AVP 0\r\n")
    assert m.record_route[0].uri.param("maddr") == "ss1.example.com"
    # Without <>, ";user=phone" is a To header parameter under RFC 3261 rules.
    assert m.to.param("user") == "phone" and m.to.uri.user == "+16505552222"
