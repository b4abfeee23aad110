"""The phone menu's script, driven tick by tick on a simulated clock (no sockets, no waiting):
code, PIN, host PIN, tries, lockout, timeouts, type-ahead, in-band digits, ``*6``."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import numpy as np
import pytest

from dtmf.events import Digit
from dtmf.pin import PinGuard
from gateway import prompts
from gateway.media.leg import TelephoneEvent
from gateway.phone_menu import (
    CallDtmf,
    InRoomKeys,
    MenuResult,
    MenuRoom,
    PhoneMenu,
    PromptOverlay,
)

TICK = 0.02
FRAME = 320
ROOMS = {
    "1111111111": MenuRoom("open", active=True, pin=None, host_pin=None),
    "2222222222": MenuRoom("pinned", active=True, pin="4321", host_pin="9876"),
    "3333333333": MenuRoom("closed", active=False, pin=None, host_pin=None),
    "4444444444": MenuRoom("hostonly", active=True, pin=None, host_pin="9876"),
}
DTMF_FREQS = {"1": (697, 1209), "2": (697, 1336), "#": (941, 1477), "3": (697, 1477)}


async def lookup(code: str) -> MenuRoom | None:
    return ROOMS.get(code)


class Harness:
    """A menu with its clock, its caller's keys at given times, and what the caller heard."""

    def __init__(
        self,
        *,
        room: MenuRoom | None = None,
        guard: PinGuard | None = None,
        menu_timeout: float = 120.0,
        audio: Callable[[float], np.ndarray] | None = None,
        start: float = 1000.0,
    ) -> None:
        self.now = start
        self.heard: list[np.ndarray] = []
        self.dtmf = CallDtmf()
        self.guard = guard if guard is not None else PinGuard()
        self.audio = audio or (lambda now: np.zeros(FRAME, dtype=np.int16))
        self.menu = PhoneMenu(
            source=lambda now: self.audio(now),
            sink=self.heard.append,
            dtmf=self.dtmf,
            lookup=lookup,
            guard=self.guard,
            now=self.now,
            language="en",
            room=room,
            menu_timeout=menu_timeout,
        )
        self.keys: list[tuple[float, str]] = []

    def type(self, at: float, digits: str, gap: float = 0.25) -> None:
        for i, d in enumerate(digits):
            self.keys.append((self.now + at + i * gap, d))

    async def run(self, limit: float = 200.0) -> tuple[MenuResult | None, float]:
        task = asyncio.ensure_future(self.menu.run())
        start = self.now
        while not task.done() and self.now - start < limit:
            self.now += TICK
            for at, d in [k for k in self.keys if k[0] <= self.now]:
                self.keys.remove((at, d))
                self.dtmf._deliver(Digit(d, "info", at))
            self.menu.tick(self.now)
            for _ in range(3):
                await asyncio.sleep(0)
        assert task.done(), "menu still running"
        return task.result(), self.now - start

    def heard_prompt(self, name: str) -> bool:
        """Whether the whole of a prompt was played, in order, at some point."""
        wanted = prompts.frames(name, "en")
        for i in range(len(self.heard) - len(wanted) + 1):
            if self.heard[i] is wanted[0] and all(
                self.heard[i + k] is wanted[k] for k in range(len(wanted))
            ):
                return True
        return False

    def heard_start_of(self, name: str) -> bool:
        first = prompts.frames(name, "en")[0]
        return any(f is first for f in self.heard)


async def test_code_typed_ahead_joins_a_room_without_pin() -> None:
    h = Harness()
    h.type(0.5, "1111111111#", gap=0.1)  # during the welcome prompt
    result, took = await h.run()
    assert result == MenuResult(ROOMS["1111111111"], "guest")
    assert h.heard_prompt("joining")
    assert not h.heard_prompt("welcome")  # the first key stopped it (barge-in)
    assert took < 10


async def test_three_wrong_codes_end_with_goodbye() -> None:
    h = Harness()
    h.type(1, "99#")
    h.type(10, "1234#")
    h.type(20, "*#")
    result, _ = await h.run()
    assert result is None
    assert h.heard_start_of("wrong_code")
    assert h.heard_prompt("goodbye")


async def test_two_wrong_codes_then_right_one_joins() -> None:
    h = Harness()
    h.type(1, "5#")
    h.type(8, "6#")
    h.type(16, "1111111111#", gap=0.1)
    result, _ = await h.run()
    assert result is not None and result.room.id == "open"


