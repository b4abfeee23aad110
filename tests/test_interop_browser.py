"""The join page in a real headless Chromium (fake microphone playing a tone), with PJSIP in
the same room: the page reaches ``joined``, the SIP leg records the browser's tone, the page's
WebAudio analyser finds the SIP leg's tone, a spectator is heard by nobody, a wrong token is
refused in words, and a browser killed outright leaves the room within 30 s."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.gateway_proc import GatewayProcess, gateway  # noqa: F401  (fixture)
from tests.peers import chromium
from tests.peers.audio import assert_contains_tone, assert_lacks_tone
from tests.peers.fixtures import PeerFactory
from tests.peers.join_page import join, link, measured_peak

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(
        not chromium.available(), reason="chromium, chromedriver or selenium missing"
    ),
]

HOST = "127.0.0.1"


def test_browser_joins_and_talks_with_a_sip_phone(
    gateway: GatewayProcess,  # noqa: F811
    peers: PeerFactory,
    tmp_path: Path,
) -> None:
    room = gateway.create_room(name="browser and phone")
    heard_sip = peers.path("sip-heard.wav")
    sip = peers.pjsua_call(
        f"sip:{room['number']}@{HOST}:{gateway.sip_port}",
        play=peers.tone(440),
        record=heard_sip,
        seconds=16,
        codecs=("PCMU",),
    )
    sip.wait_event("CONFIRMED", 10)
    with chromium.Browser(chromium.tone_wav(tmp_path / "tone1000.wav", 1000)) as browser:
        join(browser, link(gateway, room, "guest"), "Chromium")
        kinds = {p["display_name"]: p["kind"] for p in gateway.participants(str(room["id"]))}
        assert kinds["Chromium"] == "browser"
        peaks = measured_peak(browser)
        assert len(peaks) >= 8 and sum(abs(p - 440) < 30 for p in peaks) >= 0.8 * len(peaks), peaks
        # the page lists the phone, as a room system (sip), with its state
        entries = browser.js(
            "return Array.from(document.querySelectorAll('#participants li'))"
            ".map(li => li.dataset.kind)"
        )
        assert sorted(entries) == ["browser", "sip"], entries
        time.sleep(2)
    assert sip.wait_result(30).ok, sip.output()
    assert_contains_tone(heard_sip, 1000, skip_seconds=4.0)


def test_spectator_in_chromium_is_heard_by_nobody(
    gateway: GatewayProcess,  # noqa: F811
    peers: PeerFactory,
    tmp_path: Path,
) -> None:
    room = gateway.create_room(name="spectator page")
    heard_sip = peers.path("sip-heard.wav")
    sip = peers.pjsua_call(
        f"sip:{room['number']}@{HOST}:{gateway.sip_port}",
        play=peers.tone(440),
        record=heard_sip,
        seconds=12,
        codecs=("PCMU",),
    )
    sip.wait_event("CONFIRMED", 10)
    with chromium.Browser(chromium.tone_wav(tmp_path / "tone1000.wav", 1000)) as browser:
        join(browser, link(gateway, room, "spectator"), "Watcher")
        peaks = measured_peak(browser, 3.0)  # a spectator hears the room
        assert sum(abs(p - 440) < 30 for p in peaks) >= 0.8 * max(1, len(peaks)), peaks
        time.sleep(3)
    assert sip.wait_result(30).ok, sip.output()
    assert_lacks_tone(heard_sip, 1000, skip_seconds=2.0)


def test_wrong_token_gets_a_readable_refusal(
    gateway: GatewayProcess,  # noqa: F811
    tmp_path: Path,
) -> None:
    room = gateway.create_room(name="wrong token page")
    with chromium.Browser(chromium.tone_wav(tmp_path / "tone.wav", 1000), lang="en") as browser:
        browser.open(f"{gateway.base_url}/join/{room['number']}?token=not-the-token")
        body = browser.text("body")
        assert "This link does not work" in body or "ne fonctionne pas" in body, body
        assert browser.js("return document.getElementById('join')") is None


def test_killed_browser_is_gone_within_30_s(
    gateway: GatewayProcess,  # noqa: F811
    tmp_path: Path,
) -> None:
    room = gateway.create_room(name="killed browser")
    browser = chromium.Browser(chromium.tone_wav(tmp_path / "tone.wav", 1000)).start()
    try:
        join(browser, link(gateway, room, "guest"), "Doomed")
        assert len(gateway.participants(str(room["id"]))) == 1
        browser.kill()
        began = time.monotonic()
        assert gateway.wait_participants(str(room["id"]), 0, timeout=30) == []
        print(f"gone after {time.monotonic() - began:.1f} s")
    finally:
        browser.close()


def test_page_reconnects_and_rejoins_after_the_gateway_restarts(tmp_path: Path) -> None:
    """The connection is lost (the gateway restarts on the same address and database): the
    page says so, retries by itself and is back in the room without a click."""
    from tests.gateway_proc import start_gateway
    from tests.peers.net import free_port

    fixed = {
        "GATEWAY_HTTP_PORT": str(free_port("tcp")),
        "GATEWAY_SIP_PORT": str(free_port("udp")),
        "GATEWAY_DATABASE_URL": f"sqlite:///{tmp_path / 'kept.db'}",
    }
    browser = chromium.Browser(chromium.tone_wav(tmp_path / "tone.wav", 1000)).start()
    try:
        for gw in start_gateway(tmp_path, **fixed):
            room = gw.create_room(name="restart")
            join(browser, link(gw, room, "guest"), "Stayer")
            first = browser.js("return window.gatewayState.participant_id")
        # the gateway stopped (SIGTERM): the page was told it restarts, and says so
        browser.wait_for('return document.getElementById("status").textContent !== "joined"', 20)
        assert browser.js("return window.gatewayState.last_error") == "restarting"
        for gw in start_gateway(tmp_path, **fixed):
            browser.wait_for(
                'return document.getElementById("status").textContent === "joined"', 30
            )
            [member] = gw.wait_participants(str(room["id"]), 1)
            assert member["display_name"] == "Stayer" and member["id"] != first
    finally:
        browser.close()


@pytest.mark.parametrize(
    ("microphone", "code"), [("denied", "mic_blocked"), ("missing", "mic_missing")]
)
def test_a_blocked_or_missing_microphone_is_said_in_words(
    gateway: GatewayProcess,  # noqa: F811
    tmp_path: Path,
    microphone: str,
    code: str,
) -> None:
    room = gateway.create_room(name="no microphone")
    with chromium.Browser(
        chromium.tone_wav(tmp_path / "tone.wav", 1000), lang="en", microphone=microphone
    ) as browser:
        browser.open(link(gateway, room, "guest"))
        browser.type("#name", "Nomic")
        browser.click("#join")
        error = browser.wait_for("return window.gatewayState.last_error", 15)
        assert error == code
        message = browser.text("#message")
        assert "microphone" in message.lower(), message
        assert browser.text("#status") != "joined"
    assert gateway.participants(str(room["id"])) == []
