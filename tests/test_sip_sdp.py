"""sip.sdp: SDP parsing/serialising and RFC 3264 offer/answer for audio."""

from __future__ import annotations

import pytest

from sip.sdp import (
    Codec,
    MediaDescription,
    NegotiatedAudio,
    SdpError,
    SessionDescription,
    answer_offer,
    make_offer,
    mirror_direction,
    negotiate_answer,
)


def sdp(*lines: str) -> str:
    return "\r\n".join(lines) + "\r\n"


# A SIP.js / JsSIP call from Chromium: WebRTC profile only (DTLS-SRTP, ICE).
CHROMIUM = sdp(
    "v=0",
    "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
    "s=-",
    "t=0 0",
    "a=group:BUNDLE 0",
    "a=extmap-allow-mixed",
    "a=msid-semantic: WMS 5d8d2a9c",
    "m=audio 54400 UDP/TLS/RTP/SAVPF 111 63 9 0 8 13 110 126",
    "c=IN IP4 203.0.113.7",
    "a=rtcp:9 IN IP4 0.0.0.0",
    "a=candidate:1 1 udp 2122260223 203.0.113.7 54400 typ host generation 0",
    "a=ice-ufrag:8hhY",
    "a=ice-pwd:asd88fgpdd777uzjYhagZg",
    "a=fingerprint:sha-256 D2:FA:0E:C3:22:59:5E:14:95:69:92:3D:13:B4:84:24:2C:C2:A2:C0:3E:FD:34:8E:5E:EA:6F:AF:52:CE:E6:0F",
    "a=setup:actpass",
    "a=mid:0",
    "a=sendrecv",
    "a=rtcp-mux",
    "a=rtpmap:111 opus/48000/2",
    "a=rtcp-fb:111 transport-cc",
    "a=fmtp:111 minptime=10;useinbandfec=1",
    "a=rtpmap:63 red/48000/2",
    "a=fmtp:63 111/111",
    "a=rtpmap:9 G722/8000",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:13 CN/8000",
    "a=rtpmap:110 telephone-event/48000",
    "a=rtpmap:126 telephone-event/8000",
    "a=ssrc:3735928559 cname:4TOk42mSjXCkVIa6",
)

PJSUA = sdp(
    "v=0",
    "o=- 3917364212 3917364212 IN IP4 192.168.1.10",
    "s=pjmedia",
    "b=AS:117",
    "t=0 0",
    "a=X-nat:0",
    "m=audio 4000 RTP/AVP 96 97 98 99 3 0 8 9 120 121 122",
    "c=IN IP4 192.168.1.10",
    "b=TIAS:96000",
    "a=rtcp:4001 IN IP4 192.168.1.10",
    "a=sendrecv",
    "a=rtpmap:96 speex/16000",
    "a=rtpmap:97 speex/8000",
    "a=rtpmap:98 speex/32000",
    "a=rtpmap:99 iLBC/8000",
    "a=fmtp:99 mode=30",
    "a=rtpmap:120 telephone-event/16000",
    "a=fmtp:120 0-16",
    "a=rtpmap:121 telephone-event/8000",
    "a=fmtp:121 0-16",
    "a=rtpmap:122 telephone-event/32000",
    "a=fmtp:122 0-16",
    "a=ssrc:1519271227 cname:0d5e1e6d7c4c4c9b",
)

BARESIP = sdp(
    "v=0",
    "o=- 1804289383 1681692777 IN IP4 10.0.0.2",
    "s=-",
    "c=IN IP4 10.0.0.2",
    "t=0 0",
    "a=tool:baresip 3.10.1",
    "m=audio 10000 RTP/AVP 96 9 0 8 101",
    "b=AS:142",
    "a=rtpmap:96 opus/48000/2",
    "a=fmtp:96 stereo=1;sprop-stereo=1",
    "a=rtpmap:9 G722/8000",
    "a=rtpmap:0 PCMU/8000",
    "a=rtpmap:8 PCMA/8000",
    "a=rtpmap:101 telephone-event/8000",
    "a=fmtp:101 0-15",
    "a=rtcp-rsize",
    "a=ptime:20",
    "a=sendrecv",
    "a=label:1",
    "a=ssrc:2891101237 cname:sip:alice@10.0.0.2",
    "m=video 10002 RTP/AVP 97",
    "b=AS:500",
    "a=rtpmap:97 H264/90000",
    "a=fmtp:97 packetization-mode=0;profile-level-id=42e01f",
    "a=sendrecv",
)

