"""Bearer-token authentication of the admin (constant-time comparison of digests)."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from aiohttp import web

from api.errors import ApiError
from rooms.admin import AdminAuth

__all__ = ["ADMIN_AUTH", "require_admin"]

ADMIN_AUTH = web.AppKey("admin_auth", AdminAuth)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _check(request: web.Request) -> None:
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
    if scheme.lower() != "bearer" or not token or not request.app[ADMIN_AUTH].verify(token):
        raise ApiError(
            401,
            "invalid_token",
            "the bearer token is not valid",
            {"WWW-Authenticate": 'Bearer realm="gateway", error="invalid_token"'},
        )


def require_admin(handler: Handler) -> Handler:
    """Wrap a handler so it runs only with the admin's bearer token."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        _check(request)
        return await handler(request)

    return wrapped
