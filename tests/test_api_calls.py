"""Call records over the REST API: paging, filters, CSV export, who may read them, and bad
query values answered 422 (never 500)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient

from api.calls import CALL_RECORDS, CSV_COLUMNS

Client = TestClient[Any, Any]
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def token(room: dict[str, Any], role: str) -> str:
    return urlsplit(room["links"][role]).query.removeprefix("token=")


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


@pytest.fixture
async def rooms(client: Client, auth_headers: dict[str, str]) -> list[dict[str, Any]]:
    made = []
    for name in ("A", "B"):
        response = await client.post("/api/rooms", json={"name": name}, headers=auth_headers)
        made.append(await response.json())
    store = client.app[CALL_RECORDS]
    rows = []
    for i in range(7):
        room = made[i % 2]
        rows.append(
            {
                "id": f"leg{i}",
                "room_id": room["id"],
                "kind": "phone",
                "display_name": '=HYPERLINK("x")' if i == 6 else f"caller {i}",
                "caller_number": "+33612345678",
                "codec": "PCMA",
                "call_id": f"call-{i}@pbx",
                "node": "host:5060",
                "started_at": T0 + timedelta(minutes=i),
                "answered_at": T0 + timedelta(minutes=i, seconds=1),
                "ended_at": T0 + timedelta(minutes=i, seconds=31),
                "duration_seconds": 30.0,
                "end_reason": "hangup",
                "packets_received": 1500,
                "packets_sent": 1499,
                "packets_lost": 3,
            }
        )
    store.save(rows)
    return made


async def test_admin_pages_every_room_newest_first(
    client: Client, auth_headers: dict[str, str], rooms: list[dict[str, Any]]
) -> None:
    response = await client.get("/api/calls?limit=4", headers=auth_headers)
    assert response.status == 200
    first = await response.json()
    assert [c["id"] for c in first["calls"]] == ["leg6", "leg5", "leg4", "leg3"]
    assert first["next"]
    response = await client.get(f"/api/calls?limit=4&cursor={first['next']}", headers=auth_headers)
    second = await response.json()
    assert [c["id"] for c in second["calls"]] == ["leg2", "leg1", "leg0"]
    assert second["next"] is None
    record = second["calls"][-1]
    assert record == {
        "id": "leg0",
        "room_id": rooms[0]["id"],
        "kind": "phone",
        "display_name": "caller 0",
        "caller_number": "+33612345678",
        "codec": "PCMA",
        "call_id": "call-0@pbx",
        "started_at": "2026-12-01T09:00:00+00:00",
        "answered_at": "2026-12-01T09:00:01+00:00",
        "ended_at": "2026-12-01T09:00:31+00:00",
        "duration_seconds": 30.0,
        "end_reason": "hangup",
        "packets_received": 1500,
        "packets_sent": 1499,
        "packets_lost": 3,
    }


async def test_filters_by_room_and_time(
    client: Client, auth_headers: dict[str, str], rooms: list[dict[str, Any]]
) -> None:
    room_b = rooms[1]["id"]
    response = await client.get(f"/api/calls?room={room_b}", headers=auth_headers)
    assert [c["id"] for c in (await response.json())["calls"]] == ["leg5", "leg3", "leg1"]
    response = await client.get(
        "/api/calls",
        params={"since": "2026-12-01T10:02:00+01:00", "until": "2026-12-01T09:05:00Z"},
        headers=auth_headers,
    )
    assert [c["id"] for c in (await response.json())["calls"]] == ["leg4", "leg3", "leg2"]
    response = await client.get(  # until before since: nothing, not an error
        "/api/calls?since=2026-12-02T00:00:00Z&until=2026-12-01T00:00:00z", headers=auth_headers
    )
    assert (response.status, (await response.json())["calls"]) == (200, [])
    response = await client.get(f"/api/rooms/{rooms[0]['id']}/calls", headers=auth_headers)
    assert [c["id"] for c in (await response.json())["calls"]] == ["leg6", "leg4", "leg2", "leg0"]


async def test_organiser_sees_its_own_room_only(
    client: Client, rooms: list[dict[str, Any]]
) -> None:
    a, b = rooms
    mine = await client.get(f"/api/rooms/{a['id']}/calls", headers=bearer(token(a, "organiser")))
    assert mine.status == 200
    assert {c["room_id"] for c in (await mine.json())["calls"]} == {a["id"]}
    other = await client.get(f"/api/rooms/{b['id']}/calls", headers=bearer(token(a, "organiser")))
    assert other.status == 403
    guest = await client.get(f"/api/rooms/{a['id']}/calls", headers=bearer(token(a, "guest")))
    assert guest.status == 403
    every = await client.get("/api/calls", headers=bearer(token(a, "organiser")))
    assert every.status == 403
    assert (await client.get("/api/calls")).status == 401


async def test_unknown_room_is_404(client: Client, auth_headers: dict[str, str]) -> None:
    response = await client.get("/api/rooms/nope/calls", headers=auth_headers)
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "room_not_found"


async def test_csv_export_has_every_record_and_defuses_formulas(
    client: Client, auth_headers: dict[str, str], rooms: list[dict[str, Any]]
) -> None:
    response = await client.get("/api/calls?format=csv&limit=2", headers=auth_headers)
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(await response.text())))
    assert tuple(table[0]) == CSV_COLUMNS
    assert [line[0] for line in table[1:]] == [f"leg{i}" for i in reversed(range(7))]
    by_id = {line[0]: dict(zip(CSV_COLUMNS, line, strict=True)) for line in table[1:]}
    assert by_id["leg6"]["display_name"] == '\'=HYPERLINK("x")'
    assert by_id["leg0"]["caller_number"] == "+33612345678"  # E.164 is left as it is
    assert by_id["leg0"]["duration_seconds"] == "30.0"
    assert by_id["leg0"]["ended_at"] == "2026-12-01T09:00:31+00:00"
    response = await client.get(
        f"/api/rooms/{rooms[1]['id']}/calls?format=csv", headers=auth_headers
    )
    assert len(list(csv.reader(io.StringIO(await response.text())))) == 1 + 3


@pytest.mark.parametrize(
    "query",
    [
        "since=yesterday",
        "since=2026-12-01T09:00:00",  # no offset
        "until=0001-01-01T00:00:00%2B01:00",  # out of range once in UTC
        "limit=0",
        "limit=1001",
        "limit=-1",
        "limit=abc",
        "limit=" + "9" * 5000,
        "format=xml",
        "cursor=garbage",
        "cursor=MjAyNi0xMi0wMVQwOTowMDowMA",  # a time with no id
        "snice=2026-12-01T09:00:00Z",  # misspelt: not "list everything"
    ],
)
async def test_bad_query_values_are_422(
    client: Client, auth_headers: dict[str, str], query: str
) -> None:
    for path in ("/api/calls",):
        response = await client.get(f"{path}?{query}", headers=auth_headers)
        assert response.status == 422, await response.text()
        code = (await response.json())["error"]["code"]
        assert code in ("invalid_query", "invalid_cursor", "datetime_out_of_range")


async def test_a_room_listing_takes_no_room_parameter(
    client: Client, auth_headers: dict[str, str], rooms: list[dict[str, Any]]
) -> None:
    other = rooms[1]["id"]
    response = await client.get(
        f"/api/rooms/{rooms[0]['id']}/calls?room={other}", headers=auth_headers
    )
    assert response.status == 422
    assert (await response.json())["error"]["code"] == "invalid_query"


async def test_listed_in_the_openapi_document(client: Client) -> None:
    doc = await (await client.get("/api/openapi.json")).json()
    listing = doc["paths"]["/api/calls"]["get"]
    assert {p["name"] for p in listing["parameters"]} >= {"since", "until", "room", "cursor"}
    assert set(listing["responses"]["200"]["content"]) == {"application/json", "text/csv"}
    assert "get" in doc["paths"]["/api/rooms/{id}/calls"]
    assert "CallRecordOut" in doc["components"]["schemas"]
