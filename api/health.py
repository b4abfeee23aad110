"""``GET /api/health``: cheap for load balancers, detailed for the admin.

Without a query it answers ``{"status": "ok"}`` (``"draining"`` once a SIGTERM drain has
begun) from memory: no database, no lock. ``?detail=1`` needs the admin token and adds the
database's reachability (a ``SELECT 1`` in a thread, bounded by :data:`DB_TIMEOUT`), the
draining flag, and what the process that serves the API reports of itself through
:attr:`ServiceState.detail` (the gateway: SIP transports bound, mixer lateness).

The gateway owns a :class:`ServiceState` in ``app[SERVICE]``; this package never imports it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web
from sqlalchemy import Engine, text

from api.auth import require_admin
from api.schemas import Health, HealthDatabase, HealthMixer, HealthTransport

__all__ = ["DB_TIMEOUT", "SERVICE", "ProcessDetail", "ServiceState", "health"]

#: Seconds the database may take to answer ``SELECT 1`` before it counts as unreachable.
DB_TIMEOUT = 2.0


@dataclass(frozen=True)
class ProcessDetail:
    """What the serving process tells of itself."""

    transports: list[HealthTransport] = field(default_factory=list)
    mixer: HealthMixer | None = None


@dataclass
class ServiceState:
    """Whether the process is draining, and how to ask it for its detail."""

    draining: bool = False
    detail: Callable[[], ProcessDetail] | None = None


SERVICE = web.AppKey("service_state", ServiceState)


def _state(app: web.Application) -> ServiceState:
    state = app.get(SERVICE)
    return state if state is not None else ServiceState()


async def health(request: web.Request) -> web.StreamResponse:
    if request.query.get("detail", "") not in ("", "0", "false"):
        return await _detailed(request)
    status = "draining" if _state(request.app).draining else "ok"
    return web.json_response(Health(status=status).model_dump(mode="json", exclude_none=True))


def _ping(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


async def database_reachable(engine: Engine | None, limit: float = DB_TIMEOUT) -> HealthDatabase:
    """``SELECT 1`` in a thread, at most ``limit`` seconds."""
    if engine is None:
        return HealthDatabase(reachable=False, error="no database engine")
    started = time.perf_counter()
    try:
        await asyncio.wait_for(asyncio.to_thread(_ping, engine), limit)
    except TimeoutError:
        return HealthDatabase(reachable=False, error=f"no answer within {limit:g} s")
    except Exception as exc:  # any driver error: the point is to report it
        return HealthDatabase(reachable=False, error=type(exc).__name__)
    return HealthDatabase(
        reachable=True, latency_ms=round((time.perf_counter() - started) * 1000, 3)
    )


@require_admin
async def _detailed(request: web.Request) -> web.StreamResponse:
    from api.app import ENGINE  # api.app imports this module for its route table

    state = _state(request.app)
    detail = state.detail() if state.detail is not None else ProcessDetail()
    body = Health(
        status="draining" if state.draining else "ok",
        draining=state.draining,
        database=await database_reachable(request.app.get(ENGINE)),
        sip=detail.transports,
        mixer=detail.mixer,
    )
    return web.json_response(body.model_dump(mode="json", exclude_none=True))
