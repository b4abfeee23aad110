"""sip.message: parsing, serialising, framing and building messages."""

from __future__ import annotations

import pytest

from sip.headers import Headers, NameAddr, Via, split_commas
from sip.message import (
    MAX_MESSAGE_SIZE,
    Request,
    Response,
    SipParseError,
    SipUri,
    frame_length,
    make_request,
    make_response,
    new_branch,
    new_call_id,
    new_tag,
    parse,
    parse_error_response,
    reason_phrase,
    serialise,
    strip_keepalive,
)

SDP = b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\ns=-\r\nc=IN IP4 192.0.2.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"

INVITE = (
    b"INVITE sip:room1@gw.example.com SIP/2.0\r\n"
    b"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds;rport\r\n"
    b"Via: SIP/2.0/UDP [2001:db8::1]:5070;branch=z9hG4bKnashds8;received=192.0.2.3\r\n"
    b"Max-Forwards: 70\r\n"
    b'From: "Alice" <sip:alice@example.com>;tag=1928301774\r\n'
    b"To: <sip:room1@gw.example.com>\r\n"
    b"Call-ID: a84b4c76e66710@pc33.example.com\r\n"
    b"CSeq: 314159 INVITE\r\n"
    b"Contact: <sip:alice@192.0.2.1:5060;transport=udp>\r\n"
    b"Record-Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n"
    b"Content-Type: application/sdp\r\n"
    b"Content-Length: 87\r\n"
    b"\r\n" + SDP
)
CL = b"Content-Length: 87"
assert len(SDP) == 87


def invite() -> Request:
    msg = parse(INVITE)
    assert isinstance(msg, Request)
    return msg


def test_parse_request_fields() -> None:
    m = invite()
    assert m.method == "INVITE"
    assert m.uri == SipUri("sip", "room1", None, "gw.example.com")
    assert m.call_id == "a84b4c76e66710@pc33.example.com"
    assert m.cseq == (314159, "INVITE")
    assert m.max_forwards == 70
    assert m.from_ == NameAddr(
        "Alice", SipUri("sip", "alice", None, "example.com"), (("tag", "1928301774"),)
    )
    assert m.from_tag == "1928301774" and m.to_tag is None
    assert [v.host for v in m.vias] == ["192.0.2.1", "[2001:db8::1]"]
    assert m.vias[1].port == 5070 and m.vias[1].param("received") == "192.0.2.3"
    assert m.top_via.branch == m.branch == "z9hG4bK776asdhds"
    assert m.top_via.has_param("rport") and m.top_via.param("rport") is None
    assert m.contact[0].uri.transport == "udp"
    assert [str(r.uri) for r in m.record_route] == [
        "sip:p1.example.com;lr",
        "sip:p2.example.com;lr",
    ]
    assert m.content_type == "application/sdp"
    assert m.body == SDP


def test_round_trip_is_byte_exact_for_canonical_input() -> None:
    assert serialise(invite()) == INVITE
    assert bytes(invite()) == INVITE
    assert parse(serialise(invite())) == invite()


