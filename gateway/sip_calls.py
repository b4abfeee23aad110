"""SIP call legs: routing an INVITE to its room, media negotiation, hold, timeouts, DTMF.

:class:`SipCalls` receives the SIP endpoint's call events. An INVITE whose user part is a room
number reaches that room (contract: unknown number 404, inactive room 480); one to a dial-in
number (``GATEWAY_DIALIN_NUMBERS``, in any form the phone network writes it) reaches the phone
menu, and so does a room with a PIN dialled directly (only its PIN is asked). Each answered call
gets an RTP port pair and an :class:`~gateway.media.leg.AudioLeg`; a menu call is answered, runs
its :class:`~gateway.phone_menu.PhoneMenu` once the ACK is in, then joins the room's mixer on the
same call. Digits come from RFC 4733 events, SIP INFO and in-band tones alike
(:class:`~gateway.phone_menu.CallDtmf`); in the room ``*6`` mutes and unmutes the caller.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

from config import Settings
from dtmf.pin import PinGuard
from gateway import logs, prompts
from gateway.admission import SourceLimits
from gateway.callerid import CallerId, caller_id, dialled_number
from gateway.conference import Conference, Member
from gateway.lifecycle import CallObserver, LegInfo, LegTotals, Observers
from gateway.media.leg import AudioLeg, LegConfig, TelephoneEvent
from gateway.media.transport import NoFreePorts, PortAllocator, RtpEndpoint
from gateway.mixer import Pcm
from gateway.phone_menu import (
    CallDtmf,
    InRoomKeys,
    MenuResult,
    MenuRoom,
    PhoneMenu,
    PromptOverlay,
)
from gateway.prompts import PromptPlayer
from sip.dialog import (
    AckAnswer,
    Call,
    CallConfig,
    CallEnded,
    CallEstablished,
    CallEvent,
    IncomingCall,
    InfoReceived,
    ReinviteOffer,
    UasCall,
    is_unspecified,
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
from sip.transport import TcpLimits

__all__ = ["RoomInfo", "RoomLookup", "SipCalls"]

logger = logging.getLogger(__name__)

#: How often legs are checked for RTP inactivity (seconds).
WATCHDOG_INTERVAL = 1.0

#: The end reason (``gateway.lifecycle.END_REASONS``) of a leg the conference ended, by the
#: prompt it was told (``Member.remove``).
REMOVE_REASONS = {"removed": "removed", "refused": "refused", "ended": "room_ended"}


def end_reason_of(event: CallEnded) -> str:
    """The end reason of a call the dialog ended (not us): the caller's BYE or CANCEL, a
    session or request timeout, anything else failed (no ACK, an error response)."""
    if event.reason in ("remote hangup", "cancelled"):
        return "hangup"
    if event.reason == "session expired" or event.reason.endswith(" timed out"):
        return "timeout"
    return "failed"


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
    wait_for_host: bool = False
    locked: bool = False  # new arrivals (but organisers) wait to be admitted

    def for_menu(self) -> MenuRoom:
        return MenuRoom(
            id=self.id,
            active=self.active,
            pin=self.pin,
            host_pin=self.host_pin,
            waiting_room=self.waiting_room or self.locked,
            wait_for_host=self.wait_for_host,
        )


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
    dtmf: CallDtmf = field(default_factory=CallDtmf)
    #: A call for the phone menu: (the room dialled directly, or None for the dial-in number),
    #: until the menu starts on the ACK.
    menu_plan: tuple[RoomInfo | None] | None = None
    menu: PhoneMenu | None = None
    menu_task: asyncio.Task[None] | None = None
    overlay: PromptOverlay | None = None
    has_events: bool = False  # telephone-event negotiated
    confirmed: bool = False  # the ACK came: media may flow
    #: What observers were told of the leg (None until it started).
    info: LegInfo | None = None
    codec: str | None = None  # the negotiated codec
    #: Why the leg ends, decided before it does (a removal whose prompt is playing).
    end_reason: str | None = None
    #: RTP counters of the audio legs a codec change replaced.
    carried: LegTotals = LegTotals()


def display_name(request: Request, caller: CallerId) -> str:
    """A room system's name: the From display name, else its user part or host."""
    if caller.display_name:
        return caller.display_name
    sender = request.from_
    return (sender.uri.user or "").strip() or sender.uri.host or "SIP caller"


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
        observer: CallObserver | None = None,
    ) -> None:
        self.settings = settings
        self.lookup = lookup
        self.conference = conference
        self.ports = ports
        self.media_address = media_address
        #: Told every leg's life (call records, metrics).
        self.observer: CallObserver = observer if observer is not None else Observers()
        self.endpoint = SipEndpoint(
            settings.sip_host,
            settings.sip_port,
            self.on_event,
            config=CallConfig(public_host=settings.sip_public_host),
            tcp_limits=TcpLimits(
                max_connections=settings.tcp_max_connections,
                max_per_address=settings.tcp_max_per_address,
                idle=settings.tcp_idle_seconds,
            ),
        )
        #: Address families our RTP sockets serve (an offer in another one gets 488).
        self.families: tuple[str, ...] = ("IP6",) if ":" in settings.sip_host else ("IP4",)
        self.legs: dict[Call, SipLeg] = {}
        self._by_member: dict[str, SipLeg] = {}  # the same legs, by participant id
        self.pin_guard = PinGuard(
            max_failures=settings.pin_max_failures,
            window=settings.pin_lockout_seconds,
            lockout=settings.pin_lockout_seconds,
        )
        self.limits = SourceLimits(
            max_calls=settings.max_calls_per_source,
            max_pending=settings.max_pending_per_source,
            max_total_calls=settings.max_calls,
            max_total_pending=settings.max_setups,
        )
        self._last_overload_log = -float("inf")
        #: Set when a SIGTERM drain begins: new calls get 503 with this Retry-After.
        self.draining = False
        self.drain_retry_after = 10
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
            self._drop(leg, "shutdown")
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
        """Handle one event with the call's ids on every line logged (and in every task it
        starts: the INVITE's routing, the phone menu)."""
        leg = self.legs.get(event.call)
        context = logs.enter_call(event.call.key.call_id, leg.member if leg is not None else None)
        try:
            self._on_event(event)
        finally:
            logs.leave_call(context)

    def _on_event(self, event: CallEvent) -> None:
        if isinstance(event, IncomingCall):
            assert isinstance(event.call, UasCall)
            if self._admit(event.call, event.request):
                self._spawn(self._route(event.call, event.request, event.offer))
            else:
                self.observer.call_refused(self._kind_of(event.request), 503)
        elif isinstance(event, CallEstablished):
            self.limits.confirm(event.call)
            self._established(event.call, event.sdp)
        elif isinstance(event, ReinviteOffer):
            self._reinvite(event.call, event.sdp)
        elif isinstance(event, AckAnswer):  # the answer to our offer in an offerless re-INVITE
            leg = self.legs.get(event.call)
            if leg is not None:
                self._apply_ack(leg, event.sdp)
        elif isinstance(event, InfoReceived):
            leg = self.legs.get(event.call)
            if leg is None or not leg.dtmf.info(event.content_type, event.body, self._now()):
                logger.debug("INFO %s on %s ignored", event.content_type, event.call)
        elif isinstance(event, CallEnded):
            leg = self.legs.get(event.call)
            if leg is not None:
                logger.debug("call %s ended: %s", leg.member.id, event.reason)
                self._drop(leg, end_reason_of(event))
            self.limits.forget(event.call)

    # -- incoming calls ----------------------------------------------------------------------
    def _admit(self, call: UasCall, request: Request) -> bool:
        """Per-source caps on calls and unconfirmed INVITEs: over one, 503 with Retry-After.
        While the process drains (SIGTERM), every new call gets 503."""
        if self.draining:
            asyncio.get_running_loop().call_soon(
                functools.partial(
                    self.endpoint.reject,
                    call,
                    503,
                    reason="Gateway Draining",
                    headers=[("Retry-After", str(self.drain_retry_after))],
                )
            )
            return False
        via = request.vias[0] if request.vias else None
        source = (via.param("received") or via.host.strip("[]")) if via is not None else "?"
        if self.limits.admit(call, source):
            return True
        process = self.limits.last_refusal == "process"
        now = self._now()
        if now - self._last_overload_log >= 10.0:  # one line per overload, not per INVITE
            self._last_overload_log = now
            if process:
                logger.warning(
                    "gateway at its call caps (%d calls, %d being set up): answering 503 "
                    "(%d refused so far)",
                    self.limits.max_total_calls,
                    self.limits.max_total_pending,
                    self.limits.refused,
                )
            else:
                logger.warning(
                    "source %s over its call caps (%d calls, %d unconfirmed): answering 503 "
                    "(%d refused so far)",
                    source,
                    self.limits.max_calls,
                    self.limits.max_pending,
                    self.limits.refused,
                )
        asyncio.get_running_loop().call_soon(  # not from inside the endpoint's own dispatch
            functools.partial(
                self.endpoint.reject,
                call,
                503,
                reason="Gateway Overloaded" if process else "Too Many Calls From Source",
                headers=[("Retry-After", "5" if process else "30")],
            )
        )
        return False

    async def _route(self, call: UasCall, request: Request, offer_text: str | None) -> None:
        try:
            await self._incoming(call, request, offer_text)
        except Exception:
            logger.exception("incoming call %s failed", request.call_id)
            leg = self.legs.get(call)
            if leg is not None:
                self._hangup(leg, "failed")
            elif not call.ended:
                self.endpoint.reject(call, 500)
                self.observer.call_refused(self._kind_of(request), 500)
        finally:
            if call not in self.legs:
                self.limits.forget(call)  # refused, cancelled or failed

    async def _incoming(self, call: UasCall, request: Request, offer_text: str | None) -> None:
        number = (request.uri.user or "").strip()
        caller = caller_id(request, self.settings.default_region)
        room: RoomInfo | None = None
        dialin = self._is_dialin(request)
        refused = self.observer.call_refused
        kind = "phone" if dialin else "sip"
        if not dialin:
            try:
                room = await self.lookup(number) if number.isdigit() else None
            except Exception:
                logger.exception("room lookup for %r failed", number)
                self.endpoint.reject(call, 500)
                refused(kind, 500)
                return
            if call.ended:
                refused(kind, 487)  # cancelled while we looked
                return
            if room is None:
                self.endpoint.reject(call, 404)
                refused(kind, 404)
                return
            if not room.active:
                self.endpoint.reject(call, 480, reason="Room Not Active")
                refused(kind, 480)
                return
        offer: SessionDescription | None = None
        if offer_text is not None:
            try:
                offer = SessionDescription.parse(offer_text)
            except SdpError as exc:
                self._refuse_offer(call, number, exc)
                refused(kind, 488)
                return
        try:  # configured by the answer below, or by the ACK's answer (delayed offer)
            placeholder = AudioLeg(
                self._leg_config(None), now=self._now(), send_before_confirm=False
            )
            endpoint = await self.ports.open(placeholder)
        except NoFreePorts:
            self.endpoint.reject(call, 503, reason="No Media Ports")
            refused(kind, 503)
            return
        if call.ended:
            endpoint.close(send_bye=False)
            refused(kind, 487)
            return
        menu = room is None or bool(room.pin or room.host_pin)
        member = Member(
            room_id=room.id if room is not None else "",
            display_name=(
                caller.shown(full=False) if room is None else display_name(request, caller)
            ),
            kind="phone" if room is None else "sip",
            caller_number=caller.number,
        )
        leg = SipLeg(call, member, endpoint)
        logs.attach(member)  # this call's lines now name its participant and room
        if menu:
            leg.menu_plan = (room,)  # the menu starts once the ACK is in
        leg.overlay = PromptOverlay(endpoint.push_frame, self.settings.language)
        member.remove = lambda reason: self._say_goodbye(leg, reason)
        member.on_moderated = lambda action: self._tell(leg, action)
        self._wire(leg)
        if offer is not None:
            try:
                sdp = self._answer(leg, offer)
            except SdpError as exc:
                endpoint.close(send_bye=False)
                self._refuse_offer(call, number, exc)
                refused(kind, 488)
                return
        else:
            leg.offer = make_offer(
                local_address=self._media_host(leg.call),
                audio_port=endpoint.port,
                session_id=leg.session_id,
                session_version=leg.session_version,
            )
            sdp = str(leg.offer)
        leg.info = LegInfo(
            id=member.id,
            kind=member.kind,
            display_name=member.display_name,
            call_id=request.call_id,
            caller_number=member.caller_number,
            room_id=member.room_id or None,
            codec=leg.codec,
        )
        self.observer.leg_started(leg.info, datetime.now(UTC))
        self.legs[call] = leg
        self._by_member[member.id] = leg
        if not menu:
            assert room is not None
            self._enter_room(
                leg,
                room.id,
                "guest",
                waiting=room.waiting_room or room.locked,
                for_host=room.wait_for_host,
            )
        self.endpoint.answer(call, sdp)

    def _media_host(self, call: Call) -> str:
        """The address our SDP announces: the public host when set, else the interface the
        call's INVITE arrived on (on a wildcard bind), else the configured media address."""
        host = call.config.advertised_host
        if is_unspecified(host):
            return self.media_address
        return host

    def _refuse_offer(self, call: UasCall, number: str, exc: SdpError) -> None:
        logger.info("unusable offer for %s: %s", number, exc)
        self.endpoint.reject(call, 488, headers=[("Warning", f'304 gateway "{exc}"')])

    def leg_of(self, participant_id: str) -> SipLeg | None:
        """The live leg of a participant, without a scan of every call."""
        return self._by_member.get(participant_id)

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _kind_of(self, request: Request) -> str:
        """The kind of leg an INVITE asks for, as far as its Request-URI tells."""
        return "phone" if self._is_dialin(request) else "sip"

    def _is_dialin(self, request: Request) -> bool:
        if not self.settings.dialin_numbers:
            return False
        return dialled_number(request, self.settings.default_region) in self.settings.dialin_numbers

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
            new = AudioLeg(
                config,
                now=self._now(),
                wall_offset=current.wall_offset,
                send_before_confirm=False,
            )
            if leg.confirmed:
                new.start_sending()
            leg.carried = self._totals(leg)
            leg.endpoint.leg = current = new
            self._wire(leg)
        elif config.remote_addr and config.remote_addr != current.remote_addr:
            current.set_remote_addr(config.remote_addr)  # a new address; keeps the latch otherwise
        leg.has_events = negotiated.dtmf is not None
        if negotiated.dtmf is not None:
            leg.dtmf.set_event_rate(negotiated.dtmf.clock_rate)
        # in-band tones are looked for in the menu, and in the room only without events
        leg.dtmf.set_inband(leg.menu_plan is not None or leg.menu is not None or not leg.has_events)
        current.set_direction(negotiated.we_send, negotiated.we_receive, self._now())
        # a caller that holds us (sendonly: usually music on hold) is not heard in the room
        if leg.member.room_id:
            self.conference.set_on_hold(leg.member, not negotiated.we_send)
        else:
            leg.member.on_hold = not negotiated.we_send
        leg.codec = negotiated.codec.name.upper()
        self._tell_changes(leg)

    def _answer(self, leg: SipLeg, offer: SessionDescription) -> str:
        """Answer an offer on the leg's port (raises SdpError) and apply it."""

        def answer(version: int) -> tuple[str, NegotiatedAudio | None]:
            result = answer_offer(
                offer,
                families=self.families,
                local_address=self._media_host(leg.call),
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
        if leg is None:
            return
        answered = not leg.confirmed
        if not leg.confirmed:  # no media before the ACK: an unconfirmed INVITE reflects none
            leg.confirmed = True
            leg.endpoint.leg.start_sending()
        self._apply_ack(leg, sdp)
        if answered and leg.info is not None and leg.call in self.legs:
            self.observer.leg_answered(leg.info, datetime.now(UTC))
        if leg.menu_plan is not None and leg.call in self.legs:
            (room,) = leg.menu_plan
            leg.menu_plan = None
            self._start_menu(leg, room)

    def _apply_ack(self, leg: SipLeg, sdp: str | None) -> None:
        if leg.offer is None or sdp is None:
            return
        try:
            negotiated = negotiate_answer(
                leg.offer, SessionDescription.parse(sdp), families=self.families
            )
        except SdpError as exc:
            negotiated = None
            logger.info("bad answer in ACK: %s", exc)
        leg.offer = None
        if negotiated is None:
            self._hangup(leg, "failed")
            return
        self._apply(leg, negotiated)

    def _reinvite(self, call: Call, sdp: str | None) -> None:
        leg = self.legs.get(call)
        if leg is None:
            self.endpoint.reject_offer(call, 488)
            return
        if sdp is None:  # offerless re-INVITE: we offer again, the answer comes in the ACK
            leg.session_version += 1  # RFC 3264 8: a new offer is a new version
            leg.offer = make_offer(
                local_address=self._media_host(leg.call),
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

    # -- DTMF, the menu and the room ---------------------------------------------------------
    def _wire(self, leg: SipLeg) -> None:
        """Hand the leg's RFC 4733 events to its DTMF (again after a new audio leg)."""
        dtmf = leg.dtmf

        def on_event(event: TelephoneEvent) -> None:
            dtmf.telephone_event(event, self._now())

        leg.endpoint.leg.on_event = on_event

    def _start_menu(self, leg: SipLeg, room: RoomInfo | None) -> None:
        assert leg.overlay is not None
        leg.dtmf.set_inband(True)
        menu = PhoneMenu(
            source=leg.endpoint.pull_frame,
            sink=leg.endpoint.push_frame,
            dtmf=leg.dtmf,
            lookup=self._code_lookup,
            guard=self.pin_guard,
            now=self._now(),
            language=self.settings.language,
            room=room.for_menu() if room is not None else None,
            menu_timeout=self.settings.menu_timeout,
            digit_timeout=self.settings.digit_timeout,
        )
        leg.menu = menu
        self.conference.clock.add(menu)
        task = asyncio.ensure_future(self._run_menu(leg, menu))
        leg.menu_task = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        logger.debug("call %s in the phone menu", leg.member.id)

    async def _code_lookup(self, code: str) -> MenuRoom | None:
        room = await self.lookup(code)
        return room.for_menu() if room is not None else None

    async def _run_menu(self, leg: SipLeg, menu: PhoneMenu) -> None:
        result: MenuResult | None = None
        try:
            result = await menu.run()
        except asyncio.CancelledError:
            return
        except Exception:
            logger.exception("phone menu of %s failed", leg.member.id)
        finally:
            self.conference.clock.remove(menu)
            leg.menu = None
        if leg.call not in self.legs or leg.call.ended:
            return
        if result is None:
            self._hangup(leg, menu.failure or "failed")
            return
        room = result.room
        waiting = room.waiting_room and result.role != "organiser"
        self._enter_room(leg, room.id, result.role, waiting=waiting, for_host=room.wait_for_host)

    def _enter_room(
        self, leg: SipLeg, room_id: str, role: str, *, waiting: bool, for_host: bool = False
    ) -> None:
        """Put the caller in its room: heard (unless a spectator), hearing the room, and its
        keys (``*6``) live. In-band tones are looked for only when no telephone-event is."""
        member = leg.member
        member.room_id, member.role = room_id, role
        member.state = "waiting" if waiting else "joined"
        keys = InRoomKeys(lambda: self._toggle_mute(leg))
        leg.dtmf.on_digit = keys.digit
        leg.dtmf.set_inband(not leg.has_events)
        endpoint, dtmf = leg.endpoint, leg.dtmf

        def source(now: float) -> Pcm:
            # at the codec's rate: a room of G.711 legs mixes at 8 kHz with no resampling
            frame = endpoint.pull_native(now)
            if dtmf.inband is not None:  # tones looked for only without telephone-event
                dtmf.audio(frame, now)
            return frame

        assert leg.overlay is not None
        self._tell_changes(leg)
        self.conference.join(member, source, leg.overlay, wait_for_host=for_host)
        logger.debug("call %s joined room %s as %s", member.id, room_id, role)

    def _toggle_mute(self, leg: SipLeg) -> None:
        member = leg.member
        if member.role == "spectator" or leg.call not in self.legs:
            return  # a spectator is never heard
        self.conference.set_muted(member, not member.muted)
        logger.debug("call %s %s itself", member.id, "muted" if member.muted else "unmuted")
        if leg.overlay is not None:
            name = "muted" if member.muted else "unmuted"
            leg.overlay.play(name)

    def _tell(self, leg: SipLeg, prompt: str) -> None:
        """A moderator muted or unmuted the caller: it hears so, over the room's audio."""
        if leg.overlay is not None and leg.call in self.legs:
            leg.overlay.play(prompt)

    # -- ending ------------------------------------------------------------------------------
    def _say_goodbye(self, leg: SipLeg, reason: str, *, end_reason: str | None = None) -> None:
        """Out of the room already (the conference took it out): play the prompt for
        ``reason``, then hang up. The leg ends with ``end_reason`` (default: the one of the
        prompt, :data:`REMOVE_REASONS`), even if the caller hangs up during the prompt."""
        if leg.call not in self.legs or leg.call.ended:
            return
        if leg.end_reason is None:
            leg.end_reason = end_reason or REMOVE_REASONS.get(reason, "failed")
        clock = self.conference.clock

        def done() -> None:
            clock.remove(player)
            self._hangup(leg)

        player = PromptPlayer(
            prompts.frames(reason, self.settings.language), leg.endpoint.push_frame, done
        )
        clock.add(player)

    def end_all(self, reason: str = "shutdown") -> None:
        """End every call (the end of a SIGTERM drain): each caller in a room or the phone
        menu hears that the conference has ended, then gets a BYE; a call not yet
        confirmed by its ACK is hung up at once."""
        for leg in list(self.legs.values()):
            if not leg.confirmed:
                self._hangup(leg, reason)
                continue
            if leg.menu is not None:  # the notice replaces the menu's prompts
                self.conference.clock.remove(leg.menu)
                leg.menu.close()
            if leg.menu_task is not None:
                leg.menu_task.cancel()
            if leg.member.room_id:
                self.conference.leave(leg.member)
            self._say_goodbye(leg, "ended", end_reason=reason)

    def _hangup(self, leg: SipLeg, reason: str | None = None) -> None:
        self.endpoint.hangup(leg.call)
        self._drop(leg, reason)

    def _drop(self, leg: SipLeg, reason: str | None = None) -> None:
        """Forget an ended leg; observers hear it ended with the reason decided before
        (a removal), else ``reason``, else failed."""
        if self.legs.pop(leg.call, None) is None:
            return
        self._by_member.pop(leg.member.id, None)
        self.limits.forget(leg.call)
        if leg.info is not None:
            self.observer.leg_ended(
                leg.info, datetime.now(UTC), leg.end_reason or reason or "failed", self._totals(leg)
            )
        if leg.menu is not None:
            self.conference.clock.remove(leg.menu)
            leg.menu.close()
        if leg.menu_task is not None:
            leg.menu_task.cancel()
        self.conference.leave(leg.member)
        leg.endpoint.close()

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(WATCHDOG_INTERVAL)
            now = loop.time()
            for leg in list(self.legs.values()):
                if leg.endpoint.leg.timed_out(now):
                    logger.info(
                        "no RTP from %s for %.0f s: hanging up",
                        leg.member.id,
                        self.settings.rtp_timeout,
                        extra=logs.ids(leg.member, call_id=leg.call.key.call_id),
                    )
                    self._hangup(leg, "timeout")

    # -- what observers are told -------------------------------------------------------------
    def _tell_changes(self, leg: SipLeg) -> None:
        """Observers hear of a leg's new room (the phone menu found it) or codec."""
        info = leg.info
        if info is None:
            return  # not started yet: leg_started carries it
        room_id = leg.member.room_id or None
        if info.room_id != room_id or info.codec != leg.codec:
            leg.info = replace(info, room_id=room_id, codec=leg.codec)
            self.observer.leg_updated(leg.info)

    def _totals(self, leg: SipLeg) -> LegTotals:
        """The leg's RTP counters, over every audio leg it had; lost: from its RTCP
        receiver statistics (RFC 3550 A.3)."""
        audio, carried = leg.endpoint.leg, leg.carried
        receiver = audio.rtcp.receiver
        return LegTotals(
            packets_received=carried.packets_received + audio.packets_received,
            packets_sent=carried.packets_sent + audio.packets_sent,
            packets_lost=carried.packets_lost + (max(0, receiver.lost) if receiver else 0),
        )
