"""The composition root: one process with the REST API, SIP, media and the mixer clock.

:func:`build_app` assembles the aiohttp application from :func:`api.app.create_app` and adds one
cleanup context that starts the media clock and the SIP endpoint after the database is up, and
stops them (hanging up every call) before it closes.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import ipaddress
import logging
import os
import socket
from collections.abc import AsyncIterator

from aiohttp import web

from api.app import WRITES, create_app
from api.browser import BROWSERS
from api.calls import CALL_RECORDS
from api.events import EVENTS
from api.health import SERVICE, ServiceState
from api.metrics import METRICS
from api.pages import STORE
from config import Settings
from gateway.browser_calls import BrowserCalls
from gateway.conference import Conference
from gateway.lifecycle import Observers
from gateway.media.transport import MixerClock, PortAllocator
from gateway.metrics import GatewayMetrics
from gateway.records import CallRecorder
from gateway.service import LatenessWindow, process_detail
from gateway.sip_calls import RoomInfo, RoomLookup, SipCalls
from rooms.store import RoomStore

__all__ = ["CONFERENCE", "OBSERVERS", "SIP", "build_app", "media_address"]

logger = logging.getLogger(__name__)

CONFERENCE = web.AppKey("conference", Conference)
SIP = web.AppKey("sip", SipCalls)
#: Every call leg's life (started, answered, ended, refused) is told to these: call records,
#: metrics.
OBSERVERS = web.AppKey("call_observers", Observers)


def media_address(settings: Settings) -> str:
    """The address written in our SDP when a call tells no better (see
    ``SipCalls._media_host``): the public host, the SIP host, or this host's address for a
    wildcard bind."""
    if settings.sip_public_host:
        return settings.sip_public_host
    host = settings.sip_host
    try:
        if not ipaddress.ip_address(host).is_unspecified:
            return host
    except ValueError:
        return socket.gethostbyname(host)
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"


def room_lookup(store: RoomStore) -> RoomLookup:
    async def lookup(number: str) -> RoomInfo | None:
        known, room = store.cached_by_number(number)
        if not known:
            room = await asyncio.to_thread(store.find_by_number, number)
        if room is None:
            return None
        return RoomInfo(
            id=room.id,
            number=room.number,
            name=room.name,
            active=room.is_active_at(),
            pin=room.pin,
            host_pin=room.host_pin,
            waiting_room=room.waiting_room,
            wait_for_host=room.wait_for_host,
            locked=room.locked,
        )

    return lookup


#: How often the process logs what it holds (calls, tasks, descriptors, memory).
STATS_INTERVAL = 60.0


def process_stats() -> dict[str, int]:
    """Open file descriptors, resident memory and asyncio tasks of this process (Linux)."""
    stats = {"tasks": len(asyncio.all_tasks())}
    try:
        stats["fds"] = len(os.listdir("/proc/self/fd"))
        with open("/proc/self/statm") as statm:
            stats["rss_kib"] = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    except OSError:
        pass
    return stats


def stats_line(sip: SipCalls, clock: MixerClock) -> str:
    """Calls, rooms, the mixer clock since the previous line, tasks, fds and memory."""
    stats = process_stats()
    tick = clock.stats()
    clock.reset_stats()
    return (
        f"stats: calls={len(sip.legs)} rooms={len(sip.conference.rooms)} ticks={tick.ticks}"
        f" skipped={tick.skipped} late_p50_ms={tick.late_p50_ms:.2f}"
        f" late_p99_ms={tick.late_p99_ms:.2f} late_max_ms={tick.late_max_ms:.2f}"
        f" work_p99_ms={tick.work_p99_ms:.2f} tasks={stats['tasks']}"
        f" fds={stats.get('fds', '?')} rss_kib={stats.get('rss_kib', '?')}"
    )


async def log_stats(sip: SipCalls, clock: MixerClock, interval: float = STATS_INTERVAL) -> None:
    """One line a minute (by default), so a long run shows whether calls, tasks or memory
    leak, and how late the mixer's clock runs."""
    clock.reset_stats()
    while True:
        await asyncio.sleep(interval)
        logger.info("%s", stats_line(sip, clock))


def build_app(settings: Settings) -> web.Application:
    clock = MixerClock()
    conference = Conference(clock, language=settings.language)
    app = create_app(settings, live=conference)

    async def is_open(room_id: str) -> bool:
        room = await asyncio.to_thread(app[STORE].get, room_id)
        return room is not None and room.is_active_at()

    conference.is_open = is_open
    conference.on_event = app[EVENTS].publish
    app[CONFERENCE] = conference
    app[OBSERVERS] = observers = Observers()
    browsers = BrowserCalls(settings, conference, observer=observers)
    app[BROWSERS] = browsers
    # Prometheus (GET /metrics): calls as an observer; legs, RTP and the clock at scrape time
    metrics = GatewayMetrics(
        app[METRICS].registry, clock=clock, conference=conference, browsers=browsers
    )
    observers.add(metrics)
    #: draining flag and health detail for /api/health; the mixer's last minute of lateness
    app[SERVICE] = service = ServiceState()
    lateness = LatenessWindow(clock.interval)

    async def calls(app: web.Application) -> AsyncIterator[None]:
        ports = PortAllocator(
            f"{settings.rtp_port_min}-{settings.rtp_port_max}", host=settings.sip_host
        )
        clock.add(ports, first=True)  # each tick reads every RTP socket before the rooms mix
        sip = SipCalls(
            settings,
            room_lookup(app[STORE]),
            conference,
            ports,
            media_address=media_address(settings),
            observer=observers,
        )
        # call records: this process's rows are known by its host and SIP port
        recorder = CallRecorder(
            app[CALL_RECORDS],
            app[WRITES],
            node=f"{socket.gethostname()}:{settings.sip_port}",
            keep_days=settings.cdr_days,
        )
        await recorder.start()
        observers.add(recorder)
        clock.start()
        try:
            await sip.start()
        except BaseException:
            await recorder.stop()
            await clock.stop()
            clock.remove(ports)
            raise
        app[SIP] = sip
        metrics.sip = sip
        clock.add(lateness)
        loop = asyncio.get_running_loop()
        service.detail = functools.partial(
            process_detail, sip.endpoint.transport.bound, lateness, loop.time
        )
        stats = asyncio.get_running_loop().create_task(
            log_stats(sip, clock, settings.stats_seconds)
        )
        try:
            yield
        finally:
            stats.cancel()
            await browsers.close_all()
            await sip.stop()
            await recorder.stop()  # after every leg ended: their ends are written
            await clock.stop()
            clock.remove(ports)
            clock.remove(lateness)

    app.cleanup_ctx.append(calls)
    app.on_startup.append(_freeze_startup_objects)
    return app


async def _freeze_startup_objects(app: web.Application) -> None:
    """Everything made at start-up (modules, the app, SQLAlchemy's and aiortc's tables)
    lives as long as the process: move it out of the garbage collector's sight, so a full
    collection walks what calls and requests allocate, not the whole process."""
    gc.collect()
    gc.freeze()
