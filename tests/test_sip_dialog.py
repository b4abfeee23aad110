"""Dialogs and calls: two pure user agents talking through a fake network and clock, plus
raw-message tests for what a real peer may send."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import pytest

from sip.auth import Credentials, parse_challenge
from sip.dialog import (
    CallConfig,
    CallEnded,
    CallEstablished,
    CallEvent,
    CallKey,
    CallProgress,
    CallStateError,
    Dialog,
    IncomingCall,
    InfoReceived,
    ReinviteAnswered,
    ReinviteFailed,
    ReinviteOffer,
    UacCall,
    UasCall,
    build_cancel,
    destination_for,
)
from sip.message import Message, NameAddr, Request, Response, SipUri, Via, parse, serialise
from sip.session_timer import SessionTimerConfig
from sip.transaction import CancelTimer, Destination, Send, StartTimer
from sip.useragent import UserAgent
from tests.fakeclock import advance

OFFER = "v=0\r\no=a 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=IN IP4 10.0.0.1\r\nt=0 0\r\nm=audio 4000 RTP/AVP 0\r\n"
ANSWER = "v=0\r\no=b 1 1 IN IP4 10.0.0.2\r\ns=-\r\nc=IN IP4 10.0.0.2\r\nt=0 0\r\nm=audio 5000 RTP/AVP 0\r\n"
HOLD = OFFER.replace("t=0 0\r\n", "t=0 0\r\na=sendonly\r\n")

A_HOST, B_HOST = "10.0.0.1", "10.0.0.2"


class Net:
    """Two (or more) user agents, a zero-latency network and a fake clock."""

    def __init__(self, **configs: CallConfig) -> None:
        self.now = 0.0
        self.uas: dict[str, UserAgent] = {}
        self.addr: dict[tuple[str, int], str] = {}
        for name, cfg in configs.items():
            self.uas[name] = UserAgent(cfg)
            self.addr[(cfg.local_host, cfg.local_port)] = name
        self.timers: dict[tuple[str, Hashable, str], float] = {}
        self.events: list[tuple[float, str, CallEvent]] = []
        self.wire: list[tuple[float, str, Message]] = []
        self.drop: Callable[[str, Message], bool] = lambda sender, msg: False
        self.on_event: Callable[[str, CallEvent], list[Any]] | None = None
        self._queue: list[tuple[str, Message, Destination]] = []

    def apply(self, name: str, outputs: list[Any]) -> None:
        cfg = self.uas[name].config
        for o in outputs:
            if isinstance(o, StartTimer):
                self.timers[(name, o.owner, o.name)] = self.now + o.delay
            elif isinstance(o, CancelTimer):
                self.timers.pop((name, o.owner, o.name), None)
            elif isinstance(o, Send):
                msg = parse(serialise(o.message))  # through the bytes, as on the wire
                self.wire.append((self.now, name, msg))
                if self.drop(name, msg):
                    continue
                target = self.addr.get((o.dest.host, o.dest.port))
                if target is not None:
                    source = Destination(o.dest.transport, cfg.local_host, cfg.local_port)
                    self._queue.append((target, msg, source))
            elif isinstance(o, CallEvent):
                self.events.append((self.now, name, o))
                if self.on_event is not None:
                    self.apply(name, self.on_event(name, o))
        while self._queue:
            target, msg, source = self._queue.pop(0)
            self.apply(target, self.uas[target].receive(msg, source, self.now))

    def advance(self, until: float) -> None:
        advance(
            self, until, lambda k, t: self.apply(k[0], self.uas[k[0]].timer_fired(k[1], k[2], t))
        )  # type: ignore[index]

    def ev(self, name: str, cls: type) -> list[Any]:
        return [e for _, n, e in self.events if n == name and isinstance(e, cls)]

    def sent(self, name: str, what: str | int | None = None) -> list[Any]:
        out = []
        for _, n, m in self.wire:
            if n != name:
                continue
            if what is None or (isinstance(m, Request) and m.method == what):
                out.append(m)
            elif isinstance(m, Response) and m.status == what:
                out.append(m)
        return out


def cfg(host: str, **kw: Any) -> CallConfig:
    return CallConfig(local_host=host, local_port=5060, contact_user="gw", **kw)


def two(**kw: Any) -> Net:
    return Net(a=cfg(A_HOST, **kw.pop("a", {})), b=cfg(B_HOST, **kw.pop("b", {})))


def dial(net: Net, **kw: Any) -> UacCall:
    call, out = net.uas["a"].dial(
        SipUri.parse(f"sip:1234567890@{B_HOST}"),
        from_=NameAddr.parse("<sip:alice@10.0.0.1>"),
        offer=OFFER,
        now=net.now,
        **kw,
    )
    net.apply("a", out)
    return call


def incoming(net: Net) -> UasCall:
    (ev,) = net.ev("b", IncomingCall)
    assert isinstance(ev.call, UasCall)
    return ev.call


def establish(net: Net) -> tuple[UacCall, UasCall]:
    a = dial(net)
    b = incoming(net)
    net.apply("b", net.uas["b"].ring(b, net.now))
    net.apply("b", net.uas["b"].answer(b, ANSWER, net.now))
    return a, b


# --------------------------------------------------------------------------------------------
# Basic calls


def test_call_setup_and_bye_from_caller() -> None:
    net = two()
    a, b = establish(net)
    (inc,) = net.ev("b", IncomingCall)
    assert inc.offer == OFFER
    (progress,) = net.ev("a", CallProgress)
    assert progress.status == 180
    (est_a,) = net.ev("a", CallEstablished)
    assert est_a.sdp == ANSWER and a.state == "confirmed"
    (est_b,) = net.ev("b", CallEstablished)
    assert est_b.sdp is None and b.state == "confirmed"
    # The 2xx carries our Contact and a To tag; the ACK matches the INVITE's CSeq number.
    ok = net.sent("b", 200)[0]
    assert ok.to_tag == b.key.local_tag and ok.contact[0].uri.host == B_HOST
    (ack,) = net.sent("a", "ACK")
    assert ack.cseq == (1, "ACK") and ack.to_tag == ok.to_tag
    assert ack.uri == SipUri.parse("sip:gw@10.0.0.2:5060")
    assert a.dialog is not None and b.dialog is not None
    assert a.dialog.id.local_tag == b.dialog.id.remote_tag
    assert a.dialog.id.remote_tag == b.dialog.id.local_tag
    net.apply("a", net.uas["a"].hangup(a, net.now))
    (bye,) = net.sent("a", "BYE")
    assert bye.cseq == (2, "BYE")
    assert net.ev("b", CallEnded)[0].reason == "remote hangup"
    assert net.ev("a", CallEnded)[0].reason == "local hangup"
    assert [m.status for m in net.sent("b") if isinstance(m, Response)][-1] == 200
    # Ended calls linger a while, then are forgotten.
    net.advance(40.0)
    assert not net.uas["a"].calls and not net.uas["b"].calls


def test_bye_from_callee() -> None:
    net = two()
    a, b = establish(net)
    net.apply("b", net.uas["b"].hangup(b, net.now))
    (bye,) = net.sent("b", "BYE")
    assert bye.cseq[1] == "BYE" and bye.uri.host == A_HOST
    assert net.ev("a", CallEnded)[0].reason == "remote hangup"
    assert a.ended and b.ended


def test_request_in_unknown_dialog_gets_481_and_options_200() -> None:
    net = two()
    a, b = establish(net)
    net.apply("b", net.uas["b"].hangup(b, net.now))
    net.advance(40.0)  # both forget the call
    assert not net.uas["a"].calls
    bye = net.sent("b", "BYE")[0]
    stale = parse(
        serialise(bye).replace(b"BYE sip", b"INFO sip").replace(b" BYE\r\n", b" INFO\r\n")
    )
    assert isinstance(stale, Request)
    out = net.uas["a"].receive(stale, Destination("UDP", B_HOST, 5060), net.now)
    assert statuses(out) == [481]


def test_out_of_dialog_options_and_unknown_methods() -> None:
    ua = UserAgent(cfg(B_HOST))
    src = Destination("UDP", A_HOST, 5060)
    out = ua.receive(raw_request("OPTIONS", to_tag=None), src, 0.0)
    (resp,) = [o.message for o in out if isinstance(o, Send)]
    assert statuses(out) == [200] and "INVITE" in (resp.headers.get("Allow") or "")
    out = ua.receive(raw_request("REGISTER", to_tag=None, branch="z9hG4bKr"), src, 0.0)
    assert statuses(out) == [405]
    out = ua.receive(raw_request("FOO", to_tag=None, branch="z9hG4bKf"), src, 0.0)
    assert statuses(out) == [501]


def statuses(outputs: list[Any]) -> list[int]:
    return [
        o.message.status for o in outputs if isinstance(o, Send) and isinstance(o.message, Response)
    ]


# --------------------------------------------------------------------------------------------
# Raw-message driven UAS


SRC = Destination("UDP", A_HOST, 5060)


def raw_request(
    method: str,
    *,
    to_tag: str | None = "",
    cseq: int = 1,
    branch: str = "z9hG4bKraw1",
    body: str = "",
    extra: tuple[str, ...] = (),
    call_id: str = "raw-call@10.0.0.1",
) -> Request:
    to = "<sip:1234567890@10.0.0.2>" + (f";tag={to_tag}" if to_tag else "")
    ctype = "Content-Type: application/sdp\r\n" if body else ""
    raw = (
        f"{method} sip:1234567890@10.0.0.2 SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 10.0.0.1:5060;branch={branch}\r\n"
        "Max-Forwards: 70\r\n"
        'From: "Room" <sip:room@10.0.0.1>;tag=rtag\r\n'
        f"To: {to}\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {cseq} {method}\r\n"
        "Contact: <sip:room@10.0.0.1:5060>\r\n"
        + "".join(f"{h}\r\n" for h in extra)
        + ctype
        + f"Content-Length: {len(body)}\r\n\r\n{body}"
    )
    msg = parse(raw.encode())
    assert isinstance(msg, Request)
    return msg


class Driver:
    """One UA fed raw requests; a fake clock; records what it sends."""

    def __init__(self, **kw: Any) -> None:
        self.ua = UserAgent(cfg(B_HOST, **kw))
        self.now = 0.0
        self.timers: dict[tuple[Hashable, str], float] = {}
        self.sent: list[tuple[float, Message]] = []
        self.events: list[CallEvent] = []

    def apply(self, outputs: list[Any]) -> list[Any]:
        for o in outputs:
            if isinstance(o, StartTimer):
                self.timers[(o.owner, o.name)] = self.now + o.delay
            elif isinstance(o, CancelTimer):
                self.timers.pop((o.owner, o.name), None)
            elif isinstance(o, Send):
                self.sent.append((self.now, parse(serialise(o.message))))
            else:
                self.events.append(o)
        return outputs

    def feed(self, msg: Request | Response, at: float | None = None) -> list[Any]:
        if at is not None:
            self.advance(at)
        return self.apply(self.ua.receive(msg, SRC, self.now))

    def advance(self, until: float) -> None:
        advance(self, until, lambda k, t: self.apply(self.ua.timer_fired(k[0], k[1], t)))  # type: ignore[index]

    def responses(self) -> list[int]:
        return [m.status for _, m in self.sent if isinstance(m, Response)]

    def requests(self, method: str) -> list[Request]:
        return [m for _, m in self.sent if isinstance(m, Request) and m.method == method]

    def ev(self, cls: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, cls)]

    def call(self) -> UasCall:
        call = self.ev(IncomingCall)[0].call
        assert isinstance(call, UasCall)
        return call


def answered(
    d: Driver, *, body: str = OFFER, extra: tuple[str, ...] = ()
) -> tuple[UasCall, Response]:
    d.feed(raw_request("INVITE", to_tag=None, body=body, extra=extra))
    call = d.call()
    d.apply(d.ua.answer(call, ANSWER, d.now))
    ok = [m for _, m in d.sent if isinstance(m, Response) and m.status == 200][-1]
    assert isinstance(ok, Response)
    return call, ok


def ack(ok: Response, *, body: str = "", branch: str = "z9hG4bKack1") -> Request:
    return raw_request("ACK", to_tag=ok.to_tag, cseq=ok.cseq[0], branch=branch, body=body)


def test_2xx_retransmitted_until_ack() -> None:
    d = Driver()
    call, ok = answered(d)
    d.advance(4.0)
    assert [round(t, 2) for t, m in d.sent if isinstance(m, Response) and m.status == 200] == [
        0.0,
        0.5,
        1.5,
        3.5,
    ]
    d.feed(ack(ok), at=4.0)
    assert call.state == "confirmed" and len(d.ev(CallEstablished)) == 1
    d.advance(100.0)
    assert d.responses().count(200) == 4 and not d.requests("BYE")


def test_2xx_without_ack_bye_after_64_t1() -> None:
    d = Driver()
    call, ok = answered(d)
    d.advance(31.9)
    times = [round(t, 2) for t, m in d.sent if isinstance(m, Response) and m.status == 200]
    # T1 doubling, capped at T2 = 4 s.
    assert times == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert not d.requests("BYE")
    d.advance(32.0)
    (bye,) = d.requests("BYE")
    assert bye.uri == SipUri.parse("sip:room@10.0.0.1:5060")
    assert bye.to_tag == "rtag" and bye.from_tag == call.key.local_tag
    (ended,) = d.ev(CallEnded)
    assert ended.reason == "no ACK"
    d.advance(40.0)
    assert d.responses().count(200) == 11


def test_2xx_over_tcp_not_retransmitted_but_still_times_out() -> None:
    d = Driver()
    inv = raw_request("INVITE", to_tag=None, body=OFFER)
    tcp = Destination("TCP", A_HOST, 5060)
    d.apply(d.ua.receive(inv, tcp, 0.0))
    call = d.call()
    d.apply(d.ua.answer(call, ANSWER, 0.0))
    d.advance(31.0)
    assert d.responses().count(200) == 1
    d.advance(32.0)
    assert d.requests("BYE") and d.requests("BYE")[0].top_via.transport == "TCP"


def test_delayed_offer_answer_in_ack() -> None:
    d = Driver()
    d.feed(raw_request("INVITE", to_tag=None))
    (inc,) = d.ev(IncomingCall)
    assert inc.offer is None
    call = d.call()
    d.apply(d.ua.answer(call, OFFER, d.now))  # our offer in the 200
    ok = [m for _, m in d.sent if isinstance(m, Response) and m.status == 200][0]
    assert ok.body.decode() == OFFER and ok.content_type == "application/sdp"
    d.feed(ack(ok, body=ANSWER), at=0.1)
    (est,) = d.ev(CallEstablished)
    assert est.sdp == ANSWER and call.remote_sdp == ANSWER


def test_unsupported_require_gets_420() -> None:
    d = Driver()
    d.feed(raw_request("INVITE", to_tag=None, body=OFFER, extra=("Require: 100rel, foo",)))
    (resp,) = [m for _, m in d.sent if isinstance(m, Response)]
    assert resp.status == 420
    assert resp.headers.get_all("Unsupported") == ["100rel", "foo"]
    assert not d.ev(IncomingCall)


def test_unsupported_require_in_dialog_gets_420() -> None:
    d = Driver()
    call, ok = answered(d)
    d.feed(ack(ok))
    d.feed(
        raw_request("INFO", to_tag=ok.to_tag, cseq=2, branch="z9hG4bKi", extra=("Require: foo",))
    )
    assert d.responses()[-1] == 420
    assert not d.ev(InfoReceived)


def test_info_and_options_in_dialog() -> None:
    d = Driver()
    call, ok = answered(d)
    d.feed(ack(ok))
    info = raw_request("INFO", to_tag=ok.to_tag, cseq=2, branch="z9hG4bKi1")
    body = b"Signal=5\r\nDuration=160\r\n"
    info = Request(info.method, info.uri, info.headers.copy(), body)
    info.headers.set("Content-Type", "application/dtmf-relay")
    d.feed(info)
    (ev,) = d.ev(InfoReceived)
    assert ev.content_type == "application/dtmf-relay" and ev.body == body
    d.feed(raw_request("OPTIONS", to_tag=ok.to_tag, cseq=3, branch="z9hG4bKo1"))
    assert d.responses()[-2:] == [200, 200]


def test_lower_cseq_in_dialog_gets_500() -> None:
    d = Driver()
    call, ok = answered(d)
    d.feed(ack(ok))
    d.feed(raw_request("INFO", to_tag=ok.to_tag, cseq=5, branch="z9hG4bKc5"))
    d.feed(raw_request("INFO", to_tag=ok.to_tag, cseq=4, branch="z9hG4bKc4"))
    assert d.responses()[-2:] == [200, 500]
    assert len(d.ev(InfoReceived)) == 1


def test_reinvite_hold_and_unhold() -> None:
    d = Driver()
    call, ok = answered(d)
    d.feed(ack(ok))
    d.feed(raw_request("INVITE", to_tag=ok.to_tag, cseq=2, branch="z9hG4bKh1", body=HOLD))
    (offer,) = d.ev(ReinviteOffer)
    assert offer.sdp == HOLD and offer.method == "INVITE"
    d.apply(d.ua.accept_offer(call, ANSWER.replace("t=0 0", "t=0 0\r\na=recvonly"), d.now))
    ok2 = [m for _, m in d.sent if isinstance(m, Response)][-1]
    assert ok2.status == 200 and ok2.cseq == (2, "INVITE") and b"recvonly" in ok2.body
    assert ok2.to_tag == ok.to_tag
    d.feed(ack(ok2, branch="z9hG4bKack2"), at=0.2)
    d.advance(10.0)
    assert d.responses().count(200) == 2  # no retransmission after the ACK
    d.feed(raw_request("INVITE", to_tag=ok.to_tag, cseq=3, branch="z9hG4bKh2", body=OFFER))
    assert d.ev(ReinviteOffer)[-1].sdp == OFFER
    d.apply(d.ua.accept_offer(call, ANSWER, d.now))
    assert d.responses()[-1] == 200 and call.state == "confirmed"


def test_reinvite_while_one_pending_gets_500_and_reject_offer() -> None:
    d = Driver()
    call, ok = answered(d)
    d.feed(ack(ok))
    d.feed(raw_request("INVITE", to_tag=ok.to_tag, cseq=2, branch="z9hG4bKp1", body=HOLD))
    d.feed(raw_request("INVITE", to_tag=ok.to_tag, cseq=3, branch="z9hG4bKp2", body=HOLD))
    assert d.responses()[-1] == 500
    d.apply(d.ua.reject_offer(call, d.now))
    assert d.responses()[-1] == 488


def test_glare_gets_491() -> None:
    d = Driver()
    call, ok = answered(d)
    d.feed(ack(ok))
    d.apply(d.ua.reinvite(call, HOLD, d.now))
    (ours,) = [m for m in d.requests("INVITE")]
    assert ours.cseq == (1, "INVITE") and ours.to_tag == "rtag"
    d.feed(raw_request("INVITE", to_tag=ok.to_tag, cseq=2, branch="z9hG4bKg1", body=HOLD))
    assert d.responses()[-1] == 491
    with pytest.raises(CallStateError):
        d.ua.reinvite(call, OFFER, d.now)


def test_our_reinvite_491_is_retried_later() -> None:
    d = Driver()
    call, ok = answered(d)
    d.feed(ack(ok))
    call.rng = lambda lo, hi: 1.0
    d.apply(d.ua.reinvite(call, HOLD, d.now))
    ours = d.requests("INVITE")[0]
    resp = parse(
        serialise(ours).replace(
            b"INVITE sip:room@10.0.0.1:5060 SIP/2.0", b"SIP/2.0 491 Request Pending"
        )
    )
    assert isinstance(resp, Response)
    d.feed(resp, at=0.1)
    assert not d.ev(ReinviteFailed)
    d.advance(1.2)
    again = d.requests("INVITE")
    assert len(again) == 2 and again[1].cseq[0] == 2 and again[1].body == HOLD.encode()


def test_update_without_sdp_is_a_session_refresh() -> None:
    d = Driver()
    call, ok = answered(d, extra=("Supported: timer", "Session-Expires: 120;refresher=uac"))
    d.feed(ack(ok))
    d.feed(
        raw_request(
            "UPDATE",
            to_tag=ok.to_tag,
            cseq=2,
            branch="z9hG4bKu1",
            extra=("Supported: timer", "Session-Expires: 120;refresher=uac"),
        )
    )
    resp = [m for _, m in d.sent if isinstance(m, Response)][-1]
    assert resp.status == 200 and resp.headers.get("Session-Expires") == "120;refresher=uac"
    assert not d.ev(ReinviteOffer)


def test_cancel_ends_incoming_call() -> None:
    d = Driver()
    d.feed(raw_request("INVITE", to_tag=None, body=OFFER))
    call = d.call()
    d.apply(d.ua.ring(call, d.now))
    d.feed(raw_request("CANCEL", to_tag=None))
    assert d.responses() == [180, 200, 487]
    (ended,) = d.ev(CallEnded)
    assert ended.reason == "cancelled" and ended.status == 487 and call.ended
    with pytest.raises(CallStateError):
        d.ua.answer(call, ANSWER, d.now)


def test_reject_call() -> None:
    d = Driver()
    d.feed(raw_request("INVITE", to_tag=None, body=OFFER))
    call = d.call()
    d.apply(d.ua.reject(call, 404, d.now))
    assert d.responses() == [404] and call.ended and not d.ev(CallEnded)


# --------------------------------------------------------------------------------------------
# Route sets


def test_uas_route_set_from_record_route() -> None:
    d = Driver()
    call, ok = answered(d, extra=("Record-Route: <sip:p1.example;lr>, <sip:p2.example;lr>",))
    assert ok.headers.get_all("Record-Route") == ["<sip:p1.example;lr>", "<sip:p2.example;lr>"]
    d.feed(ack(ok))
    out = d.ua.hangup(call, d.now)
    d.apply(out)
    (bye,) = d.requests("BYE")
    assert bye.uri == SipUri.parse("sip:room@10.0.0.1:5060")
    assert bye.headers.get_all("Route") == ["<sip:p1.example;lr>", "<sip:p2.example;lr>"]
    send = [o for o in out if isinstance(o, Send)][0]
    # p1.example is a name: no DNS, the BYE goes where the INVITE came from (the proxy).
    assert send.dest == Destination("UDP", SRC.host, SRC.port)


def test_uac_route_set_is_reversed_and_strict_routing() -> None:
    invite = raw_request("INVITE", to_tag=None, body=OFFER)
    resp = parse(
        b"SIP/2.0 200 OK\r\n"
        b"Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKraw1\r\n"
        b"Record-Route: <sip:p2.example;lr>\r\nRecord-Route: <sip:p1.example>\r\n"
        b"From: <sip:room@10.0.0.1>;tag=rtag\r\nTo: <sip:1234567890@10.0.0.2>;tag=t9\r\n"
        b"Call-ID: raw-call@10.0.0.1\r\nCSeq: 1 INVITE\r\n"
        b"Contact: <sip:callee@10.0.0.2:5070;transport=tcp>\r\nContent-Length: 0\r\n\r\n"
    )
    assert isinstance(resp, Response)
    dialog = Dialog.from_uac(invite, resp)
    assert [str(r.uri) for r in dialog.route_set] == ["sip:p1.example", "sip:p2.example;lr"]
    assert dialog.local_seq == 1 and dialog.remote_seq is None and dialog.confirmed
    via = Via("UDP", A_HOST, 5060, (("branch", "z9hG4bKx"),))
    bye = dialog.create_request("BYE", via)
    # p1 is a strict router: it becomes the Request-URI, the target goes last.
    assert bye.uri == SipUri.parse("sip:p1.example")
    assert bye.headers.get_all("Route") == [
        "<sip:p2.example;lr>",
        "<sip:callee@10.0.0.2:5070;transport=tcp>",
    ]
    assert bye.cseq == (2, "BYE") and bye.to_tag == "t9" and bye.from_tag == "rtag"
    ack_req = dialog.create_request("ACK", via, cseq=1)
    assert ack_req.cseq == (1, "ACK") and dialog.local_seq == 2
    assert destination_for(SipUri.parse("sip:callee@10.0.0.2:5070;transport=tcp")) == Destination(
        "TCP", "10.0.0.2", 5070
    )


def test_dialog_cseq_rules() -> None:
    inv = raw_request("INVITE", to_tag=None, cseq=10)
    dialog = Dialog.from_uas(inv, "mytag")
    assert dialog.remote_seq == 10 and dialog.local_seq is None
    assert dialog.check_remote_cseq(raw_request("BYE", to_tag="mytag", cseq=9)) == 500
    assert dialog.check_remote_cseq(raw_request("ACK", to_tag="mytag", cseq=10)) is None
    assert dialog.check_remote_cseq(raw_request("BYE", to_tag="mytag", cseq=11)) is None
    assert dialog.remote_seq == 11
    assert dialog.next_cseq() == 1 and dialog.next_cseq() == 2


def test_build_cancel_copies_invite() -> None:
    inv = raw_request("INVITE", to_tag=None, extra=("Route: <sip:p.example;lr>",))
    cancel = build_cancel(inv)
    assert cancel.method == "CANCEL" and cancel.uri == inv.uri
    assert cancel.cseq == (1, "CANCEL") and cancel.top_via == inv.top_via
    assert cancel.headers.get_all("Route") == ["<sip:p.example;lr>"]
    assert cancel.to_tag is None and cancel.from_tag == "rtag"


# --------------------------------------------------------------------------------------------
# Both ends in dialog


def test_reinvite_between_two_agents() -> None:
    net = two()
    a, b = establish(net)
    net.apply("a", net.uas["a"].reinvite(a, HOLD, net.now))
    (offer,) = net.ev("b", ReinviteOffer)
    assert offer.sdp == HOLD
    net.apply("b", net.uas["b"].accept_offer(b, ANSWER, net.now))
    (answered_ev,) = net.ev("a", ReinviteAnswered)
    assert answered_ev.sdp == ANSWER and a.local_sdp == HOLD
    assert [m.cseq for m in net.sent("a", "ACK")] == [(1, "ACK"), (2, "ACK")]
    net.advance(20.0)
    assert len(net.sent("b", 200)) == 2  # the ACK stopped the retransmissions


def test_info_between_two_agents() -> None:
    net = two()
    a, b = establish(net)
    net.apply("a", net.uas["a"].send_info(a, "application/dtmf-relay", b"Signal=1\r\n", net.now))
    (info,) = net.ev("b", InfoReceived)
    assert info.body == b"Signal=1\r\n"


def test_uac_cancel_before_answer() -> None:
    net = two()
    a = dial(net)
    b = incoming(net)
    net.apply("b", net.uas["b"].ring(b, net.now))
    net.apply("a", net.uas["a"].hangup(a, net.now))
    (cancel,) = net.sent("a", "CANCEL")
    assert cancel.top_via.branch == net.sent("a", "INVITE")[0].top_via.branch
    assert net.ev("b", CallEnded)[0].reason == "cancelled"
    assert net.ev("a", CallEnded)[0].reason == "local hangup"
    assert [m.status for m in net.sent("b") if isinstance(m, Response)] == [180, 200, 487]
    assert net.sent("a", "ACK")  # the transaction acknowledged the 487
    assert not net.sent("a", "BYE")


def test_uac_cancel_waits_for_provisional() -> None:
    net = two()
    net.drop = lambda sender, msg: sender == "a"  # b never hears from a...
    a = dial(net)
    net.apply("a", net.uas["a"].hangup(a, net.now))
    assert not net.sent("a", "CANCEL")  # no provisional yet: CANCEL must wait
    # ...then a 180 arrives (forged from the INVITE a sent).
    inv = net.sent("a", "INVITE")[0]
    ringing = parse(
        serialise(inv).replace(b"INVITE sip:1234567890@10.0.0.2 SIP/2.0", b"SIP/2.0 180 Ringing")
    )
    net.apply("a", net.uas["a"].receive(ringing, Destination("UDP", B_HOST, 5060), 0.1))
    assert net.sent("a", "CANCEL")


def test_uac_timer_b_ends_call_with_408() -> None:
    net = two()
    net.drop = lambda sender, msg: True
    a = dial(net)
    net.advance(33.0)
    (ended,) = net.ev("a", CallEnded)
    assert ended.status == 408 and a.ended
    assert len(net.sent("a", "INVITE")) == 7


def test_uac_digest_401_then_200() -> None:
    net = two()
    challenge = 'Digest realm="gw", nonce="n0nce", qop="auth", algorithm=MD5'

    def callee(name: str, ev: CallEvent) -> list[Any]:
        if name != "b" or not isinstance(ev, IncomingCall):
            return []
        call = ev.call
        assert isinstance(call, UasCall)
        auth = ev.request.headers.get("Authorization")
        if auth is None:
            return net.uas["b"].reject(
                call, 401, net.now, headers=[("WWW-Authenticate", challenge)]
            )
        return net.uas["b"].answer(call, ANSWER, net.now)

    net.on_event = callee
    a = dial(net, credentials=Credentials("alice", "s3cret"))
    invites = net.sent("a", "INVITE")
    assert len(invites) == 2
    first, second = invites
    assert second.cseq == (2, "INVITE") and first.cseq == (1, "INVITE")
    assert second.top_via.branch != first.top_via.branch
    assert second.call_id == first.call_id and second.from_tag == first.from_tag
    auth = second.headers.get("Authorization")
    assert auth is not None and 'username="alice"' in auth and "qop=auth" in auth
    assert parse_challenge(challenge).nonce in auth
    assert net.ev("a", CallEstablished) and a.state == "confirmed"
    acks = net.sent("a", "ACK")
    assert [m.cseq for m in acks] == [(1, "ACK"), (2, "ACK")]  # non-2xx ACK, then 2xx ACK


def test_uac_second_401_fails() -> None:
    net = two()

    def callee(name: str, ev: CallEvent) -> list[Any]:
        if name == "b" and isinstance(ev, IncomingCall):
            call = ev.call
            assert isinstance(call, UasCall)
            return net.uas["b"].reject(
                call, 401, net.now, headers=[("WWW-Authenticate", 'Digest realm="x", nonce="y"')]
            )
        return []

    net.on_event = callee
    a = dial(net, credentials=Credentials("alice", "wrong"))
    assert len(net.sent("a", "INVITE")) == 2
    (ended,) = net.ev("a", CallEnded)
    assert ended.status == 401 and a.ended


def test_uac_failure_response() -> None:
    net = two()
    net.on_event = lambda name, ev: (
        net.uas["b"].reject(ev.call, 486, net.now)  # type: ignore[arg-type]
        if name == "b" and isinstance(ev, IncomingCall)
        else []
    )
    a = dial(net)
    (ended,) = net.ev("a", CallEnded)
    assert ended.status == 486 and a.ended


# --------------------------------------------------------------------------------------------
# Session timers across two agents


def test_session_timer_uas_refreshes_with_update() -> None:
    net = two(a={"session_timer": SessionTimerConfig(session_expires=300)})
    a, b = establish(net)
    ok = net.sent("b", 200)[0]
    assert ok.headers.get("Session-Expires") == "300;refresher=uas"
    assert "timer" in ok.require
    assert b.session_timer.we_refresh and not a.session_timer.we_refresh
    net.advance(149.0)
    assert not net.sent("b", "UPDATE")
    net.advance(151.0)
    (update,) = net.sent("b", "UPDATE")
    assert update.headers.get("Session-Expires") == "300;refresher=uac"
    # a answered 200, both timers restarted: nobody hangs up for a long time.
    net.advance(1000.0)
    assert len(net.sent("b", "UPDATE")) == 6
    assert not net.ev("a", CallEnded) and not net.ev("b", CallEnded)


def test_session_timer_refresh_with_reinvite_when_update_not_allowed() -> None:
    net = two(a={"session_timer": SessionTimerConfig(session_expires=300)})
    a, b = establish(net)
    b.peer_allow = ["INVITE", "ACK", "BYE"]
    net.advance(151.0)
    (reinvite,) = [m for m in net.sent("b", "INVITE")]
    assert reinvite.body == ANSWER.encode()
    offer = net.ev("a", ReinviteOffer)[0]
    net.apply("a", net.uas["a"].accept_offer(a, OFFER, net.now))
    assert offer.sdp == ANSWER
    assert net.sent("b", "ACK") and b.session_timer.active


def test_session_timer_bye_on_expiry_when_peer_stops_refreshing() -> None:
    net = two(
        a={"session_timer": SessionTimerConfig(session_expires=300, refresher="uas")},
        b={"session_timer": SessionTimerConfig(session_expires=300, refresher="uas")},
    )
    a, b = establish(net)
    # b (refresher) goes silent.
    net.drop = lambda sender, msg: sender == "b"
    net.advance(267.0)
    assert not net.sent("a", "BYE")
    net.advance(268.0)  # 300 - min(32, 100)
    assert net.sent("a", "BYE")
    (ended,) = net.ev("a", CallEnded)
    assert ended.reason == "session expired"


def test_session_timer_422_then_retry() -> None:
    net = two(a={"session_timer": SessionTimerConfig(session_expires=60, min_se=30)})
    a = dial(net)
    invites = net.sent("a", "INVITE")
    assert [m.headers.get("Session-Expires") for m in invites] == ["60", "90"]
    assert [m.status for m in net.sent("b") if isinstance(m, Response)] == [422]
    b = net.ev("b", IncomingCall)[0].call
    net.apply("b", net.uas["b"].answer(b, ANSWER, net.now))
    assert a.state == "confirmed" and a.session_timer.interval == 90


def test_uas_422_on_small_session_expires() -> None:
    d = Driver()
    d.feed(
        raw_request(
            "INVITE", to_tag=None, body=OFFER, extra=("Supported: timer", "Session-Expires: 30")
        )
    )
    (resp,) = [m for _, m in d.sent if isinstance(m, Response)]
    assert resp.status == 422 and resp.headers.get("Min-SE") == "90"


def test_call_key_owns_call_timers() -> None:
    d = Driver()
    call, _ = answered(d)
    assert any(k[0] == CallKey(call.key.call_id, call.key.local_tag) for k in d.timers)


def test_hangup_before_ack_sends_bye_after_ack() -> None:
    d = Driver()
    call, ok = answered(d)
    d.apply(d.ua.hangup(call, d.now))
    assert len(d.ev(CallEnded)) == 1 and not d.requests("BYE")
    assert d.ua.hangup(call, d.now) == []
    d.feed(ack(ok), at=0.2)
    assert len(d.requests("BYE")) == 1 and call.ended
    assert len(d.ev(CallEnded)) == 1 and not d.ev(CallEstablished)


def test_out_of_dialog_require_gets_420() -> None:
    ua = UserAgent(cfg(B_HOST))
    req = raw_request("OPTIONS", to_tag=None, extra=("Require: newfeature1",))
    out = ua.receive(req, SRC, 0.0)
    assert statuses(out) == [420]
    (resp,) = [o.message for o in out if isinstance(o, Send)]
    assert resp.headers.get("Unsupported") == "newfeature1"


def bye_destination(source: Destination, extra: tuple[str, ...] = (), via_params: str = "") -> Any:
    """Set up a call from ``source`` (its Via stamped with ``via_params``), hang up: the BYE's
    destination."""
    ua = UserAgent(cfg(B_HOST))
    invite = raw_request("INVITE", to_tag=None, body=OFFER, extra=extra)
    if via_params:
        raw = serialise(invite).replace(
            b";branch=z9hG4bKraw1", b";branch=z9hG4bKraw1" + via_params.encode()
        )
        invite = parse(raw)  # type: ignore[assignment]
    out = ua.receive(invite, source, 0.0)
    call = next(o.call for o in out if isinstance(o, IncomingCall))
    sent = [o for o in ua.answer(call, ANSWER, 0.0) if isinstance(o, Send)]
    ok = sent[-1].message
    assert isinstance(ok, Response)
    ua.receive(ack(ok), source, 0.1)
    byes = [
        o for o in ua.hangup(call, 1.0) if isinstance(o, Send) and isinstance(o.message, Request)
    ]
    assert [b.message.method for b in byes] == ["BYE"]  # type: ignore[union-attr]
    return byes[0].dest


def test_in_dialog_requests_to_a_caller_behind_nat_go_where_it_came_from() -> None:
    # Via and Contact say 10.0.0.1:5060; the INVITE came from the NAT's 203.0.113.7:40000.
    nat = Destination("UDP", "203.0.113.7", 40000)
    dest = bye_destination(nat, via_params=";received=203.0.113.7;rport=40000")
    assert (dest.transport, dest.host, dest.port) == ("UDP", "203.0.113.7", 40000)


def test_in_dialog_requests_without_nat_go_to_the_contact() -> None:
    dest = bye_destination(SRC)
    assert (dest.transport, dest.host, dest.port) == ("UDP", "10.0.0.1", 5060)


def test_in_dialog_requests_over_tcp_reuse_the_connection() -> None:
    conn = Destination("TCP", A_HOST, 51000)  # the caller's end of the TCP connection
    dest = bye_destination(conn)
    assert (dest.transport, dest.host, dest.port) == ("TCP", A_HOST, 51000)


def test_in_dialog_requests_follow_the_route_set_through_a_proxy() -> None:
    nat = Destination("UDP", "203.0.113.7", 40000)
    dest = bye_destination(
        nat,
        extra=("Record-Route: <sip:198.51.100.70:5070;lr>",),
        via_params=";received=203.0.113.7",
    )
    assert (dest.host, dest.port) == ("198.51.100.70", 5070)
    # A proxy known by name only: no DNS, back where the INVITE came from.
    dest = bye_destination(
        nat,
        extra=("Record-Route: <sip:proxy.example.org:5070;lr>",),
        via_params=";received=203.0.113.7",
    )
    assert (dest.host, dest.port) == ("203.0.113.7", 40000)
