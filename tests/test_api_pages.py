"""The join page: a valid link gets the page, anything else a readable 403; its client script."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient

from api.pages import LANGS, TEXTS, join_html, pick_lang

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


# -- the join page's client ------------------------------------------------------------------
JS_FILE = Path(__file__).resolve().parent.parent / "api" / "static" / "join.js"


def config_of(page: str) -> dict[str, Any]:
    match = re.search(r'<script id=join-config type="application/json">(.*?)</script>', page)
    assert match is not None
    data: dict[str, Any] = json.loads(match.group(1))
    return data


async def guest_page(client: Client, headers: dict[str, str], **request: Any) -> str:
    room = await make_room(client, headers)
    response = await client.get(path_of(room["links"]["guest"]), **request)
    assert response.status == 200
    return await response.text()


async def test_page_has_the_call_controls(client: Client, auth_headers: dict[str, str]) -> None:
    page = await guest_page(client, auth_headers)
    for element in [
        "<select id=mic>",
        "<button id=mute type=button aria-pressed=false disabled",
        "<button id=camera type=button aria-pressed=false",
        "<button id=leave type=button disabled",
        "<ul id=participants></ul>",
        "<div id=message role=alert></div>",
        "<video id=local muted playsinline autoplay hidden></video>",
        "<audio id=remote-audio autoplay></audio>",
        "<p id=status-text></p>",
        "id=lang-en",
        "id=lang-fr",
    ]:
        assert element in page, element
    assert page.count("<script") == 2  # the JSON config and the external client, no inline code
    assert page.index("id=join-config") < page.index('<script src="/join/static/join.js"></script>')


async def test_spectator_page_needs_no_microphone(
    client: Client, auth_headers: dict[str, str]
) -> None:
    room = await make_room(client, auth_headers)
    page = await (await client.get(path_of(room["links"]["spectator"]))).text()
    assert "<select id=mic disabled>" in page and "id=spectator-note" in page
    assert config_of(page)["role"] == "spectator"


async def test_config_block_has_the_socket_path_and_language(
    client: Client, auth_headers: dict[str, str]
) -> None:
    room = await make_room(client, auth_headers)
    link = room["links"]["organiser"]
    page = await (await client.get(path_of(link))).text()
    config = config_of(page)
    number = room["number"]
    assert config["number"] == number and config["role"] == "organiser"
    assert config["token"] == urlsplit(link).query.removeprefix("token=")
    assert config["ws_path"] == f"/api/join/{number}/ws"
    assert config["lang"] == "en"
    assert set(config["texts"]) == {"en", "fr"}


@pytest.mark.parametrize(
    ("accept", "lang"),
    [
        (None, "en"),
        ("fr-FR,fr;q=0.9,en;q=0.8", "fr"),
        ("en-GB,en;q=0.9,fr;q=0.8", "en"),
        ("de-DE,fr;q=0.5,en;q=0.4", "fr"),
        ("de-DE", "en"),
        ("en;q=0.2, FR-ca;q=0.7", "fr"),
        ("fr;q=bad, en", "en"),
    ],
)
async def test_language_follows_accept_language(
    client: Client, auth_headers: dict[str, str], accept: str | None, lang: str
) -> None:
    headers = {"Accept-Language": accept} if accept else {}
    room = await make_room(client, auth_headers)
    response = await client.get(path_of(room["links"]["guest"]), headers=headers)
    page = await response.text()
    assert response.headers["Content-Language"] == lang
    assert "Accept-Language" in response.headers["Vary"]
    assert f"<html lang={lang}>" in page
    assert config_of(page)["lang"] == lang
    texts = TEXTS[lang]
    assert f">{texts['join']}</button>" in page and f">{texts['name_label']}</label>" in page
    assert f"<strong>{texts['role_guest']}</strong>" in page
    assert f"aria-pressed={'true' if lang == 'fr' else 'false'}>Français" in page


def test_pick_lang() -> None:
    assert pick_lang(None) == "en" and pick_lang("") == "en"
    assert pick_lang("fr") == "fr" and pick_lang("*") == "en"
    assert pick_lang("fr;q=0.5, en;q=0.5") == "fr"  # a tie: the first listed


def test_every_text_exists_in_both_languages() -> None:
    assert set(TEXTS["en"]) == set(TEXTS["fr"])
    codes = [
        "bad_message", "not_authenticated", "invalid_link", "room_closed", "too_big",
        "too_many", "removed", "ended", "refused", "unavailable",
        "mic_blocked", "mic_missing", "connection_lost", "restarting", "draining",
    ]  # fmt: skip
    for lang in LANGS:
        for code in codes:
            assert TEXTS[lang][f"err_{code}"], (lang, code)
        for key in ["kind_phone", "kind_sip", "kind_browser", "muted", "talking", "status_left"]:
            assert TEXTS[lang][key]
    assert "quitté" in TEXTS["fr"]["status_left"] and "left" in TEXTS["en"]["status_left"]
    # every text the script asks for by a literal key is there
    script = JS_FILE.read_text("utf-8")
    for key in set(re.findall(r'\bt\("([a-z_]+)"\)', script)):
        assert key in TEXTS["en"], key
    for key in set(re.findall(r'showError\("([a-z_]+)"', script)):
        assert f"err_{key}" in TEXTS["en"], key
    for key in set(re.findall(r'setStatus\("[a-z]*", "([a-z_]+)"\)', script)):
        assert f"status_{key}" in TEXTS["en"], key


def test_config_json_cannot_close_its_script_element() -> None:
    page = join_html("x", "1234567890", "guest", "a</script><b>", "fr")
    config = config_of(page)
    assert config["token"] == "a</script><b>"
    assert "a</script><b>" not in page


async def test_join_script_is_served(client: Client) -> None:
    response = await client.get("/join/static/join.js")
    assert response.status == 200
    assert response.content_type == "application/javascript"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    body = await response.read()
    assert body == JS_FILE.read_bytes()
    etag = response.headers["ETag"]
    again = await client.get("/join/static/join.js", headers={"If-None-Match": etag})
    assert again.status == 304 and await again.read() == b""


def test_join_script_speaks_the_signalling_protocol() -> None:
    script = JS_FILE.read_text("utf-8")
    assert script.lstrip().startswith("/*") and '"use strict"' in script
    for needle in [
        'type: "join", token: config.token, name:',
        'type: "offer", sdp: pc.localDescription.sdp',
        'type: "mute", muted: muted',
        'type: "leave"',
        'type: "ping"',
        'direction: "recvonly"',
        'iceGatheringState === "complete"',
        "window.gatewayMeasure",
        "window.gatewayState",
        "fftSize = FFT_SIZE",
        "FFT_SIZE = 8192",
        "BACKOFF = [1, 2, 4, 8, 10]",
        "PING_MS = 15000",
        "ICE_GATHER_MS = 3000",
    ]:
        assert needle in script, needle
    for close_code in ["4400", "4401", "4403", "4409", "1009", "4429", "4410", "4411", "4412"]:
        assert f"{close_code}:" in script
    assert "4503:" in script
    assert "innerHTML" not in script  # participants' names are text, never markup


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_join_script_is_valid_javascript() -> None:
    result = subprocess.run(
        ["node", "--check", str(JS_FILE)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


# -- the organiser's moderation controls ------------------------------------------------------
MODERATION_ACTIONS = ["admit", "refuse", "mute", "unmute", "ask-unmute", "remove"]


@pytest.mark.parametrize("role", ["organiser", "guest", "spectator"])
async def test_only_the_organiser_page_has_the_room_id_and_moderation(
    client: Client, auth_headers: dict[str, str], role: str
) -> None:
    room = await make_room(client, auth_headers)
    page = await (await client.get(path_of(room["links"][role]))).text()
    config = config_of(page)
    if role == "organiser":
        assert config["room_id"] == room["id"]
        assert "<div id=moderation role=group aria-labelledby=moderation-title hidden>" in page
        assert "<button id=admit-all type=button disabled" in page
        assert "<button id=mute-all type=button" in page
        assert page.index("id=moderation") < page.index("<ul id=participants>")
    else:
        assert "room_id" not in config
        assert "id=moderation" not in page and "admit-all" not in page
        assert "mute-all" not in page and "data-action" not in page


def test_join_html_gives_the_room_id_to_organisers_only() -> None:
    organiser = join_html("x", "1234567890", "organiser", "tok", "fr", room_id="r1")
    assert config_of(organiser)["room_id"] == "r1"
    assert f">{TEXTS['fr']['mod_mute_all']}</button>" in organiser
    guest = join_html("x", "1234567890", "guest", "tok", "fr", room_id="r1")
    assert "room_id" not in config_of(guest) and "id=moderation" not in guest
    assert "room_id" not in config_of(join_html("x", "1234567890", "organiser", "tok"))


def test_moderation_texts_exist_in_both_languages() -> None:
    for lang in LANGS:
        texts = TEXTS[lang]
        for key in ["moderation", "mod_admit_all", "mod_mute_all", "err_moderation_failed"]:
            assert texts[key], (lang, key)
        for action in MODERATION_ACTIONS:
            key = "mod_" + action.replace("-", "_")
            assert texts[key], (lang, key)
            # the accessible name names the participant and starts with the visible label
            aria = texts[f"{key}_aria"]
            assert "{name}" in aria and aria.startswith(texts[key]), (lang, key)
    assert TEXTS["fr"]["mod_remove"] != TEXTS["en"]["mod_remove"]


def test_join_script_calls_the_moderation_routes() -> None:
    script = JS_FILE.read_text("utf-8")
    for action in MODERATION_ACTIONS:
        assert f'case "{action}":' in script, action
    for needle in [
        'config.role === "organiser"',
        "config.room_id",
        '"Authorization": "Bearer " + config.token',
        '"Content-Type"',
        '"/admit"',
        '"/refuse"',
        '"/mute"',
        '"/ask-unmute"',
        '"DELETE"',
        '"/admit-all"',
        '"/mute-all"',
        "{ muted: true }",
        "{ muted: false }",
        'closest("button[data-action]")',  # one listener on the list survives re-renders
        'el.participants.addEventListener("click"',
        'setAttribute("aria-label"',
        'showError("moderation_failed")',
    ]:
        assert needle in script, needle
