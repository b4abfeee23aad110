"""REST API: live participants through the LiveCalls protocol (in-memory registry)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from api.live import InMemoryLiveCalls, LiveCalls, Participant, RoomObserver

Client = TestClient[Any, Any]
T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture
async def room(client: Client, auth_headers: dict[str, str], live: InMemoryLiveCalls) -> str:
    response = await client.post("/api/rooms", json={"name": "Live"}, headers=auth_headers)
    room_id: str = (await response.json())["id"]
    live.add(
        room_id,
        Participant("b", "Bob", "phone", "guest", "waiting", False, T0 + timedelta(seconds=5)),
    )
    live.add(room_id, Participant("a", "Ann", "sip", "organiser", "joined", False, T0))
    live.add(
        room_id,
        Participant(
            "c", "Cyd", "browser", "spectator", "joined", True,
            datetime(2026, 11, 23, 14, 0, 10, tzinfo=timezone(timedelta(hours=2))),
        ),
    )  # fmt: skip
    return room_id


async def test_empty_room_has_no_participants(client: Client, auth_headers: dict[str, str]) -> None:
    response = await client.post("/api/rooms", json={"name": "Empty"}, headers=auth_headers)
    room_id = (await response.json())["id"]
    response = await client.get(f"/api/rooms/{room_id}/participants", headers=auth_headers)
    assert response.status == 200
    assert await response.json() == []


async def test_list_participants(client: Client, auth_headers: dict[str, str], room: str) -> None:
    response = await client.get(f"/api/rooms/{room}/participants", headers=auth_headers)
    assert response.status == 200
    data = await response.json()
    assert [p["id"] for p in data] == ["a", "b", "c"]
    assert data[0] == {
        "id": "a",
        "display_name": "Ann",
        "kind": "sip",
        "role": "organiser",
        "state": "joined",
        "muted": False,
        "joined_at": "2026-11-23T12:00:00+00:00",
        "caller_number": None,
        "talking": False,
    }
    assert datetime.fromisoformat(data[2]["joined_at"]).utcoffset() == timedelta(hours=2)


async def test_mute_and_unmute(client: Client, auth_headers: dict[str, str], room: str) -> None:
    url = f"/api/rooms/{room}/participants/a/mute"
    response = await client.post(url, json={"muted": True}, headers=auth_headers)
    assert response.status == 200
    assert (await response.json())["muted"] is True
    response = await client.post(url, json={"muted": False}, headers=auth_headers)
    assert (await response.json())["muted"] is False


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({}, 422),
        ({"muted": "true"}, 422),
        ({"muted": 1}, 422),
        ({"muted": None}, 422),
        ({"muted": True, "extra": 1}, 422),
        ([True], 400),
    ],
)
async def test_mute_rejects_bad_bodies(
    client: Client, auth_headers: dict[str, str], room: str, body: Any, status: int
) -> None:
    url = f"/api/rooms/{room}/participants/a/mute"
    response = await client.post(url, json=body, headers=auth_headers)
    assert response.status == status
    assert "error" in await response.json()


async def test_mute_malformed_json(client: Client, auth_headers: dict[str, str], room: str) -> None:
    url = f"/api/rooms/{room}/participants/a/mute"
    response = await client.post(url, data=b"muted", headers=auth_headers)
    assert response.status == 400
    assert (await response.json())["error"]["code"] == "malformed_json"


async def test_admit(client: Client, auth_headers: dict[str, str], room: str) -> None:
    response = await client.post(f"/api/rooms/{room}/participants/b/admit", headers=auth_headers)
    assert response.status == 200
    assert (await response.json())["state"] == "joined"


async def test_remove(
    client: Client, auth_headers: dict[str, str], room: str, live: InMemoryLiveCalls
) -> None:
    response = await client.delete(f"/api/rooms/{room}/participants/b", headers=auth_headers)
    assert response.status == 204
    assert [p.id for p in await live.participants(room)] == ["a", "c"]
    response = await client.delete(f"/api/rooms/{room}/participants/b", headers=auth_headers)
    assert response.status == 404


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("POST", "/mute", {"muted": True}),
        ("POST", "/admit", None),
        ("DELETE", "", None),
    ],
)
async def test_unknown_participant_is_404(
    client: Client,
    auth_headers: dict[str, str],
    room: str,
    method: str,
    suffix: str,
    body: Any,
) -> None:
    url = f"/api/rooms/{room}/participants/zz{suffix}"
    response = await client.request(method, url, json=body, headers=auth_headers)
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "participant_not_found"


async def test_participant_of_another_room_is_404(
    client: Client, auth_headers: dict[str, str], room: str
) -> None:
    response = await client.post("/api/rooms", json={"name": "Other"}, headers=auth_headers)
    other = (await response.json())["id"]
    response = await client.post(f"/api/rooms/{other}/participants/a/admit", headers=auth_headers)
    assert response.status == 404


def test_in_memory_registry_satisfies_the_protocols() -> None:
    live: LiveCalls = InMemoryLiveCalls()
    assert isinstance(live, RoomObserver)
