"""The asyncio side of room audio: UDP port pairs for RTP/RTCP and the mixer clock.

This is the only media module that touches asyncio or sockets.

* :class:`PortAllocator` hands out even RTP ports (RTCP = RTP + 1) from a range such as
  ``"20000-29999"``, picked at random (ports handed out in order are easy to guess for
  anyone who wants to inject or hijack media); :meth:`PortAllocator.open` binds both
  sockets, skipping pairs that are handed out already or that the OS refuses (in use by
  someone else), and :meth:`RtpEndpoint.close` gives the pair back.
* :class:`RtpEndpoint` is the non-blocking socket pair of one :class:`AudioLeg`; its
  ``pull_frame`` / ``push_frame`` are the source and sink to give a ``RoomMixer``. The
  sockets are not watched by the event loop: the allocator, ticked by the mixer clock
  before the rooms, reads every socket once per tick and hands each datagram straight to
  ``leg.on_rtp`` / ``leg.on_rtcp`` (no task, no callback per packet).
* :class:`MixerClock` is ONE loop for ALL rooms of the process: it ticks every 20 ms
  against absolute deadlines on ``loop.time()`` (no drift from ``sleep(0.02)``
  accumulation), skips ahead (and counts it) when it falls more than a few frames behind,
  and records lateness and work time for stats.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import time
from collections.abc import Callable, Iterator
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
        self._family = socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM)[0][0]
        self._endpoints: dict[int, RtpEndpoint] = {}
        self._ticks = 0

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

    def _bind(self, port: int) -> socket.socket | None:
        """A non-blocking UDP socket bound to ``port``; None when the OS refuses it."""
        sock = socket.socket(self._family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.bind((self.host, port))
        except OSError:
            sock.close()
            return None
        return sock

    async def open(self, leg: AudioLeg) -> RtpEndpoint:
        """Bind an RTP/RTCP socket pair feeding ``leg``; tries the next pair on bind failure."""
        for port in self.candidates():
            rtp = self._bind(port)
            if rtp is None:
                continue
            rtcp = self._bind(port + 1)
            if rtcp is None:
                rtp.close()
                continue
            self.take(port)
            endpoint = RtpEndpoint(leg, self, port, rtp, rtcp)
            self._endpoints[port] = endpoint
            return endpoint
        raise NoFreePorts(f"no free RTP port pair in {self.low}-{self.high}")

    def release(self, port: int) -> None:
        self._in_use.discard(port)
        self._endpoints.pop(port, None)

    @property
    def endpoints(self) -> list[RtpEndpoint]:
        return list(self._endpoints.values())

    def tick(self, now: float) -> None:
        """Read every open RTP socket (and every ``RTCP_POLL_TICKS``-th tick, every RTCP
        socket): each leg's datagrams go to its :class:`AudioLeg` before the rooms mix.

        The mixer clock calls this first on each tick (``MixerClock.add(ports)`` before
        any room). Reading a few hundred sockets in one loop costs a third of what the
        event loop's per-datagram callbacks cost (selector wake-ups, a handle and two
        calls per packet, see docs/decisions.md), and bounds the work a flood of datagrams
        can make: at most ``MAX_PER_TICK`` per socket and tick, the rest waits in (and
        overflows) the kernel's buffer."""
        self._ticks += 1
        rtcp_too = self._ticks % RTCP_POLL_TICKS == 0
        for endpoint in list(self._endpoints.values()):
            endpoint.poll(now, rtcp_too)


#: Datagrams read from one socket per tick at most (a 20 ms leg sends one; a 10 ms leg two).
MAX_PER_TICK = 32
#: RTCP comes every few seconds: its sockets are read every this many ticks (100 ms).
RTCP_POLL_TICKS = 5


# -- one leg's sockets ---------------------------------------------------------------------


class RtpEndpoint:
    """The two sockets of one leg.  Give ``pull_frame`` / ``push_frame`` to the mixer; the
    allocator's :meth:`PortAllocator.tick` (or :meth:`poll`) reads what arrived."""

    def __init__(
        self,
        leg: AudioLeg,
        allocator: PortAllocator | None,
        port: int,
        rtp: socket.socket,
        rtcp: socket.socket,
    ) -> None:
        self.leg = leg
        self.port = port
        self._allocator = allocator
        self._rtp: socket.socket | None = rtp
        self._rtcp: socket.socket | None = rtcp
        self._loop = asyncio.get_running_loop()
        self.send_errors = 0
        self.receive_errors = 0
        leg.wall_offset = time.time() - self._loop.time()

    @property
    def closed(self) -> bool:
        return self._rtp is None

    def poll(self, now: float, rtcp: bool = True) -> None:
        """Hand every datagram waiting on the RTP socket (and on the RTCP socket when
        ``rtcp``) to the leg, ``MAX_PER_TICK`` at most per socket."""
        sock = self._rtp
        if sock is None:
            return
        on_rtp = self.leg.on_rtp
        recv = sock.recvfrom
        for _ in range(MAX_PER_TICK):
            try:
                data, addr = recv(2048)
            except BlockingIOError:
                break
            except OSError as exc:  # ICMP errors reported on the socket, and the like
                self.receive_errors += 1
                logger.debug("RTP port %d: %s", self.port, exc)
                continue
            on_rtp(data, (addr[0], addr[1]), now)
            if self._rtp is None:
                return  # the datagram ended the call (RTCP BYE muxed on the port)
        if rtcp and self._rtcp is not None:
            on_rtcp = self.leg.on_rtcp
            recv = self._rtcp.recvfrom
            for _ in range(MAX_PER_TICK):
                try:
                    data, addr = recv(2048)
                except BlockingIOError:
                    break
                except OSError as exc:
                    self.receive_errors += 1
                    logger.debug("RTCP port %d: %s", self.port + 1, exc)
                    continue
                on_rtcp(data, (addr[0], addr[1]), now)
                if self._rtcp is None:
                    return

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
        sock = self._rtp
        if sock is None:
            return
        for data, addr in self.leg.push_frame(pcm, self._loop.time()):
            try:
                sock.sendto(data, addr)
            except OSError:  # a full send buffer drops the packet: it is real time
                self.send_errors += 1

    def _send(self, sock: socket.socket, data: bytes, addr: Addr) -> None:
        try:
            sock.sendto(data, addr)
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
        #: Ticks skipped since start (``skipped`` restarts with :meth:`reset_stats`).
        self.skipped_total = 0
        #: Told each tick's lateness in seconds (before any skip-ahead), e.g. a histogram's
        #: ``observe``; it must be cheap and must not raise.
        self.on_tick: Callable[[float], None] | None = None

    def add(self, room: Tickable, first: bool = False) -> None:
        """Tick ``room`` from the next tick on: after those added before it, or before
        all of them with ``first`` (what reads the sockets goes before what mixes)."""
        if room not in self._rooms:
            self._rooms = [room, *self._rooms] if first else [*self._rooms, room]

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
            late = lateness = now - deadline
            if late > self.max_late_frames * interval:
                behind = int(late // interval)
                self.skipped += behind
                self.skipped_total += behind
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
            on_tick = self.on_tick
            if on_tick is not None:
                try:
                    on_tick(max(lateness, 0.0))
                except Exception:
                    logger.exception("mixer tick observer failed")