def test_parse_response() -> None:
    data = (
        b"SIP/2.0 180 Ringing\r\n"
        b"Via: SIP/2.0/TCP client.example.com:5060;branch=z9hG4bK74bf9\r\n"
        b"From: <sip:a@example.com>;tag=9fxced76sl\r\n"
        b"To: <sip:b@example.com>;tag=8321234356\r\n"
        b"Call-ID: 3848276298220188511@example.com\r\n"
        b"CSeq: 1 INVITE\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    m = parse(data)
    assert isinstance(m, Response)
    assert (m.status, m.reason) == (180, "Ringing")
    assert m.to_tag == "8321234356"
    assert m.top_via.transport == "TCP"
    assert serialise(m) == data


def test_compact_forms_and_case_are_normalised() -> None:
    data = (
        b"OPTIONS sip:x@example.com SIP/2.0\r\n"
        b"v: SIP/2.0/UDP h.example.com;branch=z9hG4bKa\r\n"
        b"f: <sip:a@example.com>;tag=1\r\n"
        b"t: <sip:x@example.com>\r\n"
        b"i: abc@h\r\n"
        b"cSeQ: 1 OPTIONS\r\n"
        b"k: timer, 100rel\r\n"
        b"m: <sip:a@h.example.com>\r\n"
        b"l: 0\r\n\r\n"
    )
    m = parse(data)
    names = [n for n, _ in m.headers.items()]
    assert names == [
        "Via",
        "From",
        "To",
        "Call-ID",
        "CSeq",
        "Supported",
        "Contact",
        "Content-Length",
    ]
    assert m.supported == ["timer", "100rel"]
    assert m.headers.get("i") == m.headers.get("call-id") == "abc@h"
    assert b"Call-ID: abc@h\r\n" in serialise(m)


def test_folded_headers_are_unfolded() -> None:
    data = (
        b"OPTIONS sip:x@example.com SIP/2.0\r\n"
        b"Via: SIP/2.0/UDP h.example.com\r\n ;branch=z9hG4bKa\r\n"
        b"From: <sip:a@example.com>\r\n\t;tag=1\r\n"
        b"To: <sip:x@example.com>\r\n"
        b"Call-ID: abc@h\r\n"
        b"CSeq: 1\r\n   OPTIONS\r\n"
        b"Subject: first\r\n  second\r\n"
        b"Content-Length: 0\r\n\r\n"
    )
    m = parse(data)
    assert m.top_via.branch == "z9hG4bKa"
    assert m.from_tag == "1"
    assert m.cseq == (1, "OPTIONS")
    assert m.headers.get("Subject") == "first second"
    assert parse(serialise(m)) == m


def test_bare_lf_line_endings_are_accepted() -> None:
    head, body = INVITE.split(b"\r\n\r\n", 1)
    m = parse(head.replace(b"\r\n", b"\n") + b"\n\n" + body)
    assert m.call_id == "a84b4c76e66710@pc33.example.com"


def test_leading_crlf_is_ignored() -> None:
    assert parse(b"\r\n\r\n" + INVITE) == invite()


def test_datagram_without_content_length_takes_rest() -> None:
    data = INVITE.replace(b"Content-Length: " + str(len(SDP)).encode() + b"\r\n", b"")
    m = parse(data)
    assert m.body == SDP
    assert m.headers.get("Content-Length") == str(len(SDP))
    assert parse(serialise(m)) == m


def test_surplus_octets_after_content_length_are_dropped() -> None:
    assert parse(INVITE + b"garbage").body == SDP


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        (CL, CL + b"0", "Content-Length"),
        (CL, b"Content-Length: x", "Content-Length"),
        (CL, CL + b"\r\nl: 88", "Content-Length"),
        (b"CSeq: 314159 INVITE", b"CSeq: 314159 BYE", "CSeq"),
        (b"CSeq: 314159 INVITE", b"CSeq: INVITE", "CSeq"),
        (b"Call-ID: a84b4c76e66710@pc33.example.com\r\n", b"", "Call-ID"),
        (b"Max-Forwards: 70", b"Max-Forwards: 256", "Max-Forwards"),
        (b"SIP/2.0\r\nVia", b"SIP/3.0\r\nVia", "version"),
        (b"INVITE sip:room1", b"INVITE  sip:room1", "request line"),
        (b"\r\nMax-Forwards", b"\r\nBad Header: 1\r\nMax-Forwards", "header line"),
        (b"Via: SIP/2.0/UDP 192.0.2.1:5060;", b"Via: SIP/2.0/UDP 192.0.2.1:99999;", "Via"),
        (b"To: <sip:room1@gw.example.com>", b"To: <sip:room1@gw.example.com", "URI"),
    ],
)
def test_malformed_requests_raise_with_can_respond(old: bytes, new: bytes, reason: str) -> None:
    assert old in INVITE
    data = INVITE.replace(old, new, 1)
    with pytest.raises(SipParseError) as info:
        parse(data)
    assert info.value.can_respond == (reason != "Call-ID")
    response = parse_error_response(data, info.value)
    if info.value.can_respond:
        assert response is not None
        assert response.status in (400, 505)
        assert len(response.headers.get_lines("Via")) == 2
        assert response.headers.get("Call-ID") == invite().call_id
        if reason != "URI":
            assert response.to_tag is not None  # a tag was added to the tagless To
    else:
        assert response is None


def test_bad_version_is_505() -> None:
    with pytest.raises(SipParseError) as info:
        parse(INVITE.replace(b" SIP/2.0\r\n", b" SIP/3.0\r\n", 1))
    assert info.value.status == 505


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\r\n\r\n",
        b"hello",
        b"SIP/2.0 99 Too Low\r\n\r\n",
        b"SIP/2.0 2000 OK\r\n\r\n",
        b"INVITE sip:a@b SIP/2.0\r\n\r\n",
        b"INVITE sip:a@b SIP/2.0\r\n\xff\xfe: x\r\n\r\n",
        b"\x00" * 100,
    ],
)
def test_garbage_raises_parse_error(data: bytes) -> None:
    with pytest.raises(SipParseError) as info:
        parse(data)
    assert parse_error_response(data, info.value) is None or info.value.can_respond


