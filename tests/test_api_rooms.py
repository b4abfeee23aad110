"""REST API: rooms, health, errors and authentication."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from api.app import STORE, create_app
from api.live import InMemoryLiveCalls, Participant
from config import Settings
from rooms import numbers

Client = TestClient[Any, Any]
ROOM_KEYS = {
    "id", "name", "number", "sip_uri", "dial_in", "pin", "host_pin", "permanent", "starts_at",
    "ends_at", "active", "waiting_room", "wait_for_host", "locked", "links", "created_at",
}  # fmt: skip


async def create(client: Client, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = await client.post("/api/rooms", json={"name": "Room", **body}, headers=headers)
    assert response.status == 201, await response.text()
    data: dict[str, Any] = await response.json()
    return data


def assert_error(data: Any, code: str | None = None) -> None:
    assert set(data) == {"error"} and set(data["error"]) == {"code", "message"}
    assert data["error"]["code"].replace("_", "").isalpha()
    assert data["error"]["code"] == data["error"]["code"].lower()
    assert data["error"]["message"]
    if code is not None:
        assert data["error"]["code"] == code


async def test_health_is_public(client: Client) -> None:
    response = await client.get("/api/health")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_create_room_matches_the_contract(
    client: Client, auth_headers: dict[str, str], settings: Settings
) -> None:
    room = await create(client, auth_headers, name="Weekly review", pin="4321")
    assert set(room) == ROOM_KEYS
    number = room["number"]
    assert numbers.is_room_number(number)
    assert room["name"] == "Weekly review"
    assert room["sip_uri"] == f"sip:{number}@gw.example.org"
    assert room["dial_in"] == {"numbers": ["+33186950000", "+14155550100"], "code": number}
    assert (room["pin"], room["host_pin"]) == ("4321", None)
    assert room["permanent"] is True and room["active"] is True
    assert room["starts_at"] is None and room["ends_at"] is None
    assert room["waiting_room"] is False and room["wait_for_host"] is False
    assert room["locked"] is False
    assert set(room["links"]) == {"organiser", "guest", "spectator"}
    prefix = f"https://gw.example.org/join/{number}?token="
    tokens = {link.removeprefix(prefix) for link in room["links"].values()}
    assert all(link.startswith(prefix) for link in room["links"].values())
    assert len(tokens) == 3 and all(len(t) >= 22 for t in tokens)
    created = datetime.fromisoformat(room["created_at"])
    assert created.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - created) < timedelta(minutes=1)


async def test_create_with_every_field(client: Client, auth_headers: dict[str, str]) -> None:
    room = await create(
        client,
        auth_headers,
        name="Board",
        permanent=False,
        starts_at="2026-12-01T09:00:00+01:00",
        ends_at="2026-12-01T11:00:00+01:00",
        pin="1234",
        host_pin="98765",
        waiting_room=True,
        wait_for_host=True,
    )
    assert room["starts_at"] == "2026-12-01T09:00:00+01:00"
    assert room["ends_at"] == "2026-12-01T11:00:00+01:00"
    assert room["permanent"] is False
    assert (room["pin"], room["host_pin"], room["waiting_room"], room["wait_for_host"]) == (
        "1234",
        "98765",
        True,
        True,
    )


async def test_concurrent_requests(client: Client, auth_headers: dict[str, str]) -> None:
    rooms = await asyncio.gather(*(create(client, auth_headers, name=f"r{i}") for i in range(20)))
    assert len({room["number"] for room in rooms}) == 20
    responses = await asyncio.gather(
        *(
            client.patch(f"/api/rooms/{room['id']}", json={"pin": "2222"}, headers=auth_headers)
            for room in rooms
        )
    )
    assert [r.status for r in responses] == [200] * 20


async def test_scheduled_room_activity(client: Client, auth_headers: dict[str, str]) -> None:
    now = datetime.now(UTC)
    open_now = await create(
        client,
        auth_headers,
        permanent=False,
        starts_at=(now - timedelta(hours=1)).isoformat(),
        ends_at=(now + timedelta(hours=1)).isoformat(),
    )
    assert open_now["active"] is True
    later = await create(
        client, auth_headers, permanent=False, starts_at=(now + timedelta(days=2)).isoformat()
    )
    assert later["active"] is False
    past = await create(
        client,
        auth_headers,
        permanent=False,
        starts_at="2020-01-01T10:00:00-05:00",
    )
    assert past["active"] is False
    assert past["ends_at"] == "2020-01-02T00:00:00-05:00"  # midnight of the start day


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({}, "validation_error"),
        ({"name": ""}, "validation_error"),
        ({"name": "x" * 201}, "validation_error"),
        ({"name": 12}, "validation_error"),
        ({"name": None}, "validation_error"),
        ({"name": "a\u0000b"}, "validation_error"),
        ({"name": "x", "permanent": "false"}, "validation_error"),
        ({"name": "x", "permanent": 0}, "validation_error"),
        ({"name": "x", "waiting_room": "yes"}, "validation_error"),
        ({"name": "x", "pin": "123"}, "validation_error"),
        ({"name": "x", "pin": "12345678901"}, "validation_error"),
        ({"name": "x", "pin": 1234}, "validation_error"),
        ({"name": "x", "pin": "12a4"}, "validation_error"),
        ({"name": "x", "host_pin": "1"}, "validation_error"),
        ({"name": "x", "pin": "1234", "host_pin": "1234"}, "host_pin_equals_pin"),
        ({"name": "x", "permanent": False}, "starts_at_required"),
        ({"name": "x", "permanent": False, "starts_at": "2026-01-01T10:00:00"}, "validation_error"),
        ({"name": "x", "permanent": False, "starts_at": "tomorrow"}, "validation_error"),
        ({"name": "x", "permanent": False, "starts_at": 1767261600}, "validation_error"),
        (
            {
                "name": "x",
                "permanent": False,
                "starts_at": "2026-01-01T10:00:00+00:00",
                "ends_at": "2026-01-01T09:00:00+00:00",
            },
            "ends_before_start",
        ),
        (
            {
                "name": "x",
                "permanent": False,
                "starts_at": "2026-01-01T10:00:00+00:00",
                "ends_at": "2026-01-01T11:00:00",
            },
            "validation_error",
        ),
        ({"name": "x", "starts_at": "2026-01-01T10:00:00+00:00"}, "schedule_on_permanent_room"),
        ({"name": "x", "colour": "red"}, "validation_error"),
        ({"name": "   "}, "validation_error"),
        ({"name": "\t\n "}, "validation_error"),
        ({"name": "x", "number": "1234567890"}, "validation_error"),
    ],
)
async def test_create_rejects_bad_bodies(
    client: Client, auth_headers: dict[str, str], body: dict[str, Any], code: str
) -> None:
    response = await client.post("/api/rooms", json=body, headers=auth_headers)
    assert response.status == 422, body
    assert_error(await response.json(), code)


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b"", "malformed_json"),
        (b"{", "malformed_json"),
        (b"{'name': 'x'}", "malformed_json"),
        (b"\xff\xfe", "malformed_json"),
        (b'{"name": "\\ud800"}', "malformed_json"),
        (b"[" * 5000, "malformed_json"),
        (b'["name"]', "body_not_object"),
        (b'"room"', "body_not_object"),
        (b"null", "body_not_object"),
        (b"42", "body_not_object"),
    ],
)
async def test_create_rejects_malformed_json(
    client: Client, auth_headers: dict[str, str], raw: bytes, code: str
) -> None:
    headers = {**auth_headers, "Content-Type": "application/json"}
    response = await client.post("/api/rooms", data=raw, headers=headers)
    assert response.status == 400
    assert_error(await response.json(), code)


async def test_too_large_body_is_a_json_error(client: Client, auth_headers: dict[str, str]) -> None:
    response = await client.post(
        "/api/rooms", data=b'{"name": "' + b"x" * 100_000 + b'"}', headers=auth_headers
    )
    assert response.status == 413
    assert_error(await response.json(), "payload_too_large")


async def test_list_get_patch_delete(
    client: Client, auth_headers: dict[str, str], live: InMemoryLiveCalls
) -> None:
    first = await create(client, auth_headers, name="One")
    second = await create(client, auth_headers, name="Two")
    response = await client.get("/api/rooms", headers=auth_headers)
    assert response.status == 200
    assert [r["id"] for r in await response.json()] == [first["id"], second["id"]]

    response = await client.get(f"/api/rooms/{first['id']}", headers=auth_headers)
    assert response.status == 200 and await response.json() == first

    response = await client.patch(
        f"/api/rooms/{first['id']}",
        json={"name": "Uno", "pin": "5555", "host_pin": "66666", "wait_for_host": True},
        headers=auth_headers,
    )
    assert response.status == 200
    patched = await response.json()
    assert (patched["name"], patched["pin"], patched["host_pin"], patched["wait_for_host"]) == (
        "Uno",
        "5555",
        "66666",
        True,
    )
    assert patched["number"] == first["number"] and patched["links"] == first["links"]
    assert live.changed == [first["id"]]

    response = await client.patch(
        f"/api/rooms/{first['id']}", json={"active": False}, headers=auth_headers
    )
    assert (await response.json())["active"] is False
    response = await client.patch(
        f"/api/rooms/{first['id']}", json={"pin": None, "active": True}, headers=auth_headers
    )
    data = await response.json()
    assert data["active"] is True and data["pin"] is None and data["host_pin"] == "66666"

    live.add(
        first["id"],
        Participant("p1", "Ann", "sip", "guest", "joined", False, datetime.now(UTC)),
    )
    response = await client.delete(f"/api/rooms/{first['id']}", headers=auth_headers)
    assert response.status == 204
    assert live.ended == [first["id"]]
    assert await live.participants(first["id"]) == []
    response = await client.get(f"/api/rooms/{first['id']}", headers=auth_headers)
    assert response.status == 404
    assert_error(await response.json(), "room_not_found")
    response = await client.get("/api/rooms", headers=auth_headers)
    assert [r["id"] for r in await response.json()] == [second["id"]]


async def test_patch_schedule(client: Client, auth_headers: dict[str, str]) -> None:
    room = await create(client, auth_headers)
    url = f"/api/rooms/{room['id']}"
    response = await client.patch(
        url,
        json={"permanent": False, "starts_at": "2030-05-05T23:00:00+02:00"},
        headers=auth_headers,
    )
    assert response.status == 200
    data = await response.json()
    assert data["ends_at"] == "2030-05-06T00:00:00+02:00" and data["active"] is False
    response = await client.patch(url, json={"permanent": True}, headers=auth_headers)
    data = await response.json()
    assert data["permanent"] is True and data["starts_at"] is None and data["active"] is True


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"name": None}, 422, "validation_error"),
        ({"name": ""}, 422, "validation_error"),
        ({"name": "  "}, 422, "validation_error"),
        ({"active": "no"}, 422, "validation_error"),
        ({"permanent": None}, 422, "validation_error"),
        ({"pin": "12"}, 422, "validation_error"),
        ({"host_pin": "1111"}, 422, "host_pin_equals_pin"),
        ({"permanent": False}, 422, "starts_at_required"),
        ({"starts_at": "2026-01-01T10:00:00"}, 422, "validation_error"),
        ({"starts_at": "2026-01-01T10:00:00+00:00"}, 422, "schedule_on_permanent_room"),
        ({"id": "other"}, 422, "validation_error"),
        ({"number": "1234567890"}, 422, "validation_error"),
    ],
)
async def test_patch_rejects_bad_changes(
    client: Client, auth_headers: dict[str, str], body: dict[str, Any], status: int, code: str
) -> None:
    room = await create(client, auth_headers, pin="1111")
    response = await client.patch(f"/api/rooms/{room['id']}", json=body, headers=auth_headers)
    assert response.status == status
    assert_error(await response.json(), code)
    response = await client.get(f"/api/rooms/{room['id']}", headers=auth_headers)
    assert await response.json() == room


async def test_patch_malformed_json(client: Client, auth_headers: dict[str, str]) -> None:
    room = await create(client, auth_headers)
    response = await client.patch(f"/api/rooms/{room['id']}", data=b"{x", headers=auth_headers)
    assert response.status == 400
    assert_error(await response.json(), "malformed_json")
    response = await client.patch(f"/api/rooms/{room['id']}", json=[1], headers=auth_headers)
    assert response.status == 400
    assert_error(await response.json(), "body_not_object")


async def test_empty_patch_changes_nothing(client: Client, auth_headers: dict[str, str]) -> None:
    room = await create(client, auth_headers)
    response = await client.patch(f"/api/rooms/{room['id']}", json={}, headers=auth_headers)
    assert response.status == 200
    assert await response.json() == room


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/rooms/unknown"),
        ("PATCH", "/api/rooms/unknown"),
        ("DELETE", "/api/rooms/unknown"),
        ("GET", "/api/rooms/unknown/participants"),
        ("POST", "/api/rooms/unknown/participants/p/mute"),
        ("POST", "/api/rooms/unknown/participants/p/admit"),
        ("DELETE", "/api/rooms/unknown/participants/p"),
    ],
)
async def test_unknown_room_is_404(
    client: Client, auth_headers: dict[str, str], method: str, path: str
) -> None:
    body = {"muted": True} if path.endswith("mute") else {}
    response = await client.request(method, path, json=body, headers=auth_headers)
    assert response.status == 404
    assert_error(await response.json(), "room_not_found")


async def test_unknown_route_and_method_are_json(
    client: Client, auth_headers: dict[str, str]
) -> None:
    response = await client.get("/api/nothing", headers=auth_headers)
    assert response.status == 404
    assert_error(await response.json(), "not_found")
    response = await client.get("/nothing")
    assert response.status == 404
    assert_error(await response.json(), "not_found")
    response = await client.put("/api/rooms", headers=auth_headers)
    assert response.status == 405
    assert "POST" in response.headers["Allow"]
    assert_error(await response.json(), "method_not_allowed")


ROUTES = [
    ("POST", "/api/rooms"),
    ("GET", "/api/rooms"),
    ("GET", "/api/rooms/x"),
    ("PATCH", "/api/rooms/x"),
    ("DELETE", "/api/rooms/x"),
    ("GET", "/api/rooms/x/participants"),
    ("POST", "/api/rooms/x/participants/p/mute"),
    ("POST", "/api/rooms/x/participants/p/admit"),
    ("DELETE", "/api/rooms/x/participants/p"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
@pytest.mark.parametrize(
    ("header", "code"),
    [
        (None, "missing_token"),
        ("Bearer wrong-token", "invalid_token"),
        ("Bearer ", "invalid_token"),
        ("Basic dXNlcjpwYXNz", "invalid_token"),
        ("test-admin-token-0123456789", "invalid_token"),
    ],
)
async def test_every_admin_route_needs_the_token(
    client: Client, method: str, path: str, header: str | None, code: str
) -> None:
    headers = {} if header is None else {"Authorization": header}
    response = await client.request(method, path, json={"name": "x"}, headers=headers)
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert_error(await response.json(), code)


async def test_bearer_scheme_is_case_insensitive(client: Client, admin_token: str) -> None:
    response = await client.get("/api/rooms", headers={"Authorization": f"bearer {admin_token}"})
    assert response.status == 200


async def test_unexpected_errors_are_500_without_details(
    aiohttp_client: Callable[..., Any],
    settings: Settings,
    auth_headers: dict[str, str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken(InMemoryLiveCalls):
        async def participants(self, room_id: str) -> list[Participant]:
            raise RuntimeError("secret internals")

    client = await aiohttp_client(create_app(settings, live=Broken()))
    room = await create(client, auth_headers)
    response = await client.get(f"/api/rooms/{room['id']}/participants", headers=auth_headers)
    assert response.status == 500
    data = await response.json()
    assert_error(data, "internal_error")
    assert "secret" not in await response.text() and "Traceback" not in await response.text()
    assert "secret internals" in caplog.text


async def test_deleted_number_is_not_reused_through_the_api(
    client: Client, auth_headers: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    first = await create(client, auth_headers)
    draws = iter([first["number"], "7000000007"])
    monkeypatch.setattr(numbers, "random_number", lambda: next(draws))
    response = await client.delete(f"/api/rooms/{first['id']}", headers=auth_headers)
    assert response.status == 204
    second = await create(client, auth_headers)
    assert second["number"] == "7000000007"


async def test_a_room_survives_a_restart(
    aiohttp_client: Callable[..., Any], settings: Settings, auth_headers: dict[str, str]
) -> None:
    client = await aiohttp_client(create_app(settings))
    room = await create(client, auth_headers, name="Persistent", pin="2468")
    await client.close()

    client = await aiohttp_client(create_app(settings))
    response = await client.get(f"/api/rooms/{room['id']}", headers=auth_headers)
    assert response.status == 200
    again = await response.json()
    assert again == room
    store = client.app[STORE]
    found = store.find_by_number(room["number"])
    assert found is not None and found.id == room["id"]


async def test_admin_token_generated_once_and_reused(
    aiohttp_client: Callable[..., Any],
    make_settings: Callable[..., Settings],
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = make_settings(admin_token=None)
    client = await aiohttp_client(create_app(settings))
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("Admin token: ")]
    assert len(lines) == 1
    token = lines[0].removeprefix("Admin token: ")
    response = await client.get("/api/rooms", headers={"Authorization": f"Bearer {token}"})
    assert response.status == 200
    await client.close()

    client = await aiohttp_client(create_app(settings))
    assert "Admin token" not in capsys.readouterr().out
    response = await client.get("/api/rooms", headers={"Authorization": f"Bearer {token}"})
    assert response.status == 200
    response = await client.get("/api/rooms", headers={"Authorization": "Bearer other"})
    assert response.status == 401
