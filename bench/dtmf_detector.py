"""What does in-band DTMF detection add to a leg's cost in the mixer?

Goal: ``dtmf.inband.InbandDetector.feed`` on a leg's 20 ms frame costs at most 10 % of
what the leg already costs per 20 ms tick.  Measured in the same run, one process, one
thread:

1. the reference, a leg's cost per tick: rooms of 10 real PCMU legs as in
   ``bench/mixer.py`` (``AudioLeg.on_rtp`` for one RTP packet per leg, then
   ``RoomMixer.tick``: ``pull_frame`` = jitter buffer, G.711 decode, PLC, 8 -> 16 kHz;
   the N-1 mix; ``push_frame`` = 16 -> 8 kHz, G.711 encode, RTP header), divided by the legs;
2. the detector alone, per leg per 20 ms frame (one detector per leg, 320-sample frames
   at 16 kHz as the mixer pulls them) on: the legs' speech-like signal as the leg delivers
   it (PCMU decoded, upsampled), real speech (espeak-ng, if installed), digital silence,
   line noise at -60 dBFS, a continuous DTMF tone and a digit sequence (60 ms on / 60 ms off);
3. the same rooms with a detector fed by every leg's source, against the rooms without
   (interleaved rounds), i.e. the increase of the whole tick.

Every figure is the median of several rounds (the machine is shared and noisy).

Run: ``python bench/dtmf_detector.py`` (about 25 s; ``--rooms 5`` for a small, cache-friendly run).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import gc  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import struct  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import wave  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import numpy.typing as npt  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from dtmf.inband import COLUMNS, KEYPAD, ROWS, InbandDetector  # noqa: E402
from gateway.media import AudioLeg, LegConfig  # noqa: E402
from gateway.mixer import RoomMixer  # noqa: E402
from media.codecs import get_codec  # noqa: E402
from media.resample import Resampler  # noqa: E402

Pcm = npt.NDArray[np.int16]
LEGS_PER_ROOM = 10
TICK = 0.020
RATE = 16000
FRAME = 320
GOAL = 0.10
RTP = struct.Struct("!BBHII")
PEER = ("192.0.2.1", 40000)


# -- signals -------------------------------------------------------------------------------


def voice_pcm(seed: int, frames: int = 50) -> Pcm:
    """A speech-ish signal at 8 kHz (as bench/mixer.py: harmonics plus noise, moving level)."""
    rng = np.random.default_rng(seed)
    n = 160 * frames
    t = np.arange(n) / 8000
    f0 = rng.uniform(100, 250)
    x = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6)) / k for k in range(1, 6))
    x = x * (3000 + 2500 * np.sin(2 * np.pi * rng.uniform(0.5, 3) * t)) + rng.normal(0, 300, n)
    return np.clip(x, -32768, 32767).astype(np.int16)


def voice_payloads(seed: int) -> list[bytes]:
    pcm = voice_pcm(seed)
    enc = get_codec("PCMU").new_encoder()
    return [enc.encode(pcm[i : i + 160]) for i in range(0, len(pcm), 160)]


def as_leg_delivers(pcm8k: Pcm) -> Pcm:
    """8 kHz PCM through PCMU and the leg's 8 -> 16 kHz resampler."""
    codec = get_codec("PCMU")
    enc, dec = codec.new_encoder(), codec.new_decoder()
    up = Resampler(8000, RATE)
    n = len(pcm8k) // 160 * 160
    return np.concatenate(
        [up.process(dec.decode(enc.encode(pcm8k[i : i + 160]))) for i in range(0, n, 160)]
    )


def frames_of(x: Pcm) -> list[Pcm]:
    return [x[i : i + FRAME].copy() for i in range(0, len(x) - FRAME + 1, FRAME)]


def dtmf_tone(digit: str, ms: float, level: float = 8000.0) -> npt.NDArray[np.float64]:
    r = next(i for i, keys in enumerate(KEYPAD) if digit in keys)
    fr, fc = ROWS[r], COLUMNS[KEYPAD[r].index(digit)]
    t = np.arange(round(RATE * ms / 1000)) / RATE
    return level * (np.sin(2 * np.pi * fr * t) + np.sin(2 * np.pi * fc * t + 1.0))


