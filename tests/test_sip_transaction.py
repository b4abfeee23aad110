"""RFC 3261 section 17 transactions, driven with a fake clock and no sockets."""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

import pytest

from sip.message import Request, Response, make_response, parse
from sip.transaction import (
    Action,
    CancelTimer,
    Destination,
    InviteCancelled,
    InviteClientTransaction,
    PassUp,
    Send,
    StartTimer,
    State,
    Terminated,
    Timeout,
    TimerConfig,
    TransactionKey,
    TransactionLayer,
    TransportError,
)
from tests.fakeclock import advance

UDP = Destination("UDP", "192.0.2.10", 5060)
TCP = Destination("TCP", "192.0.2.10", 5060)


class Clock:
    """Fake clock: applies StartTimer/CancelTimer, fires due timers in order, logs the rest."""

    def __init__(self, fire: Callable[[Any, str, float], list[Any]]) -> None:
        self.now = 0.0
        self.fire = fire
        self.timers: dict[tuple[Hashable, str], float] = {}
        self.log: list[tuple[float, Any]] = []

    def apply(self, actions: list[Any]) -> list[Any]:
        for a in actions:
            if isinstance(a, StartTimer):
                self.timers[(a.owner, a.name)] = self.now + a.delay
            elif isinstance(a, CancelTimer):
                self.timers.pop((a.owner, a.name), None)
            else:
                self.log.append((self.now, a))
        return actions

    def advance(self, until: float) -> None:
        advance(self, until, lambda k, t: self.apply(self.fire(k[0], k[1], t)))  # type: ignore[index]

    def sent(self) -> list[tuple[float, Any]]:
        return [(t, a.message) for t, a in self.log if isinstance(a, Send)]

    def of(self, cls: type) -> list[Any]:
        return [a for _, a in self.log if isinstance(a, cls)]

    def running(self) -> set[str]:
        return {name for _, name in self.timers}


