"""The live-room registry behind the participants routes: joins, waiting room, mute, removal."""

from __future__ import annotations

import numpy as np

from gateway import prompts
from gateway.conference import Conference, Member
from gateway.media.transport import MixerClock

FRAME = 320


def tone_source(freq: float) -> object:
    t = np.arange(FRAME) / 16000

    def source(now: float) -> np.ndarray:
        return (8000 * np.sin(2 * np.pi * freq * t)).astype(np.int16)

    return source


class Sink:
    def __init__(self) -> None:
        self.frames: list[np.ndarray] = []

    def __call__(self, pcm: np.ndarray) -> None:
        self.frames.append(pcm.copy())

    def level(self) -> float:
        return float(np.abs(self.frames[-1].astype(np.float64)).mean()) if self.frames else 0.0


def tick(conference: Conference, room_id: str, n: int = 5) -> None:
    """Run the clock's tickables (the room's mixer, and any prompt players) ``n`` times."""
    for i in range(n):
        for tickable in conference.clock.rooms:
            tickable.tick(i * 0.02)


async def test_members_join_and_leave_a_room_mixer() -> None:
    conference = Conference(MixerClock())
    a, b = Member("r1", "Alice", "sip"), Member("r1", "Bob", "phone")
    sink_a, sink_b = Sink(), Sink()
    conference.join(a, tone_source(440), sink_a)  # type: ignore[arg-type]
    conference.join(b, tone_source(700), sink_b)  # type: ignore[arg-type]
    assert [p.display_name for p in await conference.participants("r1")] == ["Alice", "Bob"]
    assert conference.clock.rooms == [conference.rooms["r1"].mixer]
    tick(conference, "r1")
    assert sink_a.level() > 1000 and sink_b.level() > 1000
    conference.leave(a)
    conference.leave(b)
    assert conference.rooms == {} and conference.clock.rooms == []
    assert await conference.participants("r1") == []


async def test_mute_admit_and_remove() -> None:
    conference = Conference(MixerClock())
    removed: list[str] = []
    speaker = Member("r1", "Speaker", "sip")
    waiting = Member("r1", "Late", "sip", state="waiting")
    speaker.remove = removed.append
    listener_sink, waiting_sink = Sink(), Sink()
    conference.join(speaker, tone_source(440), Sink())  # type: ignore[arg-type]
    conference.join(waiting, tone_source(700), waiting_sink)  # type: ignore[arg-type]
    listener = Member("r1", "Listener", "sip")
    conference.join(listener, tone_source(0), listener_sink)  # type: ignore[arg-type]
    assert len(conference.clock.rooms) == 2  # the mixer and the waiting message
    tick(conference, "r1", 100)
    # the waiting member hears the spoken message, and only that (not the room's 440 Hz tone)
    message = prompts.frames("waiting", conference.language)
    assert len(waiting_sink.frames) == 100
    assert all(np.array_equal(f, m) for f, m in zip(waiting_sink.frames, message, strict=False))
    assert np.abs(np.concatenate(waiting_sink.frames)).max() > 1000
    assert listener_sink.level() > 1000  # hears the speaker, not the waiting member

    muted = await conference.mute("r1", speaker.id, True)
    assert muted is not None and muted.muted
    tick(conference, "r1", 10)
    assert listener_sink.level() < 50

    before = len(waiting_sink.frames)
    admitted = await conference.admit("r1", waiting.id)
    assert admitted is not None and admitted.state == "joined"
    assert conference.clock.rooms == [conference.rooms["r1"].mixer]  # message stopped
    tick(conference, "r1", 10)
    assert len(waiting_sink.frames) == before + 10  # now from the mixer: it hears the room
    assert listener_sink.level() > 1000  # and is heard

    assert await conference.mute("r1", "nobody", True) is None
    assert await conference.admit("r2", waiting.id) is None
    assert await conference.remove("r1", speaker.id) is True
    assert removed == ["removed"]
    assert await conference.remove("r1", speaker.id) is False
    await conference.end_room("r1")
    assert conference.rooms == {}


