"""Browser legs end to end without a browser: aiortc clients (their own event loop, real
sockets, ICE, DTLS-SRTP, Opus) join rooms of a real gateway process through the join socket,
with SIP peers (PJSIP) in the same rooms; what crossed the bridge is checked by its tone."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from tests.gateway_proc import GatewayProcess, gateway  # noqa: F401  (fixture)
from tests.peers.audio import assert_contains_tone, assert_lacks_tone
from tests.peers.fixtures import PeerFactory
from tests.peers.webrtc_client import run_client

pytestmark = pytest.mark.interop

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent


def token_of(room: dict[str, Any], role: str) -> str:
    return urlsplit(room["links"][role]).query.removeprefix("token=")


def test_two_browsers_hear_each_other_not_themselves(
    gateway: GatewayProcess,  # noqa: F811
    tmp_path: Path,
) -> None:
    room = gateway.create_room(name="two browsers")
    number, token = str(room["number"]), token_of(room, "guest")
    with ThreadPoolExecutor(2) as pool:
        a = pool.submit(run_client, gateway.base_url, number, token, name="A", freq=600)
        b = pool.submit(run_client, gateway.base_url, number, token, name="B", freq=1000)
        ra, rb = a.result(60), b.result(60)
    assert ra.states() == ["joined"] and rb.states() == ["joined"], (ra.messages, rb.messages)
    heard_a, heard_b = ra.save(tmp_path / "a.wav"), rb.save(tmp_path / "b.wav")
    assert_contains_tone(heard_a, 1000, skip_seconds=1.5)
    assert_lacks_tone(heard_a, 600, skip_seconds=1.5)
    assert_contains_tone(heard_b, 600, skip_seconds=1.5)
    assert_lacks_tone(heard_b, 1000, skip_seconds=1.5)
    # each saw the other in the list, as a browser
    names = {p["display_name"]: p for p in ra.last_participants() + rb.last_participants()}
    assert {"A", "B"} <= set(names) and names["B"]["kind"] == "browser"
    assert all("caller_number" not in p for p in names.values())


def test_browser_and_sip_phone_hear_each_other(
    gateway: GatewayProcess,  # noqa: F811
    peers: PeerFactory,
    tmp_path: Path,
) -> None:
    room = gateway.create_room(name="browser and sip")
    uri = f"sip:{room['number']}@{HOST}:{gateway.sip_port}"
    heard_sip = peers.path("sip-heard.wav")
    sip = peers.pjsua_call(uri, play=peers.tone(440), record=heard_sip, seconds=9, codecs=("PCMU",))
    sip.wait_event("CONFIRMED", 10)
    result = run_client(
        gateway.base_url, str(room["number"]), token_of(room, "guest"), freq=1200, seconds=6
    )
    assert sip.wait_result(30).ok, sip.output()
    assert result.states() == ["joined"], result.messages
    heard_browser = result.save(tmp_path / "browser.wav")
    assert_contains_tone(heard_browser, 440, skip_seconds=1.5)
    assert_lacks_tone(heard_browser, 1200, skip_seconds=1.5)
    assert_contains_tone(heard_sip, 1200, skip_seconds=3.0)


def test_video_is_declined_and_audio_still_flows(
    gateway: GatewayProcess,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A browser offering audio and video (as the page will once video is in) is answered
    with its video inactive, and joins with audio as usual."""
    room = gateway.create_room(name="video declined")
    number, token = str(room["number"]), token_of(room, "guest")
    with ThreadPoolExecutor(2) as pool:
        a = pool.submit(run_client, gateway.base_url, number, token, freq=600, video=True)
        b = pool.submit(run_client, gateway.base_url, number, token, freq=1000)
        ra, rb = a.result(60), b.result(60)
    video = ra.answer_sdp.split("m=video", 1)
    assert len(video) == 2 and "a=inactive" in video[1], ra.answer_sdp
    assert ra.states() == ["joined"]
    assert_contains_tone(ra.save(tmp_path / "a.wav"), 1000, skip_seconds=1.5)
    assert_contains_tone(rb.save(tmp_path / "b.wav"), 600, skip_seconds=1.5)


