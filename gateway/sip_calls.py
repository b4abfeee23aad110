"""SIP call legs: routing an INVITE to its room, media negotiation, hold, timeouts.

:class:`SipCalls` receives the SIP endpoint's call events. An INVITE whose user part is a room
number reaches that room (contract: unknown number 404, inactive room 480); this step refuses rooms
with a PIN with 403 (the PIN prompt comes with the phone menu). Each answered call gets an RTP port
pair and an :class:`~gateway.media.leg.AudioLeg` that joins the room's mixer.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from config import Settings
from gateway import prompts
from gateway.conference import Conference, Member
from gateway.media.leg import AudioLeg, LegConfig
from gateway.media.transport import NoFreePorts, PortAllocator, RtpEndpoint
from gateway.prompts import PromptPlayer
from sip.dialog import (
    Call,
    CallEnded,
    CallEstablished,
    CallEvent,
    IncomingCall,
    InfoReceived,
    ReinviteOffer,
    UasCall,
)
from sip.endpoint import SipEndpoint
from sip.errors import SdpError
from sip.message import Request
from sip.sdp import (
    NegotiatedAudio,
    SessionDescription,
    answer_offer,
    make_offer,
    negotiate_answer,
)

__all__ = ["RoomInfo", "RoomLookup", "SipCalls"]

logger = logging.getLogger(__name__)

#: How often legs are checked for RTP inactivity (seconds).
WATCHDOG_INTERVAL = 1.0


@dataclass(frozen=True)
class RoomInfo:
    """What call routing needs to know of a room, read from the room store."""

    id: str
    number: str
    name: str
    active: bool
    pin: str | None
    host_pin: str | None
    waiting_room: bool = False


#: Looks a room up by its number (None: no such room).
RoomLookup = Callable[[str], Awaitable[RoomInfo | None]]


@dataclass(eq=False)
class SipLeg:
    """One answered SIP call: its dialog, its RTP sockets and its place in a room."""

    call: Call
    member: Member
    endpoint: RtpEndpoint
    session_id: int = field(default_factory=lambda: secrets.randbelow(2**31))
    session_version: int = 0
    last_answer: str | None = None
    offer: SessionDescription | None = None  # our offer, for a delayed-offer INVITE


def display_name(request: Request) -> str:
    sender = request.from_
    if sender.display_name:
        return sender.display_name.strip('"')
    return sender.uri.user or sender.uri.host or "SIP caller"


class SipCalls:
    """Routes SIP calls to rooms and runs their media legs."""

    def __init__(
        self,
        settings: Settings,
        lookup: RoomLookup,
        conference: Conference,
        ports: PortAllocator,
        *,
        media_address: str,
    ) -> None:
        self.settings = settings
        self.lookup = lookup
        self.conference = conference
        self.ports = ports
        self.media_address = media_address
        self.endpoint = SipEndpoint(settings.sip_host, settings.sip_port, self.on_event)
        self.legs: dict[Call, SipLeg] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._watchdog: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.endpoint.start()
        self._watchdog = asyncio.get_running_loop().create_task(self._watch())

    async def stop(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
        for leg in list(self.legs.values()):
            self.endpoint.hangup(leg.call)
            self._drop(leg)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.sleep(0.05)  # let the BYEs leave
        await self.endpoint.stop()

    def _spawn(self, coro: Awaitable[None]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- events ------------------------------------------------------------------------------
    def on_event(self, event: CallEvent) -> None:
        if isinstance(event, IncomingCall):
            assert isinstance(event.call, UasCall)
            self._spawn(self._route(event.call, event.request, event.offer))
        elif isinstance(event, CallEstablished):
            self._established(event.call, event.sdp)
        elif isinstance(event, ReinviteOffer):
            self._reinvite(event.call, event.sdp)
        elif isinstance(event, InfoReceived):
            logger.debug("INFO %s on %s ignored", event.content_type, event.call)
        elif isinstance(event, CallEnded):
            leg = self.legs.get(event.call)
            if leg is not None:
                logger.info("call %s ended: %s", leg.member.id, event.reason)
                self._drop(leg)

    # -- incoming calls ----------------------------------------------------------------------
    async def _route(self, call: UasCall, request: Request, offer_text: str | None) -> None:
        try:
            await self._incoming(call, request, offer_text)
        except Exception:
            logger.exception("incoming call %s failed", request.call_id)
            leg = self.legs.get(call)
            if leg is not None:
                self._hangup(leg)
            elif not call.ended:
                self.endpoint.reject(call, 500)

    async def _incoming(self, call: UasCall, request: Request, offer_text: str | None) -> None:
        number = (request.uri.user or "").strip()
        if self._is_dialin(number):
            self.endpoint.reject(call, 480, reason="Phone Menu Not Available")
            return
        try:
            room = await self.lookup(number) if number.isdigit() else None
        except Exception:
            logger.exception("room lookup for %r failed", number)
            self.endpoint.reject(call, 500)
            return
        if call.ended:
            return  # cancelled while we looked
        if room is None:
            self.endpoint.reject(call, 404)
            return
        if not room.active:
            self.endpoint.reject(call, 480, reason="Room Not Active")
            return
        if room.pin or room.host_pin:
            self.endpoint.reject(call, 403, reason="Room Requires A PIN")
            return
        offer: SessionDescription | None = None
        if offer_text is not None:
            try:
                offer = SessionDescription.parse(offer_text)
            except SdpError as exc:
                self._refuse_offer(call, number, exc)
                return
        try:  # configured by the answer below, or by the ACK's answer (delayed offer)
            endpoint = await self.ports.open(AudioLeg(self._leg_config(None), now=self._now()))
        except NoFreePorts:
            self.endpoint.reject(call, 503, reason="No Media Ports")
            return
        if call.ended:
            endpoint.close(send_bye=False)
            return
        member = Member(
            room_id=room.id,
            display_name=display_name(request),
            kind="sip",
            state="waiting" if room.waiting_room else "joined",
        )
        leg = SipLeg(call, member, endpoint)
        member.remove = lambda reason: self._say_goodbye(leg, reason)
        if offer is not None:
            try:
                sdp = self._answer(leg, offer)
            except SdpError as exc:
                endpoint.close(send_bye=False)
                self._refuse_offer(call, number, exc)
                return
        else:
            leg.offer = make_offer(
                local_address=self.media_address,
                audio_port=endpoint.port,
                session_id=leg.session_id,
                session_version=leg.session_version,
            )
            sdp = str(leg.offer)
        self.legs[call] = leg
        self.conference.join(member, endpoint.pull_frame, endpoint.push_frame)
        self.endpoint.answer(call, sdp)

    def _refuse_offer(self, call: UasCall, number: str, exc: SdpError) -> None:
        logger.info("unusable offer for %s: %s", number, exc)
        self.endpoint.reject(call, 488, headers=[("Warning", f'304 gateway "{exc}"')])

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _is_dialin(self, user: str) -> bool:
        digits = user.lstrip("+")
        return any(n.lstrip("+") == digits for n in self.settings.dialin_numbers)

    def _leg_config(self, negotiated: NegotiatedAudio | None) -> LegConfig:
        """The audio leg a negotiation asks for (None: a placeholder until there is one)."""
        if negotiated is None:
            return LegConfig(inactivity_timeout=self.settings.rtp_timeout)
        address = negotiated.remote_address
        return LegConfig(
            codec=negotiated.codec.name.upper(),
            payload_type=negotiated.codec.payload_type,
            clock_rate=None,  # the codec knows its RTP clock; some devices write G722/16000
            remote_addr=(address, negotiated.remote_port) if negotiated.remote_port else None,
            remote_rtcp_addr=(
                (address, negotiated.remote_rtcp_port) if negotiated.remote_rtcp_port else None
            ),
            telephone_event_pt=negotiated.dtmf.payload_type if negotiated.dtmf else None,
            inactivity_timeout=self.settings.rtp_timeout,
        )

    def _apply(self, leg: SipLeg, negotiated: NegotiatedAudio) -> None:
        """Bring the leg's media in line with a (re)negotiated session: the same stream gets
        its new address and direction; another codec or payload type gets a new audio leg on
        the same sockets."""
        config = self._leg_config(negotiated)
        current = leg.endpoint.leg
        if replace(config, remote_addr=None) != replace(current.config, remote_addr=None):
            new = AudioLeg(config, now=self._now(), wall_offset=current.wall_offset)
            leg.endpoint.leg = current = new
        elif config.remote_addr and config.remote_addr != current.remote_addr:
            current.set_remote_addr(config.remote_addr)  # a new address; keeps the latch otherwise
        if not negotiated.we_send:
            current.hold()
        elif current.on_hold:
            current.resume(self._now())

    def _answer(self, leg: SipLeg, offer: SessionDescription) -> str:
        """Answer an offer on the leg's port (raises SdpError) and apply it."""

        def answer(version: int) -> tuple[str, NegotiatedAudio | None]:
            result = answer_offer(
                offer,
                local_address=self.media_address,
                audio_port=leg.endpoint.port,
                session_id=leg.session_id,
                session_version=version,
            )
            return str(result.answer), result.audio

        text, audio = answer(leg.session_version)
        if leg.last_answer is not None and text != leg.last_answer:
            leg.session_version += 1  # RFC 3264 8: the version moves only on change
            text, audio = answer(leg.session_version)
        leg.last_answer = text
        if audio is not None:
            self._apply(leg, audio)
        return text

    def _established(self, call: Call, sdp: str | None) -> None:
        leg = self.legs.get(call)
        if leg is None or leg.offer is None or sdp is None:
            return
        try:
            negotiated = negotiate_answer(leg.offer, SessionDescription.parse(sdp))
        except SdpError as exc:
            negotiated = None
            logger.info("bad answer in ACK: %s", exc)
        leg.offer = None
        if negotiated is None:
            self._hangup(leg)
            return
        self._apply(leg, negotiated)

    def _reinvite(self, call: Call, sdp: str | None) -> None:
        leg = self.legs.get(call)
        if leg is None:
            self.endpoint.reject_offer(call, 488)
            return
        if sdp is None:  # offerless re-INVITE: we offer again, the answer comes in the ACK
            leg.offer = make_offer(
                local_address=self.media_address,
                audio_port=leg.endpoint.port,
                session_id=leg.session_id,
                session_version=leg.session_version,
            )
            self.endpoint.accept_offer(call, str(leg.offer))
            return
        try:
            answer = self._answer(leg, SessionDescription.parse(sdp))
        except SdpError as exc:
            logger.info("re-INVITE offer refused: %s", exc)
            self.endpoint.reject_offer(call, 488)
            return
        self.endpoint.accept_offer(call, answer)

    # -- ending ------------------------------------------------------------------------------
    def _say_goodbye(self, leg: SipLeg, reason: str) -> None:
        """Out of the room already (the conference took it out): play the prompt for
        ``reason``, then hang up."""
        if leg.call not in self.legs or leg.call.ended:
            return
        clock = self.conference.clock

        def done() -> None:
            clock.remove(player)
            self._hangup(leg)

        player = PromptPlayer(prompts.frames(reason), leg.endpoint.push_frame, done)
        clock.add(player)

    def _hangup(self, leg: SipLeg) -> None:
        self.endpoint.hangup(leg.call)
        self._drop(leg)

    def _drop(self, leg: SipLeg) -> None:
        if self.legs.pop(leg.call, None) is None:
            return
        self.conference.leave(leg.member)
        leg.endpoint.close()

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(WATCHDOG_INTERVAL)
            now = loop.time()
            for leg in list(self.legs.values()):
                if leg.endpoint.leg.timed_out(now):
                    logger.info("no RTP from %s for %.0f s: hanging up", leg.member.id,
                                self.settings.rtp_timeout)
                    self._hangup(leg)
