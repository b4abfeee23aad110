"""Shared fixtures. Keep them generic: other test modules build on them.

Database tests ask for ``database_url``: a fresh SQLite file by default, or, when
``GATEWAY_TEST_DATABASE_URL`` is set (``postgresql://...``), that PostgreSQL database emptied
first. Every test using it is marked ``db`` so ``pytest -m db`` reruns just those on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine

from api.app import create_app
from api.live import InMemoryLiveCalls
from config import Settings
from dtmf.pin import PinGuard
from rooms.db import create_engine_for, upgrade
from tests.peers.fixtures import PeerFactory

TEST_DATABASE_ENV = "GATEWAY_TEST_DATABASE_URL"
ADMIN_TOKEN = "test-admin-token-0123456789"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "db: uses the database_url fixture (rerun on PostgreSQL by `pytest -m db`)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "database_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.db)


def reset_postgres(url: str) -> None:
    """Empty a PostgreSQL test database: other sessions ended, every table and type dropped."""
    import psycopg
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    with psycopg.connect(
        host=parsed.host or "127.0.0.1",
        port=parsed.port or 5432,
        user=parsed.username,
        password=parsed.password,
        dbname=parsed.database,
        autocommit=True,
    ) as conn:
        conn.execute("SET lock_timeout = '10s'")
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        conn.execute("DROP SCHEMA IF EXISTS public CASCADE")
        conn.execute("CREATE SCHEMA public")


def fresh_database_url(directory: Path) -> str:
    """A URL of an empty database: PostgreSQL if configured, else a new SQLite file."""
    pg = os.environ.get(TEST_DATABASE_ENV)
    if pg:
        reset_postgres(pg)
        return pg
    return f"sqlite:///{directory / 'gateway.db'}"


@pytest.fixture
def database_url(tmp_path: Path) -> Iterator[str]:
    yield fresh_database_url(tmp_path)


@pytest.fixture
def upgraded_engine(database_url: str) -> Iterator[Engine]:
    """An engine on an empty database upgraded to the newest schema."""
    engine = create_engine_for(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def metric_value(text: str, name: str, **labels: str) -> float:
    """The sum of the samples called ``name`` (``..._total``, ``..._bucket``) in Prometheus
    exposition ``text`` whose labels include ``labels``; 0 when there is none."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


@pytest.fixture
def admin_token() -> str:
    return ADMIN_TOKEN


@pytest.fixture
def auth_headers(admin_token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {admin_token}"}


@pytest.fixture
def make_settings(database_url: str, admin_token: str) -> Callable[..., Settings]:
    """Settings for a test app on the test database; keyword arguments override fields."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database_url": database_url,
            "admin_token": admin_token,
            "sip_domain": "gw.example.org",
            "public_url": "https://gw.example.org",
            "dialin_numbers": ("+33186950000", "+14155550100"),
        }
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
def peers(tmp_path: Path) -> Iterator[PeerFactory]:
    """Real SIP peers (PJSIP, baresip, sipp...) a test starts; all stopped at teardown."""
    with PeerFactory(tmp_path) as factory:
        yield factory


@pytest.fixture
def live() -> InMemoryLiveCalls:
    return InMemoryLiveCalls()


@pytest.fixture
async def client(
    aiohttp_client: Callable[..., Any], settings: Settings, live: InMemoryLiveCalls
) -> AsyncIterator[TestClient[Any, Any]]:
    """A test client of the whole web app (REST API and pages) on a fresh database."""
    yield await aiohttp_client(create_app(settings, live=live))


@contextmanager
def serve_in_thread(app: web.Application, host: str = "127.0.0.1") -> Iterator[str]:
    """Run ``app`` on a free localhost port in a thread of its own; yields its base URL.

    For clients that block (requests, schemathesis) and cannot share the test's event loop.
    """
    ready = threading.Event()
    state: dict[str, Any] = {}

    def run() -> None:
        loop = asyncio.new_event_loop()
        runner = web.AppRunner(app)
        try:
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, host, 0)
            loop.run_until_complete(site.start())
            server = site._server
            assert server is not None
            state["port"] = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
            stop = asyncio.Event()
            state["stop"] = lambda: loop.call_soon_threadsafe(stop.set)
        except BaseException as exc:
            state["error"] = exc
            ready.set()
            loop.run_until_complete(runner.cleanup())
            loop.close()
            return
        ready.set()
        loop.run_until_complete(stop.wait())
        loop.run_until_complete(runner.cleanup())
        loop.close()

    thread = threading.Thread(target=run, name="test-server", daemon=True)
    thread.start()
    ready.wait(30)
    if "error" in state:
        raise state["error"]
    try:
        yield f"http://{host}:{state['port']}"
    finally:
        state["stop"]()
        thread.join(30)


class FakeSip:
    """What the collector reads of ``SipCalls``: its legs, by call and by participant."""

    def __init__(self) -> None:
        self.legs: dict[Any, Any] = {}
        self.pin_guard = PinGuard(max_failures=2)

    def leg_of(self, participant_id: str) -> Any:
        return next((leg for leg in self.legs.values() if leg.member.id == participant_id), None)
