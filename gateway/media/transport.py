"""The asyncio side of room audio: UDP port pairs for RTP/RTCP and the mixer clock.

This is the only media module that touches asyncio or sockets.

* :class:`PortAllocator` hands out even RTP ports (RTCP = RTP + 1) from a range such as
  ``"20000-29999"``, picked at random (ports handed out in order are easy to guess for
  anyone who wants to inject or hijack media); :meth:`PortAllocator.open` binds both
  sockets, skipping pairs that are handed out already or that the OS refuses (in use by
  someone else), and :meth:`RtpEndpoint.close` gives the pair back.
* :class:`RtpEndpoint` is the datagram protocol pair of one :class:`AudioLeg`: datagrams go
  straight into ``leg.on_rtp`` / ``leg.on_rtcp`` (no task per packet), and its
  ``pull_frame`` / ``push_frame`` are the source and sink to give a ``RoomMixer``.
* :class:`MixerClock` is ONE loop for ALL rooms of the process: it ticks every 20 ms
  against absolute deadlines on ``loop.time()`` (no drift from ``sleep(0.02)``
  accumulation), skips ahead (and counts it) when it falls more than a few frames behind,
  and records lateness and work time for stats.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from media.codecs import Pcm

from .leg import Addr, AudioLeg

logger = logging.getLogger(__name__)


# -- ports ---------------------------------------------------------------------------------


class NoFreePorts(RuntimeError):
    """Every RTP port pair of the range is handed out or refused by the OS."""


RANDOM_TRIES = 32


class PortAllocator:
    """Even/odd UDP port pairs from ``"LOW-HIGH"``, at random, never one handed out twice."""

    def __init__(
        self,
        port_range: str = "20000-29999",
        host: str = "0.0.0.0",
        rng: random.Random | None = None,
    ) -> None:
        low_s, _, high_s = port_range.partition("-")
        low, high = int(low_s), int(high_s or low_s)
        low += low % 2  # first even port
        if not (0 < low < high <= 65535):
            raise ValueError(f"bad RTP port range {port_range!r}")
        self.host = host
        self.low = low
        self.high = high  # last usable RTCP port
        self._in_use: set[int] = set()
        self._rng = rng or random.SystemRandom()

    @property
    def capacity(self) -> int:
        return (self.high - self.low + 1) // 2

    @property
    def in_use(self) -> frozenset[int]:
        return frozenset(self._in_use)

    def candidates(self) -> Iterator[int]:
        """Free even RTP ports in random order: a few random draws (cheap in a big, mostly
        free range), then every remaining free port, shuffled (a nearly full range)."""
        n = self.capacity
        rng = self._rng
        tried: set[int] = set()
        for _ in range(min(RANDOM_TRIES, n)):
            port = self.low + 2 * rng.randrange(n)
            if port in tried or port in self._in_use:
                continue
            tried.add(port)
            yield port
        rest = [
            port
            for port in range(self.low, self.low + 2 * n, 2)
            if port not in tried and port not in self._in_use
        ]
        rng.shuffle(rest)
        yield from (port for port in rest if port not in self._in_use)

    def take(self, port: int) -> None:
        self._in_use.add(port)

    def release(self, port: int) -> None:
        self._in_use.discard(port)

    async def open(self, leg: AudioLeg) -> RtpEndpoint:
        """Bind an RTP/RTCP socket pair feeding ``leg``; tries the next pair on bind failure."""
        loop = asyncio.get_running_loop()
        for port in self.candidates():
            endpoint = RtpEndpoint(leg, self, port)
            try:
                rtp_t, _ = await loop.create_datagram_endpoint(
                    functools.partial(_RtpProtocol, endpoint),
                    local_addr=(self.host, port),
                )
            except OSError:
                continue
            try:
                rtcp_t, _ = await loop.create_datagram_endpoint(
                    functools.partial(_RtcpProtocol, endpoint),
                    local_addr=(self.host, port + 1),
                )
            except OSError:
                rtp_t.close()
                continue
            self.take(port)
            endpoint._attach(rtp_t, rtcp_t)
            return endpoint
        raise NoFreePorts(f"no free RTP port pair in {self.low}-{self.high}")


# -- one leg's sockets ---------------------------------------------------------------------


class RtpEndpoint:
    """The two sockets of one leg.  Give ``pull_frame`` / ``push_frame`` to the mixer."""

    def __init__(self, leg: AudioLeg, allocator: PortAllocator | None, port: int) -> None:
        self.leg = leg
        self.port = port
        self._allocator = allocator
        self._rtp: asyncio.DatagramTransport | None = None
        self._rtcp: asyncio.DatagramTransport | None = None
        self._loop = asyncio.get_running_loop()
        self.send_errors = 0

    def _attach(self, rtp: asyncio.DatagramTransport, rtcp: asyncio.DatagramTransport) -> None:
        self._rtp = rtp
        self._rtcp = rtcp
        self.leg.wall_offset = time.time() - self._loop.time()

    @property
    def closed(self) -> bool:
        return self._rtp is None

    def pull_frame(self, now: float) -> Pcm:
        """Mixer source: the leg's next frame at 16 kHz; also sends RTCP when one is due."""
        frame = self.leg.pull_frame(now)
        self._poll_rtcp(now)
        return frame

    def pull_native(self, now: float) -> Pcm:
        """Mixer source: the leg's next frame at the codec's own rate (8 kHz for G.711: the
        room mixes at 8 kHz, or resamples its narrowband legs in one batch); also sends RTCP
        when one is due. :meth:`push_frame` takes either rate."""
        frame = self.leg.pull_native(now)
        self._poll_rtcp(now)
        return frame

    def _poll_rtcp(self, now: float) -> None:
        if self._rtcp is not None and self.leg.rtcp.due(now):
            for data, addr in self.leg.poll_rtcp(now):
                self._send(self._rtcp, data, addr)

    def push_frame(self, pcm: Pcm) -> None:
        """Mixer sink: encode and send the leg's N-1 mix."""
        if self._rtp is None:
            return
        for data, addr in self.leg.push_frame(pcm, self._loop.time()):
            self._send(self._rtp, data, addr)

    def _send(self, transport: asyncio.DatagramTransport, data: bytes, addr: Addr) -> None:
        try:
            transport.sendto(data, addr)
        except OSError:
            self.send_errors += 1

    def close(self, send_bye: bool = True) -> None:
        if self._rtp is None:
            return
        if send_bye and self._rtcp is not None:
            for data, addr in self.leg.bye():
                self._send(self._rtcp, data, addr)
        self._rtp.close()
        if self._rtcp is not None:
            self._rtcp.close()
        self._rtp = self._rtcp = None
        if self._allocator is not None:
            self._allocator.release(self.port)


