"""The organiser's moderation controls on the join page, in a real headless Chromium, used on
a real SIP caller: a phone waiting in the waiting room is let in, muted and removed from the
page (each checked by REST, the removal by the caller's BYE); a guest's page has no controls,
and the organiser's "admit everyone" lets that guest in."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.gateway_proc import GatewayProcess, gateway  # noqa: F401  (fixture)
from tests.peers import chromium, sipp
from tests.peers.join_page import join, link
from tests.peers.pcap import silence_packets, write_pcap

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(
        not chromium.available(), reason="chromium, chromedriver or selenium missing"
    ),
]

HOST = "127.0.0.1"


def wait_rest(
    gateway: GatewayProcess,  # noqa: F811
    room_id: str,
    check: Callable[[list[dict[str, Any]]], bool],
    timeout: float = 10.0,
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        found = gateway.participants(room_id)
        if check(found):
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not so after {timeout} s: {found}")
        time.sleep(0.1)


def by_id(found: list[dict[str, Any]], pid: str) -> dict[str, Any] | None:
    return next((p for p in found if p["id"] == pid), None)


def actions(browser: chromium.Browser, pid: str) -> list[str]:
    return list(
        browser.js(
            "return Array.from(document.querySelectorAll("
            "'#participants li[data-id=\"' + arguments[0] + '\"] button[data-action]'))"
            ".map(b => b.dataset.action)",
            pid,
        )
    )


def button(pid: str, action: str) -> str:
    return f'#participants li[data-id="{pid}"] button[data-action="{action}"]'


def test_organiser_admits_mutes_and_removes_a_phone_from_the_page(
    gateway: GatewayProcess,  # noqa: F811
    tmp_path: Path,
) -> None:
    room = gateway.create_room(name="organiser page", waiting_room=True)
    room_id = str(room["id"])
    pcap = write_pcap(tmp_path / "silence.pcap", silence_packets(30))
    call = sipp.in_background(
        sipp.run_dialin_expect_bye, HOST, gateway.sip_port, str(room["number"]), pcap, bye_ms=30000
    )
    [phone] = wait_rest(gateway, room_id, lambda found: len(found) == 1)
    assert phone["state"] == "waiting", phone
    pid = str(phone["id"])
    wav = chromium.tone_wav(tmp_path / "tone.wav", 1000)
    with chromium.Browser(wav, lang="en") as organiser, chromium.Browser(wav) as guest:
        join(organiser, link(gateway, room, "organiser"), "Olga", "joined")
        me = str(organiser.js("return window.gatewayState.participant_id"))
        organiser.wait_for(f"return document.querySelector('{button(pid, 'admit')}')", 10)
        assert actions(organiser, pid) == ["admit", "refuse"]
        label = organiser.js(f"return document.querySelector('{button(pid, 'admit')}').ariaLabel")
        assert label == f"Admit {phone['display_name']}", label
        organiser.wait_for(f"return document.querySelector('{button(me, 'mute')}')", 10)
        assert actions(organiser, me) == ["mute"]  # one's own entry: the microphone only
        assert organiser.js("return document.getElementById('moderation').hidden") is False

        organiser.click(button(pid, "admit"))
        wait_rest(gateway, room_id, lambda f: (by_id(f, pid) or {}).get("state") == "joined")

        organiser.wait_for(f"return document.querySelector('{button(pid, 'mute')}')", 10)
        organiser.click(button(pid, "mute"))
        wait_rest(gateway, room_id, lambda f: (by_id(f, pid) or {}).get("muted") is True)
        organiser.wait_for(f"return document.querySelector('{button(pid, 'unmute')}')", 10)
        assert actions(organiser, pid) == ["unmute", "ask-unmute", "remove"]

        # a guest (waiting: the room has a waiting room) sees the list but no control at all
        join(guest, link(gateway, room, "guest"), "Gus", "waiting")
        guest.wait_for("return document.querySelectorAll('#participants li').length === 3", 10)
        assert guest.js("return document.querySelectorAll('[data-action]').length") == 0
        assert (
            guest.js("return document.querySelector('#admit-all, #mute-all, #moderation')") is None
        )
        # ... and the organiser's "admit everyone" lets the guest in
        organiser.wait_for("return !document.getElementById('admit-all').disabled", 10)
        organiser.click("#admit-all")
        guest.wait_for('return document.getElementById("status").textContent === "joined"', 15)

        # one's own entry drives the page's own microphone (and the REST view follows)
        organiser.click(button(me, "mute"))
        wait_rest(gateway, room_id, lambda f: (by_id(f, me) or {}).get("muted") is True)
        assert organiser.js("return document.getElementById('mute').ariaPressed") == "true"
        organiser.wait_for(f"return document.querySelector('{button(me, 'unmute')}')", 10)

        # a refused call is said in #message (the gateway's error made to fail here)
        organiser.js(
            "window._fetch = window.fetch; window.fetch = () => Promise.resolve(new Response("
            "JSON.stringify({error: {code: 'conflict', message: 'not now'}}), {status: 409}))"
        )
        organiser.click("#mute-all")
        message = organiser.wait_for("return document.getElementById('message').textContent", 5)
        assert message == "That did not work. (not now)", message
        assert organiser.js("return window.gatewayState.last_error") == "conflict"
        organiser.js("window.fetch = window._fetch")

        organiser.click(button(pid, "remove"))
        result = call.result(40)
        assert result.ok, result.summary()
        wait_rest(gateway, room_id, lambda f: by_id(f, pid) is None)
        organiser.wait_for(
            f"return !document.querySelector('#participants li[data-id=\"{pid}\"]')", 10
        )
        assert organiser.text("#message") == ""  # the last call worked: the error is gone
