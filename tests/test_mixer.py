from __future__ import annotations

from collections.abc import Hashable

import numpy as np
import pytest
from test_media_signals import amplitude_at, max_jump, tone

from gateway.mixer import FRAME_SIZE, RoomMixer, TalkerConfig

RATE = 16000


class ToneLeg:
    """A source playing a tone (or silence) and a sink recording what the leg hears."""

    def __init__(self, freq: float | None, amp: float = 6000.0) -> None:
        self.freq = freq
        self.amp = amp
        self.pos = 0
        self.heard: list[np.ndarray] = []

    def source(self, now: float) -> np.ndarray:
        n = self.pos
        self.pos += FRAME_SIZE
        if self.freq is None:
            return np.zeros(FRAME_SIZE, dtype=np.int16)
        t = (n + np.arange(FRAME_SIZE)) / RATE
        return (self.amp * np.sin(2 * np.pi * self.freq * t)).astype(np.int16)

    def sink(self, pcm: np.ndarray) -> None:
        assert pcm.dtype == np.int16 and pcm.shape == (FRAME_SIZE,)
        self.heard.append(pcm.copy())

    def output(self, skip: int = 0) -> np.ndarray:
        return np.concatenate(self.heard[skip:]) if self.heard else np.zeros(0, np.int16)


def _room(legs: dict[str, ToneLeg], **kw: object) -> RoomMixer:
    mixer = RoomMixer("room", **kw)  # type: ignore[arg-type]
    for leg_id, leg in legs.items():
        mixer.add_leg(leg_id, leg.source, leg.sink)
    return mixer


def _run(mixer: RoomMixer, ticks: int, start: int = 0) -> None:
    for i in range(start, start + ticks):
        mixer.tick(i * 0.02)


def test_each_leg_hears_the_others_but_not_itself() -> None:
    legs = {"a": ToneLeg(440), "b": ToneLeg(660), "c": ToneLeg(880)}
    mixer = _room(legs)
    _run(mixer, 50)
    freqs = {"a": 440, "b": 660, "c": 880}
    for leg_id, leg in legs.items():
        out = leg.output(skip=5)
        for other, f in freqs.items():
            level = amplitude_at(out, f, RATE)
            if other == leg_id:
                assert level < 30, (leg_id, other, level)  # own voice: absent
            else:
                assert level == pytest.approx(6000, rel=0.05), (leg_id, other, level)


def test_muted_and_spectator_legs_are_not_heard_but_still_hear() -> None:
    legs = {"a": ToneLeg(440), "b": ToneLeg(660), "c": ToneLeg(880)}
    mixer = _room(legs)
    mixer.set_muted("b", True)
    mixer.set_can_speak("c", False)
    _run(mixer, 40)
    a_out = legs["a"].output(skip=5)
    assert amplitude_at(a_out, 660, RATE) < 30
    assert amplitude_at(a_out, 880, RATE) < 30
    b_out = legs["b"].output(skip=5)
    assert amplitude_at(b_out, 440, RATE) == pytest.approx(6000, rel=0.05)
    assert amplitude_at(legs["c"].output(skip=5), 440, RATE) == pytest.approx(6000, rel=0.05)
    # unmuting brings b back (after the short fade)
    mixer.set_muted("b", False)
    _run(mixer, 40, start=40)
    assert amplitude_at(np.concatenate(legs["a"].heard[45:]), 660, RATE) > 5000


def test_one_leg_room_gets_silence_and_an_empty_room_ticks() -> None:
    alone = ToneLeg(440)
    mixer = _room({"a": alone})
    _run(mixer, 10)
    assert len(alone.heard) == 10
    assert not alone.output().any()
    empty = RoomMixer("empty")
    empty.tick(0.0)
    mixer.remove_leg("a")
    _run(mixer, 5, start=10)
    assert len(alone.heard) == 10  # a removed leg hears nothing more
    assert len(mixer) == 0


