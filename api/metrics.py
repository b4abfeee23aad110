"""``GET /metrics``: the Prometheus text format, for the admin token or the metrics token.

:func:`install` (called by :func:`api.app.create_app`) gives each application a
:class:`Metrics` of its own: a :class:`~prometheus_client.CollectorRegistry` (never the
process-wide default, so that several applications in one process, as in tests, do not
collide) holding the process metrics (``process_*``: CPU, resident memory, open file
descriptors), the event loop's task count and the open WebSocket connections. The gateway
registers its own collectors (calls, legs, RTP, the mixer clock) on the same registry.

``GATEWAY_METRICS_TOKEN`` opens this route only; the admin token opens it too; a join
link's token gets 403, anything else 401, like every other route.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
from collections.abc import Callable, Iterator

from aiohttp import web
from prometheus_client import CollectorRegistry, Gauge, ProcessCollector
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from api.auth import Handler, _bearer, _check
from config import Settings

__all__ = [
    "CONTENT_TYPE",
    "METRICS",
    "SOCKET_KINDS",
    "Metrics",
    "TasksCollector",
    "install",
    "metrics",
    "require_metrics",
    "track_socket",
]

#: What :func:`~prometheus_client.exposition.generate_latest` writes: the text format 0.0.4
#: (newer clients call their default 1.0.0; every Prometheus server reads 0.0.4).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
#: WebSockets counted: a room's events socket, a browser's join (signalling) socket.
SOCKET_KINDS = ("events", "join")


class TasksCollector(Collector):
    """``gateway_asyncio_tasks``: tasks of the running event loop (none outside one)."""

    def collect(self) -> Iterator[Metric]:
        try:
            tasks = len(asyncio.all_tasks())
        except RuntimeError:  # no running loop: nothing to count
            return
        yield GaugeMetricFamily(
            "gateway_asyncio_tasks", "Tasks of the event loop, this one included", value=tasks
        )


class Metrics:
    """One application's registry, the metrics token, and the WebSocket gauge."""

    def __init__(self, token: str | None = None) -> None:
        self.registry = CollectorRegistry()
        self._token_digest = hashlib.sha256(token.encode()).digest() if token else None
        ProcessCollector(registry=self.registry)
        self.registry.register(TasksCollector())
        self.websockets = Gauge(
            "gateway_websocket_connections",
            "Open WebSocket connections, by kind (events: a room's events; join: a browser's"
            " signalling)",
            ["kind"],
            registry=self.registry,
        )
        for kind in SOCKET_KINDS:
            self.websockets.labels(kind)  # shown at 0 before the first connection

    def token_matches(self, token: str) -> bool:
        """True for the metrics token (compared in constant time); never without one."""
        if self._token_digest is None:
            return False
        return hmac.compare_digest(hashlib.sha256(token.encode()).digest(), self._token_digest)


METRICS = web.AppKey("metrics", Metrics)
#: For an application made without :func:`install`: process metrics, admin token only.
_FALLBACK: Metrics | None = None


def install(app: web.Application, settings: Settings) -> Metrics:
    """Give ``app`` its :class:`Metrics` (registry, metrics token); returns it."""
    app[METRICS] = found = Metrics(settings.metrics_token)
    return found


def _metrics_of(app: web.Application) -> Metrics:
    global _FALLBACK
    found = app.get(METRICS)
    if found is not None:
        return found
    if _FALLBACK is None:
        _FALLBACK = Metrics()
    return _FALLBACK


def track_socket(request: web.Request, kind: str) -> Callable[[], None]:
    """Count one open WebSocket of ``kind`` (one of :data:`SOCKET_KINDS`); call what this
    returns, once, when it closes."""
    found = request.app.get(METRICS)
    if found is None:
        return lambda: None
    gauge = found.websockets.labels(kind if kind in SOCKET_KINDS else "other")
    gauge.inc()
    done = False

    def closed() -> None:
        nonlocal done
        if not done:
            done = True
            gauge.dec()

    return closed


def require_metrics(handler: Handler) -> Handler:
    """Wrap the metrics handler: the metrics token or the admin token (see module doc)."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        token = _bearer(request)
        if not _metrics_of(request.app).token_matches(token):
            await _check(request)  # the admin token, else 403 (a link's token) or 401
        return await handler(request)

    return wrapped


async def metrics(request: web.Request) -> web.Response:
    """Every metric of this application's registry, in the Prometheus text format."""
    body = generate_latest(_metrics_of(request.app).registry)
    response = web.Response(body=body)
    response.headers["Content-Type"] = CONTENT_TYPE
    return response