# sipp's uac_pcap scenario (LF line ends, as sipp sends them when scenario files are LF).
SIPP = (
    "\n".join(
        [
            "v=0",
            "o=user1 53655765 2353687637 IN IP4 127.0.0.1",
            "s=-",
            "c=IN IP4 127.0.0.1",
            "t=0 0",
            "m=audio 6000 RTP/AVP 8 101",
            "a=rtpmap:8 PCMA/8000",
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-11,16",
        ]
    )
    + "\n"
)


def answer(text: str) -> tuple[SessionDescription, NegotiatedAudio | None]:
    result = answer_offer(
        SessionDescription.parse(text),
        local_address="198.51.100.5",
        audio_port=30000,
        session_id=77,
        session_version=1,
    )
    return result.answer, result.audio


@pytest.mark.parametrize("text", [CHROMIUM, PJSUA, BARESIP, SIPP])
def test_round_trip(text: str) -> None:
    sd = SessionDescription.parse(text)
    assert SessionDescription.parse(str(sd)) == sd
    assert SessionDescription.parse(bytes(sd)) == sd
    if "\r\n" in text:
        assert str(sd) == text


def test_parse_fields() -> None:
    sd = SessionDescription.parse(PJSUA)
    assert sd.version == 0
    assert (sd.origin.username, sd.origin.sess_id, sd.origin.address) == (
        "-",
        3917364212,
        "192.168.1.10",
    )
    assert sd.session_name == "pjmedia"
    assert sd.bandwidth == (("AS", 117),)
    assert sd.connection is None
    (m,) = sd.media
    assert (m.media, m.port, m.proto) == ("audio", 4000, "RTP/AVP")
    assert m.formats[:2] == ("96", "97")
    assert sd.media_connection(m) == "192.168.1.10"
    assert m.rtcp_port == 4001
    assert m.bandwidth == (("TIAS", 96000),)
    assert [c.name for c in m.codecs][:5] == ["speex", "speex", "speex", "iLBC", "GSM"]
    assert m.codecs[3] == Codec(99, "iLBC", 8000, 1, "mode=30")
    assert m.direction == "sendrecv"


def test_static_payload_types_without_rtpmap() -> None:
    m = SessionDescription.parse(
        sdp(
            "v=0",
            "o=- 1 1 IN IP4 1.2.3.4",
            "s=-",
            "c=IN IP4 1.2.3.4",
            "t=0 0",
            "m=audio 5000 RTP/AVP 0 8 9 18 97",
        )
    ).media[0]
    assert m.codecs == [
        Codec(0, "PCMU", 8000),
        Codec(8, "PCMA", 8000),
        Codec(9, "G722", 8000),
        Codec(18, "G729", 8000),
    ]  # 97 has no rtpmap: skipped
    assert m.rtcp_port == 5001 and m.ptime is None


def test_pjsua_offer() -> None:
    ans, audio = answer(PJSUA)
    assert audio is not None
    assert audio.codec == Codec(0, "PCMU", 8000)  # first offered we support (GSM is not)
    assert audio.dtmf == Codec(121, "telephone-event", 8000, 1, "0-16")
    assert (audio.remote_address, audio.remote_port, audio.remote_rtcp_port) == (
        "192.168.1.10",
        4000,
        4001,
    )
    (m,) = ans.media
    assert (m.port, m.proto, m.formats) == (30000, "RTP/AVP", ("0", "121"))
    assert ("rtpmap", "0 PCMU/8000") in m.attributes
    assert ("fmtp", "121 0-16") in m.attributes
    names = {n for n, _ in m.attributes}
    assert names == {"rtpmap", "fmtp", "sendrecv"}  # no ssrc, rtcp, X-nat...
    assert ans.attributes == ()
    assert ans.connection == "198.51.100.5"
    assert (ans.origin.username, ans.origin.sess_id, ans.origin.sess_version) == ("gateway", 77, 1)