def test_join_and_leave_do_not_click_for_the_others() -> None:
    listener = ToneLeg(None)
    talker = ToneLeg(440, amp=12000)
    mixer = _room({"listener": listener, "talker": talker})
    _run(mixer, 10)
    late = ToneLeg(1000, amp=12000)
    mixer.add_leg("late", late.source, late.sink)  # joins mid-stream at full level
    _run(mixer, 20, start=10)
    mixer.remove_leg("late")
    _run(mixer, 10, start=30)
    mixer.remove_leg("talker")
    _run(mixer, 10, start=40)
    heard = listener.output()
    # the steepest a clean 440 Hz + 1 kHz mix at these levels can move per sample
    natural = 12000 * 2 * np.pi * (440 + 1000) / RATE
    assert max_jump(heard) < natural
    # and the joiner was really heard, then really gone
    assert amplitude_at(np.concatenate(listener.heard[15:30]), 1000, RATE) > 10000
    assert amplitude_at(np.concatenate(listener.heard[33:40]), 1000, RATE) < 100
    assert not np.concatenate(listener.heard[43:]).any()  # everyone else left: silence
    assert "late" not in mixer and mixer.leg_ids == ["listener"]


def test_a_joiner_hears_the_room_fade_in() -> None:
    talker = ToneLeg(440, amp=12000)
    mixer = _room({"talker": talker})
    _run(mixer, 5)
    late = ToneLeg(None)
    mixer.add_leg("late", late.source, late.sink)
    _run(mixer, 5, start=5)
    first = late.heard[0]
    assert abs(int(first[0])) < 200  # starts from (near) silence
    assert max_jump(late.output()) < 12000 * 2 * np.pi * 440 / RATE * 1.05


def test_limiter_keeps_loud_rooms_inside_int16_without_hard_clipping() -> None:
    legs = {f"l{i}": ToneLeg(300 + 50 * i, amp=30000) for i in range(6)}
    mixer = _room(legs)
    _run(mixer, 20)
    assert mixer.stats.limited_ticks > 0
    for leg in legs.values():
        out = leg.output(skip=3).astype(np.int32)
        assert out.max() <= 32767 and out.min() >= -32768
        # soft: the output does not sit flat at full scale like a hard clipper would
        assert np.mean(np.abs(out) >= 32700) < 0.01


def test_quiet_rooms_pass_unchanged() -> None:
    legs = {"a": ToneLeg(440, amp=5000), "b": ToneLeg(None)}
    mixer = _room(legs)
    _run(mixer, 10)
    expected = tone(440, FRAME_SIZE * 10, RATE, amp=5000)
    got = legs["b"].output()
    assert np.abs(got[FRAME_SIZE * 3 :].astype(int) - expected[FRAME_SIZE * 3 :]).max() <= 1
    assert mixer.stats.limited_ticks == 0


class Switchable(ToneLeg):
    def __init__(self) -> None:
        super().__init__(500, amp=3000)
        self.on = False

    def source(self, now: float) -> np.ndarray:
        frame = super().source(now)
        return frame if self.on else np.zeros_like(frame)


def test_talker_detection_has_hysteresis() -> None:
    events: list[tuple[Hashable, bool]] = []
    speaker = Switchable()
    other = ToneLeg(None)
    cfg = TalkerConfig(attack_dbfs=-36, attack_frames=2, release_dbfs=-45, hold_frames=10)
    mixer = RoomMixer(
        "r", on_talking=lambda leg, talking: events.append((leg, talking)), talker=cfg
    )
    mixer.add_leg("s", speaker.source, speaker.sink)
    mixer.add_leg("o", other.source, other.sink)
    _run(mixer, 5)
    assert events == [] and mixer.talking == frozenset()
    speaker.on = True
    mixer.tick(1.0)  # one loud frame (still fading in) is not enough
    assert mixer.talking == frozenset()
    _run(mixer, 3, start=51)
    assert events == [("s", True)] and mixer.talking == {"s"}
    speaker.on = False
    _run(mixer, 9, start=60)  # short pause: still talking
    assert mixer.talking == {"s"}
    speaker.on = True
    _run(mixer, 2, start=70)  # speech resumes: no new event
    speaker.on = False
    _run(mixer, 12, start=80)
    assert events == [("s", True), ("s", False)]
    assert mixer.talking == frozenset()
    assert mixer.levels()["o"] == -120.0


