"""The composition root: one process with the REST API, SIP, media and the mixer clock.

:func:`build_app` assembles the aiohttp application from :func:`api.app.create_app` and adds one
cleanup context that starts the media clock and the SIP endpoint after the database is up, and
stops them (hanging up every call) before it closes.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
from collections.abc import AsyncIterator

from aiohttp import web

from api.app import create_app
from api.pages import STORE
from config import Settings
from gateway.conference import Conference
from gateway.media.transport import MixerClock, PortAllocator
from gateway.sip_calls import RoomInfo, RoomLookup, SipCalls
from rooms.store import RoomStore

__all__ = ["CONFERENCE", "SIP", "build_app", "media_address"]

logger = logging.getLogger(__name__)

CONFERENCE = web.AppKey("conference", Conference)
SIP = web.AppKey("sip", SipCalls)


def media_address(settings: Settings) -> str:
    """The address written in our SDP: the SIP host, or this host's address for a wildcard."""
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
        )

    return lookup


def build_app(settings: Settings) -> web.Application:
    clock = MixerClock()
    conference = Conference(clock, language=settings.language)
    app = create_app(settings, live=conference)

    async def is_open(room_id: str) -> bool:
        room = await asyncio.to_thread(app[STORE].get, room_id)
        return room is not None and room.is_active_at()

    conference.is_open = is_open
    app[CONFERENCE] = conference

    async def calls(app: web.Application) -> AsyncIterator[None]:
        ports = PortAllocator(
            f"{settings.rtp_port_min}-{settings.rtp_port_max}", host=settings.sip_host
        )
        sip = SipCalls(
            settings,
            room_lookup(app[STORE]),
            conference,
            ports,
            media_address=media_address(settings),
        )
        clock.start()
        try:
            await sip.start()
        except BaseException:
            await clock.stop()
            raise
        app[SIP] = sip
        try:
            yield
        finally:
            await sip.stop()
            await clock.stop()

    app.cleanup_ctx.append(calls)
    return app