def test_baresip_offer_video_rejected_and_ptime_mirrored() -> None:
    ans, audio = answer(BARESIP)
    assert audio is not None
    assert audio.codec.name == "G722" and audio.codec.payload_type == 9
    assert audio.dtmf is not None and audio.dtmf.payload_type == 101 and audio.dtmf.fmtp == "0-15"
    assert audio.ptime == 20
    audio_m, video_m = ans.media
    assert audio_m.attribute("ptime") == "20"
    assert not audio_m.has_attribute("label") and not audio_m.has_attribute("rtcp-rsize")
    assert (video_m.media, video_m.port, video_m.proto, video_m.formats) == (
        "video",
        0,
        "RTP/AVP",
        ("97",),
    )
    assert video_m.attributes == ()
    assert SessionDescription.parse(str(ans)) == ans


def test_sipp_offer() -> None:
    ans, audio = answer(SIPP)
    assert audio is not None
    assert audio.codec == Codec(8, "PCMA", 8000)
    assert audio.dtmf is not None and audio.dtmf.fmtp == "0-11,16"
    assert ans.media[0].formats == ("8", "101")
    assert str(ans).endswith("\r\n") and "\n" not in str(ans).replace("\r\n", "")


def test_chromium_webrtc_profile_is_rejected() -> None:
    with pytest.raises(SdpError):
        answer(CHROMIUM)


def test_chromium_like_plain_rtp_offer() -> None:
    text = CHROMIUM.replace("UDP/TLS/RTP/SAVPF", "RTP/AVPF")
    ans, audio = answer(text)
    assert audio is not None
    assert audio.codec.name == "G722"  # opus and red are offered first but unsupported
    assert audio.dtmf == Codec(126, "telephone-event", 8000)  # matched to G.722's 8000 clock
    assert ans.media[0].proto == "RTP/AVPF"
    assert audio.remote_address == "203.0.113.7"
    assert not ans.media[0].has_attribute("rtcp-mux")


def test_telephone_event_only_at_48000() -> None:
    text = sdp(
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.9",
        "s=-",
        "c=IN IP4 192.0.2.9",
        "t=0 0",
        "m=audio 7000 RTP/AVP 9 110",
        "a=rtpmap:110 telephone-event/48000",
    )
    ans, audio = answer(text)
    assert audio is not None
    assert audio.dtmf == Codec(110, "telephone-event", 48000)
    assert ("rtpmap", "110 telephone-event/48000") in ans.media[0].attributes
    assert ("fmtp", "110 0-16") in ans.media[0].attributes


def test_no_common_codec() -> None:
    text = sdp(
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.9",
        "s=-",
        "c=IN IP4 192.0.2.9",
        "t=0 0",
        "m=audio 7000 RTP/AVP 96 18",
        "a=rtpmap:96 opus/48000/2",
    )
    with pytest.raises(SdpError):
        answer(text)
    with pytest.raises(SdpError):
        answer(PJSUA.replace(" 3 0 8 9 ", " 3 "))


def test_only_first_audio_line_accepted_and_savp_rejected() -> None:
    text = sdp(
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.9",
        "s=-",
        "c=IN IP4 192.0.2.9",
        "t=0 0",
        "m=audio 6000 RTP/SAVP 0",
        "a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:x",
        "m=audio 6002 RTP/AVP 0",
        "m=audio 6004 RTP/AVP 8",
        "m=application 6006 UDP/BFCP *",
        "m=audio 0 RTP/AVP 0",
    )
    ans, audio = answer(text)
    assert audio is not None and audio.media_index == 1 and audio.remote_port == 6002
    assert [m.port for m in ans.media] == [0, 30000, 0, 0, 0]
    assert [m.formats for m in ans.media] == [("0",), ("0",), ("8",), ("*",), ("0",)]
    assert [m.media for m in ans.media] == ["audio", "audio", "audio", "application", "audio"]


