"""Live room events: ``GET /api/rooms/{id}/events``, a WebSocket streaming what happens in a room.

The gateway publishes into the :class:`EventHub` (``app[EVENTS]``) as it happens: a participant
``joined``, ``left``, is ``waiting``, was ``admitted`` or ``refused``, ``muted`` or ``unmuted``,
``talking_started`` or ``talking_stopped``, and ``late_joiner`` for who arrives 5 minutes or
more after the meeting began (its first participant). Each subscriber (one per socket) gets its room's
events in order, as ``{"type", "room_id", "participant", "at"}``. Publishing never blocks and
never fails (it is called from the media tick): a subscriber that falls more than
``QUEUE`` events behind is dropped (its socket closed with 1013, try again later) instead of
holding memory or slowing anyone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType, web

from api.errors import ApiError
from api.live import Participant
from api.metrics import track_socket
from api.pages import STORE

__all__ = ["EVENTS", "EVENT_TYPES", "EventHub", "participant_json", "room_events"]

logger = logging.getLogger(__name__)

EVENT_TYPES = (
    "joined",
    "left",
    "waiting",
    "admitted",
    "refused",
    "muted",
    "unmuted",
    "talking_started",
    "talking_stopped",
    "late_joiner",  # right after "joined" or "waiting", for who arrives 5 min after the start
)
QUEUE = 1000


def participant_json(p: Participant) -> dict[str, Any]:
    """A participant as events carry it (the fields of the REST API's participant)."""
    return {
        "id": p.id,
        "display_name": p.display_name,
        "kind": p.kind,
        "role": p.role,
        "state": p.state,
        "muted": p.muted,
        "joined_at": p.joined_at.isoformat(),
        "caller_number": p.caller_number,
        "talking": p.talking,
    }


class _Subscriber:
    def __init__(self, room_id: str) -> None:
        self.room_id = room_id
        self.queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(QUEUE)
        self.overflowed = False


class EventHub:
    """Fan-out of room events to the sockets watching each room."""

    def __init__(self) -> None:
        self._rooms: dict[str, set[_Subscriber]] = {}
        #: Told every event of every room (e.g. the webhook sender); must not block.
        self.listeners: list[Callable[[dict[str, Any]], None]] = []
        self.published = 0
        self.dropped_subscribers = 0

    def publish(self, kind: str, room_id: str, participant: Participant) -> None:
        if kind not in EVENT_TYPES:
            raise ValueError(f"unknown event type {kind!r}")
        self.published += 1
        subscribers = self._rooms.get(room_id)
        if not subscribers and not self.listeners:
            return
        event = {
            "type": kind,
            "room_id": room_id,
            "participant": participant_json(participant),
            "at": datetime.now(UTC).isoformat(),
        }
        for listener in self.listeners:
            try:
                listener(event)
            except Exception:
                logger.exception("event listener")
        for sub in list(subscribers or ()):
            if sub.overflowed:
                continue
            try:
                sub.queue.put_nowait(event)
            except asyncio.QueueFull:
                sub.overflowed = True
                self.dropped_subscribers += 1
                with contextlib.suppress(asyncio.QueueEmpty):
                    sub.queue.get_nowait()
                sub.queue.put_nowait(None)  # wakes the socket to close

    def subscribe(self, room_id: str) -> _Subscriber:
        sub = _Subscriber(room_id)
        self._rooms.setdefault(room_id, set()).add(sub)
        return sub

    def unsubscribe(self, sub: _Subscriber) -> None:
        subs = self._rooms.get(sub.room_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._rooms[sub.room_id]

    def watchers(self, room_id: str) -> int:
        return len(self._rooms.get(room_id, ()))


EVENTS = web.AppKey("events", EventHub)


async def room_events(request: web.Request) -> web.StreamResponse:
    """The events socket of one room (authorised by :func:`api.auth.require_room`)."""
    room_id = request.match_info["id"]
    room = await asyncio.to_thread(request.app[STORE].get, room_id)
    if room is None:
        raise ApiError(404, "room_not_found", f"no room with id {room_id!r}")
    ws = web.WebSocketResponse(heartbeat=10.0, max_msg_size=4096)
    if not ws.can_prepare(request).ok:
        raise ApiError(400, "websocket_required", "this route is a WebSocket")
    await ws.prepare(request)
    hub = request.app[EVENTS]
    sub = hub.subscribe(room.id)
    untrack = track_socket(request, "events")

    async def drain_incoming() -> None:  # nothing is expected from the client but close
        async for msg in ws:
            if msg.type == WSMsgType.ERROR:
                return

    reader = asyncio.ensure_future(drain_incoming())
    try:
        while not ws.closed:
            getter = asyncio.ensure_future(sub.queue.get())
            done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                break
            event = getter.result()
            if event is None:
                await ws.close(code=1013, message=b"too slow: events were dropped")
                break
            await ws.send_str(json.dumps(event))
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        untrack()
        reader.cancel()
        hub.unsubscribe(sub)
        if not ws.closed:
            await ws.close()
    return ws
