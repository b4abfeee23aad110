"""Room audio mixing: N-1 mixes for every leg of a room, once per 20 ms tick.

``RoomMixer`` is pure (no asyncio, no sockets, no clock): something calls
:meth:`RoomMixer.tick` every 20 ms (``gateway.media.transport.MixerClock`` does, for all
rooms of the process from one loop).  Legs speak PCM only: a *source* returns the leg's
next 20 ms as 320 int16 samples at 16 kHz, or as 160 samples at 8 kHz (a narrowband leg:
G.711), and its *sink* then takes the 20 ms the leg should hear at that same rate.  An
:class:`gateway.media.leg.AudioLeg` (via its transport endpoint), a WebRTC track adapter or
a prompt player can all be legs.

Every tick, vectorised over all legs of the room:

* the legs' frames are stacked into one ``(N, 320)`` float32 array, multiplied by each
  leg's contribution gain (0 for muted / spectator / leaving legs; ramped per sample when
  it changes, so joining, leaving, muting and unmuting fade over ``fade_frames`` frames);
* ``total = sum(rows)`` and each leg gets ``total - own row`` (N-1 mix);
* a limiter keeps every output inside int16 without hard clipping: a per-leg gain that
  drops at once to bring a too-loud frame's peak to a knee (0.7 of full scale) and
  recovers at 25 dB/s, plus a ``tanh`` soft clip above the knee for the onset;
* talker detection: per-leg mean-square level with hysteresis (attack threshold held for
  ``attack_frames``, release threshold held for ``hold_frames``), change events to a
  callback.

Narrowband rooms are mixed at 8 kHz: while every source of a room gives 8 kHz frames (a room
of G.711 room systems and phones), the whole tick runs on 160-sample frames and nothing is
resampled. Once a leg gives 16 kHz, the room mixes at 16 kHz and its 8 kHz legs are
resampled up and down all together (:class:`media.resample.RowResampler`, one matrix
product per direction per tick), with no per-leg resampler.

Python-level work per leg per tick is one source call, one row copy and one sink call.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from media.resample import RowResampler

logger = logging.getLogger(__name__)

Pcm = npt.NDArray[np.int16]
FrameSource = Callable[[float], Pcm]  # now -> 320 int16 samples at 16 kHz (or 160 at 8 kHz)
FrameSink = Callable[[Pcm], None]
TalkingCallback = Callable[[Hashable, bool], None]

SAMPLE_RATE = 16000
FRAME_SIZE = 320  # 20 ms at 16 kHz
NARROW_RATE = 8000
INT16_MAX = 32767.0


def _db_to_mean_square(dbfs: float) -> float:
    return (10.0 ** (dbfs / 20.0) * 32768.0) ** 2


@dataclass(frozen=True)
class TalkerConfig:
    attack_dbfs: float = -36.0  # level that starts "talking" ...
    attack_frames: int = 2  # ... when held this many frames (40 ms)
    release_dbfs: float = -45.0  # level below which "talking" may end ...
    hold_frames: int = 20  # ... after this many frames (400 ms)


@dataclass(frozen=True)
class GateConfig:
    """Silence gate: a leg whose frames are (near) silent adds nothing to the mix.

    It opens on the first frame above ``open_dbfs`` (ramped in over that one frame, so a word's
    onset is kept) and closes, fading over ``fade_frames``, after ``hang_frames`` frames in a
    row below ``close_dbfs`` (so pauses between words do not chop). Legs that add nothing hear
    the same mix, which lets a room encode it once for all of them (``shared_frame``). With
    ``max_speakers``, a crowd talking at once is mixed as its loudest few, as large bridges
    do: the rest fade out of the mix (and hear the common mix).
    """

    open_dbfs: float = -55.0
    close_dbfs: float = -60.0
    hang_frames: int = 25  # 500 ms
    #: At most this many legs are mixed at once: the loudest (a leg in the mix keeps its
    #: place until another is 6 dB louder than it, so speakers do not flicker); None: all.
    max_speakers: int | None = 4


@dataclass
class _Leg:
    leg_id: Hashable
    source: FrameSource
    sink: FrameSink
    index: int
    muted: bool
    can_speak: bool
    leaving: bool = False
    source_failed: bool = False


@dataclass
class MixerStats:
    ticks: int = 0
    limited_ticks: int = 0  # ticks where the soft limiter engaged
    source_errors: int = 0
    sink_errors: int = 0


class RoomMixer:
    """The N-1 mixer of one room.  Legs may be added and removed at any time."""

    def __init__(
        self,
        room_id: Hashable = "",
        *,
        on_talking: TalkingCallback | None = None,
        fade_frames: int = 2,
        talker: TalkerConfig | None = None,
        limiter_knee: float = 0.7,  # fraction of full scale where limiting starts
        limiter_release_db: float = 0.5,  # gain recovery per frame (25 dB/s)
        frame_size: int = FRAME_SIZE,
        gate: GateConfig | None = None,
    ) -> None:
        self.room_id = room_id
        self.on_talking = on_talking
        self.frame_size = frame_size
        self.stats = MixerStats()
        self._step = 1.0 / max(1, fade_frames)
        cfg = talker or TalkerConfig()
        self._talker = cfg
        self._attack_ms = _db_to_mean_square(cfg.attack_dbfs)
        self._release_ms = _db_to_mean_square(cfg.release_dbfs)
        self._knee = float(limiter_knee) * INT16_MAX
        self._headroom = INT16_MAX - self._knee
        self._release = float(10.0 ** (limiter_release_db / 20.0))
        self._ramps = {
            n: (np.arange(1, n + 1, dtype=np.float32) / n)[None, :]
            for n in (frame_size, frame_size // 2)
        }
        #: 8 kHz legs: their frames this tick, and the batch resamplers used while the room
        #: mixes at 16 kHz (rows are mixer slots)
        self._narrow_frame = frame_size // 2
        self._narrow_in = np.zeros((0, self._narrow_frame), dtype=np.float32)
        self._up = RowResampler(NARROW_RATE, SAMPLE_RATE, self._narrow_frame, rows=0)
        self._down = RowResampler(SAMPLE_RATE, NARROW_RATE, frame_size, rows=0)
        #: the rate the last tick was mixed at (8 kHz while every leg is narrowband)
        self.mix_rate = SAMPLE_RATE
        self._legs: dict[Hashable, _Leg] = {}
        self._by_index: list[_Leg | None] = []
        self._free: list[int] = []
        self._in_tick = False
        self._pending: list[_Leg] = []
        self._frames = np.zeros((0, frame_size), dtype=np.float32)
        self._in_gain = np.zeros(0, dtype=np.float32)  # contribution gain now
        self._in_target = np.zeros(0, dtype=np.float32)  # ... and where it is heading
        self._out_gain = np.zeros(0, dtype=np.float32)  # what the leg hears, fading in
        self._out_target = np.zeros(0, dtype=np.float32)
        self._above = np.zeros(0, dtype=np.int32)  # frames in a row above attack level
        self._below = np.zeros(0, dtype=np.int32)  # frames in a row below release level
        self._talking = np.zeros(0, dtype=np.bool_)
        self._levels = np.zeros(0, dtype=np.float32)  # mean square of the last frame
        self._lim_gain = np.zeros(0, dtype=np.float32)  # limiter gain per leg output
        self._gate_cfg = gate
        if gate is not None:
            self._gate_open_ms = _db_to_mean_square(gate.open_dbfs)
            self._gate_close_ms = _db_to_mean_square(gate.close_dbfs)
        self._gate = np.zeros(0, dtype=np.float32)  # silence gate gain (1 without a gate)
        self._quiet = np.zeros(0, dtype=np.int32)  # frames in a row below the close level
        self._smooth = np.zeros(0, dtype=np.float32)  # smoothed level, to rank speakers
        #: The frame every leg that adds nothing to the mix was given this tick (one object,
        #: so a sink can tell it is the room's common mix and encode it once), or None.
        self.shared_frame: Pcm | None = None
        #: some contribution or output gain may differ from its target (a fade to run)
        self._moving = False
        #: some leg's limiter gain is below 1 (recovering)
        self._limiting = False
        self._alloc(8)

    # -- membership ------------------------------------------------------------------------

    def _alloc(self, capacity: int) -> None:
        """Grow the per-leg arrays (rare: capacity doubles when full)."""
        old = len(self._by_index)

        def grown(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
            new = np.zeros((capacity, *a.shape[1:]), dtype=a.dtype)
            new[:old] = a
            return new

        self._frames = grown(self._frames)
        self._narrow_in = grown(self._narrow_in)
        self._up.grow(capacity)
        self._down.grow(capacity)
        self._in_gain = grown(self._in_gain)
        self._in_target = grown(self._in_target)
        self._out_gain = grown(self._out_gain)
        self._out_target = grown(self._out_target)
        self._above = grown(self._above)
        self._below = grown(self._below)
        self._talking = grown(self._talking)
        self._levels = grown(self._levels)
        self._lim_gain = grown(self._lim_gain)
        self._gate = grown(self._gate)
        self._quiet = grown(self._quiet)
        self._smooth = grown(self._smooth)
        self._by_index.extend([None] * (capacity - old))
        self._free.extend(range(capacity - 1, old - 1, -1))

    def add_leg(
        self,
        leg_id: Hashable,
        source: FrameSource,
        sink: FrameSink,
        *,
        muted: bool = False,
        can_speak: bool = True,
    ) -> None:
        """Start mixing a leg; it fades in (and starts hearing the room) over a few frames."""
        if leg_id in self._legs or (
            self._pending and any(p.leg_id == leg_id for p in self._pending)
        ):
            raise ValueError(f"leg {leg_id!r} is already in room {self.room_id!r}")
        leg = _Leg(leg_id, source, sink, -1, muted, can_speak)
        if self._in_tick:
            self._pending.append(leg)
        else:
            self._place(leg)

    def _place(self, leg: _Leg) -> None:
        if not self._free:
            self._alloc(len(self._by_index) * 2)
        i = self._free.pop()
        leg.index = i
        self._by_index[i] = leg
        self._legs[leg.leg_id] = leg
        self._frames[i] = 0.0
        self._narrow_in[i] = 0.0
        self._up.reset(i)
        self._down.reset(i)
        self._in_gain[i] = 0.0
        self._out_gain[i] = 0.0
        self._out_target[i] = 1.0
        self._above[i] = 0
        self._below[i] = 0
        self._talking[i] = False
        self._levels[i] = 0.0
        self._lim_gain[i] = 1.0
        self._gate[i] = 0.0 if self._gate_cfg is not None else 1.0
        self._quiet[i] = 0
        self._smooth[i] = 0.0
        self._update_target(leg)

    def remove_leg(self, leg_id: Hashable) -> None:
        """Stop mixing a leg: it stops hearing at once and fades out of the mix for others.

        Its source is still pulled for the fade (``fade_frames`` ticks); unknown ids are ignored.
        """
        for p in self._pending:
            if p.leg_id == leg_id:
                self._pending.remove(p)
                return
        leg = self._legs.get(leg_id)
        if leg is None or leg.leaving:
            return
        leg.leaving = True
        self._moving = True
        self._out_target[leg.index] = 0.0
        self._out_gain[leg.index] = 0.0
        self._update_target(leg)
        self._set_talking(leg, False)

    def set_muted(self, leg_id: Hashable, muted: bool) -> None:
        leg = self._legs[leg_id]
        leg.muted = muted
        self._update_target(leg)

    def set_can_speak(self, leg_id: Hashable, can_speak: bool) -> None:
        leg = self._legs[leg_id]
        leg.can_speak = can_speak
        self._update_target(leg)

    def _update_target(self, leg: _Leg) -> None:
        heard = not (leg.muted or leg.leaving or not leg.can_speak)
        self._in_target[leg.index] = 1.0 if heard else 0.0
        self._moving = True

    def _free_slot(self, leg: _Leg) -> None:
        i = leg.index
        self._by_index[i] = None
        del self._legs[leg.leg_id]
        self._frames[i] = 0.0
        self._narrow_in[i] = 0.0
        self._in_gain[i] = 0.0
        self._in_target[i] = 0.0
        self._out_gain[i] = 0.0
        self._out_target[i] = 0.0
        self._talking[i] = False
        self._lim_gain[i] = 1.0
        self._free.append(i)

    # -- queries ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return sum(1 for leg in self._legs.values() if not leg.leaving) + len(self._pending)

    def __contains__(self, leg_id: object) -> bool:
        leg = self._legs.get(leg_id)  # type: ignore[arg-type]
        return (leg is not None and not leg.leaving) or any(
            p.leg_id == leg_id for p in self._pending
        )

    @property
    def leg_ids(self) -> list[Hashable]:
        return [k for k, leg in self._legs.items() if not leg.leaving] + [
            p.leg_id for p in self._pending
        ]

    @property
    def talking(self) -> frozenset[Hashable]:
        return frozenset(
            leg.leg_id
            for leg in self._legs.values()
            if self._talking[leg.index] and not leg.leaving
        )

    def levels(self) -> dict[Hashable, float]:
        """Last frame's contributed level per leg in dBFS (-120 for silence)."""
        out: dict[Hashable, float] = {}
        for leg in self._legs.values():
            ms = float(self._levels[leg.index])
            out[leg.leg_id] = (
                10 * math.log10(ms / 32768.0**2) if ms > 1e-12 * 32768.0**2 else -120.0
            )
        return out

    # -- the tick --------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Pull one frame from every leg, mix, push every leg its N-1 mix."""
        if self._pending:
            pending, self._pending = self._pending, []
            for leg in pending:
                self._place(leg)
        legs = list(self._legs.values())
        if not legs:
            return
        self._in_tick = True
        try:
            self._mix(legs, now)
        finally:
            self._in_tick = False

    def _mix(self, legs: list[_Leg], now: float) -> None:
        self.stats.ticks += 1
        frames_all = self._frames
        narrow_in = self._narrow_in
        narrow_len = self._narrow_frame
        narrow: list[int] = []  # slots whose source gave 8 kHz this tick
        for leg in legs:
            i = leg.index
            try:
                frame = leg.source(now)
                if len(frame) == narrow_len:
                    narrow_in[i] = frame
                    narrow.append(i)
                else:
                    frames_all[i] = frame
            except Exception:
                frames_all[i] = 0.0
                self.stats.source_errors += 1
                if not leg.source_failed:
                    leg.source_failed = True
                    logger.exception("room %r: source of leg %r failed", self.room_id, leg.leg_id)
        hi = max(leg.index for leg in legs) + 1
        all_narrow = len(narrow) == len(legs)
        if all_narrow:  # a narrowband room: mix at 8 kHz, nothing resampled
            frames = narrow_in[:hi]
        else:
            frames = frames_all[:hi]
            if narrow:
                frames[narrow] = self._up.process(narrow_in[:hi])[narrow]
        n = frames.shape[1]
        self.mix_rate = SAMPLE_RATE * n // self.frame_size
        ramp = self._ramps[n]

        # contribution gains, ramped per sample while they move toward their targets
        g0 = self._in_gain[:hi]
        target = self._in_target[:hi]
        moving = self._moving
        if moving and not (g0 == target).all():
            g1 = np.clip(target, g0 - self._step, g0 + self._step)
        else:
            g1 = g0
        q0 = self._gate[:hi]
        q1 = q0 if self._gate_cfg is None else self._gate_step(frames, q0)
        if g1 is g0 and q1 is q0:
            coef = g0 * q0
            contrib = frames * coef[:, None]
            silent = coef == 0.0
        else:
            ramp_g = g0[:, None] + (g1 - g0)[:, None] * ramp
            ramp_q = q0[:, None] + (q1 - q0)[:, None] * ramp
            contrib = frames * (ramp_g * ramp_q)
            silent = ((g0 == 0.0) & (g1 == 0.0)) | ((q0 == 0.0) & (q1 == 0.0))
            g0[:] = g1
            q0[:] = q1

        total = contrib.sum(axis=0)
        out = total[None, :] - contrib

        # the level each leg contributes (for talker detection)
        levels = np.einsum("ij,ij->i", contrib, contrib) / n
        self._levels[:hi] = levels

        # fade each leg's output in when it joins
        o0 = self._out_gain[:hi]
        otarget = self._out_target[:hi]
        if moving and not (o0 == otarget).all():
            o1 = np.clip(otarget, o0 - self._step, o0 + self._step)
            out *= o0[:, None] + (o1 - o0)[:, None] * ramp
            o0[:] = o1

        # limiter: per-leg gain that drops at once to bring the frame's peak to the knee and
        # recovers slowly; a tanh soft clip above the knee catches what the ramp lets through
        lg = self._lim_gain[:hi]
        if self._limiting or float(np.abs(out).max()) > self._knee:
            self.stats.limited_ticks += 1
            peaks = np.abs(out).max(axis=1)
            desired = np.minimum(1.0, self._knee / np.maximum(peaks, 1.0))
            lg1 = np.minimum(desired, np.minimum(1.0, lg * self._release)).astype(np.float32)
            out *= lg[:, None] + (lg1 - lg)[:, None] * ramp
            lg[:] = lg1
            self._limiting = bool((lg1 < 1.0).any())
            mag = np.abs(out)
            if float(mag.max()) > self._knee:
                soft = self._knee + self._headroom * np.tanh((mag - self._knee) / self._headroom)
                out = np.where(mag > self._knee, np.copysign(soft, out), out)
        out16 = out.astype(np.int16)
        narrow_out = out16
        if narrow and not all_narrow:  # 8 kHz legs of a wideband room hear it at 8 kHz
            down = self._down.process(out)
            np.clip(down, -32768.0, 32767.0, out=down)
            narrow_out = down.astype(np.int16)

        # legs that added nothing and hear the room at full level all hear `total`: give them
        # one and the same frame (equal up to their limiter's state)
        # (browser legs encode it once; a narrowband room has none)
        shared: Pcm | None = None
        shared_ok = silent
        if self._gate_cfg is not None and not all_narrow:
            shared_ok = silent & (o0 == 1.0) & (otarget == 1.0)
            if int(shared_ok.sum()) > 1:
                shared = out16[int(np.flatnonzero(shared_ok)[0])]
                shared.flags.writeable = False  # many sinks read it: none may change it
        self.shared_frame = shared
        narrow_set = frozenset(narrow) if narrow_out is not out16 else frozenset()

        for leg in legs:
            if leg.leaving:
                if g0[leg.index] == 0.0:
                    self._free_slot(leg)
                continue
            try:
                i = leg.index
                if i in narrow_set:
                    leg.sink(narrow_out[i])
                    continue
                leg.sink(shared if shared is not None and shared_ok[i] else out16[i])
            except Exception:
                self.stats.sink_errors += 1
                logger.exception("room %r: sink of leg %r failed", self.room_id, leg.leg_id)

        if moving:
            self._moving = not ((g0 == target).all() and (o0 == otarget).all())
        self._detect_talkers(levels, hi)

    def _gate_step(
        self, frames: npt.NDArray[np.float32], q0: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.float32]:
        """The silence gate's gain at the end of this frame, per leg.

        Per-leg state machines on a room's few legs: plain Python over lists is several
        times cheaper here than a dozen numpy calls on 10-element arrays."""
        cfg = self._gate_cfg
        assert cfg is not None
        n = len(q0)
        raw = (np.einsum("ij,ij->i", frames, frames) / frames.shape[1]).tolist()
        gains = q0.tolist()
        quiet = self._quiet[:n].tolist()
        close_ms, open_ms, hang, step = (
            self._gate_close_ms,
            self._gate_open_ms,
            cfg.hang_frames,
            self._step,
        )
        new = list(gains)
        for i, r in enumerate(raw):
            quiet[i] = quiet[i] + 1 if r < close_ms else 0
            if r > open_ms:
                new[i] = 1.0
            elif quiet[i] >= hang:
                new[i] = max(gains[i] - step, 0.0)
        self._quiet[:n] = quiet
        cap = cfg.max_speakers
        if cap is not None:
            smooth = self._smooth[:n].tolist()
            targets = self._in_target[:n].tolist()
            wanted = []
            for i, r in enumerate(raw):
                smooth[i] = 0.8 * smooth[i] + 0.2 * r
                if new[i] > 0.0 and targets[i] > 0.0:
                    wanted.append(i)
            self._smooth[:n] = smooth
            if len(wanted) > cap:
                # a leg in the mix keeps its place until another is 6 dB (x4) louder
                wanted.sort(key=lambda i: smooth[i] * (4.0 if gains[i] > 0.0 else 1.0))
                for i in wanted[:-cap]:
                    new[i] = max(gains[i] - step, 0.0)
        if new == gains:
            return q0
        return np.array(new, dtype=np.float32)

    def _detect_talkers(self, levels: npt.NDArray[np.float32], hi: int) -> None:
        attack, release = self._attack_ms, self._release_ms
        attack_frames, hold_frames = self._talker.attack_frames, self._talker.hold_frames
        above = self._above[:hi].tolist()
        below = self._below[:hi].tolist()
        talking = self._talking[:hi].tolist()
        changes: list[tuple[int, bool]] = []
        for i, level in enumerate(levels.tolist()):
            above[i] = above[i] + 1 if level > attack else 0
            below[i] = below[i] + 1 if level < release else 0
            if talking[i]:
                if below[i] >= hold_frames:
                    changes.append((i, False))
            elif above[i] >= attack_frames:
                changes.append((i, True))
        self._above[:hi] = above
        self._below[:hi] = below
        for i, start in changes:
            leg = self._by_index[i]
            if leg is None or leg.leaving:
                continue
            self._set_talking(leg, start)

    def _set_talking(self, leg: _Leg, talking: bool) -> None:
        i = leg.index
        if bool(self._talking[i]) == talking:
            return
        self._talking[i] = talking
        if self.on_talking is not None:
            try:
                self.on_talking(leg.leg_id, talking)
            except Exception:
                logger.exception("room %r: talking callback failed", self.room_id)
