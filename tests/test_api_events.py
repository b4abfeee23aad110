"""The room events socket: ordered events for its room only, scoped tokens, slow readers
dropped rather than buffered for ever."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from api import events as events_module
from api.events import EVENTS, EventHub
from api.live import Participant

Client = TestClient[Any, Any]


def token(room: dict[str, Any], role: str) -> str:
    return urlsplit(room["links"][role]).query.removeprefix("token=")


async def make_room(client: Client, headers: dict[str, str], name: str) -> dict[str, Any]:
    response = await client.post("/api/rooms", json={"name": name}, headers=headers)
    return dict(await response.json())


def someone(pid: str = "p1") -> Participant:
    return Participant(pid, "Ann", "sip", "guest", "joined", False, datetime.now(UTC))


async def test_events_stream_in_order_for_their_room_only(
    client: Client, auth_headers: dict[str, str]
) -> None:
    a = await make_room(client, auth_headers, "A")
    b = await make_room(client, auth_headers, "B")
    hub = client.app[EVENTS]
    ws = await client.ws_connect(f"/api/rooms/{a['id']}/events?token={token(a, 'organiser')}")
    admin_ws = await client.ws_connect(f"/api/rooms/{a['id']}/events", headers=auth_headers)
    for _ in range(50):
        if hub.watchers(a["id"]) == 2:
            break
        await asyncio.sleep(0.01)
    hub.publish("joined", a["id"], someone())
    hub.publish("joined", b["id"], someone("other-room"))
    hub.publish("muted", a["id"], someone())
    hub.publish("left", a["id"], someone())
    for sock in (ws, admin_ws):
        got = [await sock.receive_json(timeout=2) for _ in range(3)]
        assert [e["type"] for e in got] == ["joined", "muted", "left"]
        assert all(e["room_id"] == a["id"] and e["participant"]["id"] == "p1" for e in got)
        assert datetime.fromisoformat(got[0]["at"]).tzinfo is not None
        await sock.close()
    with pytest.raises(ValueError):
        hub.publish("exploded", a["id"], someone())


@pytest.mark.parametrize("role", ["guest", "spectator", "organiser-of-b"])
async def test_events_need_the_rooms_organiser_or_admin(
    client: Client, auth_headers: dict[str, str], role: str
) -> None:
    a = await make_room(client, auth_headers, "A")
    b = await make_room(client, auth_headers, "B")
    secret = token(b, "organiser") if role == "organiser-of-b" else token(a, role)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect(f"/api/rooms/{a['id']}/events?token={secret}")
    assert refused.value.status == 403
    with pytest.raises(aiohttp.WSServerHandshakeError) as unknown:
        await client.ws_connect("/api/rooms/nope/events", headers=auth_headers)
    assert unknown.value.status == 404


async def test_a_reader_that_falls_behind_is_dropped(
    client: Client, auth_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(events_module, "QUEUE", 5)
    a = await make_room(client, auth_headers, "A")
    hub: EventHub = client.app[EVENTS]
    sub = hub.subscribe(a["id"])  # a subscriber that never reads
    for _ in range(20):
        hub.publish("talking_started", a["id"], someone())  # never blocks, never raises
    assert sub.overflowed and hub.dropped_subscribers == 1
    assert sub.queue.qsize() <= 5
    hub.unsubscribe(sub)
    assert hub.watchers(a["id"]) == 0
