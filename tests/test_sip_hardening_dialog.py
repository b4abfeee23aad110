"""Hardening of dialogs and calls: no DNS for in-dialog requests, session refreshes that fail,
the answer in the ACK to an offerless re-INVITE, and the Contact of a wildcard-bound agent."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from sip.dialog import (
    AckAnswer,
    CallConfig,
    CallEnded,
    CallEstablished,
    IncomingCall,
    ReinviteAnswered,
    ReinviteOffer,
    UacCall,
    UasCall,
)
from sip.message import NameAddr, Request, Response, SipUri, make_response, parse, serialise
from sip.session_timer import SessionTimerConfig
from sip.transaction import Destination, Send, StartTimer
from sip.useragent import UserAgent
from tests.test_sip_dialog import (
    ANSWER,
    B_HOST,
    HOLD,
    OFFER,
    Driver,
    ack,
    answered,
    cfg,
    raw_request,
)

# --------------------------------------------------------------------------------------------
# In-dialog requests never need DNS


def invite_with(contact: str, extra: tuple[str, ...] = ()) -> Request:
    invite = raw_request("INVITE", to_tag=None, body=OFFER, extra=extra)
    raw = serialise(invite).replace(b"<sip:room@10.0.0.1:5060>", contact.encode())
    msg = parse(raw)
    assert isinstance(msg, Request)
    return msg


def established_uas(invite: Request, source: Destination) -> tuple[UserAgent, UasCall]:
    ua = UserAgent(cfg(B_HOST))
    out = ua.receive(invite, source, 0.0)
    call = next(o.call for o in out if isinstance(o, IncomingCall))
    assert isinstance(call, UasCall)
    ok = [o.message for o in ua.answer(call, ANSWER, 0.0) if isinstance(o, Send)][-1]
    assert isinstance(ok, Response)
    ua.receive(ack(ok), source, 0.1)
    return ua, call


def requests_sent(outputs: list[Any], method: str) -> list[Send]:
    return [
        o
        for o in outputs
        if isinstance(o, Send) and isinstance(o.message, Request) and o.message.method == method
    ]


def where(send: Send) -> tuple[str, str, int]:
    return (send.dest.transport, send.dest.host, send.dest.port)


def test_contact_with_a_host_name_bye_goes_where_the_invite_came_from() -> None:
    source = Destination("UDP", "127.0.0.1", 5099)
    ua, call = established_uas(invite_with("<sip:alice@pc33.example.com>"), source)
    (bye,) = requests_sent(ua.hangup(call, 1.0), "BYE")
    assert where(bye) == ("UDP", "127.0.0.1", 5099)
    assert isinstance(bye.message, Request)
    assert bye.message.uri == SipUri.parse("sip:alice@pc33.example.com")  # still the target


def test_contact_with_a_host_name_reinvite_and_info_go_where_the_invite_came_from() -> None:
    source = Destination("UDP", "127.0.0.1", 5099)
    ua, call = established_uas(invite_with("<sip:alice@pc33.example.com:5070>"), source)
    (info,) = requests_sent(ua.send_info(call, "application/dtmf-relay", b"x", 1.0), "INFO")
    (reinvite,) = requests_sent(ua.reinvite(call, HOLD, 1.0), "INVITE")
    assert where(info) == where(reinvite) == ("UDP", "127.0.0.1", 5099)


def test_contact_with_an_ip_literal_is_still_used() -> None:
    source = Destination("UDP", "127.0.0.1", 5099)
    ua, call = established_uas(invite_with("<sip:alice@192.0.2.33:5070>"), source)
    (bye,) = requests_sent(ua.hangup(call, 1.0), "BYE")
    assert where(bye) == ("UDP", "192.0.2.33", 5070)


def test_contact_with_an_ipv6_literal_is_still_used() -> None:
    source = Destination("UDP", "127.0.0.1", 5099)
    ua, call = established_uas(invite_with("<sip:alice@[2001:db8::33]:5070>"), source)
    (bye,) = requests_sent(ua.hangup(call, 1.0), "BYE")
    assert where(bye) == ("UDP", "2001:db8::33", 5070)


def test_record_route_with_a_host_name_goes_where_the_invite_came_from() -> None:
    proxy = Destination("UDP", "192.0.2.50", 5060)  # the proxy the INVITE came through
    invite = invite_with("<sip:alice@192.0.2.33>", ("Record-Route: <sip:proxy.example.org;lr>",))
    ua, call = established_uas(invite, proxy)
    (bye,) = requests_sent(ua.hangup(call, 1.0), "BYE")
    assert where(bye) == ("UDP", "192.0.2.50", 5060)
    assert bye.message.headers.get("Route") == "<sip:proxy.example.org;lr>"


def test_record_route_with_an_ip_literal_is_followed() -> None:
    proxy = Destination("UDP", "192.0.2.50", 5060)
    invite = invite_with(
        "<sip:alice@pc33.example.com>", ("Record-Route: <sip:192.0.2.51:5070;lr>",)
    )
    ua, call = established_uas(invite, proxy)
    (bye,) = requests_sent(ua.hangup(call, 1.0), "BYE")
    assert where(bye) == ("UDP", "192.0.2.51", 5070)


def test_target_refresh_to_a_host_name_still_needs_no_dns() -> None:
    source = Destination("UDP", "127.0.0.1", 5099)
    ua, call = established_uas(invite_with("<sip:alice@192.0.2.33>"), source)
    reinvite = raw_request(
        "INVITE", to_tag=call.key.local_tag, cseq=2, branch="z9hG4bKr2", body=HOLD
    )
    raw = serialise(reinvite).replace(b"<sip:room@10.0.0.1:5060>", b"<sip:alice@pc.example>")
    reinvite = parse(raw)  # type: ignore[assignment]
    ua.receive(reinvite, source, 1.0)
    ua.accept_offer(call, ANSWER, 1.0)
    (bye,) = requests_sent(ua.hangup(call, 2.0), "BYE")
    assert where(bye) == ("UDP", "127.0.0.1", 5099)


def test_uac_contact_with_a_host_name_ack_and_bye_go_where_the_invite_went() -> None:
    ua = UserAgent(cfg("10.0.0.1"))
    call, out = ua.dial(
        SipUri.parse("sip:1234@192.0.2.60:5080"),
        from_=NameAddr.parse("<sip:gw@10.0.0.1>"),
        offer=OFFER,
        now=0.0,
    )
    (sent,) = requests_sent(out, "INVITE")
    ok = make_response(
        sent.message,  # type: ignore[arg-type]
        200,
        to_tag="far",
        headers=[("Contact", "<sip:bob@phone.example.net>")],
        body=ANSWER.encode(),
        content_type="application/sdp",
    )
    out = ua.receive(parse(serialise(ok)), Destination("UDP", "192.0.2.60", 5080), 0.1)
    (ack_sent,) = requests_sent(out, "ACK")
    assert where(ack_sent) == ("UDP", "192.0.2.60", 5080)
    (bye,) = requests_sent(ua.hangup(call, 1.0), "BYE")
    assert where(bye) == ("UDP", "192.0.2.60", 5080)


# --------------------------------------------------------------------------------------------
# Session refreshes that fail

TIMER = ("Supported: timer", "Session-Expires: 120;refresher=uas")  # we refresh, every 60 s
EXPIRY = 120 - 32  # when the call ends if no refresh succeeded


def refreshing() -> tuple[Driver, UasCall]:
    d = Driver()
    call, ok = answered(d, extra=TIMER)
    d.feed(ack(ok))
    assert call.session_timer.we_refresh
    return d, call


def refreshes(d: Driver) -> list[tuple[float, Request]]:
    """Our refresh requests (first transmissions only), with the time they left."""
    out: list[tuple[float, Request]] = []
    for t, m in d.sent:
        if isinstance(m, Request) and m.method in ("INVITE", "UPDATE") and m.to_tag == "rtag":
            if not out or out[-1][1].cseq != m.cseq:
                out.append((t, m))
    return out


def respond(d: Driver, request: Request, status: int, *extra: tuple[str, str]) -> None:
    d.__dict__.setdefault("answered_cseqs", set()).add(request.cseq)
    body = OFFER.encode() if status < 300 and request.method == "INVITE" else b""
    headers = list(extra)
    if status < 300:
        headers.append(("Session-Expires", "120;refresher=uac"))
    resp = make_response(
        request,
        status,
        headers=headers,
        body=body,
        content_type="application/sdp" if body else None,
    )
    d.feed(parse(serialise(resp)))  # type: ignore[arg-type]


def run(d: Driver, until: float, status: Callable[[int], int]) -> None:
    """Move the clock to ``until``, answering the n-th refresh (0, 1, ...) with status(n) at
    once."""
    while True:
        for n, (_, req) in enumerate(refreshes(d)):
            if req.cseq not in d.__dict__.get("answered_cseqs", set()):
                respond(d, req, status(n))
        due = [t for t in d.timers.values() if t <= until]
        if not due:
            break
        d.advance(min(due))
    d.advance(until)


def test_refresh_491_is_retried_after_the_glare_back_off() -> None:
    d, call = refreshing()
    asked: list[tuple[float, float]] = []

    def rng(lo: float, hi: float) -> float:
        asked.append((lo, hi))
        return 1.5

    call.rng = rng
    d.advance(60.0)
    ((t1, first),) = refreshes(d)
    assert t1 == 60.0
    respond(d, first, 491)
    assert asked == [(0.0, 2.0)]  # we did not pick the Call-ID: 0-2 s
    d.advance(61.4)
    assert len(refreshes(d)) == 1
    run(d, 200.0, lambda n: 200)
    (_, again) = refreshes(d)[1]
    assert again.cseq[0] == first.cseq[0] + 1 and again.body == first.body
    assert not d.requests("BYE") and not d.ev(CallEnded)
    assert [round(t, 1) for t, _ in refreshes(d)] == [60.0, 61.5, 121.5, 181.5]


def test_uac_refresh_491_backs_off_as_owner_of_the_call_id() -> None:
    ua = UserAgent(
        cfg("10.0.0.1", session_timer=SessionTimerConfig(session_expires=120, refresher="uac"))
    )
    call, out = ua.dial(
        SipUri.parse("sip:1234@192.0.2.60"),
        from_=NameAddr.parse("<sip:gw@10.0.0.1>"),
        offer=OFFER,
        now=0.0,
    )
    (sent,) = requests_sent(out, "INVITE")
    ok = make_response(
        sent.message,  # type: ignore[arg-type]
        200,
        to_tag="far",
        headers=[("Contact", "<sip:bob@192.0.2.60>"), ("Session-Expires", "120;refresher=uac")],
        body=ANSWER.encode(),
        content_type="application/sdp",
    )
    ua.receive(parse(serialise(ok)), Destination("UDP", "192.0.2.60", 5060), 0.1)
    asked: list[tuple[float, float]] = []
    call.rng = lambda lo, hi: asked.append((lo, hi)) or 3.0  # type: ignore[func-returns-value]
    (refresh,) = requests_sent(ua.timer_fired(call.key, "session_refresh", 60.1), "INVITE")
    resp = make_response(refresh.message, 491)  # type: ignore[arg-type]
    out = ua.receive(parse(serialise(resp)), Destination("UDP", "192.0.2.60", 5060), 60.2)
    assert asked == [(2.1, 4.0)]
    assert StartTimer(call.key, "session_refresh", 3.0) in out


def test_refresh_500_is_retried_before_the_session_expires() -> None:
    d, call = refreshing()
    run(d, EXPIRY - 0.5, lambda n: 500)
    times = [t for t, _ in refreshes(d)]
    assert len(times) >= 2 and times[0] == 60.0 and times[1] < EXPIRY  # tried again in time
    assert times[1] == 60.0 + (EXPIRY - 60.0) / 2  # halfway to the expiry
    d, call = refreshing()
    run(d, 400.0, lambda n: 500 if n == 0 else 200)
    assert not d.requests("BYE") and not d.ev(CallEnded)  # the retry worked: the call stays
    times = [t for t, _ in refreshes(d)]
    assert times[:2] == [60.0, 74.0] and times[2] == 134.0  # then every half interval


@pytest.mark.parametrize("status", [488, 491, 500, 501, 503, 603])
def test_refreshes_that_keep_failing_end_the_call_with_bye_at_expiry(status: int) -> None:
    d, call = refreshing()
    call.rng = lambda lo, hi: hi
    run(d, EXPIRY - 0.01, lambda n: status)
    assert len(refreshes(d)) >= 2 and not d.requests("BYE") and not d.ev(CallEnded)
    run(d, EXPIRY + 0.01, lambda n: status)
    (bye,) = [t for t, m in d.sent if isinstance(m, Request) and m.method == "BYE"][:1]
    assert abs(bye - EXPIRY) < 1e-6
    (ended,) = d.ev(CallEnded)
    assert ended.reason == "session expired" and call.ended
    n = len(refreshes(d))
    d.advance(400.0)
    assert len(refreshes(d)) == n  # no refresh after the end


def test_refresh_503_with_retry_after_is_retried_then() -> None:
    d, call = refreshing()
    d.advance(60.0)
    ((_, first),) = refreshes(d)
    respond(d, first, 503, ("Retry-After", "5"))
    d.advance(64.9)
    assert len(refreshes(d)) == 1
    d.advance(65.1)
    assert len(refreshes(d)) == 2


def test_refresh_481_ends_the_call_without_bye() -> None:
    d, call = refreshing()
    d.advance(60.0)
    ((_, first),) = refreshes(d)
    respond(d, first, 481)
    (ended,) = d.ev(CallEnded)
    assert ended.status == 481 and call.ended and not d.requests("BYE")
    d.advance(400.0)
    assert len(refreshes(d)) == 1


def test_refresh_408_ends_the_call_with_bye() -> None:
    d, call = refreshing()
    d.advance(60.0)
    ((_, first),) = refreshes(d)
    respond(d, first, 408)
    (ended,) = d.ev(CallEnded)
    assert ended.status == 408 and call.ended
    assert len(d.requests("BYE")) == 1
    d.advance(400.0)
    assert len(refreshes(d)) == 1


def test_refresh_with_update_refused_is_retried_too() -> None:
    d = Driver()
    call, ok = answered(d, extra=(*TIMER, "Allow: INVITE, ACK, BYE, UPDATE"))
    d.feed(ack(ok))
    d.advance(60.0)
    (update,) = d.requests("UPDATE")
    run(d, EXPIRY - 0.5, lambda n: 500)
    assert [t for t, _ in refreshes(d)][:2] == [60.0, 74.0]
    assert all(m.method == "UPDATE" for _, m in refreshes(d)) and not d.requests("BYE")


# --------------------------------------------------------------------------------------------
# Offerless re-INVITE: our offer in the 200, the answer in the ACK

OUR_OFFER = ANSWER.replace("o=b 1 1", "o=b 1 2")


def offerless_reinvite(d: Driver, call: UasCall, ok: Response) -> Response:
    d.feed(raw_request("INVITE", to_tag=ok.to_tag, cseq=2, branch="z9hG4bKnosdp"), at=1.0)
    (offer,) = d.ev(ReinviteOffer)
    assert offer.sdp is None
    d.apply(d.ua.accept_offer(call, OUR_OFFER, d.now))
    ok2 = [m for _, m in d.sent if isinstance(m, Response) and m.status == 200][-1]
    assert ok2.cseq == (2, "INVITE")
    return ok2


def test_answer_in_the_ack_to_an_offerless_reinvite_is_an_event() -> None:
    d = Driver()
    call, ok = answered(d)
    d.feed(ack(ok))
    ok2 = offerless_reinvite(d, call, ok)
    d.feed(ack(ok2, body=HOLD, branch="z9hG4bKack2"), at=1.2)
    (ev,) = d.ev(AckAnswer)
    assert ev.sdp == HOLD and ev.call is call and call.remote_sdp == HOLD
    assert len(d.ev(CallEstablished)) == 1  # only the initial one
    assert not [e for e in d.ev(ReinviteAnswered) if not isinstance(e, AckAnswer)]


def test_retransmitted_2xx_to_an_offerless_reinvite_carries_our_offer() -> None:
    d = Driver()
    call, ok = answered(d)
    d.feed(ack(ok))
    ok2 = offerless_reinvite(d, call, ok)
    assert ok2.body == OUR_OFFER.encode() and ok2.content_type == "application/sdp"
    d.advance(4.0)
    again = [m for _, m in d.sent if isinstance(m, Response) and m.cseq == (2, "INVITE")]
    assert len(again) >= 3
    assert all(m.status == 200 and m.body == OUR_OFFER.encode() for m in again)
    assert all(m.content_type == "application/sdp" for m in again)
    d.feed(ack(ok2, body=HOLD, branch="z9hG4bKack2"))
    assert [e.sdp for e in d.ev(AckAnswer)] == [HOLD]
    d.advance(10.0)
    assert len(
        [m for _, m in d.sent if isinstance(m, Response) and m.cseq == (2, "INVITE")]
    ) == len(again)


def test_ack_without_answer_or_to_a_reinvite_with_offer_gives_no_ack_answer() -> None:
    d = Driver()
    call, ok = answered(d)
    d.feed(ack(ok))
    ok2 = offerless_reinvite(d, call, ok)
    d.feed(ack(ok2, branch="z9hG4bKack2"))  # no answer: a broken peer, nothing to tell
    assert not d.ev(AckAnswer)
    d.feed(raw_request("INVITE", to_tag=ok.to_tag, cseq=3, branch="z9hG4bKwith", body=HOLD))
    d.apply(d.ua.accept_offer(call, ANSWER, d.now))
    ok3 = [m for _, m in d.sent if isinstance(m, Response) and m.status == 200][-1]
    d.feed(ack(ok3, body=HOLD, branch="z9hG4bKack3"))  # an offer was in the INVITE
    assert not d.ev(AckAnswer)


def test_delayed_offer_in_the_initial_invite_still_gives_call_established() -> None:
    d = Driver()
    d.feed(raw_request("INVITE", to_tag=None))
    call = d.call()
    d.apply(d.ua.answer(call, OFFER, d.now))
    ok = [m for _, m in d.sent if isinstance(m, Response) and m.status == 200][0]
    d.feed(ack(ok, body=ANSWER), at=0.1)
    (est,) = d.ev(CallEstablished)
    assert est.sdp == ANSWER and not d.ev(AckAnswer)


# --------------------------------------------------------------------------------------------
# Wildcard bind: what Contact and Via say


@dataclass(frozen=True)
class FakeSource:
    transport: str
    host: str
    port: int
    local_host: str | None = None

    @property
    def reliable(self) -> bool:
        return self.transport.upper() != "UDP"


def uas_ok(config: CallConfig, source: Any) -> tuple[UserAgent, UasCall, Response]:
    ua = UserAgent(config)
    out = ua.receive(raw_request("INVITE", to_tag=None, body=OFFER), source, 0.0)
    call = next(o.call for o in out if isinstance(o, IncomingCall))
    assert isinstance(call, UasCall)
    ok = [o.message for o in ua.answer(call, ANSWER, 0.0) if isinstance(o, Send)][-1]
    assert isinstance(ok, Response) and ok.status == 200
    return ua, call, ok


def contact_host(msg: Request | Response) -> str:
    (contact,) = msg.contact
    return contact.uri.host


def test_wildcard_bind_contact_is_the_interface_the_invite_came_in_on() -> None:
    config = CallConfig(local_host="0.0.0.0", local_port=5060)
    source = FakeSource("UDP", "10.0.0.1", 5060, local_host="10.0.0.2")
    ua, call, ok = uas_ok(config, source)
    assert contact_host(ok) == "10.0.0.2"
    ua.receive(ack(ok), source, 0.1)
    (bye,) = requests_sent(ua.hangup(call, 1.0), "BYE")
    assert bye.message.top_via.host == "10.0.0.2"
    assert ua.config.local_host == "0.0.0.0"  # the agent's config is left alone


def test_wildcard_ipv6_bind_contact_is_the_interface() -> None:
    config = CallConfig(local_host="::", local_port=5060)
    source = FakeSource("UDP", "2001:db8::1", 5060, local_host="2001:db8::2")
    _, _, ok = uas_ok(config, source)
    assert contact_host(ok) == "[2001:db8::2]"


def test_wildcard_bind_without_a_local_host_on_the_source_falls_back() -> None:
    config = CallConfig(local_host="0.0.0.0", local_port=5060)
    _, _, ok = uas_ok(config, Destination("UDP", "10.0.0.1", 5060))
    assert contact_host(ok) == "0.0.0.0"
    _, _, ok = uas_ok(config, FakeSource("UDP", "10.0.0.1", 5060, local_host=None))
    assert contact_host(ok) == "0.0.0.0"


def test_specific_bind_ignores_the_source_local_host() -> None:
    config = CallConfig(local_host="10.0.0.2", local_port=5060)
    _, _, ok = uas_ok(config, FakeSource("UDP", "10.0.0.1", 5060, local_host="10.9.9.9"))
    assert contact_host(ok) == "10.0.0.2"


def test_public_host_is_written_in_contact_and_via_of_every_call() -> None:
    config = CallConfig(local_host="0.0.0.0", local_port=5060, public_host="203.0.113.9")
    source = FakeSource("UDP", "10.0.0.1", 5060, local_host="10.0.0.2")
    ua, call, ok = uas_ok(config, source)
    assert contact_host(ok) == "203.0.113.9"
    ua.receive(ack(ok), source, 0.1)
    (bye,) = requests_sent(ua.hangup(call, 1.0), "BYE")
    assert bye.message.top_via.host == "203.0.113.9"
    uac, out = ua.dial(
        SipUri.parse("sip:1234@192.0.2.60"),
        from_=NameAddr.parse("<sip:gw@203.0.113.9>"),
        offer=OFFER,
        now=2.0,
    )
    assert isinstance(uac, UacCall)
    (invite,) = requests_sent(out, "INVITE")
    assert contact_host(invite.message) == "203.0.113.9"  # type: ignore[arg-type]
    assert invite.message.top_via.host == "203.0.113.9"