def test_muted_talker_stops_talking_and_removal_ends_talking() -> None:
    events: list[tuple[Hashable, bool]] = []
    speaker = ToneLeg(500, amp=3000)
    mixer = RoomMixer("r", on_talking=lambda leg, talking: events.append((leg, talking)))
    mixer.add_leg("s", speaker.source, speaker.sink)
    _run(mixer, 5)
    assert mixer.talking == {"s"}
    mixer.remove_leg("s")
    assert events == [("s", True), ("s", False)]


def test_broken_source_or_sink_does_not_stop_the_room() -> None:
    def bad_source(now: float) -> np.ndarray:
        raise RuntimeError("boom")

    def bad_sink(pcm: np.ndarray) -> None:
        raise RuntimeError("boom")

    good = ToneLeg(440)
    mixer = RoomMixer("r")
    mixer.add_leg("good", good.source, good.sink)
    mixer.add_leg("bad", bad_source, bad_sink)
    mixer.add_leg("short", lambda now: np.zeros(10, dtype=np.int16), lambda pcm: None)
    _run(mixer, 5)
    assert len(good.heard) == 5
    assert mixer.stats.source_errors == 10 and mixer.stats.sink_errors == 5


def test_legs_can_come_and_go_from_callbacks_and_rooms_grow() -> None:
    mixer = RoomMixer("r")
    legs = [ToneLeg(200 + 10 * i) for i in range(20)]
    added: list[int] = []

    def sink(pcm: np.ndarray) -> None:
        if len(added) < len(legs) - 1:
            i = len(added) + 1
            added.append(i)
            mixer.add_leg(i, legs[i].source, legs[i].sink)  # during a tick

    mixer.add_leg(0, legs[0].source, sink)
    _run(mixer, 25)
    assert len(mixer) == 20  # grew past the initial capacity
    with pytest.raises(ValueError):
        mixer.add_leg(3, legs[3].source, legs[3].sink)
    for i in range(0, 20, 2):
        mixer.remove_leg(i)
    _run(mixer, 5, start=25)
    assert sorted(mixer.leg_ids) == list(range(1, 20, 2))  # type: ignore[type-var]
    assert all(len(legs[i].heard) > 0 for i in range(1, 20, 2))


# -- silence gate and the shared frame -------------------------------------------------------


class SharedProbe(ToneLeg):
    """Also records which object it was given, to see who got the room's shared frame."""

    def __init__(self, freq: float | None, amp: float = 6000.0) -> None:
        super().__init__(freq, amp)
        self.objects: list[np.ndarray] = []  # kept alive, so identities cannot be reused

    def sink(self, pcm: np.ndarray) -> None:
        super().sink(pcm)
        self.objects.append(pcm)


def test_gate_keeps_near_silence_out_of_the_mix() -> None:
    from gateway.mixer import GateConfig

    legs = {"talker": ToneLeg(440), "hiss": ToneLeg(1500, amp=20.0), "ear": ToneLeg(None)}
    mixer = _room(legs, gate=GateConfig())
    _run(mixer, 50)
    heard = legs["ear"].output(skip=5)
    assert amplitude_at(heard, 440, RATE) > 5000
    assert amplitude_at(heard, 1500, RATE) < 1.0  # -64 dBFS hiss: gated out
    # without a gate the same hiss is mixed in
    legs2 = {"talker": ToneLeg(440), "hiss": ToneLeg(1500, amp=20.0), "ear": ToneLeg(None)}
    _run(_room(legs2), 50)
    assert amplitude_at(legs2["ear"].output(skip=5), 1500, RATE) > 10


