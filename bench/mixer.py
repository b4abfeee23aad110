"""How many G.711 legs can one core mix in real time?

Rooms of 10 PCMU legs.  Every 20 ms tick, for every leg: one RTP packet arrives
(``AudioLeg.on_rtp``: parse, latch, RTCP receiver stats, jitter buffer), then every room's
``RoomMixer.tick`` pulls each leg's frame (jitter buffer -> G.711 decode -> PLC ->
8->16 kHz resample), mixes N-1 for everyone (limiter, talker detection), and pushes each
leg's mix back (16->8 kHz resample -> G.711 encode -> RTP packetize).  No sockets: the
outgoing datagrams are dropped.

1. calibration: the per-tick work for a growing number of rooms, back to back;
2. real time: the real ``MixerClock`` (asyncio, absolute 20 ms deadlines) runs the rooms
   for a few seconds at a time, raising the room count until the p99 tick lateness passes
   5 ms (or a tick is skipped);
   the p99 work per tick must also fit in the 20 ms (otherwise lateness would only grow
   in a longer run);
3. beside it, in the same run, the cost of the bare numpy additions for the same frames
   (``frames.sum(axis=0)`` over one ``(10, 320)`` array per room per tick).

Run: ``python bench/mixer.py`` (about a minute; single process, single thread).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import asyncio  # noqa: E402
import gc  # noqa: E402
import random  # noqa: E402
import struct  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gateway.media import AudioLeg, LegConfig  # noqa: E402
from gateway.media.transport import MixerClock  # noqa: E402
from gateway.mixer import RoomMixer  # noqa: E402
from media.codecs import get_codec  # noqa: E402

LEGS_PER_ROOM = 10
TICK = 0.020
BUDGET_P99_LATE_MS = 5.0
RTP = struct.Struct("!BBHII")
PEER = ("192.0.2.1", 40000)


def voice_payloads(seed: int, frames: int = 50) -> list[bytes]:
    """PCMU payloads of a speech-ish signal (a few harmonics plus noise, varying level)."""
    rng = np.random.default_rng(seed)
    n = 160 * frames
    t = np.arange(n) / 8000
    f0 = rng.uniform(100, 250)
    x = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6)) / k for k in range(1, 6))
    x = x * (3000 + 2500 * np.sin(2 * np.pi * rng.uniform(0.5, 3) * t)) + rng.normal(0, 300, n)
    pcm = np.clip(x, -32768, 32767).astype(np.int16)
    enc = get_codec("PCMU").new_encoder()
    return [enc.encode(pcm[i : i + 160]) for i in range(0, n, 160)]


class Network:
    """Delivers one RTP packet per leg per tick (runs first in every tick)."""

    def __init__(self) -> None:
        self.legs: list[tuple[AudioLeg, int, list[bytes]]] = []
        self.k = 0

    def add(self, leg: AudioLeg, ssrc: int, payloads: list[bytes]) -> None:
        self.legs.append((leg, ssrc, payloads))

    def tick(self, now: float) -> None:
        k = self.k
        self.k += 1
        seq = k & 0xFFFF
        ts = (k * 160) & 0xFFFFFFFF
        slot = k % 50
        for leg, ssrc, payloads in self.legs:
            leg.on_rtp(RTP.pack(0x80, 0, seq, ts, ssrc) + payloads[slot], PEER, now)


class Rooms:
    """The rooms under test, plus the network feeding them, as one clock client."""

    def __init__(self) -> None:
        self.network = Network()
        self.mixers: list[RoomMixer] = []
        self.voices = [voice_payloads(seed) for seed in range(LEGS_PER_ROOM)]
        self.sent = 0

    def grow(self, rooms: int) -> None:
        rng = random.Random(len(self.mixers))
        while len(self.mixers) < rooms:
            r = len(self.mixers)
            mixer = RoomMixer(f"room{r}")
            for i in range(LEGS_PER_ROOM):
                ssrc = r * LEGS_PER_ROOM + i + 1
                leg = AudioLeg(LegConfig(codec="PCMU", payload_type=0, remote_addr=PEER), rng=rng)
                mixer.add_leg(i, leg.pull_native, leg.push_frame)  # type: ignore[arg-type]
                self.network.add(leg, ssrc, self.voices[i])
            self.mixers.append(mixer)

    @property
    def legs(self) -> int:
        return len(self.mixers) * LEGS_PER_ROOM

    def tick(self, now: float) -> None:
        self.network.tick(now)
        for mixer in self.mixers:
            mixer.tick(now)


def bare_sum_cost(rooms: int, ticks: int = 200) -> float:
    """Seconds per tick for just ``frames.sum(axis=0)`` over one (10, 320) array per room."""
    rng = np.random.default_rng(0)
    arrays = [
        rng.integers(-8000, 8000, (LEGS_PER_ROOM, 320)).astype(np.float32) for _ in range(rooms)
    ]
    start = time.perf_counter()
    for _ in range(ticks):
        for a in arrays:
            a.sum(axis=0)
    return (time.perf_counter() - start) / ticks


def calibrate(rooms: Rooms, max_rooms: int) -> list[tuple[int, float, float]]:
    """Back-to-back per-tick work (mean, p90) for a growing number of rooms."""
    results = []
    now = 0.0
    step = 5
    for r in range(step, max_rooms + 1, step):
        rooms.grow(r)
        for _ in range(10):  # warm-up (jitter buffers fill)
            rooms.tick(now)
            now += TICK
        times = []
        for _ in range(40):
            t0 = time.perf_counter()
            rooms.tick(now)
            times.append(time.perf_counter() - t0)
            now += TICK
        mean, p90 = float(np.mean(times)), float(np.percentile(times, 90))
        results.append((r, mean, p90))
        print(
            f"  calibrate: {r * LEGS_PER_ROOM:5d} legs  work/tick mean {mean * 1e3:6.2f} ms"
            f"  p90 {p90 * 1e3:6.2f} ms"
        )
        if p90 > 1.1 * TICK:
            break
    return results


async def realtime(rooms: Rooms, seconds: float) -> tuple[float, float, float, float, int]:
    clock = MixerClock(interval=TICK, max_late_frames=3)
    clock.add(rooms)
    clock.start()
    await asyncio.sleep(0.3)  # warm-up
    clock.reset_stats()
    await asyncio.sleep(seconds)
    await clock.stop()
    s = clock.stats()
    return s.late_p50_ms, s.late_p99_ms, s.late_max_ms, s.work_p99_ms, s.skipped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per real-time trial")
    parser.add_argument("--max-rooms", type=int, default=150)
    args = parser.parse_args()
    started = time.perf_counter()
    gc.freeze()

    print(
        f"python {sys.version.split()[0]}, numpy {np.__version__}; "
        f"rooms of {LEGS_PER_ROOM} PCMU legs, 20 ms ticks"
    )
    calib = Rooms()
    results = calibrate(calib, args.max_rooms)
    # estimate the capacity where mean work fills 80 % of the tick
    per_room = np.median([mean / r for r, mean, _ in results])
    estimate = max(1, int(0.8 * TICK / per_room))
    print(
        f"  per-leg work ~{per_room / LEGS_PER_ROOM * 1e6:.1f} us/tick -> "
        f"estimate ~{estimate * LEGS_PER_ROOM} legs"
    )
    del calib
    gc.collect()

    rooms = Rooms()
    best: tuple[int, tuple[float, float, float, float, int]] | None = None
    r = max(1, int(estimate * 0.85))
    step = max(1, estimate // 10)
    failures = 0
    while time.perf_counter() - started < 150 and failures < 4:
        rooms.grow(r)
        res = asyncio.run(realtime(rooms, args.seconds))
        p50, p99, worst, work99, skipped = res
        # real time: p99 lateness within 5 ms, nothing skipped, and the p99 tick's work fits
        # in the 20 ms budget (else lateness only grows, given a longer run)
        ok = p99 <= BUDGET_P99_LATE_MS and skipped == 0 and work99 <= TICK * 1e3
        print(
            f"  real time: {rooms.legs:5d} legs  lateness p50 {p50:5.2f} p99 {p99:6.2f} "
            f"max {worst:6.2f} ms  work p99 {work99:6.2f} ms  skipped {skipped:3d}  "
            f"{'ok' if ok else 'over budget'}"
        )
        if ok:
            best = (r, res)
            r += step
        else:
            failures += 1
            if best is not None:
                break
            # start was too ambitious: smaller rooms count (needs a fresh set of rooms)
            r = max(1, int(r * 0.8))
            rooms = Rooms()
    if best is None:
        print("SUMMARY: could not meet p99 lateness <= 5 ms at any size tried")
        return
    r, (p50, p99, worst, work99, skipped) = best
    legs = r * LEGS_PER_ROOM

    # the full work per tick at that size, and the bare numpy additions, same process
    rooms_at = Rooms()
    rooms_at.grow(r)
    now = 0.0
    for _ in range(10):
        rooms_at.tick(now)
        now += TICK
    t0 = time.perf_counter()
    ticks = 100
    for _ in range(ticks):
        rooms_at.tick(now)
        now += TICK
    full = (time.perf_counter() - t0) / ticks
    bare = bare_sum_cost(r)
    print()
    print(
        f"legs supported: {legs} ({r} rooms of {LEGS_PER_ROOM}) with p99 lateness "
        f"{p99:.2f} ms (max {worst:.2f} ms), p99 work {work99:.2f} ms per 20 ms tick, "
        "no skipped ticks"
    )
    print(
        f"full work per tick at {legs} legs: {full * 1e3:.2f} ms "
        f"({full / legs * 1e6:.1f} us per leg)"
    )
    print(
        f"bare numpy additions for the same frames: {bare * 1e3:.3f} ms per tick "
        f"({bare / legs * 1e6:.2f} us per leg); full pipeline / bare sums = {full / bare:.0f}x"
    )
    print(
        f"SUMMARY: {legs} G.711 legs per core in real time (p99 lateness {p99:.2f} ms <= 5 ms); "
        f"full tick {full * 1e3:.2f} ms vs bare numpy sums {bare * 1e3:.3f} ms "
        f"(ratio {full / bare:.0f}x); took {time.perf_counter() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
