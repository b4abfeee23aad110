"""The join page: a valid link gets the page, anything else a readable 403."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient

Client = TestClient[Any, Any]


async def make_room(client: Client, headers: dict[str, str], **body: Any) -> dict[str, Any]:
    response = await client.post(
        "/api/rooms", json={"name": "<Team> & co", **body}, headers=headers
    )
    assert response.status == 201
    data: dict[str, Any] = await response.json()
    return data


def path_of(link: str) -> str:
    parts = urlsplit(link)
    return f"{parts.path}?{parts.query}"


@pytest.mark.parametrize("role", ["organiser", "guest", "spectator"])
async def test_valid_link_serves_the_join_page(
    client: Client, auth_headers: dict[str, str], role: str
) -> None:
    room = await make_room(client, auth_headers)
    response = await client.get(path_of(room["links"][role]))
    assert response.status == 200
    assert response.content_type == "text/html"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    page = await response.text()
    assert "id=name" in page and "id=join" in page
    assert "<div id=status role=status aria-live=polite></div>" in page  # empty until joined
    assert "&lt;Team&gt; &amp; co" in page and "<Team>" not in page
    assert f"<strong>{role}</strong>" in page


async def test_bad_links_get_a_readable_403(client: Client, auth_headers: dict[str, str]) -> None:
    room = await make_room(client, auth_headers)
    other = await make_room(client, auth_headers)
    number = room["number"]
    token = urlsplit(room["links"]["guest"]).query.removeprefix("token=")
    for path in [
        f"/join/{number}",
        f"/join/{number}?token=",
        f"/join/{number}?token=wrong",
        f"/join/{number}?token={token}x",
        f"/join/{other['number']}?token={token}",
        f"/join/1000000000?token={token}",
        f"/join/abc?token={token}",
    ]:
        response = await client.get(path)
        assert response.status == 403, path
        assert response.content_type == "text/html"
        assert "This link does not work" in await response.text()


async def test_inactive_or_deleted_room_link_is_403(
    client: Client, auth_headers: dict[str, str]
) -> None:
    room = await make_room(client, auth_headers)
    link = path_of(room["links"]["guest"])
    await client.patch(f"/api/rooms/{room['id']}", json={"active": False}, headers=auth_headers)
    response = await client.get(link)
    assert response.status == 403
    assert "not open" in await response.text()
    await client.patch(f"/api/rooms/{room['id']}", json={"active": True}, headers=auth_headers)
    assert (await client.get(link)).status == 200
    await client.delete(f"/api/rooms/{room['id']}", headers=auth_headers)
    assert (await client.get(link)).status == 403


async def test_link_outside_the_window_is_403(client: Client, auth_headers: dict[str, str]) -> None:
    now = datetime.now(UTC)
    later = await make_room(
        client, auth_headers, permanent=False, starts_at=(now + timedelta(hours=1)).isoformat()
    )
    assert (await client.get(path_of(later["links"]["guest"]))).status == 403
    ended = await make_room(
        client,
        auth_headers,
        permanent=False,
        starts_at=(now - timedelta(hours=2)).isoformat(),
        ends_at=(now - timedelta(hours=1)).isoformat(),
    )
    assert (await client.get(path_of(ended["links"]["guest"]))).status == 403
    current = await make_room(
        client,
        auth_headers,
        permanent=False,
        starts_at=(now - timedelta(minutes=1)).isoformat(),
        ends_at=(now + timedelta(hours=1)).isoformat(),
    )
    assert (await client.get(path_of(current["links"]["guest"]))).status == 200