def test_gate_opens_within_the_first_loud_frame_and_holds_over_pauses() -> None:
    from gateway.mixer import GateConfig

    class Bursts(ToneLeg):
        """Silent for 10 frames, then a tone; silent frames 30-39 (a pause); tone again."""

        def __init__(self) -> None:
            super().__init__(700, amp=8000.0)
            self.frame = 0

        def source(self, now: float) -> np.ndarray:
            pcm = super().source(now)
            self.frame += 1
            return pcm if (10 < self.frame <= 30 or self.frame > 40) else pcm * 0

    speaker, ear = Bursts(), ToneLeg(None)
    mixer = _room({"s": speaker, "e": ear}, gate=GateConfig(hang_frames=25), fade_frames=1)
    _run(mixer, 60)
    onset = ear.heard[10]  # the first loud frame: ramped in over that frame, not lost
    assert np.abs(onset[FRAME_SIZE // 2 :]).max() > 3000
    after_pause = ear.heard[40]  # the gate stayed open over the 200 ms pause: full level
    assert amplitude_at(after_pause, 700, RATE) > 7000


def test_legs_that_add_nothing_share_one_frame_and_talkers_get_their_own() -> None:
    from gateway.mixer import GateConfig

    talker = SharedProbe(440)
    quiet = [SharedProbe(None) for _ in range(3)]
    legs = {"t": talker, **{f"q{i}": q for i, q in enumerate(quiet)}}
    mixer = _room(legs, gate=GateConfig())
    _run(mixer, 20)
    for tick in range(5, 20):
        first = quiet[0].objects[tick]
        assert all(q.objects[tick] is first for q in quiet)  # one frame for every quiet leg
        assert talker.objects[tick] is not first
    assert mixer.shared_frame is not None
    assert amplitude_at(quiet[0].output(skip=5), 440, RATE) > 5000
    assert amplitude_at(talker.output(skip=5), 440, RATE) < 1.0  # never itself


def test_a_crowd_is_mixed_as_its_loudest_few() -> None:
    from gateway.mixer import GateConfig

    amps = {"a": 8000.0, "b": 6000.0, "c": 4000.0, "d": 1000.0, "e": 500.0}
    freqs = {"a": 400, "b": 600, "c": 800, "d": 1000, "e": 1200}
    legs: dict[str, ToneLeg] = {k: ToneLeg(freqs[k], amp=amps[k]) for k in amps}
    legs["ear"] = ToneLeg(None)
    mixer = _room(legs, gate=GateConfig(max_speakers=3))
    _run(mixer, 60)
    heard = legs["ear"].output(skip=20)
    for k in ("a", "b", "c"):
        assert amplitude_at(heard, freqs[k], RATE) > 0.8 * amps[k], k
    for k in ("d", "e"):
        assert amplitude_at(heard, freqs[k], RATE) < 1.0, k  # faded out of the mix
    # the quiet ones hear the same mix as the listener (one shared frame), the speakers not
    assert mixer.shared_frame is not None
    assert amplitude_at(legs["d"].output(skip=20), freqs["a"], RATE) > 0.8 * amps["a"]


def test_a_speaker_keeps_its_place_against_a_slightly_louder_newcomer() -> None:
    from gateway.mixer import GateConfig

    class Late(ToneLeg):
        def __init__(self, freq: float, amp: float, start: int) -> None:
            super().__init__(freq, amp)
            self.start, self.frame = start, 0

        def source(self, now: float) -> np.ndarray:
            self.frame += 1
            pcm = super().source(now)
            return pcm if self.frame > self.start else pcm * 0

    first, newcomer, ear = Late(500, 4000.0, 0), Late(900, 5000.0, 20), ToneLeg(None)
    mixer = _room({"f": first, "n": newcomer, "e": ear}, gate=GateConfig(max_speakers=1))
    _run(mixer, 60)
    heard = ear.output(skip=40)
    assert amplitude_at(heard, 500, RATE) > 3000  # 2 dB louder is not enough to take over
    assert amplitude_at(heard, 900, RATE) < 1.0


class NarrowLeg(ToneLeg):
    """A G.711 leg as the gateway wires it: 160 samples at 8 kHz each way."""

    def __init__(self, freq: float | None, amp: float = 6000.0, rate: int = 8000) -> None:
        super().__init__(freq, amp)
        self.rate = rate
        self.frame = rate // 50

    def source(self, now: float) -> np.ndarray:
        n = self.pos
        self.pos += self.frame
        if self.freq is None:
            return np.zeros(self.frame, dtype=np.int16)
        t = (n + np.arange(self.frame)) / self.rate
        return (self.amp * np.sin(2 * np.pi * self.freq * t)).astype(np.int16)

    def sink(self, pcm: np.ndarray) -> None:
        assert pcm.dtype == np.int16 and pcm.shape == (self.frame,), pcm.shape
        self.heard.append(pcm.copy())


def test_a_room_of_narrowband_legs_mixes_at_8_khz() -> None:
    legs = {"a": NarrowLeg(440), "b": NarrowLeg(1000), "c": NarrowLeg(None)}
    mixer = _room(legs)
    _run(mixer, 50)
    assert mixer.mix_rate == 8000
    c = legs["c"].output(skip=5)
    assert amplitude_at(c, 440, 8000) == pytest.approx(6000, rel=0.05)
    assert amplitude_at(c, 1000, 8000) == pytest.approx(6000, rel=0.05)
    a = legs["a"].output(skip=5)
    assert amplitude_at(a, 440, 8000) < 60  # N-1: not itself
    assert amplitude_at(a, 1000, 8000) == pytest.approx(6000, rel=0.05)
    assert max_jump(a) <= 6000 * 2 * np.pi * 1000 / 8000 * 1.1 + 2  # no clicks between frames


def test_narrowband_legs_of_a_wideband_room_are_resampled_each_way() -> None:
    """A 16 kHz leg joins a G.711 room: the room mixes at 16 kHz, the 8 kHz legs are
    resampled up and down in one batch, each side hears the other at its own rate; when the
    16 kHz leg leaves, the room goes back to 8 kHz."""
    legs: dict[str, ToneLeg] = {"a": NarrowLeg(440), "b": NarrowLeg(None)}
    mixer = _room(legs)
    _run(mixer, 10)
    assert mixer.mix_rate == 8000
    wide = ToneLeg(1000)
    mixer.add_leg("w", wide.source, wide.sink)
    _run(mixer, 50, start=10)
    assert mixer.mix_rate == 16000
    heard_by_wide = wide.output(skip=10)
    assert amplitude_at(heard_by_wide, 440, RATE) == pytest.approx(6000, rel=0.05)
    assert amplitude_at(heard_by_wide, 1000, RATE) < 60
    b = np.concatenate(legs["b"].heard[25:])  # after the 16 kHz leg faded in
    assert amplitude_at(b, 440, 8000) == pytest.approx(6000, rel=0.05)
    assert amplitude_at(b, 1000, 8000) == pytest.approx(6000, rel=0.05)
    assert max_jump(b) <= (6000 * 2 * np.pi * 440 + 6000 * 2 * np.pi * 1000) / 8000 * 1.1 + 2
    a = np.concatenate(legs["a"].heard[25:])
    assert amplitude_at(a, 440, 8000) < 60
    mixer.remove_leg("w")
    _run(mixer, 10, start=60)
    assert mixer.mix_rate == 8000
    assert amplitude_at(np.concatenate(legs["b"].heard[-5:]), 1000, 8000) < 60