@pytest.mark.parametrize(
    ("session_attr", "media_attr", "conn", "ours", "hold"),
    [
        (None, "sendonly", "192.0.2.9", "recvonly", True),
        (None, "inactive", "192.0.2.9", "inactive", True),
        (None, "recvonly", "192.0.2.9", "sendonly", False),
        ("sendonly", None, "192.0.2.9", "recvonly", True),
        ("sendonly", "sendrecv", "192.0.2.9", "sendrecv", False),
        (None, None, "0.0.0.0", "recvonly", True),
        (None, "recvonly", "0.0.0.0", "inactive", True),
    ],
)
def test_hold_offers(
    session_attr: str | None, media_attr: str | None, conn: str, ours: str, hold: bool
) -> None:
    lines = ["v=0", "o=- 1 2 IN IP4 192.0.2.9", "s=-", f"c=IN IP4 {conn}", "t=0 0"]
    if session_attr:
        lines.append(f"a={session_attr}")
    lines += ["m=audio 7000 RTP/AVP 0"]
    if media_attr:
        lines.append(f"a={media_attr}")
    ans, audio = answer(sdp(*lines))
    assert audio is not None
    assert audio.direction == ours and audio.on_hold is hold
    assert ans.media[0].direction == ours


def test_mirror_direction() -> None:
    assert [mirror_direction(d) for d in ("sendrecv", "sendonly", "recvonly", "inactive")] == [
        "sendrecv",
        "recvonly",
        "sendonly",
        "inactive",
    ]


def test_make_offer_and_negotiate_answer() -> None:
    offer = make_offer(
        local_address="198.51.100.5", audio_port=40000, session_id=5, session_version=1
    )
    (m,) = offer.media
    assert m.formats == ("9", "0", "8", "101")
    assert [c.name for c in m.codecs] == ["G722", "PCMU", "PCMA", "telephone-event"]
    assert m.ptime == 20 and m.direction == "sendrecv"
    assert SessionDescription.parse(str(offer)) == offer
    # The far end answers with PCMU only.
    remote = SessionDescription.parse(
        sdp(
            "v=0",
            "o=- 9 9 IN IP4 192.0.2.50",
            "s=-",
            "c=IN IP4 192.0.2.50",
            "t=0 0",
            "m=audio 8000 RTP/AVP 0 101",
            "a=rtpmap:101 telephone-event/8000",
            "a=recvonly",
        )
    )
    audio = negotiate_answer(offer, remote)
    assert audio is not None
    assert audio.codec == Codec(0, "PCMU", 8000)
    assert audio.dtmf is not None and audio.dtmf.payload_type == 101
    assert (audio.remote_address, audio.remote_port) == ("192.0.2.50", 8000)
    assert audio.direction == "sendonly" and not audio.on_hold
    assert audio.ptime == 20


def test_offer_answer_between_two_gateways() -> None:
    offer = make_offer(
        local_address="2001:db8::1",
        audio_port=40000,
        session_id=5,
        session_version=1,
        codecs=("PCMA", "G722"),
        dtmf_rates=(8000, 16000),
        direction="sendonly",
    )
    assert "c=IN IP6 2001:db8::1" in str(offer)
    result = answer_offer(
        offer, local_address="192.0.2.7", audio_port=50000, session_id=1, session_version=1
    )
    assert result.audio is not None and result.audio.codec.name == "PCMA"
    assert result.audio.direction == "recvonly" and result.audio.on_hold
    back = negotiate_answer(offer, result.answer)
    assert back is not None
    assert back.codec == result.audio.codec and back.dtmf == result.audio.dtmf
    assert back.direction == "sendonly"
    assert (back.remote_address, back.remote_port) == ("192.0.2.7", 50000)


def test_negotiate_answer_rejected_or_mismatched() -> None:
    offer = make_offer(local_address="192.0.2.1", audio_port=4000, session_id=1, session_version=1)
    rejected = SessionDescription.parse(
        sdp(
            "v=0",
            "o=- 1 1 IN IP4 192.0.2.2",
            "s=-",
            "c=IN IP4 192.0.2.2",
            "t=0 0",
            "m=audio 0 RTP/AVP 0",
        )
    )
    assert negotiate_answer(offer, rejected) is None
    two = SessionDescription.parse(str(rejected) + "m=video 0 RTP/AVP 31\r\n")
    with pytest.raises(SdpError):
        negotiate_answer(offer, two)
    with pytest.raises(SdpError):
        make_offer(
            local_address="192.0.2.1",
            audio_port=4000,
            session_id=1,
            session_version=1,
            codecs=("opus",),
        )


