"""Property tests: round trips of generated messages, and fuzzing of the parsers."""

from __future__ import annotations

import string
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from sip.errors import SdpError, SipParseError
from sip.headers import Headers, NameAddr, Via, quote
from sip.message import (
    Request,
    Response,
    frame_length,
    parse,
    parse_error_response,
    serialise,
)
from sip.sdp import SessionDescription, answer_offer, negotiate_answer
from sip.uri import SipUri

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

TOKEN_ALPHABET = string.ascii_letters + string.digits + "-.!%*_+`'~"
tokens = st.text(TOKEN_ALPHABET, min_size=1, max_size=12)
# Free text: no CR/LF (cannot be carried in a header line) and no lone surrogates.
text = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\r\n"), max_size=20)
lws_free_text = text.map(lambda s: s.strip(" \t"))

labels = st.text(string.ascii_lowercase + string.digits, min_size=1, max_size=8)
hostnames = st.lists(labels, min_size=1, max_size=4).map(".".join)
ipv4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
ipv6 = st.lists(st.integers(0, 0xFFFF), min_size=8, max_size=8).map(
    lambda g: "[" + ":".join(f"{x:x}" for x in g) + "]"
)
hosts = st.one_of(hostnames, ipv4, ipv6)
ports = st.none() | st.integers(1, 65535)
uri_params = st.lists(st.tuples(text.filter(bool), st.none() | text), max_size=3).map(tuple)


@st.composite
def sip_uris(draw: st.DrawFn, *, with_headers: bool = True) -> SipUri:
    user = draw(st.none() | text.filter(bool))
    password = draw(st.none() | text) if user is not None else None
    headers = (
        draw(st.lists(st.tuples(text.filter(bool), text), max_size=2).map(tuple))
        if with_headers
        else ()
    )
    return SipUri(
        draw(st.sampled_from(["sip", "sips"])),
        user,
        password,
        draw(hosts),
        draw(ports),
        draw(uri_params),
        headers,
    )


header_param_values = st.one_of(st.none(), tokens, text.map(quote))
header_params = st.lists(st.tuples(tokens, header_param_values), max_size=3).map(tuple)


@st.composite
def name_addrs(draw: st.DrawFn) -> NameAddr:
    return NameAddr(draw(st.none() | text), draw(sip_uris()), draw(header_params))


@st.composite
def vias(draw: st.DrawFn) -> Via:
    params = draw(st.lists(st.tuples(tokens, st.none() | tokens), max_size=3).map(tuple))
    return Via(
        draw(st.sampled_from(["UDP", "TCP", "TLS", "WS", "WSS", "SCTP"])),
        draw(hosts),
        draw(ports),
        (("branch", "z9hG4bK" + draw(tokens)), *params),
    )


@st.composite
def common_headers(draw: st.DrawFn, method: str) -> tuple[Headers, dict[str, object]]:
    via_list = draw(st.lists(vias(), min_size=1, max_size=3))
    from_ = draw(name_addrs())
    to = draw(name_addrs())
    contacts = draw(st.lists(name_addrs(), max_size=2))
    call_id = draw(
        st.text(
            string.ascii_letters + string.digits + "-.!%*_+`'~()<>:\\\"/[]?{}@",
            min_size=1,
            max_size=30,
        )
    )
    cseq = draw(st.integers(0, 2**31 - 1))
    body = draw(st.binary(max_size=64))
    h = Headers()
    for via in via_list:
        h.add("Via", str(via))
    h.add("Max-Forwards", str(draw(st.integers(0, 255))))
    h.add("From", str(from_))
    h.add("To", str(to))
    h.add("Call-ID", call_id)
    h.add("CSeq", f"{cseq} {method}")
    if contacts:
        h.add("Contact", ", ".join(map(str, contacts)))
    for name, value in draw(
        st.lists(st.tuples(tokens.map(lambda t: "X-" + t), lws_free_text), max_size=3)
    ):
        h.add(name, value)
    h.add("Content-Length", str(len(body)))
    fields = {
        "vias": via_list,
        "from": from_,
        "to": to,
        "contacts": contacts,
        "call_id": call_id,
        "cseq": (cseq, method),
        "body": body,
    }
    return h, fields


@st.composite
def requests(draw: st.DrawFn) -> tuple[Request, dict[str, object]]:
    method = draw(st.sampled_from(["INVITE", "ACK", "BYE", "OPTIONS", "INFO"]) | tokens)
    headers, fields = draw(common_headers(method))
    uri = draw(sip_uris(with_headers=False))
    body = fields["body"]
    assert isinstance(body, bytes)
    return Request(method, uri, headers, body), fields


@st.composite
def responses(draw: st.DrawFn) -> tuple[Response, dict[str, object]]:
    method = draw(st.sampled_from(["INVITE", "BYE", "OPTIONS"]) | tokens)
    headers, fields = draw(common_headers(method))
    body = fields["body"]
    assert isinstance(body, bytes)
    return Response(draw(st.integers(100, 699)), draw(text), headers, body), fields