def espeak_speech() -> Pcm | None:
    espeak, sox = shutil.which("espeak-ng"), shutil.which("sox")
    if not (espeak and sox):
        return None
    text = (
        "Welcome to the conference. Please enter your meeting number followed by the pound "
        "key. One two three four five six seven eight nine zero. Could you please repeat "
        "that? The line is breaking up. Good morning everybody, let us start with the "
        "quarterly figures for the third quarter."
    )
    with tempfile.TemporaryDirectory() as tmp:
        raw, out = Path(tmp) / "raw.wav", Path(tmp) / "out.wav"
        subprocess.run([espeak, "-v", "en-us", "-w", str(raw), text], check=True)
        subprocess.run(
            [sox, str(raw), "-r", str(RATE), "-c", "1", "-b", "16", str(out)], check=True
        )
        with wave.open(str(out), "rb") as w:
            x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)
    # only the talking frames (espeak leaves pauses; silence is measured on its own)
    f = frames_of(x)
    loud = [fr for fr in f if float(np.mean(fr.astype(np.float32) ** 2)) > 300.0**2]
    return np.concatenate(loud)


# -- the reference: real legs in RoomMixer rooms ----------------------------------------------


class Rooms:
    """Rooms of PCMU legs, one RTP packet per leg per tick, optionally with a detector each."""

    def __init__(self, rooms: int, detect: bool | None, seed: int = 0) -> None:
        """``detect``: True = a detector per leg, None = the same wrapper without one."""
        rng = random.Random(seed)
        voices = [voice_payloads(s) for s in range(LEGS_PER_ROOM)]
        self.feeds: list[tuple[AudioLeg, int, list[bytes]]] = []
        self.mixers: list[RoomMixer] = []
        self.digits = 0
        for r in range(rooms):
            mixer = RoomMixer(f"room{r}")
            for i in range(LEGS_PER_ROOM):
                leg = AudioLeg(LegConfig(codec="PCMU", payload_type=0, remote_addr=PEER), rng=rng)
                source: Callable[[float], Pcm] = leg.pull_frame
                if detect:
                    source = self._detecting(leg.pull_frame, InbandDetector(RATE))
                elif detect is None:
                    source = self._wrapped(leg.pull_frame)
                mixer.add_leg(i, source, leg.push_frame)  # type: ignore[arg-type]
                self.feeds.append((leg, r * LEGS_PER_ROOM + i + 1, voices[i]))
            self.mixers.append(mixer)
        self.k = 0
        self.now = 0.0

    def _detecting(
        self, pull: Callable[[float], Pcm], det: InbandDetector
    ) -> Callable[[float], Pcm]:
        def source(now: float) -> Pcm:
            frame = pull(now)
            if det.feed(frame, now):
                self.digits += 1
            return frame

        return source

    def _wrapped(self, pull: Callable[[float], Pcm]) -> Callable[[float], Pcm]:
        def source(now: float) -> Pcm:
            frame = pull(now)
            if not frame.size:
                self.digits += 1
            return frame

        return source

    @property
    def legs(self) -> int:
        return len(self.feeds)

    def tick(self) -> None:
        k = self.k
        self.k += 1
        now = self.now
        self.now += TICK
        seq, ts, slot = k & 0xFFFF, (k * 160) & 0xFFFFFFFF, k % 50
        for leg, ssrc, payloads in self.feeds:
            leg.on_rtp(RTP.pack(0x80, 0, seq, ts, ssrc) + payloads[slot], PEER, now)
        for mixer in self.mixers:
            mixer.tick(now)

    def time_ticks(self, ticks: int) -> float:
        """Seconds per leg per tick, over ``ticks`` back-to-back ticks."""
        t0 = time.perf_counter()
        for _ in range(ticks):
            self.tick()
        return (time.perf_counter() - t0) / ticks / self.legs