def invite(
    branch: str = "z9hG4bKinv1",
    *,
    method: str = "INVITE",
    cseq: int = 1,
    to_tag: str | None = None,
    call_id: str = "call-1@192.0.2.10",
    from_tag: str = "ftag1",
) -> Request:
    to = "<sip:1234567890@gw.example>" + (f";tag={to_tag}" if to_tag else "")
    raw = (
        f"{method} sip:1234567890@gw.example SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 192.0.2.10:5060;branch={branch}\r\n"
        "Max-Forwards: 70\r\n"
        f"From: Alice <sip:alice@192.0.2.10>;tag={from_tag}\r\n"
        f"To: {to}\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {cseq} {method}\r\n"
        "Contact: <sip:alice@192.0.2.10:5060>\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    msg = parse(raw)
    assert isinstance(msg, Request)
    return msg


def ack_for(resp: Response, branch: str = "z9hG4bKinv1") -> Request:
    raw = (
        "ACK sip:1234567890@gw.example SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP 192.0.2.10:5060;branch={branch}\r\n"
        "Max-Forwards: 70\r\n"
        "From: Alice <sip:alice@192.0.2.10>;tag=ftag1\r\n"
        f"To: {resp.headers.get('To')}\r\n"
        "Call-ID: call-1@192.0.2.10\r\n"
        f"CSeq: {resp.cseq[0]} ACK\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()
    msg = parse(raw)
    assert isinstance(msg, Request)
    return msg


def response(req: Request, status: int, to_tag: str | None = "ttag") -> Response:
    return parse(bytes(make_response(req, status, to_tag=to_tag)))  # type: ignore[return-value]


def make_layer(**kw: float | None) -> tuple[TransactionLayer, Clock]:
    layer = TransactionLayer(TimerConfig(**kw))  # type: ignore[arg-type]
    clock = Clock(layer.timer_fired)
    return layer, clock


def times(entries: list[tuple[float, Any]]) -> list[float]:
    return [round(t, 3) for t, _ in entries]


# --------------------------------------------------------------------------------------------
# INVITE client


def test_invite_client_timer_a_doubles_and_b_times_out_over_udp() -> None:
    layer, clock = make_layer()
    key, actions = layer.send_request(invite(), UDP, 0.0)
    clock.apply(actions)
    assert clock.running() == {"A", "B"}
    clock.advance(40.0)
    # A: 0.5, 1, 2, 4, 8, 16 -> retransmissions at 0.5, 1.5, 3.5, 7.5, 15.5, 31.5; B at 32.
    assert times(clock.sent()) == [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    (timeout,) = clock.of(Timeout)
    assert timeout.timer == "B" and timeout.key == key
    assert clock.of(Terminated) == [Terminated(key)]
    assert layer.get(key) is None and not clock.timers


def test_invite_client_over_tcp_has_no_timer_a() -> None:
    layer, clock = make_layer()
    key, actions = layer.send_request(invite(), TCP, 0.0)
    clock.apply(actions)
    assert clock.running() == {"B"}
    clock.advance(31.9)
    assert len(clock.sent()) == 1 and not clock.of(Timeout)
    clock.advance(32.0)
    assert clock.of(Timeout)[0].timer == "B"


def test_invite_client_provisional_stops_retransmissions() -> None:
    layer, clock = make_layer()
    req = invite()
    key, actions = layer.send_request(req, UDP, 0.0)
    clock.apply(actions)
    clock.advance(0.7)
    clock.apply(layer.receive(response(req, 180), UDP, 0.7))
    assert layer.get(key).state is State.PROCEEDING  # type: ignore[union-attr]
    assert not clock.timers  # A and B cancelled: Timer B does not run in Proceeding
    clock.advance(100.0)
    assert len(clock.sent()) == 2
    assert [a.message.status for a in clock.of(PassUp)] == [180]


def test_invite_client_non2xx_generates_ack_and_timer_d() -> None:
    layer, clock = make_layer()
    req = invite()
    key, actions = layer.send_request(req, UDP, 0.0)
    clock.apply(actions)
    clock.apply(layer.receive(response(req, 100, None), UDP, 0.1))
    busy = response(req, 486)
    clock.advance(0.2)
    clock.apply(layer.receive(busy, UDP, 0.2))
    assert layer.get(key).state is State.COMPLETED  # type: ignore[union-attr]
    ack = clock.sent()[-1][1]
    assert ack.method == "ACK" and ack.cseq == (1, "ACK")
    assert ack.top_via.branch == "z9hG4bKinv1" and ack.to_tag == "ttag"
    assert ack.uri == req.uri and ack.from_tag == "ftag1"
    assert clock.running() == {"D"}
    # A retransmitted 486 gets the ACK again and is not passed up twice.
    clock.apply(layer.receive(busy, UDP, 1.0))
    assert [m.method for _, m in clock.sent()] == ["INVITE", "ACK", "ACK"]
    assert [a.message.status for a in clock.of(PassUp)] == [100, 486]
    clock.advance(32.1)
    assert layer.get(key) is not None
    clock.advance(32.2)  # D = 32 s from 0.2
    assert layer.get(key) is None
    assert clock.of(Terminated)[0].key == key


def test_invite_client_non2xx_over_tcp_terminates_at_once() -> None:
    layer, clock = make_layer()
    req = invite()
    key, actions = layer.send_request(req, TCP, 0.0)
    clock.apply(actions)
    clock.apply(layer.receive(response(req, 404), TCP, 0.2))
    assert layer.get(key) is None
    assert [m.method for _, m in clock.sent()] == ["INVITE", "ACK"]
    assert clock.of(Terminated) and not clock.timers


def test_invite_client_2xx_accepted_state_passes_retransmissions_up() -> None:
    layer, clock = make_layer()
    req = invite()
    key, actions = layer.send_request(req, UDP, 0.0)
    clock.apply(actions)
    ok = response(req, 200)
    clock.apply(layer.receive(ok, UDP, 0.3))
    assert layer.get(key).state is State.ACCEPTED  # type: ignore[union-attr]
    assert clock.running() == {"M"}
    clock.apply(layer.receive(ok, UDP, 1.0))
    assert [a.message.status for a in clock.of(PassUp)] == [200, 200]
    assert all(a.key == key for a in clock.of(PassUp))
    assert len(clock.sent()) == 1  # the transaction never ACKs a 2xx
    clock.advance(33.0)
    assert layer.get(key) is None
    # After M, a 2xx retransmission is stray: passed up without a transaction.
    actions2 = layer.receive(ok, UDP, 40.0)
    assert actions2 == [PassUp(ok, None, UDP)]


# --------------------------------------------------------------------------------------------
# Non-INVITE client


def test_non_invite_client_timer_e_capped_at_t2_and_f() -> None:
    layer, clock = make_layer()
    bye = invite("z9hG4bKbye1", method="BYE", cseq=2, to_tag="x")
    key, actions = layer.send_request(bye, UDP, 0.0)
    clock.apply(actions)
    assert clock.running() == {"E", "F"}
    clock.advance(40.0)
    # E: 0.5, 1, 2, 4, 4, 4 ... -> 0.5, 1.5, 3.5, 7.5, 11.5, ..., 31.5; F at 32.
    assert times(clock.sent()) == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    (timeout,) = clock.of(Timeout)
    assert timeout.timer == "F" and timeout.request.method == "BYE"
    assert layer.get(key) is None


def test_non_invite_client_proceeding_retransmits_at_t2() -> None:
    layer, clock = make_layer()
    bye = invite("z9hG4bKbye2", method="BYE", cseq=2, to_tag="x")
    key, actions = layer.send_request(bye, UDP, 0.0)
    clock.apply(actions)
    clock.apply(layer.receive(response(bye, 100, None), UDP, 0.1))
    assert layer.get(key).state is State.PROCEEDING  # type: ignore[union-attr]
    clock.advance(12.0)
    # First E (0.5) fires in Proceeding: reset to T2 = 4.
    assert times(clock.sent()) == [0.0, 0.5, 4.5, 8.5]
    clock.apply(layer.receive(response(bye, 200), UDP, 12.0))
    assert clock.running() == {"K"}
    clock.apply(layer.receive(response(bye, 200), UDP, 13.0))  # absorbed in Completed
    assert [a.message.status for a in clock.of(PassUp)] == [100, 200]
    clock.advance(16.9)
    assert layer.get(key) is not None
    clock.advance(17.0)  # K = T4 = 5
    assert layer.get(key) is None


def test_non_invite_client_over_tcp_no_e_and_k_zero() -> None:
    layer, clock = make_layer()
    opt = invite("z9hG4bKopt1", method="OPTIONS")
    key, actions = layer.send_request(opt, TCP, 0.0)
    clock.apply(actions)
    assert clock.running() == {"F"}
    clock.apply(layer.receive(response(opt, 200), TCP, 0.1))
    assert layer.get(key) is None and not clock.timers


def test_configurable_timers() -> None:
    layer, clock = make_layer(t1=0.1, t2=0.4, t4=1.0)
    opt = invite("z9hG4bKopt2", method="OPTIONS")
    _, actions = layer.send_request(opt, UDP, 0.0)
    clock.apply(actions)
    clock.advance(6.4)
    assert times(clock.sent())[:5] == [0.0, 0.1, 0.3, 0.7, 1.1]
    assert clock.of(Timeout)[0].timer == "F"
    assert clock.log[-1][0] == pytest.approx(6.4)


def test_client_transport_error() -> None:
    layer, clock = make_layer()
    key, actions = layer.send_request(invite(), UDP, 0.0)
    clock.apply(actions)
    clock.apply(layer.transport_error(key, 0.1))
    assert isinstance(clock.of(TransportError)[0], TransportError)
    assert layer.get(key) is None and not clock.timers


def test_send_request_needs_rfc3261_branch() -> None:
    layer, _ = make_layer()
    with pytest.raises(ValueError):
        layer.send_request(invite("oldbranch"), UDP, 0.0)


# --------------------------------------------------------------------------------------------
# INVITE server


def server_invite(layer: TransactionLayer, clock: Clock, peer: Destination = UDP) -> Request:
    req = invite()
    clock.apply(layer.receive(req, peer, 0.0))
    return req


def test_invite_server_passes_up_and_sends_100_after_200ms() -> None:
    layer, clock = make_layer()
    req = server_invite(layer, clock)
    (up,) = clock.of(PassUp)
    assert up.message == req and up.key == TransactionKey(
        True, "z9hG4bKinv1", "192.0.2.10:5060", "INVITE"
    )
    assert clock.running() == {"Trying"}
    clock.advance(0.2)
    assert [(t, m.status) for t, m in clock.sent()] == [(0.2, 100)]
    # A retransmitted INVITE gets the last provisional again, and is not passed up.
    clock.apply(layer.receive(req, UDP, 0.5))
    assert [m.status for _, m in clock.sent()] == [100, 100]
    assert len(clock.of(PassUp)) == 1


def test_invite_server_no_auto_100_when_tu_answers_first() -> None:
    layer, clock = make_layer()
    req = server_invite(layer, clock)
    clock.apply(layer.send_response(make_response(req, 180, to_tag="t"), 0.05))
    clock.advance(1.0)
    assert [m.status for _, m in clock.sent()] == [180]
    clock.apply(layer.receive(req, UDP, 1.0))
    assert [m.status for _, m in clock.sent()] == [180, 180]


def test_invite_server_timer_g_h_over_udp() -> None:
    layer, clock = make_layer(trying_delay=None)
    req = server_invite(layer, clock)
    clock.apply(layer.send_response(make_response(req, 486, to_tag="t"), 0.0))
    assert clock.running() == {"G", "H"}
    clock.advance(40.0)
    # G: 0.5, 1, 2, 4, 4, ... (capped at T2); H at 32 ends it.
    assert times(clock.sent()) == [0.0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    (timeout,) = clock.of(Timeout)
    assert timeout.timer == "H"
    assert not layer.transactions


def test_invite_server_ack_confirms_and_timer_i() -> None:
    layer, clock = make_layer(trying_delay=None)
    req = server_invite(layer, clock)
    final = make_response(req, 486, to_tag="t")
    clock.apply(layer.send_response(final, 0.0))
    clock.apply(layer.receive(req, UDP, 0.2))  # retransmitted INVITE -> final again
    assert [m.status for _, m in clock.sent()] == [486, 486]
    clock.advance(0.3)
    clock.apply(layer.receive(ack_for(final), UDP, 0.3))
    key = clock.of(PassUp)[0].key
    assert layer.get(key).state is State.CONFIRMED  # type: ignore[union-attr]
    assert clock.running() == {"I"}
    clock.apply(layer.receive(ack_for(final), UDP, 0.4))  # absorbed
    assert len(clock.of(PassUp)) == 1
    clock.advance(5.2)
    assert layer.get(key) is not None
    clock.advance(5.3)  # I = T4
    assert layer.get(key) is None
    assert len(clock.sent()) == 2


def test_invite_server_over_tcp_no_g_and_i_zero() -> None:
    layer, clock = make_layer(trying_delay=None)
    req = server_invite(layer, clock, TCP)
    final = make_response(req, 603, to_tag="t")
    clock.apply(layer.send_response(final, 0.0))
    assert clock.running() == {"H"}
    clock.apply(layer.receive(ack_for(final), TCP, 0.1))
    assert not layer.transactions and not clock.timers


def test_invite_server_2xx_accepted_then_timer_l() -> None:
    layer, clock = make_layer(trying_delay=None)
    req = server_invite(layer, clock)
    ok = make_response(req, 200, to_tag="t")
    clock.apply(layer.send_response(ok, 0.0))
    key = clock.of(PassUp)[0].key
    assert layer.get(key).state is State.ACCEPTED  # type: ignore[union-attr]
    assert clock.running() == {"L"}
    clock.apply(layer.receive(req, UDP, 0.5))  # retransmitted INVITE absorbed
    clock.apply(layer.send_response(ok, 0.5))  # TU retransmits its 2xx through it
    assert [m.status for _, m in clock.sent()] == [200, 200]
    assert len(clock.of(PassUp)) == 1
    clock.advance(32.0)
    assert layer.get(key) is None


def test_ack_for_2xx_is_passed_up_as_stray() -> None:
    layer, clock = make_layer(trying_delay=None)
    req = server_invite(layer, clock)
    ok = make_response(req, 200, to_tag="t")
    clock.apply(layer.send_response(ok, 0.0))
    ack = ack_for(ok, branch="z9hG4bKack2")
    assert layer.receive(ack, UDP, 0.1) == [PassUp(ack, None, UDP)]


# --------------------------------------------------------------------------------------------
# Non-INVITE server


def test_non_invite_server_timer_j_and_retransmissions() -> None:
    layer, clock = make_layer()
    bye = invite("z9hG4bKbye9", method="BYE", cseq=5, to_tag="t")
    clock.apply(layer.receive(bye, UDP, 0.0))
    clock.apply(layer.receive(bye, UDP, 0.3))  # Trying: absorbed
    assert len(clock.of(PassUp)) == 1 and not clock.sent()
    clock.advance(1.0)
    clock.apply(layer.send_response(make_response(bye, 200), 1.0))
    assert clock.running() == {"J"}
    clock.apply(layer.receive(bye, UDP, 2.0))  # Completed: the final again
    assert [m.status for _, m in clock.sent()] == [200, 200]
    clock.advance(32.9)
    assert layer.transactions
    clock.advance(33.0)  # J = 64*T1 from 1.0
    assert not layer.transactions


def test_non_invite_server_proceeding_resends_provisional() -> None:
    layer, clock = make_layer()
    info = invite("z9hG4bKinfo", method="INFO", cseq=5, to_tag="t")
    clock.apply(layer.receive(info, UDP, 0.0))
    clock.apply(layer.send_response(make_response(info, 100), 0.1))
    clock.apply(layer.receive(info, UDP, 0.5))
    assert [m.status for _, m in clock.sent()] == [100, 100]


def test_non_invite_server_over_tcp_j_zero() -> None:
    layer, clock = make_layer()
    bye = invite("z9hG4bKbyeT", method="BYE", cseq=5, to_tag="t")
    clock.apply(layer.receive(bye, TCP, 0.0))
    clock.apply(layer.send_response(make_response(bye, 200), 0.1))
    assert not layer.transactions and not clock.timers


def test_rfc2543_request_without_magic_cookie_is_matched() -> None:
    layer, clock = make_layer()
    bye = invite("oldstyle1", method="BYE", cseq=5, to_tag="t")
    clock.apply(layer.receive(bye, UDP, 0.0))
    clock.apply(layer.receive(bye, UDP, 0.1))
    assert len(clock.of(PassUp)) == 1
    clock.apply(layer.send_response(make_response(bye, 200), 0.2))
    assert [m.status for _, m in clock.sent()] == [200]


# --------------------------------------------------------------------------------------------
# CANCEL, merged requests, strays


def test_cancel_gets_200_and_invite_487() -> None:
    layer, clock = make_layer(trying_delay=None)
    req = server_invite(layer, clock)
    clock.apply(layer.send_response(make_response(req, 180, to_tag="ringtag"), 0.1))
    cancel = invite(method="CANCEL")
    clock.apply(layer.receive(cancel, UDP, 0.5))
    sent = [m for _, m in clock.sent()]
    assert [(m.status, m.cseq[1]) for m in sent] == [
        (180, "INVITE"),
        (200, "CANCEL"),
        (487, "INVITE"),
    ]
    assert sent[2].to_tag == "ringtag" and sent[1].to_tag == "ringtag"
    (cancelled,) = clock.of(InviteCancelled)
    assert cancelled.invite == req and cancelled.cancel == cancel
    # The CANCEL itself is not passed up as a request; the ACK for 487 ends the transaction.
    assert [a.message.method for a in clock.of(PassUp)] == ["INVITE"]
    clock.apply(layer.receive(ack_for(sent[2]), UDP, 0.6))
    assert layer.get(cancelled.key).state is State.CONFIRMED  # type: ignore[union-attr]
    # A retransmitted CANCEL gets the 200 again.
    clock.apply(layer.receive(cancel, UDP, 0.7))
    assert [m.status for _, m in clock.sent()][-1] == 200


def test_cancel_after_final_only_200() -> None:
    layer, clock = make_layer(trying_delay=None)
    req = server_invite(layer, clock)
    clock.apply(layer.send_response(make_response(req, 200, to_tag="t"), 0.1))
    clock.apply(layer.receive(invite(method="CANCEL"), UDP, 0.2))
    assert [m.status for _, m in clock.sent()] == [200, 200]
    assert not clock.of(InviteCancelled)


def test_cancel_matching_nothing_gets_481() -> None:
    layer, clock = make_layer()
    clock.apply(layer.receive(invite("z9hG4bKnone", method="CANCEL"), UDP, 0.0))
    assert [m.status for _, m in clock.sent()] == [481]
    assert not clock.of(PassUp)


def test_merged_request_gets_482() -> None:
    layer, clock = make_layer(trying_delay=None)
    server_invite(layer, clock)
    twin = invite("z9hG4bKother")  # same From tag, Call-ID, CSeq, another branch
    clock.apply(layer.receive(twin, UDP, 0.1))
    assert [m.status for _, m in clock.sent()] == [482]
    assert len(clock.of(PassUp)) == 1
    # A retransmission of the merged request gets 482 again (its own transaction).
    clock.apply(layer.receive(twin, UDP, 0.2))
    assert [m.status for _, m in clock.sent()] == [482, 482]


def test_same_request_after_transaction_end_is_not_merged() -> None:
    layer, clock = make_layer(trying_delay=None)
    req = server_invite(layer, clock, TCP)
    final = make_response(req, 486, to_tag="t")
    clock.apply(layer.send_response(final, 0.0))
    clock.apply(layer.receive(ack_for(final), TCP, 0.1))
    assert not layer.transactions
    clock.apply(layer.receive(invite("z9hG4bKnew"), TCP, 1.0))
    assert len(clock.of(PassUp)) == 2


def test_stray_ack_and_response_are_passed_up() -> None:
    layer, _ = make_layer()
    resp = response(invite("z9hG4bKunknown"), 200)
    assert layer.receive(resp, UDP, 0.0) == [PassUp(resp, None, UDP)]
    ack = invite("z9hG4bKa", method="ACK", to_tag="x")
    assert layer.receive(ack, UDP, 0.0) == [PassUp(ack, None, UDP)]


def test_response_for_unknown_server_transaction_is_dropped() -> None:
    layer, _ = make_layer()
    assert layer.send_response(make_response(invite(), 200, to_tag="t"), 0.0) == []


def test_ack_built_by_transaction_has_route_of_invite() -> None:
    raw = bytes(invite()).replace(b"Contact:", b"Route: <sip:proxy.example;lr>\r\nContact:")
    req = parse(raw)
    assert isinstance(req, Request)
    txn = InviteClientTransaction(
        TransactionKey(False, "z9hG4bKinv1", "", "INVITE"), req, UDP, TimerConfig()
    )
    txn.start(0.0)
    actions: list[Action] = txn.receive(response(req, 503), 0.1)
    ack = next(a.message for a in actions if isinstance(a, Send))
    assert ack.headers.get_all("Route") == ["<sip:proxy.example;lr>"]