async def test_pin_room_asks_for_the_pin_guest_and_organiser() -> None:
    h = Harness()
    h.type(1, "2222222222#", gap=0.1)
    h.type(8, "4321#")
    result, _ = await h.run()
    assert result == MenuResult(ROOMS["2222222222"], "guest")
    assert h.heard_start_of("enter_pin")

    h = Harness()
    h.type(1, "2222222222#9876#", gap=0.1)  # the PIN typed ahead as well
    result, _ = await h.run()
    assert result is not None and result.role == "organiser"


async def test_direct_dial_asks_only_the_pin() -> None:
    h = Harness(room=ROOMS["2222222222"])
    h.type(2, "4321#")
    result, _ = await h.run()
    assert result is not None and result.role == "guest"
    assert h.heard_start_of("enter_pin") and not h.heard_start_of("welcome")


async def test_host_pin_only_room_lets_guests_in_with_pound() -> None:
    h = Harness(room=ROOMS["4444444444"])
    h.type(1, "#")
    result, _ = await h.run()
    assert result is not None and result.role == "guest"
    assert h.heard_start_of("enter_host_pin")
    h = Harness(room=ROOMS["4444444444"])
    h.type(1, "9876#")
    result, _ = await h.run()
    assert result is not None and result.role == "organiser"


async def test_three_wrong_pins_end_with_goodbye() -> None:
    h = Harness(room=ROOMS["2222222222"])
    h.type(1, "1#")
    h.type(8, "2#")
    h.type(16, "3#")
    result, _ = await h.run()
    assert result is None
    assert h.heard_start_of("wrong_pin") and h.heard_prompt("goodbye")


async def test_lockout_engages_tells_why_and_lifts() -> None:
    guard = PinGuard(max_failures=3, window=60, lockout=60)
    h = Harness(room=ROOMS["2222222222"], guard=guard)
    h.type(1, "1#")
    h.type(8, "2#")
    h.type(16, "3#")
    result, _ = await h.run()
    assert result is None and h.heard_prompt("room_locked")
    # the right PIN is refused while locked, without even being asked for
    h2 = Harness(room=ROOMS["2222222222"], guard=guard, start=h.now + 1)
    h2.type(1, "4321#")
    result, _ = await h2.run()
    assert result is None and h2.heard_prompt("room_locked")
    assert not h2.heard_start_of("enter_pin")
    # after the lockout it works again
    h3 = Harness(room=ROOMS["2222222222"], guard=guard, start=h.now + 61)
    h3.type(1, "4321#")
    result, _ = await h3.run()
    assert result is not None and result.role == "guest"


async def test_inactive_room_is_told_not_open() -> None:
    h = Harness()
    h.type(1, "3333333333#", gap=0.1)
    result, _ = await h.run()
    assert result is None
    assert h.heard_prompt("not_open") and not h.heard_start_of("wrong_code")


async def test_silent_caller_is_told_goodbye_at_the_overall_timeout() -> None:
    h = Harness(menu_timeout=30)
    result, took = await h.run()
    assert result is None
    assert h.heard_prompt("goodbye")
    assert 30 <= took < 30 + 2 + len(prompts.frames("goodbye", "en")) * TICK
    # the welcome was said again while the caller stayed silent
    first = prompts.frames("welcome", "en")[0]
    assert sum(f is first for f in h.heard) >= 2


async def test_code_without_pound_is_taken_after_the_digit_timeout() -> None:
    h = Harness()
    h.type(1, "1111111111", gap=0.1)
    result, took = await h.run()
    assert result is not None and result.room.id == "open"
    assert took > 1 + 5  # the inter-digit timeout of 5 s