async def test_a_caller_holding_the_call_is_not_heard() -> None:
    conference = Conference(MixerClock())
    holder, listener = Member("r1", "Holder", "sip"), Member("r1", "Listener", "sip")
    heard = Sink()
    conference.join(holder, tone_source(440), Sink())  # type: ignore[arg-type]
    conference.join(listener, tone_source(0), heard)  # type: ignore[arg-type]
    tick(conference, "r1", 10)
    assert heard.level() > 1000
    conference.set_on_hold(holder, True)  # music on hold is not played to the room
    tick(conference, "r1", 10)
    assert heard.level() < 50
    conference.set_on_hold(holder, False)
    tick(conference, "r1", 10)
    assert heard.level() > 1000


async def test_refuse_turns_only_a_waiting_member_away() -> None:
    conference = Conference(MixerClock())
    told: list[tuple[str, str]] = []
    inside = Member("r1", "Inside", "sip")
    waiting = Member("r1", "Late", "browser", state="waiting")
    inside.remove = lambda reason: told.append(("inside", reason))
    waiting.remove = lambda reason: told.append(("waiting", reason))
    conference.join(inside, tone_source(440), Sink())  # type: ignore[arg-type]
    conference.join(waiting, tone_source(700), Sink())  # type: ignore[arg-type]
    assert await conference.refuse("r1", inside.id) is False
    assert await conference.refuse("r1", "nobody") is None
    assert await conference.refuse("r1", waiting.id) is True
    assert told == [("waiting", "refused")]
    assert [p.display_name for p in await conference.participants("r1")] == ["Inside"]
    assert len(conference.clock.rooms) == 1  # its waiting message stopped
    assert prompts.frames("refused", "en") and prompts.frames("refused", "fr")


async def test_wait_for_host_lets_everyone_in_when_an_organiser_arrives() -> None:
    conference = Conference(MixerClock())
    states: list[tuple[str, str]] = []
    guest = Member("r1", "Guest", "phone")
    lobby = Member("r1", "Lobby", "browser", state="waiting")  # also in the waiting room
    guest.on_state = lambda s: states.append(("guest", s))
    lobby.on_state = lambda s: states.append(("lobby", s))
    conference.join(guest, tone_source(440), Sink(), wait_for_host=True)  # type: ignore[arg-type]
    conference.join(lobby, tone_source(500), Sink(), wait_for_host=True)  # type: ignore[arg-type]
    assert (guest.state, lobby.state) == ("waiting", "waiting")
    host = Member("r1", "Host", "sip", role="organiser")
    conference.join(host, tone_source(600), Sink(), wait_for_host=True)  # type: ignore[arg-type]
    assert host.state == "joined" and guest.state == "joined"
    assert lobby.state == "waiting"  # the waiting room still needs an admission
    assert states == [("guest", "joined")]
    late = Member("r1", "Late", "sip")
    conference.join(late, tone_source(700), Sink(), wait_for_host=True)  # type: ignore[arg-type]
    assert late.state == "joined"  # the host is in
    conference.leave(host)
    assert guest.state == "joined" and late.state == "joined"  # nobody is thrown out
    await conference.admit("r1", lobby.id)
    assert lobby.state == "joined"


async def test_events_in_order_and_a_late_joiner_notice() -> None:
    from datetime import timedelta

    conference = Conference(MixerClock())
    seen: list[tuple[str, str]] = []
    conference.on_event = lambda kind, room_id, p: seen.append((kind, p.display_name))
    first = Member("r1", "First", "sip")
    conference.join(first, tone_source(440), Sink())  # type: ignore[arg-type]
    await conference.mute("r1", first.id, True)
    await conference.mute("r1", first.id, True)  # no change, no event
    late = Member("r1", "Late", "browser")
    late.joined_at = conference.rooms["r1"].began + timedelta(minutes=6)
    conference.join(late, tone_source(500), Sink())  # type: ignore[arg-type]
    conference.leave(first)
    assert seen == [
        ("joined", "First"),
        ("muted", "First"),
        ("joined", "Late"),
        ("late_joiner", "Late"),
        ("left", "First"),
    ]
