"""Browser signalling: ``GET /api/join/NUMBER/ws``, the WebSocket of the join page.

The protocol is written in ``docs/signalling.md``. This module checks and frames it (the link
token, message sizes, rates, types, the 10 s deadline to authenticate) and hands the media to a
:class:`BrowserCalls` that the gateway implements and injects under :data:`BROWSERS` (``api``
knows nothing of WebRTC). A bad socket is closed with a reason and affects no one else.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from aiohttp import WSMsgType, web

from api.errors import ApiError
from api.events import EVENTS, participant_json
from api.live import LIVE, LiveCalls, Participant
from api.metrics import track_socket
from api.pages import STORE

__all__ = [
    "BROWSERS",
    "BrowserCalls",
    "BrowserJoin",
    "BrowserSession",
    "Limits",
    "Notify",
    "join_socket",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class BrowserJoin:
    """Who asks to join, as the link and the page tell it."""

    room_id: str
    room_number: str
    room_name: str
    role: str  # "organiser", "guest", "spectator"
    display_name: str
    waiting_room: bool  # the room admits guests one by one (a waiting room, or locked)
    wait_for_host: bool = False  # nobody but organisers is let in before an organiser


#: The gateway tells the socket: ("state", "joined" | "waiting"), ("moderated", "muted" |
#: "unmuted") or ("end", reason) with reason one of "removed", "ended", "refused", "failed"
#: (the media path was lost).
Notify = Callable[[str, str], None]


class BrowserSession(Protocol):
    """One browser's leg, from ``join`` until ``close``."""

    @property
    def participant_id(self) -> str: ...

    async def offer(self, sdp: str) -> str:
        """The browser's offer; returns the answer. Raises ``ValueError`` for an offer that
        cannot be answered (no audio, no common codec)."""
        ...

    async def candidate(self, candidate: str, sdp_mid: str | None, index: int | None) -> None: ...

    async def set_muted(self, muted: bool) -> None: ...

    async def close(self) -> None:
        """Leave the room and free the leg; idempotent."""
        ...


class BrowserCalls(Protocol):
    """What the gateway offers the join socket."""

    #: True while the process drains before a restart: joins are turned away with a close
    #: the page retries (1012, service restart), not with the final "busy".
    draining: bool

    def ice_servers(self) -> list[dict[str, object]]: ...

    async def join(self, join: BrowserJoin, notify: Notify) -> BrowserSession | None:
        """A new leg, or None when this process takes no more browser legs now."""
        ...


BROWSERS = web.AppKey[BrowserCalls]("browsers")


@dataclass(frozen=True)
class Limits:
    auth_seconds: float = 10.0
    max_message: int = 64 * 1024
    rate_messages: int = 50
    rate_seconds: float = 10.0
    participants_poll: float = 2.0  # at the latest, even without an event
    participants_coalesce: float = 0.1  # events this close together make one update
    heartbeat: float = 10.0  # WebSocket pings: a browser gone silent is noticed in 10-15 s


LIMITS = web.AppKey("join_limits", Limits)

_CLOSE = {
    "bad_message": 4400,
    "not_authenticated": 4401,
    "invalid_link": 4403,
    "room_closed": 4409,
    "removed": 4410,
    "ended": 4411,
    "refused": 4412,
    "too_many": 4429,
    "unavailable": 4503,
    "failed": 4502,
    "restarting": 1012,  # RFC 6455 7.4.1 service restart: the page reconnects by itself
}
_TEXT = {
    "bad_message": "the message is not understood",
    "not_authenticated": "no join message in time",
    "invalid_link": "the link is not valid",
    "room_closed": "this meeting is not open now",
    "removed": "you were removed from the meeting",
    "ended": "the meeting has ended",
    "refused": "the organiser did not let you in",
    "too_many": "too many messages",
    "unavailable": "the gateway is busy; try again in a moment",
    "failed": "the audio connection was lost",
    "restarting": "the gateway is restarting; reconnecting",
}