def test_spectator_is_heard_by_nobody(
    gateway: GatewayProcess,  # noqa: F811
    tmp_path: Path,
) -> None:
    room = gateway.create_room(name="spectator")
    number = str(room["number"])
    with ThreadPoolExecutor(2) as pool:
        spectator = pool.submit(
            run_client,
            gateway.base_url,
            number,
            token_of(room, "spectator"),
            name="Spectator",
            freq=800,
        )
        guest = pool.submit(
            run_client, gateway.base_url, number, token_of(room, "guest"), freq=1000
        )
        rs, rg = spectator.result(60), guest.result(60)
    assert rs.states() == ["joined"] and rg.states() == ["joined"]
    assert_lacks_tone(rg.save(tmp_path / "guest.wav"), 800, skip_seconds=1.5)
    assert_contains_tone(rs.save(tmp_path / "spectator.wav"), 1000, skip_seconds=1.5)
    roles = {p["display_name"]: p["role"] for p in rg.last_participants()}
    assert "spectator" in roles.values()


async def _socket(gateway: GatewayProcess, number: str, *messages: Any) -> tuple[list[Any], Any]:  # noqa: F811
    url = gateway.base_url.replace("http", "ws") + f"/api/join/{number}/ws"
    got: list[Any] = []
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        for message in messages:
            if isinstance(message, bytes):
                await ws.send_bytes(message)
            elif isinstance(message, str):
                await ws.send_str(message)
            else:
                await ws.send_str(json.dumps(message))
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                got.append(json.loads(msg.data))
        return got, ws.close_code


def test_wrong_token_gets_a_clear_refusal(gateway: GatewayProcess) -> None:  # noqa: F811
    room = gateway.create_room(name="wrong token")
    got, code = asyncio.run(
        _socket(gateway, str(room["number"]), {"type": "join", "token": "nope", "name": "X"})
    )
    assert code == 4403 and got[-1]["code"] == "invalid_link", got


@pytest.mark.parametrize(
    ("messages", "code", "reason"),
    [
        (["not json"], 4400, "bad_message"),
        ([{"type": "offer", "sdp": "v=0"}], 4401, "not_authenticated"),
        ([b"\x00binary"], 4400, "bad_message"),
        ([{"type": "join", "token": 5, "name": "X"}], 4400, "bad_message"),
        (["x" * (65 * 1024)], 1009, "too_big"),
        ([{"type": "ping"}] * 60, 4429, "too_many"),
    ],
)
def test_bad_messages_close_that_socket_only(
    gateway: GatewayProcess,  # noqa: F811
    messages: list[Any],
    code: int,
    reason: str,
) -> None:
    room = gateway.create_room(name="bad messages")
    number = str(room["number"])
    with ThreadPoolExecutor(1) as pool:
        bystander = pool.submit(
            run_client, gateway.base_url, number, token_of(room, "guest"), freq=500, seconds=4
        )
        time.sleep(1.5)
        got, close = asyncio.run(_socket(gateway, number, *messages))
        result = bystander.result(60)
    assert close == code, (close, got)
    if code != 1009:  # an oversized frame ends the socket before a word can be said
        assert got[-1]["code"] == reason, got
    assert result.states() == ["joined"] and result.errors() == [], result.messages


@pytest.mark.parametrize(
    "sdp", ["garbage", "v=0\r\nm=audio x y z\r\n", "v=0\r\nm=video 9 RTP/AVP 96\r\n"]
)
def test_an_offer_that_cannot_be_read_is_refused_in_words(
    gateway: GatewayProcess,  # noqa: F811
    sdp: str,
) -> None:
    room = gateway.create_room(name="bad offer")
    join = {"type": "join", "token": token_of(room, "guest"), "name": "Odd"}
    got, code = asyncio.run(
        _socket(gateway, str(room["number"]), join, {"type": "offer", "sdp": sdp})
    )
    assert code == 4400 and got[-1]["code"] == "bad_message", got
    assert "Traceback" not in gateway.log()


def test_socket_that_never_authenticates_is_closed_within_10_s(
    gateway: GatewayProcess,  # noqa: F811
) -> None:
    room = gateway.create_room(name="silent socket")
    began = time.monotonic()
    got, code = asyncio.run(_socket(gateway, str(room["number"])))
    assert code == 4401 and got[-1]["code"] == "not_authenticated"
    assert time.monotonic() - began < 12


