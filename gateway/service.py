"""Running the process as a service: the SIGTERM drain and what ``/api/health?detail=1`` tells.

:func:`serve` runs the aiohttp application with a runner of its own (not ``web.run_app``,
whose signal handling stops at once): the first SIGTERM (or SIGINT) starts a drain, a
second ends at once. During a drain (:func:`drain`) new SIP calls get ``503`` with
``Retry-After``, browsers are told and new ones are turned away, ``/api/health`` says
``draining``, and live calls go on for up to ``GATEWAY_DRAIN_SECONDS``; the SIP endpoint keeps
answering BYE, ACK and re-INVITE. When every call is gone or the time is up, the calls left
hear that the conference has ended and get a BYE; then the application is cleaned up (its
``cleanup_ctx`` stops SIP, media and the database) and :func:`serve` returns.

:class:`LatenessWindow` keeps the mixer clock's tick lateness over the last minute (the
clock's own statistics restart with every ``stats:`` line).
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable

import numpy as np
from aiohttp import web

from api.health import ProcessDetail, ServiceState
from api.schemas import HealthMixer, HealthTransport
from gateway.browser_calls import BrowserCalls
from gateway.sip_calls import SipCalls

__all__ = [
    "DRAIN_RETRY_AFTER",
    "ENDING_GRACE",
    "Draining",
    "LatenessWindow",
    "drain",
    "drain_target",
    "process_detail",
    "serve",
]

logger = logging.getLogger(__name__)

#: ``Retry-After`` (seconds) of the 503 a new call gets while this process drains.
DRAIN_RETRY_AFTER = 10
#: How long the calls left at the end of a drain may take to hear the notice and be hung up.
ENDING_GRACE = 8.0
_POLL = 0.1


class Draining:
    """What a drain acts on: the state the API reads, and the gateway's call handlers.

    ``live()`` counts the live calls (SIP and browsers); ``refuse()`` makes the handlers take
    no new ones; ``end_all()`` ends each live call with the spoken (or written) notice."""

    def __init__(
        self,
        state: ServiceState,
        *,
        live: Callable[[], int],
        refuse: Callable[[], None],
        end_all: Callable[[], None],
    ) -> None:
        self.state = state
        self.live = live
        self.refuse = refuse
        self.end_all = end_all


async def _until(condition: Callable[[], bool], seconds: float, stop: asyncio.Event) -> None:
    """Wait for ``condition``, at most ``seconds``, or until ``stop`` is set."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not condition() and not stop.is_set():
        left = deadline - loop.time()
        if left <= 0:
            return
        try:
            await asyncio.wait_for(stop.wait(), min(_POLL, left))
        except TimeoutError:
            pass


async def drain(target: Draining, seconds: float, stop: asyncio.Event) -> None:
    """Stop taking calls, let the live ones go on for up to ``seconds``, then end those left
    (they hear why) and wait for their BYEs, at most :data:`ENDING_GRACE`. ``stop`` (a second
    signal) cuts any wait short."""
    target.state.draining = True
    target.refuse()
    logger.warning(
        "draining: no new calls; %d live call(s) may go on for up to %g s",
        target.live(),
        seconds,
    )
    await _until(lambda: target.live() == 0, seconds, stop)
    if stop.is_set():
        logger.warning("second signal: ending now")
        return
    left = target.live()
    if left:
        logger.info("drain over: ending %d call(s)", left)
        target.end_all()
        await _until(lambda: target.live() == 0, ENDING_GRACE, stop)


async def serve(
    app: web.Application,
    host: str,
    port: int,
    draining: Callable[[web.Application], Draining],
    drain_seconds: float,
) -> None:
    """Run ``app`` on ``host:port`` until SIGTERM/SIGINT, drain, clean up. Raises
    ``OSError`` when an address cannot be bound (the runner is cleaned up first)."""
    loop = asyncio.get_running_loop()
    signals = 0
    first, second = asyncio.Event(), asyncio.Event()

    def on_signal(signum: int) -> None:
        nonlocal signals
        signals += 1
        logger.info("%s received", signal.Signals(signum).name)
        (first if signals == 1 else second).set()

    runner = web.AppRunner(app, handle_signals=False)
    try:
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, on_signal, signum)
        await first.wait()
        await drain(draining(app), drain_seconds, second)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await runner.cleanup()
    logger.info("stopped")


# -- health detail ---------------------------------------------------------------------------
class LatenessWindow:
    """A tickable for the mixer clock: each tick's lateness, kept for ``window`` seconds.

    The clock passes every tick the same ``now`` (``loop.time()`` once it woke); the deadline
    it woke for is ``start + k * interval``. The start is estimated as the earliest
    ``now - k * interval`` seen (lateness is never negative), and ``k`` skips ahead the way
    the clock does when more than ``max_late_frames`` behind."""

    def __init__(self, interval: float = 0.020, window: float = 60.0, max_late_frames: int = 3):
        self.interval = interval
        self.window = window
        self.max_late_frames = max_late_frames
        size = int(round(window / interval))
        self._at = np.full(size, -np.inf)
        self._late = np.zeros(size)
        self._n = 0
        self._k = 0
        self._start: float | None = None

    def tick(self, now: float) -> None:
        if self._start is None:
            self._start = now
        self._k += 1
        late = now - (self._start + self._k * self.interval)
        if late < 0:  # woke earlier than thought: the start was earlier than estimated
            self._start += late
            late = 0.0
        elif late > self.max_late_frames * self.interval:
            behind = int(late // self.interval)
            self._k += behind
            late -= behind * self.interval
        slot = self._n % len(self._late)
        self._at[slot], self._late[slot] = now, late
        self._n += 1

    def p99_ms(self, now: float) -> tuple[float | None, int]:
        """The 99th percentile lateness (ms) of the ticks of the last ``window`` seconds,
        and how many ticks that is."""
        recent = self._late[self._at >= now - self.window]
        if recent.size == 0:
            return None, 0
        return round(float(np.percentile(recent, 99)) * 1000, 3), int(recent.size)


def process_detail(
    transports: Callable[[], list[tuple[str, str, int]]],
    lateness: LatenessWindow,
    now: Callable[[], float],
) -> ProcessDetail:
    """The gateway's part of the health detail."""
    p99, ticks = lateness.p99_ms(now())
    bound = [
        HealthTransport(
            transport="udp" if name == "udp" else "tcp",
            address=f"[{host}]:{port}" if ":" in host else f"{host}:{port}",
        )
        for name, host, port in transports()
    ]
    return ProcessDetail(
        transports=bound,
        mixer=HealthMixer(late_p99_ms=p99, ticks=ticks, window_seconds=lateness.window),
    )


def drain_target(
    state: ServiceState,
    sip: SipCalls | None,
    browsers: BrowserCalls,
    seconds: float,
) -> Draining:
    """What a drain of this gateway acts on: its SIP calls and browser legs."""

    def live() -> int:
        return (len(sip.legs) if sip is not None else 0) + len(browsers.sessions)

    def refuse() -> None:
        if sip is not None:
            sip.drain_retry_after = DRAIN_RETRY_AFTER
            sip.draining = True
        browsers.start_draining(seconds)

    closing: list[asyncio.Task[None]] = []  # held until done

    def end_all() -> None:
        if sip is not None:
            sip.end_all("shutdown")
        closing.append(asyncio.ensure_future(browsers.close_all()))

    return Draining(state, live=live, refuse=refuse, end_all=end_all)