@pytest.mark.parametrize(
    "text",
    [
        "",
        "o=- 1 1 IN IP4 1.2.3.4\r\n",
        "v=1\r\no=- 1 1 IN IP4 1.2.3.4\r\n",
        "v=0\r\n",
        "v=0\r\no=- x 1 IN IP4 1.2.3.4\r\n",
        "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio\r\n",
        "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm=audio 70000 RTP/AVP 0\r\n",
        "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nc=IN IP4\r\n",
        "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nm =audio 1 RTP/AVP 0\r\n",
        "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nt=0\r\n",
        "v=0\r\no=- 1 1 IN IP4 1.2.3.4\r\nb=AS\r\n",
    ],
)
def test_parse_errors(text: str) -> None:
    with pytest.raises(SdpError):
        SessionDescription.parse(text)
    with pytest.raises(ValueError):
        SessionDescription.parse(text.encode())


def test_non_utf8_bytes() -> None:
    with pytest.raises(SdpError):
        SessionDescription.parse(b"v=0\r\no=\xff 1 1 IN IP4 1.2.3.4\r\n")


def test_media_description_helpers() -> None:
    m = MediaDescription(
        "audio",
        5000,
        "RTP/AVP",
        ("0",),
        attributes=(("ptime", "30"), ("rtcp", "6001"), ("sendonly", None)),
    )
    assert m.ptime == 30 and m.rtcp_port == 6001 and m.direction == "sendonly"
    assert m.direction_or("inactive") == "sendonly"
    assert MediaDescription("audio", 5000, "RTP/AVP", ("0",)).direction_or("inactive") == "inactive"
    assert MediaDescription("audio", 0, "RTP/AVP", ("0",)).rtcp_port is None
    assert MediaDescription("application", 5000, "UDP/BFCP", ("*",)).codecs == []


def test_g722_written_with_its_sampling_rate_is_still_g722() -> None:
    # RFC 3551 4.5.2: G722's RTP clock is 8000, but some devices write G722/16000.
    offer = SessionDescription.parse(
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        "m=audio 4000 RTP/AVP 9 0 101\r\na=rtpmap:9 G722/16000\r\na=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:101 telephone-event/16000\r\n"
    )
    result = answer_offer(
        offer, local_address="127.0.0.1", audio_port=5000, session_id=1, session_version=1
    )
    assert result.audio is not None
    assert (result.audio.codec.name, result.audio.codec.payload_type) == ("G722", 9)
    assert result.audio.dtmf is not None and result.audio.dtmf.payload_type == 101


# --------------------------------------------------------------------------------------------
# Hardening: connection addresses (IP literals of a served family only) and ptime


def audio_offer(conn: str, *, media_conn: str | None = None, extra: tuple[str, ...] = ()) -> str:
    lines = [
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.9",
        "s=-",
        f"c={conn}",
        "t=0 0",
        "m=audio 7000 RTP/AVP 0",
    ]
    if media_conn is not None:
        lines.append(f"c={media_conn}")
    return sdp(*lines, *extra)


@pytest.mark.parametrize(
    "conn",
    [
        "IN IP4 pc33.example.com",  # a name: would be resolved for every RTP packet
        "IN IP6 host.example.com",
        "IN IP4 2001:db8::7",  # the literal is not of the declared family
        "IN IP6 192.0.2.9",
        "IN IP4 192.0.2.300",
        "IN IP4 224.2.1.1/127",  # multicast with a TTL: not for us
    ],
)
def test_offer_with_unusable_connection_address_is_refused(conn: str) -> None:
    with pytest.raises(SdpError):
        answer(audio_offer(f"{conn}"))