def test_responses_and_acks_are_never_answered() -> None:
    response = (
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\nFrom: <sip:a@b>;tag=1\r\n"
        b"To: <sip:c@d>\r\nCall-ID: x\r\nCSeq: 1 BYE\r\nContent-Length: 5\r\n\r\n"
    )
    with pytest.raises(SipParseError) as info:
        parse(response)
    assert not info.value.can_respond
    ack = INVITE.replace(b"INVITE sip", b"ACK sip").replace(b"314159 INVITE", b"314159 BYE")
    with pytest.raises(SipParseError) as info:
        parse(ack)
    assert not info.value.can_respond


def test_oversize_message() -> None:
    data = INVITE.replace(CL, b"X-Pad: " + b"a" * MAX_MESSAGE_SIZE + b"\r\n" + CL)
    with pytest.raises(SipParseError) as info:
        parse(data)
    assert info.value.status == 513 and info.value.can_respond
    response = parse_error_response(data, info.value)
    assert response is not None and response.status == 513
    assert response.reason == "Message Too Large"


def test_non_utf8_header_is_refused() -> None:
    with pytest.raises(SipParseError):
        parse(INVITE.replace(b"Alice", b"Al\xffce"))


# ---- stream framing --------------------------------------------------------------------------


def test_frame_length_complete_partial_and_pipelined() -> None:
    assert frame_length(INVITE) == len(INVITE)
    for cut in (1, 10, len(INVITE) - len(SDP), len(INVITE) - 1):
        assert frame_length(INVITE[:cut]) is None
    two = INVITE + INVITE[:50]
    n = frame_length(two)
    assert n == len(INVITE)
    assert parse(two[:n]) == invite()
    assert frame_length(two[n:]) is None


def test_frame_length_skips_keepalives() -> None:
    buf = b"\r\n\r\n" + INVITE
    n = frame_length(buf)
    assert n == len(buf)
    assert parse(buf[:n]) == invite()
    assert frame_length(b"\r\n\r\n") is None
    assert strip_keepalive(b"\r\n\r\n") == b""
    assert strip_keepalive(b"\r\n" + INVITE) == INVITE


def test_frame_length_compact_and_folded_content_length() -> None:
    data = INVITE.replace(CL, b"l:\r\n 87")
    assert frame_length(data + b"X") == len(data)


@pytest.mark.parametrize(
    "buf",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        INVITE.replace(CL + b"\r\n", b""),
        INVITE.replace(CL, b"Content-Length: -1"),
        INVITE.replace(CL, CL + b"\r\nl: 88"),
        INVITE.replace(CL, b"Content-Length: 70000"),
        b"INVITE sip:a@b SIP/2.0\r\nX: " + b"a" * (MAX_MESSAGE_SIZE + 1),
    ],
)
def test_frame_length_rejects_garbage(buf: bytes) -> None:
    with pytest.raises(SipParseError):
        frame_length(buf)


# ---- building --------------------------------------------------------------------------------


def test_make_response_copies_headers() -> None:
    req = invite()
    r = make_response(req, 180, to_tag="abc")
    assert (r.status, r.reason) == (180, "Ringing")
    assert r.headers.get_lines("Via") == req.headers.get_lines("Via")
    assert r.headers.get("From") == req.headers.get("From")
    assert r.to_tag == "abc" and r.to.uri == req.to.uri
    assert r.call_id == req.call_id and r.cseq == req.cseq
    assert r.headers.get_all("Record-Route") == req.headers.get_all("Record-Route")
    assert r.headers.get("Content-Length") == "0"
    assert parse(serialise(r)) == r


def test_make_response_100_has_no_tag_or_record_route() -> None:
    r = make_response(invite(), 100, to_tag="abc")
    assert r.reason == "Trying"
    assert r.to_tag is None
    assert r.headers.get("Record-Route") is None


def test_make_response_keeps_existing_to_tag_and_adds_body() -> None:
    req = invite()
    headers = req.headers.copy()
    headers.set("To", "<sip:room1@gw.example.com>;tag=old")
    req2 = Request(req.method, req.uri, headers, req.body)
    r = make_response(
        req2,
        200,
        to_tag="new",
        headers=[("Contact", "<sip:gw@192.0.2.9>")],
        body=SDP,
        content_type="application/sdp",
    )
    assert r.to_tag == "old"
    assert r.content_type == "application/sdp"
    assert r.contact[0].uri.host == "192.0.2.9"
    assert parse(serialise(r)) == r
    assert make_response(req2, 486).headers.get("Record-Route") is None


