"""Our SIP core as a UAC against PJSIP as the callee (what dial-out will do).

A :class:`~sip.endpoint.SipEndpoint` runs in the test's event loop on 127.0.0.1, dials a PJSIP
peer process with an offer from :func:`sip.sdp.make_offer` and checks both sides: the answer
negotiates the callee's codec and its RTP arrives; our BYE, the callee's BYE, a 486 and a CANCEL
during ringing (487 at the callee) end the call on both ends.

PjsuaPeer's methods block: they run in threads (``asyncio.to_thread``) so that the loop keeps
driving the SIP endpoint meanwhile.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sip.dialog import CallEnded, CallEstablished, CallProgress
from sip.endpoint import SipEndpoint
from sip.message import NameAddr, Request, Response, SipUri
from sip.sdp import SessionDescription, make_offer, negotiate_answer
from sip.transport import Source
from tests.peers.audio import make_tone
from tests.peers.pjsua import PjsuaPeer
from tests.peers.uac import EVENT_TIMEOUT, EventLog

pytestmark = pytest.mark.interop

HOST = "127.0.0.1"
RTP_TIMEOUT = 10.0


class Wire:
    """What our endpoint sent and received, taken at its transport (for RFC 3261 checks)."""

    def __init__(self, endpoint: SipEndpoint) -> None:
        self.sent: list[Request] = []
        self.received: list[Response] = []
        transport = endpoint.transport
        send, deliver = transport.send_request, transport.on_message

        def send_request(request: Request, dest: tuple[str, int], kind: str) -> None:
            self.sent.append(request)
            send(request, dest, kind)

        def on_message(message: Request | Response, source: Source) -> None:
            if isinstance(message, Response):
                self.received.append(message)
            deliver(message, source)

        transport.send_request = send_request  # type: ignore[method-assign]
        transport.on_message = on_message

    def methods(self) -> list[str]:
        return [r.method for r in self.sent]

    def statuses(self) -> list[tuple[int, str]]:
        return [(r.status, r.cseq[1]) for r in self.received]

    async def response(self, status: int, method: str) -> None:
        """Wait (up to ``EVENT_TIMEOUT``) until a ``status`` response to ``method`` came in."""
        deadline = asyncio.get_running_loop().time() + EVENT_TIMEOUT
        while (status, method) not in self.statuses():
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"no {status} to {method}; got {self.statuses()}")
            await asyncio.sleep(0.02)

    def sent_request(self, method: str) -> Request:
        found = [r for r in self.sent if r.method == method]
        assert len(found) == 1, self.methods()
        return found[0]


class RtpSink(asyncio.DatagramProtocol):
    """Our media port: counts what the callee sends, by payload type."""

    def __init__(self) -> None:
        self.payload_types: list[int] = []
        self.sources: set[tuple[str, int]] = set()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) >= 12 and data[0] >> 6 == 2:
            self.payload_types.append(data[1] & 0x7F)
            self.sources.add((str(addr[0]), int(addr[1])))


@dataclass
class Uac:
    endpoint: SipEndpoint
    events: EventLog
    wire: Wire


@pytest.fixture
async def uac() -> AsyncIterator[Uac]:
    events = EventLog()
    endpoint = SipEndpoint(HOST, 0, events)
    wire = Wire(endpoint)
    await endpoint.start()
    try:
        yield Uac(endpoint, events, wire)
    finally:
        await endpoint.stop()


@pytest.fixture
async def rtp() -> AsyncIterator[tuple[int, RtpSink]]:
    loop = asyncio.get_running_loop()
    transport, sink = await loop.create_datagram_endpoint(RtpSink, local_addr=(HOST, 0))
    try:
        yield int(transport.get_extra_info("sockname")[1]), sink
    finally:
        transport.close()


@pytest.fixture
def tone(tmp_path: Path) -> Path:
    return make_tone(tmp_path / "tone700.wav", 700, 20)


@asynccontextmanager
async def pjsua_callee(**kw: Any) -> AsyncIterator[PjsuaPeer]:
    kw.setdefault("max_seconds", 25)
    peer = PjsuaPeer.answer(**kw)
    await asyncio.to_thread(peer.start)
    try:
        yield peer
    finally:
        await asyncio.to_thread(peer.stop)


def our_offer(audio_port: int) -> SessionDescription:
    """What the gateway offers: G722, PCMU, PCMA and telephone-event/8000."""
    return make_offer(
        local_address=HOST,
        audio_port=audio_port,
        session_id=secrets.randbelow(2**31),
        session_version=0,
    )


def dial(endpoint: SipEndpoint, callee: PjsuaPeer, offer: SessionDescription) -> Any:
    return endpoint.dial(
        SipUri.parse(callee.uri),
        from_=NameAddr.parse(f'"Gateway" <sip:gateway@{HOST}:{endpoint.port}>'),
        offer=str(offer),
    )


async def wait_rtp(sink: RtpSink, payload_type: int, count: int = 10) -> None:
    deadline = asyncio.get_running_loop().time() + RTP_TIMEOUT
    while sink.payload_types.count(payload_type) < count:
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(
                f"{sink.payload_types.count(payload_type)} RTP packets of PT {payload_type} "
                f"(all PTs seen: {sorted(set(sink.payload_types))})"
            )
        await asyncio.sleep(0.05)


@pytest.mark.parametrize(("callee_codec", "payload_type"), [("G722", 9), ("PCMU", 0), ("PCMA", 8)])
async def test_dial_pjsua_talk_and_hang_up(
    uac: Uac, rtp: tuple[int, RtpSink], tone: Path, callee_codec: str, payload_type: int
) -> None:
    rtp_port, sink = rtp
    async with pjsua_callee(play=tone, codecs=(callee_codec,)) as callee:
        offer = our_offer(rtp_port)
        call = dial(uac.endpoint, callee, offer)
        established = await uac.events.next(CallEstablished)
        assert established.call is call
        assert established.sdp is not None
        negotiated = negotiate_answer(offer, SessionDescription.parse(established.sdp))
        assert negotiated is not None, established.sdp
        assert negotiated.codec.name.upper() == callee_codec
        assert negotiated.codec.payload_type == payload_type
        assert negotiated.direction == "sendrecv"
        assert negotiated.remote_address == HOST
        assert negotiated.dtmf is not None and negotiated.dtmf.clock_rate == 8000
        await asyncio.to_thread(callee.wait_event, "CONFIRMED", 10)
        media = await asyncio.to_thread(callee.wait_event, "MEDIA", 10, status="ACTIVE")
        assert media["codec"].upper().startswith(callee_codec), media.line
        # the callee's audio comes to the port we offered, in the negotiated payload type,
        # from the port it answered (symmetric RTP)
        await wait_rtp(sink, payload_type)
        assert (HOST, negotiated.remote_port) in sink.sources, sink.sources

        uac.endpoint.hangup(call)
        ended = await uac.events.next(CallEnded)
        disconnected = await asyncio.to_thread(callee.wait_event, "DISCONNECTED", 10)
        result = await asyncio.to_thread(callee.wait_result, 15)
        await uac.wire.response(200, "BYE")
    assert ended.call is call
    assert disconnected["code"] == "200", callee.output()
    assert result.ok, result.output
    assert result.codes == [200]
    assert len(uac.events.of(CallEnded)) == 1
    assert uac.wire.methods() == ["INVITE", "ACK", "BYE"]
    assert (200, "INVITE") in uac.wire.statuses()
    invite, ack = uac.wire.sent_request("INVITE"), uac.wire.sent_request("ACK")
    assert ack.branch != invite.branch  # the ACK to a 2xx is a transaction of its own


async def test_pjsua_hangs_up_on_us(uac: Uac, rtp: tuple[int, RtpSink], tone: Path) -> None:
    async with pjsua_callee(play=tone, hangup=True, seconds=1.0) as callee:
        call = dial(uac.endpoint, callee, our_offer(rtp[0]))
        await uac.events.next(CallEstablished)
        ended = await uac.events.next(CallEnded)
        result = await asyncio.to_thread(callee.wait_result, 15)
    assert ended.call is call
    assert ended.reason == "remote hangup"
    assert result.ok, result.output
    assert result.codes == [200]  # our 200 to its BYE
    assert uac.wire.methods() == ["INVITE", "ACK"]


async def test_pjsua_answers_busy_486(uac: Uac, rtp: tuple[int, RtpSink]) -> None:
    async with pjsua_callee(answer_code=486) as callee:
        call = dial(uac.endpoint, callee, our_offer(rtp[0]))
        ended = await uac.events.next(CallEnded)
        disconnected = await asyncio.to_thread(callee.wait_event, "DISCONNECTED", 10)
        result = await asyncio.to_thread(callee.wait_result, 15)
    assert ended.call is call
    assert ended.status == 486, ended
    assert not uac.events.of(CallEstablished)
    assert disconnected["code"] == "486"
    assert result.codes == [486]
    # the ACK to a non-2xx final response belongs to the INVITE transaction (RFC 3261 17.1.1.3)
    assert uac.wire.methods() == ["INVITE", "ACK"]
    invite, ack = uac.wire.sent_request("INVITE"), uac.wire.sent_request("ACK")
    assert ack.branch == invite.branch and ack.cseq == (invite.cseq[0], "ACK")


@pytest.mark.parametrize("when", ["after_180", "at_once"])
async def test_cancel_while_pjsua_rings(uac: Uac, rtp: tuple[int, RtpSink], when: str) -> None:
    async with pjsua_callee(ring_seconds=5) as callee:
        call = dial(uac.endpoint, callee, our_offer(rtp[0]))
        if when == "after_180":
            await asyncio.to_thread(callee.wait_event, "INCOMING", 10)
            ringing = await uac.events.next(CallProgress)
            assert ringing.call is call
            assert ringing.status == 180
        # before the final response: CANCEL (at once: once a provisional came, RFC 3261 9.1)
        uac.endpoint.hangup(call)
        ended = await uac.events.next(CallEnded)
        disconnected = await asyncio.to_thread(callee.wait_event, "DISCONNECTED", 10)
        result = await asyncio.to_thread(callee.wait_result, 15)
        await uac.wire.response(487, "INVITE")
        await asyncio.sleep(0.2)  # room for a wrong extra event or request
    assert ended.call is call
    assert disconnected["code"] == "487", callee.output()
    assert result.codes == [487]
    assert result.fields.get("calls") == "0"  # never confirmed
    assert not uac.events.of(CallEstablished)
    assert len(uac.events.of(CallEnded)) == 1
    assert uac.wire.methods() == ["INVITE", "CANCEL", "ACK"]
    assert (200, "CANCEL") in uac.wire.statuses()
    invite = uac.wire.sent_request("INVITE")
    cancel, ack = uac.wire.sent_request("CANCEL"), uac.wire.sent_request("ACK")
    assert cancel.branch == invite.branch == ack.branch
