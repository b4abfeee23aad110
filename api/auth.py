"""Bearer-token authentication of the admin (constant-time comparison of digests)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable

from aiohttp import web

from api.errors import ApiError
from api.pages import STORE
from rooms.admin import AdminAuth
from rooms.roles import Role

__all__ = ["ADMIN_AUTH", "require_admin", "require_room"]

ADMIN_AUTH = web.AppKey("admin_auth", AdminAuth)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _bearer(request: web.Request) -> str:
    header = request.headers.get("Authorization")
    if header is None:
        raise ApiError(
            401,
            "missing_token",
            "an Authorization: Bearer token is required",
            {"WWW-Authenticate": 'Bearer realm="gateway"'},
        )
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _invalid()
    return token


def _invalid() -> ApiError:
    return ApiError(
        401,
        "invalid_token",
        "the bearer token is not valid",
        {"WWW-Authenticate": 'Bearer realm="gateway", error="invalid_token"'},
    )


async def _check(request: web.Request) -> None:
    token = _bearer(request)
    if request.app[ADMIN_AUTH].verify(token):
        return
    if await asyncio.to_thread(request.app[STORE].find_token, token) is not None:
        raise ApiError(403, "forbidden", "a join link's token cannot do this: the admin token can")
    raise _invalid()


def require_admin(handler: Handler) -> Handler:
    """Wrap a handler so it runs only with the admin's bearer token."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        await _check(request)
        return await handler(request)

    return wrapped


def require_room(handler: Handler) -> Handler:
    """Wrap a handler of ``/api/rooms/{id}/...`` so it runs with the admin's token, or with the
    organiser link token of room ``{id}`` (``Authorization: Bearer`` or, for a WebSocket that
    a browser opens, ``?token=``). Another room's link token gets 403."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        if "Authorization" in request.headers:
            token = _bearer(request)
        elif (
            request.query.get("token") and request.headers.get("Upgrade", "").lower() == "websocket"
        ):
            # only a WebSocket (which a browser cannot give headers) may carry it in the URL
            token = request.query["token"]
        else:
            _bearer(request)  # raises missing_token
            raise AssertionError
        if request.app[ADMIN_AUTH].verify(token):
            return await handler(request)
        found = await asyncio.to_thread(request.app[STORE].find_token, token)
        if found is None:
            raise _invalid()
        room_id, role = found
        if role is not Role.ORGANISER or room_id != request.match_info.get("id"):
            raise ApiError(403, "forbidden", "this link may act on its own room only, as organiser")
        return await handler(request)

    return wrapped
