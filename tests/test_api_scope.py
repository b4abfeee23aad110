"""Organiser link tokens are scoped: one room's organiser may read and moderate that room
only; guest and spectator tokens moderate nothing; the admin token may do everything."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient

from api.live import InMemoryLiveCalls, Participant

Client = TestClient[Any, Any]


def token(room: dict[str, Any], role: str) -> str:
    return urlsplit(room["links"][role]).query.removeprefix("token=")


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


@pytest.fixture
async def rooms(
    client: Client, auth_headers: dict[str, str], live: InMemoryLiveCalls
) -> tuple[dict[str, Any], dict[str, Any]]:
    made = []
    for name in ("A", "B"):
        response = await client.post("/api/rooms", json={"name": name}, headers=auth_headers)
        made.append(await response.json())
    now = datetime(2026, 12, 1, tzinfo=UTC)
    for room in made:
        for pid, state in (("joined", "joined"), ("waiting", "waiting")):
            live.add(room["id"], Participant(pid, pid, "sip", "guest", state, False, now))
    return made[0], made[1]


def calls(room_id: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    p = f"/api/rooms/{room_id}/participants"
    return [
        ("GET", f"/api/rooms/{room_id}", None),
        ("GET", p, None),
        ("POST", f"{p}/joined/mute", {"muted": True}),
        ("POST", f"{p}/waiting/admit", None),
        ("DELETE", f"{p}/joined", None),
    ]


async def test_organiser_token_moderates_its_own_room(
    client: Client, rooms: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    a, _ = rooms
    headers = bearer(token(a, "organiser"))
    for method, path, body in calls(a["id"]):
        response = await client.request(method, path, json=body, headers=headers)
        assert response.status in (200, 204), (method, path, await response.text())


async def test_organiser_token_of_another_room_gets_403_everywhere(
    client: Client, rooms: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    a, b = rooms
    for role in ("organiser", "guest", "spectator"):
        headers = bearer(token(b, role))
        for method, path, body in calls(a["id"]):
            response = await client.request(method, path, json=body, headers=headers)
            assert response.status == 403, (role, method, path)
            assert (await response.json())["error"]["code"] == "forbidden"
    # guest and spectator tokens cannot moderate their own room either
    for role in ("guest", "spectator"):
        response = await client.get(
            f"/api/rooms/{a['id']}/participants", headers=bearer(token(a, role))
        )
        assert response.status == 403


async def test_admin_only_routes_refuse_every_link_token(
    client: Client, rooms: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    a, _ = rooms
    headers = bearer(token(a, "organiser"))
    for method, path, body in [
        ("GET", "/api/rooms", None),
        ("POST", "/api/rooms", {"name": "x"}),
        ("PATCH", f"/api/rooms/{a['id']}", {"name": "renamed"}),
        ("DELETE", f"/api/rooms/{a['id']}", None),
    ]:
        response = await client.request(method, path, json=body, headers=headers)
        assert response.status == 403, (method, path)
    response = await client.get(f"/api/rooms/{a['id']}", headers=bearer("made-up-token-xyz"))
    assert response.status == 401
    response = await client.get(f"/api/rooms/{a['id']}", headers=bearer(token(a, "organiser")))
    assert (await response.json())["name"] == "A"  # the room was not renamed


async def test_refuse_turns_a_waiting_participant_away(
    client: Client,
    auth_headers: dict[str, str],
    rooms: tuple[dict[str, Any], dict[str, Any]],
    live: InMemoryLiveCalls,
) -> None:
    a, _ = rooms
    base = f"/api/rooms/{a['id']}/participants"
    response = await client.post(f"{base}/joined/refuse", headers=auth_headers)
    assert response.status == 409
    assert (await response.json())["error"]["code"] == "not_waiting"
    response = await client.post(f"{base}/nobody/refuse", headers=auth_headers)
    assert response.status == 404
    response = await client.post(f"{base}/waiting/refuse", headers=bearer(token(a, "organiser")))
    assert response.status == 204
    assert [p.id for p in await live.participants(a["id"])] == ["joined"]


async def test_admit_all_mute_all_and_ask_unmute(
    client: Client,
    auth_headers: dict[str, str],
    rooms: tuple[dict[str, Any], dict[str, Any]],
    live: InMemoryLiveCalls,
) -> None:
    a, _ = rooms
    now = datetime(2026, 12, 1, tzinfo=UTC)
    live.add(a["id"], Participant("host", "Host", "browser", "organiser", "joined", False, now))
    live.add(a["id"], Participant("watch", "W", "browser", "spectator", "joined", True, now))
    headers = bearer(token(a, "organiser"))
    base = f"/api/rooms/{a['id']}/participants"
    response = await client.post(f"/api/rooms/{a['id']}/admit-all", headers=headers)
    assert [p["id"] for p in await response.json()] == ["waiting"]
    response = await client.post(
        f"/api/rooms/{a['id']}/mute-all", json={"muted": True}, headers=headers
    )
    assert sorted(p["id"] for p in await response.json()) == ["joined", "waiting"]
    state = {p.id: p.muted for p in await live.participants(a["id"])}
    assert state == {"joined": True, "waiting": True, "host": False, "watch": True}
    assert (await client.post(f"{base}/joined/ask-unmute", headers=headers)).status == 204
    assert (await client.post(f"{base}/host/ask-unmute", headers=headers)).status == 409
    assert (await client.post(f"{base}/watch/ask-unmute", headers=headers)).status == 409
    assert (await client.post(f"{base}/nobody/ask-unmute", headers=headers)).status == 404
    response = await client.post(
        f"/api/rooms/{a['id']}/mute-all", json={"muted": "yes"}, headers=headers
    )
    assert response.status == 422


async def test_a_token_in_the_url_counts_for_websockets_only(
    client: Client, rooms: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    a, _ = rooms
    response = await client.get(f"/api/rooms/{a['id']}/participants?token={token(a, 'organiser')}")
    assert response.status == 401  # plain requests send it in Authorization