def tone(digit: str, seconds: float, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    low, high = DTMF_FREQS[digit]
    return (6000 * (np.sin(2 * np.pi * low * t) + np.sin(2 * np.pi * high * t))).astype(np.int16)


async def test_inband_tones_in_the_audio_are_digits() -> None:
    signal = [np.zeros(16000, dtype=np.int16)]
    for d in "1111111111#":
        signal += [tone(d, 0.08), np.zeros(1280, dtype=np.int16)]
    pcm = np.concatenate(signal + [np.zeros(16000 * 20, dtype=np.int16)])
    pos = {"i": 0}

    def audio(now: float) -> np.ndarray:
        i = pos["i"]
        pos["i"] = i + FRAME
        return pcm[i : i + FRAME]

    h = Harness(audio=audio)
    result, _ = await h.run()
    assert result is not None and result.room.id == "open"
    assert h.dtmf.received["inband"] == 11


def event(digit: int, ts: int, *, end: bool = False, duration: int = 160) -> TelephoneEvent:
    return TelephoneEvent(digit, end, 10, duration, ts, 1, not end, 0x1234)


def test_call_dtmf_counts_a_digit_seen_twice_once() -> None:
    got: list[Digit] = []
    dtmf = CallDtmf()
    dtmf.on_digit = got.append
    dtmf.telephone_event(event(5, 8000), 10.0)
    dtmf.telephone_event(event(5, 8000, duration=800), 10.1)
    for _ in range(3):
        dtmf.telephone_event(event(5, 8000, end=True, duration=1280), 10.16)
    assert dtmf.info("application/dtmf-relay", b"Signal=5\r\nDuration=160\r\n", 10.05)
    assert not dtmf.info("application/sdp", b"v=0", 10.05)
    dtmf.telephone_event(event(5, 9600), 10.5)  # the same key pressed again
    assert [d.digit for d in got] == ["5", "5"]
    assert [d.method for d in got] == ["rfc4733", "rfc4733"]


@pytest.mark.parametrize("rate", [16000, 8000])
def test_call_dtmf_hears_tones_at_the_rate_of_the_frames_it_gets(rate: int) -> None:
    """In the menu a caller's audio comes at 16 kHz; in a narrowband room at 8 kHz: the
    in-band detector follows the frames' length."""
    got: list[Digit] = []
    dtmf = CallDtmf()
    dtmf.on_digit = got.append
    frame = rate // 50
    t = np.arange(rate * 2) / rate
    tone = 6000 * (np.sin(2 * np.pi * 852 * t) + np.sin(2 * np.pi * 1336 * t))  # "8"
    audio = np.concatenate([np.zeros(rate // 5), tone[: rate // 10], np.zeros(rate // 5)])
    pcm = audio.astype(np.int16)
    for i in range(0, len(pcm) - frame + 1, frame):
        dtmf.audio(pcm[i : i + frame], i / rate)
    assert [(d.digit, d.method) for d in got] == [("8", "inband")]
    assert dtmf.inband is not None and dtmf.inband.sample_rate == rate


def test_star_six_toggles_and_nothing_else_does() -> None:
    toggles: list[float] = []
    keys = InRoomKeys(lambda: toggles.append(1))
    for d, at in [("*", 1.0), ("6", 1.5), ("6", 2.0), ("*", 3.0), ("5", 3.1), ("6", 3.2)]:
        keys.digit(Digit(d, "rfc4733", at))
    assert len(toggles) == 1
    keys.digit(Digit("*", "rfc4733", 10.0))
    keys.digit(Digit("6", "rfc4733", 14.0))  # too late after the star
    assert len(toggles) == 1
    keys.digit(Digit("*", "inband", 20.0))
    keys.digit(Digit("6", "inband", 20.3))
    assert len(toggles) == 2


def test_overlay_lays_a_prompt_over_the_room_then_steps_aside() -> None:
    out: list[np.ndarray] = []
    overlay = PromptOverlay(out.append, "en")
    room = np.full(FRAME, 1000, dtype=np.int16)
    overlay(room)
    assert out[-1] is room
    frames = prompts.frames("muted", "en")
    overlay.play("muted")
    for _ in frames:
        overlay(room)
    assert not overlay.playing
    spoken = np.concatenate(out[1:]).astype(np.int32)
    expected = np.concatenate([f.astype(np.int32) + 250 for f in frames])
    assert np.array_equal(spoken, np.clip(expected, -32768, 32767))
    overlay(room)
    assert out[-1] is room


def test_overlay_follows_a_narrowband_room_at_8_khz() -> None:
    """A leg of a room of G.711 legs hears 160-sample frames: the prompt comes at 8 kHz."""
    out: list[np.ndarray] = []
    overlay = PromptOverlay(out.append, "en")
    room = np.zeros(FRAME // 2, dtype=np.int16)
    overlay.play("muted")
    narrow = prompts.frames("muted", "en", 8000)
    assert len(narrow) == len(prompts.frames("muted", "en"))
    for _ in narrow:
        overlay(room)
    assert not overlay.playing
    assert all(len(f) == FRAME // 2 for f in out)
    assert np.array_equal(np.concatenate(out), np.concatenate(narrow))
    # the same speech: its 8 kHz version has the energy of the 16 kHz one (within 1 dB)
    wide = np.concatenate(prompts.frames("muted", "en")).astype(np.float64)
    nb = np.concatenate(narrow).astype(np.float64)
    assert 10 * np.log10(np.mean(nb**2) / np.mean(wide**2)) == pytest.approx(0, abs=1)


@pytest.mark.parametrize("language", ["fr", "en"])
def test_every_menu_prompt_exists(language: str) -> None:
    for name in (
        "welcome",
        "enter_pin",
        "enter_host_pin",
        "wrong_code",
        "wrong_pin",
        "room_locked",
        "not_open",
        "joining",
        "goodbye",
        "muted",
        "unmuted",
    ):
        assert prompts.frames(name, language)
