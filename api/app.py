"""The aiohttp application: REST API under ``/api``, join pages under ``/join``.

``create_app(settings, live=...)`` assembles it; the database engine, the room store and the
admin token's verifier are made by one ``cleanup_ctx`` at start-up (engine created, schema
upgraded to the newest Alembic revision, admin token ensured) and disposed of at shutdown.
Every route is declared once in :func:`operations`, which feeds both the router and the
OpenAPI document.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import TypeVar

from aiohttp import web
from sqlalchemy import Engine

from api import logfilter
from api.auth import ADMIN_AUTH, require_admin, require_room
from api.browser import join_socket
from api.calls import CALL_QUERY, CALL_QUERY_SCHEMAS, CALL_RECORDS, list_calls, room_calls
from api.errors import ApiError, error_middleware
from api.events import EVENTS, EventHub, room_events
from api.health import health
from api.live import LIVE, InMemoryLiveCalls, LiveCalls, Participant, RoomObserver
from api.metrics import install as install_metrics
from api.metrics import metrics, require_metrics
from api.openapi import Body, Operation, build_openapi, docs_html
from api.pages import JOIN_SCRIPT_PATH, STORE, join_page, join_script
from api.schemas import (
    CallPageOut,
    Health,
    LockRequest,
    MuteRequest,
    ParticipantOut,
    RoomCreate,
    RoomOut,
    RoomUpdate,
    parse_body,
)
from api.webhooks import WebhookSender
from config import Settings
from rooms.calls import CallStore
from rooms.db import create_engine_for, upgrade
from rooms.errors import InvalidRoom
from rooms.store import RoomData, RoomSpec, RoomStore, ensure_admin_token

__all__ = [
    "ADMIN_AUTH",
    "ENGINE",
    "LIVE",
    "OPENAPI",
    "SETTINGS",
    "STORE",
    "create_app",
    "operations",
]

logger = logging.getLogger(__name__)

SETTINGS = web.AppKey("settings", Settings)
ENGINE = web.AppKey("engine", Engine)
OPENAPI = web.AppKey("openapi", dict)
#: The one thread every store write runs in. A database takes one SQLite writer at a time
#: anyway; threads queued on the store's write lock would fight the event loop for the GIL
#: (a lock convoy: room creation at 200/s had a p99 of 207-230 ms, 10-133 ms through one
#: thread, on a noisy machine). Reads stay on asyncio's default executor.
WRITES = web.AppKey("store_writes", ThreadPoolExecutor)
_T = TypeVar("_T")


async def _write(request: web.Request, fn: Callable[..., _T], *args: object) -> _T:
    return await asyncio.get_running_loop().run_in_executor(request.app[WRITES], fn, *args)


API_VERSION = "1.0.0"
#: Request bodies are small JSON objects.
MAX_BODY = 64 * 1024


# -- helpers ---------------------------------------------------------------------------------
def _room_json(request: web.Request, room: RoomData) -> dict[str, object]:
    return RoomOut.of(room, request.app[SETTINGS], datetime.now(UTC)).model_dump(mode="json")


async def _room_or_404(request: web.Request) -> RoomData:
    room_id = request.match_info["id"]
    room = await asyncio.to_thread(request.app[STORE].get, room_id)
    if room is None:
        raise ApiError(404, "room_not_found", f"no room with id {room_id!r}")
    return room


def _invalid(exc: InvalidRoom) -> ApiError:
    return ApiError(422, exc.code, exc.message)


def _participant_missing(request: web.Request) -> ApiError:
    pid = request.match_info["pid"]
    return ApiError(404, "participant_not_found", f"no participant {pid!r} in this room")


# -- handlers --------------------------------------------------------------------------------
async def openapi_json(request: web.Request) -> web.StreamResponse:
    return web.json_response(request.app[OPENAPI])


async def docs(request: web.Request) -> web.StreamResponse:
    return web.Response(text=docs_html(request.app[OPENAPI]), content_type="text/html")


async def create_room(request: web.Request) -> web.StreamResponse:
    body = await parse_body(request, RoomCreate)
    spec = RoomSpec(**body.model_dump())
    try:
        room = await _write(request, request.app[STORE].create, spec)
    except InvalidRoom as exc:
        raise _invalid(exc) from None
    return web.json_response(_room_json(request, room), status=201)


async def list_rooms(request: web.Request) -> web.StreamResponse:
    rooms = await asyncio.to_thread(request.app[STORE].list)
    return web.json_response([_room_json(request, room) for room in rooms])


async def get_room(request: web.Request) -> web.StreamResponse:
    return web.json_response(_room_json(request, await _room_or_404(request)))


async def update_room(request: web.Request) -> web.StreamResponse:
    room_id = request.match_info["id"]
    body = await parse_body(request, RoomUpdate)
    try:
        room = await _write(request, request.app[STORE].update, room_id, body.changes())
    except InvalidRoom as exc:
        raise _invalid(exc) from None
    if room is None:
        raise ApiError(404, "room_not_found", f"no room with id {room_id!r}")
    live = request.app[LIVE]
    if isinstance(live, RoomObserver):
        await live.room_changed(room.id)
    return web.json_response(_room_json(request, room))


async def delete_room(request: web.Request) -> web.StreamResponse:
    room_id = request.match_info["id"]
    if not await _write(request, request.app[STORE].delete, room_id):
        raise ApiError(404, "room_not_found", f"no room with id {room_id!r}")
    await request.app[LIVE].end_room(room_id)
    return web.Response(status=204)


async def list_participants(request: web.Request) -> web.StreamResponse:
    room = await _room_or_404(request)
    participants = await request.app[LIVE].participants(room.id)
    return web.json_response([ParticipantOut.of(p).model_dump(mode="json") for p in participants])


async def mute_participant(request: web.Request) -> web.StreamResponse:
    room = await _room_or_404(request)
    body = await parse_body(request, MuteRequest)
    participant = await request.app[LIVE].mute(room.id, request.match_info["pid"], body.muted)
    if participant is None:
        raise _participant_missing(request)
    return web.json_response(ParticipantOut.of(participant).model_dump(mode="json"))


async def admit_participant(request: web.Request) -> web.StreamResponse:
    room = await _room_or_404(request)
    participant = await request.app[LIVE].admit(room.id, request.match_info["pid"])
    if participant is None:
        raise _participant_missing(request)
    return web.json_response(ParticipantOut.of(participant).model_dump(mode="json"))


def _participants_json(participants: list[Participant]) -> web.Response:
    return web.json_response([ParticipantOut.of(p).model_dump(mode="json") for p in participants])


async def lock_room(request: web.Request) -> web.StreamResponse:
    room = await _room_or_404(request)
    body = await parse_body(request, LockRequest)
    changed = await _write(request, request.app[STORE].update, room.id, {"locked": body.locked})
    if changed is None:
        raise ApiError(404, "room_not_found", f"no room with id {room.id!r}")
    return web.json_response(_room_json(request, changed))


async def admit_all(request: web.Request) -> web.StreamResponse:
    room = await _room_or_404(request)
    return _participants_json(await request.app[LIVE].admit_all(room.id))


async def mute_all(request: web.Request) -> web.StreamResponse:
    room = await _room_or_404(request)
    body = await parse_body(request, MuteRequest)
    return _participants_json(await request.app[LIVE].mute_all(room.id, body.muted))


async def ask_unmute(request: web.Request) -> web.StreamResponse:
    room = await _room_or_404(request)
    asked = await request.app[LIVE].ask_unmute(room.id, request.match_info["pid"])
    if asked is None:
        raise _participant_missing(request)
    if not asked:
        raise ApiError(409, "cannot_unmute", "only a muted participant who may speak can be asked")
    return web.Response(status=204)


async def refuse_participant(request: web.Request) -> web.StreamResponse:
    room = await _room_or_404(request)
    refused = await request.app[LIVE].refuse(room.id, request.match_info["pid"])
    if refused is None:
        raise _participant_missing(request)
    if not refused:
        raise ApiError(409, "not_waiting", "only a participant in the waiting room can be refused")
    return web.Response(status=204)


async def remove_participant(request: web.Request) -> web.StreamResponse:
    room = await _room_or_404(request)
    if not await request.app[LIVE].remove(room.id, request.match_info["pid"]):
        raise _participant_missing(request)
    return web.Response(status=204)


# -- the route table -------------------------------------------------------------------------
ROOM = "/api/rooms/{id}"
PARTICIPANT = ROOM + "/participants/{pid}"


def operations() -> list[Operation]:
    """Every route: registered by :func:`create_app` and described by the OpenAPI document."""
    room = Body(RoomOut, description="The room")
    participant = Body(ParticipantOut, description="The participant")
    no_content = Body(description="Done")
    calls_page = Body(
        CallPageOut,
        description="A page of call records (with format=csv: every record, as text/csv)",
        also=("text/csv",),
    )
    return [
        Operation(
            "GET",
            "/api/health",
            health,
            "health",
            "Liveness probe; with detail=1 (admin token) database, SIP, mixer and drain state",
            tag="service",
            auth=False,
            query=(("detail", False, "1: add the detail (needs the admin token)"),),
            responses={200: Body(Health, description="ok, or draining during a SIGTERM drain")},
            errors=(401, 403),  # detail=1 only
        ),
        Operation(
            "GET",
            "/api/openapi.json",
            openapi_json,
            "openapi",
            "This OpenAPI document",
            tag="service",
            auth=False,
            responses={200: Body(description="OpenAPI 3.1 document")},
        ),
        Operation(
            "GET",
            "/metrics",
            metrics,
            "metrics",
            "Prometheus metrics (text format): calls, legs, RTP, mixer clock, process; the"
            " admin token or GATEWAY_METRICS_TOKEN",
            tag="service",
            guard=require_metrics,
            responses={
                200: Body(media_type="text/plain", description="Prometheus text format 0.0.4")
            },
        ),
        Operation(
            "GET",
            "/api/docs",
            docs,
            "docs",
            "Readable API documentation",
            tag="service",
            auth=False,
            responses={200: Body(html=True, description="HTML page")},
        ),
        Operation(
            "POST",
            "/api/rooms",
            create_room,
            "createRoom",
            "Create a room",
            request=RoomCreate,
            responses={201: Body(RoomOut, description="The new room")},
        ),
        Operation(
            "GET",
            "/api/rooms",
            list_rooms,
            "listRooms",
            "List rooms",
            responses={200: Body(RoomOut, array=True, description="Every room")},
        ),
        Operation(
            "GET",
            ROOM,
            get_room,
            "getRoom",
            "Read a room",
            organiser=True,
            responses={200: room},
            errors=(404,),
        ),
        Operation(
            "PATCH",
            ROOM,
            update_room,
            "updateRoom",
            "Change a room (any writable field)",
            request=RoomUpdate,
            responses={200: room},
            errors=(404,),
        ),
        Operation(
            "DELETE",
            ROOM,
            delete_room,
            "deleteRoom",
            "Delete a room and end every call in it; its number is never reused",
            responses={204: no_content},
            errors=(404,),
        ),
        Operation(
            "GET",
            ROOM + "/calls",
            room_calls,
            "listRoomCalls",
            "Call records of the room, one per leg, newest first (paged; format=csv: all)",
            tag="calls",
            organiser=True,
            query=CALL_QUERY,
            query_schemas=CALL_QUERY_SCHEMAS,
            responses={200: calls_page},
            errors=(404, 422),
        ),
        Operation(
            "GET",
            "/api/calls",
            list_calls,
            "listCalls",
            "Call records of every room, one per leg, newest first (paged; format=csv: all)",
            tag="calls",
            query=(("room", False, "only this room's records (by room id)"), *CALL_QUERY),
            query_schemas=CALL_QUERY_SCHEMAS,
            responses={200: calls_page},
            errors=(422,),
        ),
        Operation(
            "GET",
            ROOM + "/participants",
            list_participants,
            "listParticipants",
            "Who is in the room now",
            tag="participants",
            organiser=True,
            responses={200: Body(ParticipantOut, array=True, description="Participants")},
            errors=(404,),
        ),
        Operation(
            "GET",
            ROOM + "/events",
            room_events,
            "roomEvents",
            "WebSocket of the room's live events (joined, left, waiting, admitted, refused, muted,"
            " unmuted, talking_started, talking_stopped); a browser passes its token as ?token=",
            tag="participants",
            organiser=True,
            query=(("token", False, "the organiser link token, for a browser's WebSocket"),),
            responses={101: Body(description="Switching to the WebSocket protocol")},
            errors=(400, 404),
        ),
        Operation(
            "POST",
            ROOM + "/lock",
            lock_room,
            "lockRoom",
            "Lock or unlock the room: while locked, new arrivals (but organisers) wait to be"
            " admitted; who is in stays",
            tag="participants",
            organiser=True,
            request=LockRequest,
            responses={200: room},
            errors=(404,),
        ),
        Operation(
            "POST",
            ROOM + "/admit-all",
            admit_all,
            "admitAll",
            "Let everyone in the waiting room in; returns those let in",
            tag="participants",
            organiser=True,
            responses={200: Body(ParticipantOut, array=True, description="Let in")},
            errors=(404,),
        ),
        Operation(
            "POST",
            ROOM + "/mute-all",
            mute_all,
            "muteAll",
            "Mute (or unmute) everyone but the organisers, each told; returns those changed",
            tag="participants",
            organiser=True,
            request=MuteRequest,
            responses={200: Body(ParticipantOut, array=True, description="Changed")},
            errors=(404,),
        ),
        Operation(
            "POST",
            PARTICIPANT + "/ask-unmute",
            ask_unmute,
            "askUnmute",
            "Ask a muted participant to unmute itself (a browser is prompted, a phone told to"
            " press *6)",
            tag="participants",
            organiser=True,
            responses={204: no_content},
            errors=(404, 409),
        ),
        Operation(
            "POST",
            PARTICIPANT + "/mute",
            mute_participant,
            "muteParticipant",
            "Mute or unmute a participant",
            tag="participants",
            organiser=True,
            request=MuteRequest,
            responses={200: participant},
            errors=(404,),
        ),
        Operation(
            "POST",
            PARTICIPANT + "/admit",
            admit_participant,
            "admitParticipant",
            "Let a participant in from the waiting room",
            tag="participants",
            organiser=True,
            responses={200: participant},
            errors=(404,),
        ),
        Operation(
            "DELETE",
            PARTICIPANT,
            remove_participant,
            "removeParticipant",
            "Remove a participant (told by a prompt or a message)",
            tag="participants",
            organiser=True,
            responses={204: no_content},
            errors=(404,),
        ),
        Operation(
            "POST",
            PARTICIPANT + "/refuse",
            refuse_participant,
            "refuseParticipant",
            "Turn a participant in the waiting room away (told by a prompt or a message)",
            tag="participants",
            organiser=True,
            responses={204: no_content},
            errors=(404, 409),
        ),
        Operation(
            "GET",
            "/api/join/{number}/ws",
            join_socket,
            "joinSocket",
            "WebSocket of the join page: signalling of a browser leg (docs/signalling.md)",
            tag="pages",
            auth=False,
            responses={101: Body(description="Switching to the WebSocket protocol")},
            errors=(400, 503),
        ),
        Operation(
            "GET",
            JOIN_SCRIPT_PATH,
            join_script,
            "joinScript",
            "The join page's script",
            tag="pages",
            auth=False,
            responses={200: Body(description="JavaScript")},
        ),
        Operation(
            "GET",
            "/join/{number}",
            join_page,
            "joinPage",
            "Join page of a room link (browser)",
            tag="pages",
            auth=False,
            query=(("token", False, "the link's secret"),),
            responses={
                200: Body(html=True, description="Join page"),
                403: Body(html=True, description="Bad or expired link, or room not open"),
            },
        ),
    ]


# -- assembly --------------------------------------------------------------------------------
def announce_admin_token(token: str) -> None:
    """Show a just-generated admin token, once (it is stored only as a hash)."""
    print(f"Admin token: {token}", flush=True)
    logger.warning("generated the admin token (shown once on standard output; stored hashed)")


async def _database(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    engine = await asyncio.to_thread(create_engine_for, settings.database_url)
    try:
        await asyncio.to_thread(upgrade, engine)
        token, auth = await asyncio.to_thread(ensure_admin_token, engine, settings.admin_token)
    except BaseException:
        engine.dispose()
        raise
    if token is not None:
        announce_admin_token(token)
    app[ENGINE] = engine
    app[STORE] = RoomStore(engine, cache_seconds=settings.room_cache_seconds)
    app[CALL_RECORDS] = CallStore(engine)
    writes = ThreadPoolExecutor(1, thread_name_prefix="store-writes")
    app[WRITES] = writes
    app[ADMIN_AUTH] = auth
    webhooks = _webhooks(settings, settings.admin_token or token)
    if webhooks is not None:
        app[EVENTS].listeners.append(webhooks)
        webhooks.start()
    try:
        yield
    finally:
        if webhooks is not None:
            app[EVENTS].listeners.remove(webhooks)
            await webhooks.stop()
        await asyncio.to_thread(writes.shutdown)  # the writes already asked for finish
        await asyncio.to_thread(engine.dispose)


def _webhooks(settings: Settings, key: str | None) -> WebhookSender | None:
    if settings.webhook_url is None:
        return None
    if key is None:
        logger.warning(
            "GATEWAY_WEBHOOK_URL is set but the admin token is not known to this process (it is"
            " stored hashed): set GATEWAY_ADMIN_TOKEN so that webhooks can be signed; none sent"
        )
        return None
    return WebhookSender(settings.webhook_url, key)


def create_app(
    settings: Settings, *, live: LiveCalls | None = None, events: EventHub | None = None
) -> web.Application:
    """The gateway's web application.

    ``live`` answers the participants routes (default: an empty :class:`InMemoryLiveCalls`).
    After start-up, ``app[STORE]`` is the :class:`~rooms.store.RoomStore` (the gateway looks
    rooms up by number with it) and ``app[ENGINE]`` the database engine; a cleanup context
    appended after this module's sees both.
    """
    logfilter.install()
    app = web.Application(middlewares=[error_middleware], client_max_size=MAX_BODY)
    app[SETTINGS] = settings
    app[LIVE] = live if live is not None else InMemoryLiveCalls()
    app[EVENTS] = events if events is not None else EventHub()
    install_metrics(app, settings)
    ops = operations()
    app[OPENAPI] = build_openapi(ops, title="Conference gateway", version=API_VERSION)
    for op in ops:
        handler = op.handler
        if op.guard is not None:
            handler = op.guard(handler)
        elif op.auth:
            handler = require_room(handler) if op.organiser else require_admin(handler)
        app.router.add_route(op.method, op.path, handler, name=op.operation_id)
    app.cleanup_ctx.append(_database)
    return app
