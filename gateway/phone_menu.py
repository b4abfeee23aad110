"""The phone menu, and the keys a caller may press once in the room.

A call that reaches the menu (the shared dial-in number, or a room with a PIN dialled directly)
is answered and hears prompts; it types the conference code followed by ``#``, then the PIN
followed by ``#`` when the room has one, and joins the room on the same call.

* :class:`CallDtmf` turns the three ways a phone sends a digit (RFC 4733 telephone-events, SIP
  INFO bodies, in-band tones in the audio) into one stream of :class:`~dtmf.events.Digit`,
  counting a digit once when it arrives by two methods at once.
* :class:`PhoneMenu` is a tickable of the process's one
  :class:`~gateway.media.transport.MixerClock`, like a room mixer: each 20 ms tick it pulls the
  caller's audio (which drains its jitter buffer and feeds the in-band detector), sends the next
  prompt frame or silence, and wakes the menu script when an entry is complete, a prompt has
  ended or a timeout has passed. :meth:`PhoneMenu.run` is that script, one coroutine per call
  (never one per packet) that reads like the menu it is.
* :class:`InRoomKeys` and :class:`PromptOverlay` serve a caller in the room: ``*6`` mutes and
  unmutes itself, and it hears which over the room's audio.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from dtmf.collector import DigitCollector, DigitMerger, Entry
from dtmf.events import Digit
from dtmf.inband import InbandDetector
from dtmf.info import is_dtmf_info, parse_info
from dtmf.pin import CallTries, PinGuard, pin_matches
from dtmf.rfc4733 import TelephoneEventReceiver
from gateway import logs, prompts
from gateway.media.leg import TelephoneEvent
from gateway.mixer import FrameSink, FrameSource, Pcm

__all__ = [
    "CallDtmf",
    "InRoomKeys",
    "MenuResult",
    "MenuRoom",
    "PhoneMenu",
    "PromptOverlay",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")

FRAME = 320  # 20 ms at 16 kHz
SILENCE: Pcm = np.zeros(FRAME, dtype=np.int16)
#: Tries for the code and for the PIN, each (contract: 3 tries, then goodbye).
TRIES = 3
#: A prompt that asks for digits is said again after this long without a key press.
REPROMPT_AFTER = 10.0
#: Longest code or PIN taken from the keypad (rooms have 10-digit codes and 4-10 digit PINs).
MAX_ENTRY = 16
#: ``*`` then ``6`` within this many seconds toggles the caller's own mute.
STAR_WINDOW = 3.0


@dataclass(frozen=True)
class MenuRoom:
    """What the menu needs of a room (a subset of the routing's room record)."""

    id: str
    active: bool
    pin: str | None
    host_pin: str | None
    waiting_room: bool = False
    wait_for_host: bool = False


@dataclass(frozen=True)
class MenuResult:
    """The caller typed its way in: the room, and the role its PIN gives."""

    room: MenuRoom
    role: str  # "organiser" or "guest"


class MenuTimeout(Exception):
    """The caller took longer than the menu allows in all."""


# -- digits ----------------------------------------------------------------------------------


class CallDtmf:
    """Every DTMF source of one call, merged: a digit seen by two methods counts once."""

    def __init__(self, *, event_rate: int = 8000, inband: bool = True) -> None:
        self.on_digit: Callable[[Digit], None] = lambda digit: None
        self._event_rate = event_rate
        self._events = TelephoneEventReceiver(event_rate)
        self._merger = DigitMerger()
        self.inband: InbandDetector | None = InbandDetector(16000) if inband else None
        self.received = {"rfc4733": 0, "info": 0, "inband": 0}

    def set_event_rate(self, rate: int) -> None:
        """The negotiated telephone-event clock rate (a re-INVITE may change it)."""
        if rate != self._event_rate:
            self._event_rate = rate
            self._events = TelephoneEventReceiver(rate)

    def set_inband(self, enabled: bool) -> None:
        if enabled and self.inband is None:
            self.inband = InbandDetector(16000)
        elif not enabled:
            self.inband = None

    def telephone_event(self, event: TelephoneEvent, now: float) -> None:
        payload = bytes((event.event & 0xFF, (0x80 if event.end else 0) | event.volume))
        payload += (event.duration & 0xFFFF).to_bytes(2, "big")
        digit = self._events.feed(
            payload, event.timestamp, now, marker=event.marker, ssrc=event.ssrc
        )
        if digit is not None:
            self._deliver(digit)

    def info(self, content_type: str | None, body: bytes, now: float) -> bool:
        """A SIP INFO body; False when it is not DTMF."""
        if not is_dtmf_info(content_type):
            return False
        digit = parse_info(content_type, body, now)
        if digit is not None:
            self._deliver(digit)
        return True

    def audio(self, frame: Pcm, now: float) -> None:
        """The caller's decoded audio, for in-band tones (when the detector is on): 20 ms
        at 16 kHz, or at 8 kHz from a leg of a narrowband room (the detector follows)."""
        detector = self.inband
        if detector is not None:
            rate = len(frame) * 50
            if rate != detector.sample_rate and rate in (8000, 16000):
                detector = self.inband = InbandDetector(rate)
            for digit in detector.feed(frame, now):
                self._deliver(digit)

    def _deliver(self, digit: Digit) -> None:
        if self._merger.accept(digit):
            self.received[digit.method] += 1
            self.on_digit(digit)


# -- the menu --------------------------------------------------------------------------------

#: Finds the room whose conference code was typed (None: no such room).
CodeLookup = Callable[[str], Awaitable[MenuRoom | None]]


class PhoneMenu:
    """One caller's way through the menu; tick it on the mixer clock and await :meth:`run`."""

    def __init__(
        self,
        *,
        source: FrameSource,
        sink: FrameSink,
        dtmf: CallDtmf,
        lookup: CodeLookup,
        guard: PinGuard,
        now: float,
        language: str = "fr",
        room: MenuRoom | None = None,
        menu_timeout: float = 120.0,
        digit_timeout: float = 5.0,
    ) -> None:
        self._source = source
        self._sink = sink
        self._dtmf = dtmf
        self._lookup = lookup
        self._guard = guard
        self._language = language
        self._room = room  # a room dialled directly: only its PIN is asked
        self._now = now
        self.collector = DigitCollector(
            now=now,
            max_length=MAX_ENTRY,
            inter_digit_timeout=digit_timeout,
            overall_timeout=menu_timeout,
        )
        self._frames: tuple[Pcm, ...] = ()
        self._pos = 0
        self._barge = False  # a key press stops the prompt playing
        self._prompt_ended_at: float | None = None
        self._reprompt: str | None = None
        self._last_key_at = now
        self._check: Callable[[float], object | None] | None = None
        self._waiter: asyncio.Future[object] | None = None
        self._expiring = True
        #: The call this menu serves, for the lines logged from outside its task (digits).
        self._log_context = logs.current()
        #: Why :meth:`run` said goodbye (a ``gateway.lifecycle.END_REASONS`` value): "timeout",
        #: "refused" (the room is not open) or "wrong_pin" (codes or PINs, or a locked entry).
        self.failure: str | None = None
        dtmf.on_digit = self.digit

    # -- driven by the clock and the digit sources -----------------------------------------

    def tick(self, now: float) -> None:
        self._now = now
        frame = self._source(now)
        self._dtmf.audio(frame, now)
        if self._pos < len(self._frames):
            out = self._frames[self._pos]
            self._pos += 1
            if self._pos == len(self._frames):
                self._prompt_ended_at = now
        else:
            out = SILENCE
        self._sink(out)
        self._poll(now)

    def digit(self, digit: Digit) -> None:
        # never the digit itself: what a caller types here is a code or a PIN
        logger.debug("menu digit by %s", digit.method, extra=logs.ids(context=self._log_context))
        self.collector.push(digit.digit, digit.at)
        self._last_key_at = digit.at
        if self._barge:
            self._stop_prompt()
        self._poll(self._now)

    def close(self) -> None:
        """The call ended: stop waiting."""
        if self._waiter is not None and not self._waiter.done():
            self._waiter.cancel()

    # -- the script ------------------------------------------------------------------------

    async def run(self) -> MenuResult | None:
        """Welcome, code, PIN; None when the caller is told goodbye instead."""
        try:
            room = self._room if self._room is not None else await self._ask_code()
            if room is None:
                return None
            role = await self._ask_pin(room)
            if role is None:
                return None
            await self._say("joining", expiring=False)
            return MenuResult(room, role)
        except MenuTimeout:
            logger.info("menu: no complete entry within the time allowed")
            self.failure = "timeout"
            await self._say("goodbye", expiring=False)
            return None

    async def _ask_code(self) -> MenuRoom | None:
        tries = CallTries(TRIES)
        prompt = "welcome"
        while True:
            entry = await self._entry(prompt)
            code = entry.digits
            room = await self._lookup(code) if code.isdigit() else None
            if room is not None and not room.active:
                self.failure = "refused"
                await self._say("not_open")
                await self._say("goodbye", expiring=False)
                return None
            if room is not None:
                return room
            logger.info("menu: wrong code (%d digits)", len(code))
            if tries.fail():
                self.failure = "wrong_pin"
                await self._say("goodbye", expiring=False)
                return None
            prompt = "wrong_code"

    async def _ask_pin(self, room: MenuRoom) -> str | None:
        if not room.pin and not room.host_pin:
            return "guest"
        key = f"room:{room.id}"
        tries = CallTries(TRIES)
        prompt = "enter_pin" if room.pin else "enter_host_pin"
        while True:
            if self._guard.locked(key, self._now):
                await self._locked()
                return None
            entry = await self._entry(prompt)
            pin = entry.digits
            # both compared every time, in constant time, so timing tells nothing
            host = pin_matches(pin, room.host_pin or "") and bool(room.host_pin)
            guest = pin_matches(pin, room.pin or "") if room.pin else pin == ""
            if self._guard.locked(key, self._now):
                await self._locked()  # locked while this caller was typing
                return None
            if host:
                return "organiser"
            if guest:
                return "guest"
            logger.info("menu: wrong PIN for room %s", room.id)
            if self._guard.failure(key, self._now):
                logger.warning("room %s: PIN entry locked after repeated failures", room.id)
                await self._locked()
                return None
            if tries.fail():
                self.failure = "wrong_pin"
                await self._say("goodbye", expiring=False)
                return None
            prompt = "wrong_pin"

    async def _locked(self) -> None:
        """PIN entry for this room is blocked: say why, then goodbye."""
        self.failure = "wrong_pin"
        await self._say("room_locked", expiring=False)
        await self._say("goodbye", expiring=False)

    # -- prompts and waiting ---------------------------------------------------------------

    def _play(self, name: str, *, barge: bool) -> None:
        self._frames = prompts.frames(name, self._language)
        self._pos = 0
        self._barge = barge
        self._prompt_ended_at = None

    def _stop_prompt(self) -> None:
        if self._pos < len(self._frames):
            self._pos = len(self._frames)
            self._prompt_ended_at = self._now
        self._barge = False

    @property
    def playing(self) -> bool:
        return self._pos < len(self._frames)

    async def _say(self, name: str, *, expiring: bool = True) -> None:
        """Play a prompt to its end (keys typed meanwhile are kept for the next entry)."""
        self._play(name, barge=False)
        await self._until(lambda now: True if not self.playing else None, expiring=expiring)

    async def _entry(self, prompt: str) -> Entry:
        """Ask with ``prompt`` and wait for the caller's entry. Keys typed ahead count: with
        digits already waiting the prompt is not played at all, and a key stops it."""
        self._reprompt = prompt
        if not self.collector.pending():
            self._play(prompt, barge=True)
        try:
            entry = await self._until(self._take)
        finally:
            self._reprompt = None
        assert isinstance(entry, Entry)
        return entry

    def _take(self, now: float) -> Entry | None:
        entry = self.collector.take(now)
        if entry is not None:
            self._stop_prompt()
            return entry
        ended = self._prompt_ended_at
        if (
            self._reprompt is not None
            and not self.playing
            and not self.collector.pending()
            and ended is not None
            and now - max(ended, self._last_key_at) >= REPROMPT_AFTER
        ):
            self._play(self._reprompt, barge=True)
        return None

    async def _until(self, check: Callable[[float], T | None], *, expiring: bool = True) -> T:
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[object] = loop.create_future()
        self._check, self._waiter, self._expiring = check, waiter, expiring
        self._poll(self._now)
        try:
            result = await waiter
        finally:
            self._check = self._waiter = None
        return result  # type: ignore[return-value]

    def _poll(self, now: float) -> None:
        waiter, check = self._waiter, self._check
        if waiter is None or check is None or waiter.done():
            return
        if self._expiring and self.collector.expired(now):
            self._stop_prompt()
            waiter.set_exception(MenuTimeout())
            return
        result = check(now)
        if result is not None:
            waiter.set_result(result)


# -- in the room -----------------------------------------------------------------------------


class InRoomKeys:
    """Keys a caller may press once in the room: ``*6`` toggles its own mute."""

    def __init__(self, toggle_mute: Callable[[], None]) -> None:
        self._toggle = toggle_mute
        self._star_at: float | None = None

    def digit(self, digit: Digit) -> None:
        star = self._star_at
        self._star_at = None
        if digit.digit == "*":
            self._star_at = digit.at
        elif digit.digit == "6" and star is not None and digit.at - star <= STAR_WINDOW:
            self._toggle()


class PromptOverlay:
    """A leg's sink that lays a prompt over the room's audio (the room is turned down while
    the prompt speaks), for what one caller alone must hear ("you are muted"). The room's
    frames may come at 16 or 8 kHz (a narrowband room): the prompt follows their rate."""

    def __init__(self, sink: FrameSink, language: str = prompts.LANGUAGES[0]) -> None:
        self._sink = sink
        self._language = language
        self._name: str | None = None
        self._length = 0
        self._pos = 0

    def play(self, name: str) -> None:
        """Start the prompt ``name`` (raises KeyError for an unknown one)."""
        self._length = len(prompts.frames(name, self._language))
        self._name = name
        self._pos = 0

    @property
    def playing(self) -> bool:
        return self._pos < self._length

    def __call__(self, pcm: Pcm) -> None:
        if self._pos < self._length and self._name is not None:
            prompt = prompts.frames(self._name, self._language, len(pcm) * 50)[self._pos]
            self._pos += 1
            mixed = (pcm.astype(np.int32) >> 2) + prompt
            pcm = np.clip(mixed, -32768, 32767).astype(np.int16)
        self._sink(pcm)