def check_fields(msg: Request | Response, fields: dict[str, object]) -> None:
    assert msg.vias == fields["vias"]
    assert msg.from_ == fields["from"]
    assert msg.to == fields["to"]
    assert msg.contact == fields["contacts"]
    assert msg.call_id == fields["call_id"]
    assert msg.cseq == fields["cseq"]
    assert msg.body == fields["body"]


@FAST
@given(sip_uris())
def test_uri_round_trip(uri: SipUri) -> None:
    assert SipUri.parse(str(uri)) == uri


@FAST
@given(name_addrs())
def test_name_addr_round_trip(na: NameAddr) -> None:
    assert NameAddr.parse(str(na)) == na


@FAST
@given(requests())
def test_request_round_trip(generated: tuple[Request, dict[str, object]]) -> None:
    request, fields = generated
    parsed = parse(serialise(request))
    assert parsed == request
    check_fields(parsed, fields)
    assert parsed.uri == request.uri
    assert frame_length(serialise(request) + b"\r\n") == len(serialise(request))


@FAST
@given(responses())
def test_response_round_trip(generated: tuple[Response, dict[str, object]]) -> None:
    response, fields = generated
    parsed = parse(serialise(response))
    assert parsed == response
    check_fields(parsed, fields)


# ---- fuzzing --------------------------------------------------------------------------------

DATA = Path("/work/shared/testdata/rfc4475")
SEEDS = [p.read_bytes() for p in sorted(DATA.glob("*.dat"))] if DATA.is_dir() else []
SEEDS.append(
    b"INVITE sip:room@gw.example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKa;rport\r\n"
    b'Max-Forwards: 70\r\nFrom: "A" <sip:a@example.com>;tag=1\r\nTo: <sip:room@gw.example.com>\r\n'
    b"Call-ID: c@h\r\nCSeq: 1 INVITE\r\nContact: <sip:a@192.0.2.1>\r\n"
    b"Content-Type: application/sdp\r\nContent-Length: 4\r\n\r\nv=0\n"
)


def check_parse(data: bytes) -> None:
    try:
        msg = parse(data)
    except SipParseError as exc:
        response = parse_error_response(data, exc)
        if response is not None:
            serialise(response)
        return
    # Whatever parses must round trip and support every accessor.
    assert parse(serialise(msg)) == msg
    _ = (
        msg.call_id,
        msg.cseq,
        msg.vias,
        msg.from_,
        msg.to,
        msg.contact,
        msg.route,
        msg.record_route,
        msg.content_type,
        msg.max_forwards,
        msg.expires,
    )
    try:
        frame_length(data)
    except SipParseError:
        pass


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "dup"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if op == "flip" and data:
            data[pos] = draw(st.sampled_from(b' \t\r\n:;,<>"\\@%=/0aZ\x00\xff'))
        elif op == "insert":
            data[pos:pos] = draw(
                st.sampled_from([b"\r\n", b" ", b";", b",", b'"', b"<", b"%", b"\r\n ", b"\xc3"])
            )
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 8))]
        elif op == "truncate":
            del data[pos:]
        elif op == "dup":
            data[pos:pos] = data[pos : pos + draw(st.integers(1, 40))]
    return bytes(data)


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=300))
@example(b"SIP/2.0 200 OK\r\n\r\n")
@example(b"A sip:a SIP/2.0\r\n\r\n")
def test_fuzz_random_bytes(data: bytes) -> None:
    check_parse(data)


@settings(max_examples=500, deadline=None)
@given(mutated())
def test_fuzz_mutated_messages(data: bytes) -> None:
    check_parse(data)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_fuzz_text_uris_and_headers(value: str) -> None:
    for parser in (SipUri.parse, NameAddr.parse, Via.parse):
        try:
            parser(value)
        except SipParseError:
            pass


SDP_SEED = (
    "v=0\r\no=- 1 1 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\n"
    "m=audio 10000 RTP/AVP 96 9 0 8 101\r\na=rtpmap:96 opus/48000/2\r\na=rtpmap:9 G722/8000\r\n"
    "a=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendonly\r\n"
    "m=video 10002 RTP/AVP 97\r\na=rtpmap:97 H264/90000\r\n"
)


@st.composite
def mutated_sdp(draw: st.DrawFn) -> str:
    data = list(SDP_SEED)
    for _ in range(draw(st.integers(1, 5))):
        pos = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["flip", "insert", "delete"]))
        char = draw(st.sampled_from(list(" =:/\r\n0a9xm-")))
        if op == "flip":
            data[pos] = char
        elif op == "insert":
            data.insert(pos, char)
        else:
            del data[pos : pos + draw(st.integers(1, 6))]
    return "".join(data)


@settings(max_examples=400, deadline=None)
@given(mutated_sdp())
def test_fuzz_sdp(text_: str) -> None:
    try:
        offer = SessionDescription.parse(text_)
    except SdpError:
        return
    assert SessionDescription.parse(str(offer)) == offer
    try:
        result = answer_offer(
            offer, local_address="192.0.2.1", audio_port=4000, session_id=1, session_version=1
        )
    except SdpError:
        return
    assert SessionDescription.parse(str(result.answer)) == result.answer
    assert negotiate_answer(offer, result.answer) is not None