def test_removed_browser_is_told_and_leaves(gateway: GatewayProcess) -> None:  # noqa: F811
    room = gateway.create_room(name="remove")
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(
            run_client,
            gateway.base_url,
            str(room["number"]),
            token_of(room, "guest"),
            freq=500,
            seconds=30,
        )
        [member] = gateway.wait_participants(str(room["id"]), 1, timeout=15)
        assert member["kind"] == "browser"
        status, _ = gateway.api("DELETE", f"/api/rooms/{room['id']}/participants/{member['id']}")
        assert status == 204
        result = future.result(30)
    assert result.errors() == ["removed"] and result.close_code == 4410, result.messages
    assert gateway.participants(str(room["id"])) == []


CLIENT = """
import asyncio, sys
sys.path.insert(0, {root!r})
from tests.peers.webrtc_client import Client
asyncio.run(Client({url!r}, {number!r}, {token!r}, freq=500, seconds=600).run())
"""


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGSTOP])
def test_vanished_browser_is_gone_within_30_s(
    gateway: GatewayProcess,  # noqa: F811
    how: signal.Signals,
) -> None:
    """A browser process killed outright (its sockets close), or frozen without a word (a
    laptop lid shut, a network gone: nothing closes, nothing answers)."""
    room = gateway.create_room(name="vanish")
    script = CLIENT.format(
        root=str(ROOT),
        url=gateway.base_url,
        number=str(room["number"]),
        token=token_of(room, "guest"),
    )
    proc = subprocess.Popen([sys.executable, "-c", script], start_new_session=True)
    try:
        assert len(gateway.wait_participants(str(room["id"]), 1, timeout=20)) == 1
        os.killpg(proc.pid, how)
        began = time.monotonic()
        assert gateway.wait_participants(str(room["id"]), 0, timeout=30) == []
        print(f"gone after {time.monotonic() - began:.1f} s")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_waiting_browser_is_admitted_or_refused(gateway: GatewayProcess) -> None:  # noqa: F811
    room = gateway.create_room(name="waiting browsers", waiting_room=True)
    number, token = str(room["number"]), token_of(room, "guest")
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(run_client, gateway.base_url, number, token, name="In", seconds=2)
        second = pool.submit(run_client, gateway.base_url, number, token, name="Out")
        members = gateway.wait_participants(str(room["id"]), 2, timeout=20)
        assert {m["state"] for m in members} == {"waiting"}
        by_name = {m["display_name"]: m["id"] for m in members}
        base = f"/api/rooms/{room['id']}/participants"
        assert gateway.api("POST", f"{base}/{by_name['In']}/admit")[0] == 200
        assert gateway.api("POST", f"{base}/{by_name['Out']}/refuse")[0] == 204
        admitted, refused = first.result(60), second.result(60)
    assert admitted.states() == ["waiting", "joined"], admitted.messages
    assert refused.states() == ["waiting"] and refused.errors() == ["refused"]
    assert refused.close_code == 4412


def test_locked_room_makes_new_arrivals_wait(gateway: GatewayProcess) -> None:  # noqa: F811
    room = gateway.create_room(name="locked")
    number, token = str(room["number"]), token_of(room, "guest")
    organiser = token_of(room, "organiser")
    lock = f"{gateway.base_url}/api/rooms/{room['id']}/lock"

    def set_lock(locked: bool) -> dict[str, Any]:
        import urllib.request

        request = urllib.request.Request(
            lock,
            data=json.dumps({"locked": locked}).encode(),
            method="POST",
            headers={"Authorization": f"Bearer {organiser}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return dict(json.loads(response.read()))

    assert set_lock(True)["locked"] is True
    with ThreadPoolExecutor(1) as pool:
        late = pool.submit(run_client, gateway.base_url, number, token, name="Late", seconds=2)
        [member] = gateway.wait_participants(str(room["id"]), 1, timeout=15)
        time.sleep(1)
        assert gateway.participants(str(room["id"]))[0]["state"] == "waiting"
        base = f"/api/rooms/{room['id']}/participants/{member['id']}"
        assert gateway.api("POST", f"{base}/admit")[0] == 200
        assert late.result(60).states() == ["waiting", "joined"]
    assert set_lock(False)["locked"] is False
    assert run_client(gateway.base_url, number, token, seconds=1).states() == ["joined"]