class _Close(Exception):
    def __init__(self, code: str, message: str | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.message = message or _TEXT[code]


def _public(p: Participant) -> dict[str, Any]:
    """What a browser may see of a participant: the events' view, never the caller's number."""
    data = participant_json(p)
    del data["caller_number"]
    return data


def _str(message: dict[str, Any], key: str, *, limit: int) -> str:
    value = message.get(key)
    if not isinstance(value, str) or len(value) > limit:
        raise _Close("bad_message", f"{key!r} must be a string of at most {limit} characters")
    return value


class _Socket:
    def __init__(self, request: web.Request, ws: web.WebSocketResponse) -> None:
        self.request = request
        self.ws = ws
        self.limits = request.app.get(LIMITS) or Limits()
        self.session: BrowserSession | None = None
        self.join: BrowserJoin | None = None
        self.stamps: deque[float] = deque()
        self.ended: asyncio.Future[tuple[str, str]] = asyncio.get_running_loop().create_future()

    async def send(self, message: dict[str, Any]) -> None:
        if not self.ws.closed:
            await self.ws.send_str(json.dumps(message))

    async def close(self, code: str, message: str | None = None) -> None:
        with contextlib.suppress(Exception):
            await self.send({"type": "error", "code": code, "message": message or _TEXT[code]})
        with contextlib.suppress(Exception):
            await self.ws.close(code=_CLOSE[code], message=code.encode())

    async def receive(self, within: float | None) -> dict[str, Any] | None:
        """The next message, checked for size, rate and shape; None when the socket closed."""
        msg = await self.ws.receive(timeout=within)
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
            return None
        if msg.type == WSMsgType.ERROR:  # e.g. a frame over max_msg_size: aiohttp sent 1009
            return None
        now = time.monotonic()
        self.stamps.append(now)
        while self.stamps and self.stamps[0] < now - self.limits.rate_seconds:
            self.stamps.popleft()
        if len(self.stamps) > self.limits.rate_messages:
            raise _Close("too_many")
        if msg.type != WSMsgType.TEXT:
            raise _Close("bad_message", "messages are JSON text")
        try:
            data = json.loads(msg.data)
        except ValueError:
            raise _Close("bad_message", "not JSON") from None
        if not isinstance(data, dict) or not isinstance(data.get("type"), str):
            raise _Close("bad_message", "a message is an object with a type")
        return data

    # -- the conversation -----------------------------------------------------------------
    async def authenticate(self) -> BrowserJoin:
        deadline = time.monotonic() + self.limits.auth_seconds
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _Close("not_authenticated")
            try:
                message = await self.receive(left)
            except TimeoutError:
                raise _Close("not_authenticated") from None
            if message is None:
                raise ConnectionResetError
            if message["type"] == "ping":
                await self.send({"type": "pong"})
                continue
            if message["type"] != "join":
                raise _Close("not_authenticated", "the first message must be join")
            token = _str(message, "token", limit=200)
            name = " ".join(_str(message, "name", limit=400).split())
            if not 1 <= len(name) <= 100:
                raise _Close("bad_message", "name: 1 to 100 characters")
            number = self.request.match_info["number"]
            store = self.request.app[STORE]
            found = await asyncio.to_thread(store.find_link, number, token)
            if found is None:
                raise _Close("invalid_link")
            room, role = found
            if not room.is_active_at():
                raise _Close("room_closed")
            return BrowserJoin(
                room_id=room.id,
                room_number=room.number,
                room_name=room.name,
                role=role.value,
                display_name=name,
                waiting_room=bool(room.waiting_room or room.locked),
                wait_for_host=bool(room.wait_for_host),
            )

    def notify(self, kind: str, value: str) -> None:
        if kind == "state":
            asyncio.ensure_future(self.send({"type": "state", "state": value}))
        elif kind == "moderated":
            asyncio.ensure_future(self.send({"type": "moderated", "action": value}))
        elif kind == "draining":  # the gateway is stopping: the meeting ends here within
            asyncio.ensure_future(self.send({"type": "draining", "seconds": float(value)}))
        elif kind == "end" and not self.ended.done():
            self.ended.set_result((kind, value))

    async def run(self) -> None:
        browsers = self.request.app[BROWSERS]
        self.join = join = await self.authenticate()
        session = await browsers.join(join, self.notify)
        if session is None:
            raise _Close("restarting" if browsers.draining else "unavailable")
        self.session = session
        await self.send(
            {
                "type": "welcome",
                "participant_id": session.participant_id,
                "role": join.role,
                "room": {"name": join.room_name, "number": join.room_number},
                "ice_servers": browsers.ice_servers(),
            }
        )
        poller = asyncio.ensure_future(self.poll_participants(join.room_id))
        reader = asyncio.ensure_future(self.read(session))
        try:
            ended: asyncio.Future[Any] = asyncio.ensure_future(asyncio.shield(self.ended))
            waited: list[asyncio.Future[Any]] = [reader, ended]
            await asyncio.wait(waited, return_when=asyncio.FIRST_COMPLETED)
            ended.cancel()
            if self.ended.done():
                _, reason = self.ended.result()
                raise _Close(reason)
            reader.result()  # re-raise a _Close from the reader
        finally:
            poller.cancel()
            reader.cancel()

    async def read(self, session: BrowserSession) -> None:
        offered = False
        while True:
            message = await self.receive(None)
            if message is None:
                return
            kind = message["type"]
            if kind == "offer":
                if offered:
                    raise _Close("bad_message", "one offer per connection")
                offered = True
                sdp = _str(message, "sdp", limit=self.limits.max_message)
                try:
                    answer = await session.offer(sdp)
                except ValueError as exc:
                    raise _Close("bad_message", f"offer not accepted: {exc}") from None
                await self.send({"type": "answer", "sdp": answer})
            elif kind == "candidate":
                candidate = _str(message, "candidate", limit=1000)
                mid = message.get("sdpMid")
                index = message.get("sdpMLineIndex")
                if mid is not None and not isinstance(mid, str):
                    raise _Close("bad_message", "sdpMid must be a string")
                if index is not None and (not isinstance(index, int) or isinstance(index, bool)):
                    raise _Close("bad_message", "sdpMLineIndex must be an integer")
                with contextlib.suppress(ValueError):
                    await session.candidate(candidate, mid, index)
            elif kind == "mute":
                muted = message.get("muted")
                if not isinstance(muted, bool):
                    raise _Close("bad_message", "muted must be true or false")
                await session.set_muted(muted)
            elif kind == "ping":
                await self.send({"type": "pong"})
            elif kind == "leave":
                return
            else:
                raise _Close("bad_message", f"unknown message type {kind[:40]!r}")

    async def poll_participants(self, room_id: str) -> None:
        """Send the room's participant list after ``welcome`` and whenever it changes: at
        each room event (coalesced over ``participants_coalesce``), and at the latest every
        ``participants_poll`` seconds in case an event was missed."""
        live: LiveCalls = self.request.app[LIVE]
        hub = self.request.app.get(EVENTS)
        sub = hub.subscribe(room_id) if hub is not None else None
        last: list[dict[str, Any]] | None = None
        try:
            while not self.ws.closed:
                try:
                    now = [_public(p) for p in await live.participants(room_id)]
                except Exception:  # a live registry hiccup must not end the socket
                    logger.exception("participants of room %s", room_id)
                    now = last or []
                if now != last:
                    await self.send({"type": "participants", "participants": now})
                    last = now
                if sub is None or sub.overflowed:
                    await asyncio.sleep(self.limits.participants_poll)
                    continue
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(sub.queue.get(), self.limits.participants_poll)
                await asyncio.sleep(self.limits.participants_coalesce)
                while not sub.queue.empty():
                    sub.queue.get_nowait()
        finally:
            if sub is not None and hub is not None:
                hub.unsubscribe(sub)


async def join_socket(request: web.Request) -> web.StreamResponse:
    limits = request.app.get(LIMITS) or Limits()
    ws = web.WebSocketResponse(
        max_msg_size=limits.max_message, heartbeat=limits.heartbeat, autoping=True
    )
    if not ws.can_prepare(request).ok:
        raise ApiError(400, "websocket_required", "this route is a WebSocket (docs/signalling.md)")
    if BROWSERS not in request.app:
        raise ApiError(503, "unavailable", "browser calls are not available in this process")
    await ws.prepare(request)
    untrack = track_socket(request, "join")
    sock = _Socket(request, ws)
    try:
        await sock.run()
    except _Close as close:
        await sock.close(close.code, close.message)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        untrack()
        if sock.session is not None:
            await sock.session.close()
        if not ws.closed:
            await ws.close()
    return ws
