"""``GET /api/health``: public and cheap; ``?detail=1`` for the admin with the database,
the process's own detail (SIP transports, mixer) and the draining state."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import create_engine

from api.app import ENGINE, create_app
from api.health import SERVICE, ProcessDetail, ServiceState, database_reachable
from api.schemas import HealthMixer, HealthTransport
from config import Settings

Client = TestClient[Any, Any]


async def test_plain_health_says_ok_then_draining(client: Client) -> None:
    response = await client.get("/api/health")
    assert response.status == 200 and await response.json() == {"status": "ok"}
    client.app[SERVICE] = ServiceState(draining=True)
    response = await client.get("/api/health")
    assert await response.json() == {"status": "draining"}


async def test_detail_needs_the_admin_token(client: Client) -> None:
    response = await client.get("/api/health?detail=1")
    assert response.status == 401
    response = await client.get(
        "/api/health?detail=1", headers={"Authorization": "Bearer wrong-token-0123456789"}
    )
    assert response.status == 401


async def test_detail_without_a_gateway(client: Client, auth_headers: dict[str, str]) -> None:
    response = await client.get("/api/health?detail=1", headers=auth_headers)
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "ok" and body["draining"] is False
    assert body["database"]["reachable"] is True and body["database"]["latency_ms"] >= 0
    assert body["sip"] == []


async def test_detail_shows_what_the_process_tells(
    aiohttp_client: Callable[..., Any], settings: Settings, auth_headers: dict[str, str]
) -> None:
    app = create_app(settings)
    detail = ProcessDetail(
        transports=[HealthTransport(transport="udp", address="127.0.0.1:5060")],
        mixer=HealthMixer(late_p99_ms=1.5, ticks=3000, window_seconds=60.0),
    )
    app[SERVICE] = ServiceState(draining=True, detail=lambda: detail)
    client = await aiohttp_client(app)
    response = await client.get("/api/health?detail=1", headers=auth_headers)
    body = await response.json()
    assert body == {
        "status": "draining",
        "draining": True,
        "database": body["database"],
        "sip": [{"transport": "udp", "address": "127.0.0.1:5060"}],
        "mixer": {"late_p99_ms": 1.5, "ticks": 3000, "window_seconds": 60.0},
    }
    assert body["database"]["reachable"] is True
    assert client.app[ENGINE] is not None


async def test_unreachable_database_is_reported_not_raised(tmp_path: Any) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'missing' / 'no.db'}")  # no such directory
    try:
        found = await database_reachable(engine)
    finally:
        engine.dispose()
    assert found.reachable is False and found.error
    assert (await database_reachable(None)).reachable is False