def test_ip6_offer_refused_by_an_ipv4_only_gateway_but_accepted_otherwise() -> None:
    text = audio_offer("IN IP6 2001:db8::7")
    with pytest.raises(SdpError):
        answer_offer(
            SessionDescription.parse(text),
            local_address="198.51.100.5",
            audio_port=30000,
            session_id=1,
            session_version=1,
            families=("IP4",),
        )
    result = answer_offer(
        SessionDescription.parse(text),
        local_address="198.51.100.5",
        audio_port=30000,
        session_id=1,
        session_version=1,
    )
    assert result.audio is not None and result.audio.remote_address == "2001:db8::7"


def test_audio_line_with_unserved_family_is_rejected_and_the_next_one_taken() -> None:
    text = sdp(
        "v=0",
        "o=- 1 1 IN IP4 192.0.2.9",
        "s=-",
        "c=IN IP4 192.0.2.9",
        "t=0 0",
        "m=audio 6000 RTP/AVP 0",
        "c=IN IP6 2001:db8::7",
        "m=audio 6002 RTP/AVP 0",
        "c=IN IP4 host.example.com",
        "m=audio 6004 RTP/AVP 8",
    )
    result = answer_offer(
        SessionDescription.parse(text),
        local_address="198.51.100.5",
        audio_port=30000,
        session_id=1,
        session_version=1,
        families=("IP4",),
    )
    assert result.audio is not None
    assert (result.audio.media_index, result.audio.remote_address) == (2, "192.0.2.9")
    assert [m.port for m in result.answer.media] == [0, 0, 30000]


def test_media_level_literal_overrides_a_session_level_name() -> None:
    ans, audio = answer(audio_offer("IN IP4 gw.example.com", media_conn="IN IP4 192.0.2.10"))
    assert audio is not None and audio.remote_address == "192.0.2.10"


def test_rfc2543_hold_address_still_accepted() -> None:
    for families in (("IP4",), ("IP4", "IP6")):
        result = answer_offer(
            SessionDescription.parse(audio_offer("IN IP4 0.0.0.0")),
            local_address="198.51.100.5",
            audio_port=30000,
            session_id=1,
            session_version=1,
            families=families,
        )
        assert result.audio is not None and result.audio.on_hold


def test_declared_family_survives_a_round_trip() -> None:
    text = audio_offer("IN IP6 192.0.2.9")
    offer = SessionDescription.parse(text)
    assert "c=IN IP6 192.0.2.9" in str(offer)
    assert SessionDescription.parse(str(offer)) == offer
    assert offer.media_connection_family(offer.media[0]) == "IP6"


def test_negotiate_answer_refuses_a_name_or_an_unserved_family() -> None:
    offer = make_offer(local_address="192.0.2.1", audio_port=4000, session_id=1, session_version=1)

    def remote(conn: str) -> SessionDescription:
        return SessionDescription.parse(
            sdp(
                "v=0",
                "o=- 1 1 IN IP4 192.0.2.2",
                "s=-",
                f"c={conn}",
                "t=0 0",
                "m=audio 8000 RTP/AVP 0",
            )
        )

    assert negotiate_answer(offer, remote("IN IP4 192.0.2.2")) is not None
    assert negotiate_answer(offer, remote("IN IP4 phone.example.com")) is None
    assert negotiate_answer(offer, remote("IN IP4 2001:db8::2")) is None
    assert negotiate_answer(offer, remote("IN IP6 2001:db8::2")) is not None
    assert negotiate_answer(offer, remote("IN IP6 2001:db8::2"), families=("IP4",)) is None
    assert negotiate_answer(offer, remote("IN IP4 0.0.0.0"), families=("IP4",)) is not None


def test_answer_says_the_ptime_we_send_and_keeps_the_offered_one() -> None:
    ans, audio = answer(audio_offer("IN IP4 192.0.2.9", extra=("a=ptime:30",)))
    assert audio is not None and audio.ptime == 30  # the peer sends 30 ms packets
    assert ans.media[0].attribute("ptime") == "20"  # we send 20 ms ones
    ans, audio = answer(audio_offer("IN IP4 192.0.2.9"))
    assert audio is not None and audio.ptime is None
    assert ans.media[0].attribute("ptime") in (None, "20")