class _RtpProtocol(asyncio.DatagramProtocol):
    def __init__(self, endpoint: RtpEndpoint) -> None:
        self._endpoint = endpoint
        self._loop = asyncio.get_running_loop()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self._endpoint.leg.on_rtp(data, (addr[0], addr[1]), self._loop.time())

    def error_received(self, exc: Exception) -> None:  # ICMP port unreachable etc.
        logger.debug("RTP port %d: %s", self._endpoint.port, exc)


class _RtcpProtocol(asyncio.DatagramProtocol):
    def __init__(self, endpoint: RtpEndpoint) -> None:
        self._endpoint = endpoint
        self._loop = asyncio.get_running_loop()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self._endpoint.leg.on_rtcp(data, (addr[0], addr[1]), self._loop.time())

    def error_received(self, exc: Exception) -> None:
        logger.debug("RTCP port %d: %s", self._endpoint.port + 1, exc)


# -- the clock -----------------------------------------------------------------------------


class Tickable(Protocol):
    def tick(self, now: float) -> None: ...


@dataclass(frozen=True)
class ClockStats:
    ticks: int
    skipped: int  # frames skipped because the clock fell more than max_late_frames behind
    late_p50_ms: float
    late_p99_ms: float
    late_max_ms: float
    work_p99_ms: float  # time spent ticking all rooms
    work_max_ms: float


class MixerClock:
    """One 20 ms loop for all rooms of the process.

    ``start()`` (from inside the running loop) creates the single task; ``await stop()``
    ends it.  Rooms are anything with ``tick(now)`` and may be added or removed at any time,
    also from within a tick.
    """

    def __init__(
        self, interval: float = 0.020, max_late_frames: int = 3, history: int = 3000
    ) -> None:
        self.interval = interval
        self.max_late_frames = max_late_frames
        self._rooms: list[Tickable] = []
        self._task: asyncio.Task[None] | None = None
        self._lateness = np.zeros(history, dtype=np.float64)
        self._work = np.zeros(history, dtype=np.float64)
        self._n = 0
        self.ticks = 0
        self.skipped = 0
        self.errors = 0

    def add(self, room: Tickable) -> None:
        if room not in self._rooms:
            self._rooms = [*self._rooms, room]

    def remove(self, room: Tickable) -> None:
        self._rooms = [r for r in self._rooms if r is not room]

    @property
    def rooms(self) -> list[Tickable]:
        return list(self._rooms)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        if self.running:
            return
        self._task = asyncio.get_running_loop().create_task(self._run(), name="mixer-clock")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    def reset_stats(self) -> None:
        self._n = 0
        self.ticks = self.skipped = 0

    def stats(self) -> ClockStats:
        n = min(self._n, len(self._lateness))
        if n == 0:
            return ClockStats(self.ticks, self.skipped, 0.0, 0.0, 0.0, 0.0, 0.0)
        late = self._lateness[:n] * 1000
        work = self._work[:n] * 1000
        return ClockStats(
            ticks=self.ticks,
            skipped=self.skipped,
            late_p50_ms=float(np.percentile(late, 50)),
            late_p99_ms=float(np.percentile(late, 99)),
            late_max_ms=float(late.max()),
            work_p99_ms=float(np.percentile(work, 99)),
            work_max_ms=float(work.max()),
        )

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.interval
        start = loop.time()
        k = 1
        while True:
            deadline = start + k * interval
            delay = deadline - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                await asyncio.sleep(0)  # let I/O callbacks run even when behind
            now = loop.time()
            late = now - deadline
            if late > self.max_late_frames * interval:
                behind = int(late // interval)
                self.skipped += behind
                k += behind
                late -= behind * interval
            for room in self._rooms:
                try:
                    room.tick(now)
                except Exception:
                    self.errors += 1
                    logger.exception("mixer tick failed for %r", room)
            done = loop.time()
            slot = self._n % len(self._lateness)
            self._lateness[slot] = late
            self._work[slot] = done - now
            self._n += 1
            self.ticks += 1
            k += 1