@pytest.mark.parametrize(
    ("status", "phrase"),
    [
        (200, "OK"),
        (404, "Not Found"),
        (420, "Bad Extension"),
        (422, "Session Interval Too Small"),
        (481, "Call/Transaction Does Not Exist"),
        (488, "Not Acceptable Here"),
        (491, "Request Pending"),
        (513, "Message Too Large"),
        (603, "Decline"),
        (299, "Success"),
        (499, "Client Error"),
    ],
)
def test_reason_phrases(status: int, phrase: str) -> None:
    assert reason_phrase(status) == phrase
    assert make_response(invite(), status).reason == phrase


def test_make_request_round_trips() -> None:
    req = make_request(
        "BYE",
        SipUri.parse("sip:alice@192.0.2.1:5060"),
        via=Via("UDP", "192.0.2.9", 5060, (("branch", new_branch()), ("rport", None))),
        from_=NameAddr(None, SipUri.parse("sip:room1@gw.example.com"), (("tag", new_tag()),)),
        to=NameAddr.parse('"Alice" <sip:alice@example.com>;tag=1928301774'),
        call_id=new_call_id("gw.example.com"),
        cseq=2,
        headers=[("Route", "<sip:p1.example.com;lr>")],
    )
    assert req.cseq == (2, "BYE")
    assert req.max_forwards == 70
    assert parse(serialise(req)) == req


def test_identifiers() -> None:
    b1, b2 = new_branch(), new_branch()
    assert b1.startswith("z9hG4bK") and b1 != b2 and len(b1) > 16
    assert new_tag() != new_tag()
    call_id = new_call_id("gw.example.com")
    assert call_id.endswith("@gw.example.com")
    assert parse(serialise(invite())).call_id != call_id


def test_serialise_fixes_content_length() -> None:
    req = invite()
    wrong = req.headers.copy()
    wrong.set("Content-Length", "5")
    wrong.add("Content-Length", "7")
    data = serialise(Request(req.method, req.uri, wrong, req.body))
    assert data == INVITE
    no_length = req.headers.copy()
    no_length.remove("Content-Length")
    data = serialise(Request(req.method, req.uri, no_length, req.body))
    assert parse(data) == parse(data + b"")
    assert data.count(CL + b"\r\n") == 1


# ---- headers ---------------------------------------------------------------------------------


def test_headers_multimap() -> None:
    h = Headers([("via", "a"), ("Contact", "<sip:x@y>"), ("v", "b, c")])
    assert h.get("VIA") == "a"
    assert h.get_all("Via") == ["a", "b", "c"]
    assert h.get_lines("Via") == ["a", "b, c"]
    h.set("Via", "z")
    assert h.items() == [("Via", "z"), ("Contact", "<sip:x@y>")]
    h.insert(0, "Via", "top")
    assert h.get_all("via") == ["top", "z"]
    copy = h.copy()
    h.remove("via")
    assert h.items() == [("Contact", "<sip:x@y>")]
    assert copy != h and len(copy) == 3
    assert "contact" in h and "Via" not in h
    assert Headers([("X-Foo", "1")]) == Headers([("x-foo", "1")])
    assert h.get("Nope") is None and h.get_all("Nope") == []
    with pytest.raises(ValueError):
        h.add("Bad Name", "x")
    with pytest.raises(ValueError):
        h.add("X", "a\r\nInjected: 1")


def test_split_commas_respects_quotes_and_angles() -> None:
    value = '"Doe, John" <sip:j@x;a=1,2>;q=0.5, <sip:k@y>, "a \\" , b" <sip:z@z>,,'
    assert split_commas(value) == [
        '"Doe, John" <sip:j@x;a=1,2>;q=0.5',
        "<sip:k@y>",
        '"a \\" , b" <sip:z@z>',
    ]
    h = Headers([("Contact", value)])
    assert [NameAddr.parse(v).display_name for v in h.get_all("Contact")] == [
        "Doe, John",
        None,
        'a " , b',
    ]
    # Non-list headers are never split.
    assert Headers([("Subject", "a, b")]).get_all("Subject") == ["a, b"]


def test_contact_wildcard() -> None:
    data = (
        b"REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\n"
        b"From: <sip:a@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\nCall-ID: x\r\n"
        b"CSeq: 2 REGISTER\r\nContact: *\r\nExpires: 0\r\nContent-Length: 0\r\n\r\n"
    )
    m = parse(data)
    assert m.contact == [] and m.contact_is_wildcard
    assert m.expires == 0


def test_frame_length_leaves_bad_request_lines_to_parse() -> None:
    """A stream frame with a malformed request line is still cut, so parse() can answer 400."""
    data = INVITE.replace(
        b"INVITE sip:room1@gw.example.com SIP/2.0", b"INVITE  sip:room1@gw.example.com SIP/2.0  "
    )
    n = frame_length(data)
    assert n == len(data)
    with pytest.raises(SipParseError) as info:
        parse(data[:n])
    assert info.value.can_respond
