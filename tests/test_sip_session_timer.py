"""RFC 4028 session timer negotiation and timers."""

from __future__ import annotations

from sip.message import Request, Response, parse
from sip.session_timer import (
    EXPIRE_TIMER,
    REFRESH_TIMER,
    Negotiated,
    SessionTimer,
    SessionTimerConfig,
    TooSmall,
    negotiate_from_response,
    negotiate_uas,
    parse_session_expires,
    request_headers,
)
from sip.transaction import CancelTimer, StartTimer

CFG = SessionTimerConfig()


def req(*extra: str) -> Request:
    raw = (
        "INVITE sip:1@gw SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n"
        "From: <sip:a@192.0.2.1>;tag=f\r\nTo: <sip:1@gw>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n"
        + "".join(f"{h}\r\n" for h in extra)
        + "Content-Length: 0\r\n\r\n"
    )
    msg = parse(raw.encode())
    assert isinstance(msg, Request)
    return msg


def test_parse_session_expires() -> None:
    se = parse_session_expires("1800 ; refresher=UAS")
    assert se.interval == 1800 and se.refresher == "uas"
    assert str(se) == "1800;refresher=uas"
    assert parse_session_expires("90").refresher is None


def test_below_min_se_gets_422_when_uac_supports_timer() -> None:
    result = negotiate_uas(req("Supported: timer", "Session-Expires: 60"), CFG)
    assert result == TooSmall(90)
    assert result.response_headers() == [("Min-SE", "90")]


def test_below_min_se_without_support_is_raised_not_rejected() -> None:
    result = negotiate_uas(req("Session-Expires: 60"), CFG)
    assert result == Negotiated(90, "uas", require_timer=False)


def test_refresher_from_request_is_kept() -> None:
    result = negotiate_uas(req("Supported: timer", "Session-Expires: 600;refresher=uac"), CFG)
    assert result == Negotiated(600, "uac", require_timer=True)
    assert isinstance(result, Negotiated)
    assert result.response_headers() == [
        ("Session-Expires", "600;refresher=uac"),
        ("Require", "timer"),
    ]
    assert not result.we_refresh(we_are_uac=False)


def test_uas_chooses_refresher_and_caps_interval() -> None:
    result = negotiate_uas(req("Supported: timer", "Session-Expires: 7200"), CFG)
    assert result == Negotiated(1800, "uas", require_timer=True)
    assert isinstance(result, Negotiated) and result.we_refresh(we_are_uac=False)
    # Interval never below the request's Min-SE.
    result = negotiate_uas(req("Supported: timer", "Session-Expires: 7200", "Min-SE: 3600"), CFG)
    assert isinstance(result, Negotiated) and result.interval == 3600


def test_no_session_expires_we_time_it_ourselves() -> None:
    result = negotiate_uas(req(), CFG)
    assert result == Negotiated(1800, "uas", require_timer=False)
    assert negotiate_uas(req(), SessionTimerConfig(enabled=False)) is None


def test_uac_side() -> None:
    resp = parse(
        b"SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:a@h>;tag=f\r\n"
        b"To: <sip:b@h>;tag=t\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n"
        b"Session-Expires: 900;refresher=uac\r\nContent-Length: 0\r\n\r\n"
    )
    assert isinstance(resp, Response)
    result = negotiate_from_response(resp, CFG)
    assert result == Negotiated(900, "uac") and result.we_refresh(we_are_uac=True)
    headers = dict(request_headers(CFG))
    assert headers == {"Supported": "timer", "Session-Expires": "1800", "Min-SE": "90"}


def test_session_timer_actions() -> None:
    timer = SessionTimer("owner")
    assert timer.start(1800, True, 0.0) == [StartTimer("owner", REFRESH_TIMER, 900)]
    assert timer.start(90, False, 5.0) == [
        CancelTimer("owner", REFRESH_TIMER),
        StartTimer("owner", EXPIRE_TIMER, 60),  # 90 - min(32, 30)
    ]
    assert timer.start(1800, False, 6.0)[-1] == StartTimer("owner", EXPIRE_TIMER, 1768)
    assert timer.stop() == [CancelTimer("owner", EXPIRE_TIMER)]
    assert timer.stop() == [] and not timer.active


def test_refresh_failed_retries_and_arms_the_expiry() -> None:
    timer = SessionTimer("owner")
    timer.start(1800, True, 0.0)
    assert timer.expires_at == 1768
    # At the refresh point (900 s) the refresh is refused: next try halfway to the expiry.
    assert timer.refresh_failed(900.0) == [
        StartTimer("owner", REFRESH_TIMER, 434),
        StartTimer("owner", EXPIRE_TIMER, 868),
    ]
    # Again, with a back-off (491): the expiry timer is left running, not restarted.
    assert timer.refresh_failed(1334.0, delay=3.0) == [StartTimer("owner", REFRESH_TIMER, 3.0)]
    # A delay past the expiry is not kept.
    assert timer.refresh_failed(1760.0, delay=60.0) == [StartTimer("owner", REFRESH_TIMER, 4.0)]
    assert timer.stop() == [CancelTimer("owner", REFRESH_TIMER), CancelTimer("owner", EXPIRE_TIMER)]
    # A success restarts everything from that time; the expiry timer is disarmed.
    timer.start(1800, True, 0.0)
    timer.refresh_failed(900.0)
    out = timer.start(1800, True, 1000.0)
    assert out == [
        CancelTimer("owner", REFRESH_TIMER),
        CancelTimer("owner", EXPIRE_TIMER),
        StartTimer("owner", REFRESH_TIMER, 900),
    ]
    assert timer.expires_at == 2768


def test_refresh_failed_is_nothing_when_the_peer_refreshes() -> None:
    timer = SessionTimer("owner")
    assert timer.refresh_failed(1.0) == []
    timer.start(90, False, 0.0)
    assert timer.refresh_failed(1.0) == []