def detector_cost(frames: list[Pcm], legs: int, rounds: int) -> float:
    """Median over rounds of seconds per ``feed`` of one 20 ms frame (one detector per leg)."""
    results = []
    for _ in range(rounds):
        dets = [InbandDetector(RATE) for _ in range(legs)]
        feeds = [d.feed for d in dets]
        now = 0.0
        t0 = time.perf_counter()
        for frame in frames:
            for feed in feeds:
                feed(frame, now)
            now += TICK
        results.append((time.perf_counter() - t0) / (len(frames) * legs))
    return statistics.median(results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rooms", type=int, default=30, help="rooms of 10 legs")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--ticks", type=int, default=100, help="ticks per round")
    args = parser.parse_args()
    started = time.perf_counter()
    gc.freeze()
    print(
        f"python {sys.version.split()[0]}, numpy {np.__version__}; "
        f"{args.rooms} rooms of {LEGS_PER_ROOM} PCMU legs, 20 ms frames at 16 kHz, "
        f"median of {args.rounds} rounds"
    )

    # 1 + 3: the legs alone and with a detector each, interleaved rounds
    plain, wrapped = Rooms(args.rooms, False), Rooms(args.rooms, None)
    detecting = Rooms(args.rooms, True)
    for rooms in (plain, wrapped, detecting):
        rooms.time_ticks(20)  # warm-up: jitter buffers fill
    leg_runs, wrap_runs, with_runs = [], [], []
    for _ in range(args.rounds):
        leg_runs.append(plain.time_ticks(args.ticks))
        wrap_runs.append(wrapped.time_ticks(args.ticks))
        with_runs.append(detecting.time_ticks(args.ticks))
    leg = statistics.median(leg_runs)
    leg_wrap = statistics.median(wrap_runs)
    leg_with = statistics.median(with_runs)
    legs = plain.legs
    print(f"  leg in the mixer (on_rtp + pull + mix + push): {leg * 1e6:6.2f} us per tick")

    # 2: the detector alone on several signals
    rng = np.random.default_rng(7)
    voice = np.concatenate([as_leg_delivers(voice_pcm(s)) for s in range(LEGS_PER_ROOM)])
    seq = np.concatenate(
        [np.concatenate((dtmf_tone(d, 60), np.zeros(960))) for d in "1234567890*#"]
    )
    signals: dict[str, Pcm] = {
        "speech-like (leg signal)": voice,
        "silence (digital zero)": np.zeros(RATE * 2, dtype=np.int16),
        "line noise -60 dBFS": rng.normal(0, 33, RATE * 2).astype(np.int16),
        "DTMF tone, held": dtmf_tone("5", 2000).astype(np.int16),
        "DTMF 60 on / 60 off": seq.astype(np.int16),
    }
    speech = espeak_speech()
    if speech is not None:
        signals["speech (espeak-ng, talking)"] = speech
    costs: dict[str, float] = {}
    for name, x in signals.items():
        frames = frames_of(x)[:100]
        costs[name] = detector_cost(frames, legs, args.rounds)
        print(
            f"  detector, {name:30s} {costs[name] * 1e6:6.2f} us per frame  "
            f"= {costs[name] / leg * 100:5.1f} % of a leg"
        )
    increase = leg_with / leg - 1.0
    print(
        f"  legs with a detector each: {leg_with * 1e6:6.2f} us per tick, "
        f"+{increase * 100:.1f} % over {leg * 1e6:.2f} us (digits found: {detecting.digits}); "
        f"of which the Python wrapper around the source alone: "
        f"+{(leg_wrap / leg - 1.0) * 100:.1f} %"
    )
    talk = [k for k in costs if k.startswith(("speech", "silence", "line"))]
    worst = max(talk, key=costs.__getitem__)
    ok = costs[worst] <= GOAL * leg
    print(
        f"SUMMARY: leg {leg * 1e6:.2f} us/tick; detector {costs['speech-like (leg signal)'] * 1e6:.2f} us "
        f"on speech-like, {costs['silence (digital zero)'] * 1e6:.2f} us on silence, "
        f"{costs['DTMF tone, held'] * 1e6:.2f} us on a held tone; worst non-DTMF "
        f"({worst}) {costs[worst] / leg * 100:.1f} % of a leg -> 10 % goal "
        f"{'met' if ok else 'NOT met'}; in the mixer +{increase * 100:.1f} %; "
        f"took {time.perf_counter() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
