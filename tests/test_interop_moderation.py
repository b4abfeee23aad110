"""Moderation is always told to the moderated: a phone muted by the organiser hears so
(PJSIP records the spoken prompt), a browser muted by the organiser gets a message."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import numpy as np
import pytest

from tests.gateway_proc import GatewayProcess, gateway  # noqa: F401  (fixture)
from tests.peers.audio import read_wav
from tests.peers.fixtures import PeerFactory
from tests.peers.webrtc_client import run_client

pytestmark = pytest.mark.interop

HOST = "127.0.0.1"


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x.astype(np.float64))))) if len(x) else 0.0


def test_muted_phone_hears_that_it_was_muted(
    gateway: GatewayProcess,  # noqa: F811
    peers: PeerFactory,
) -> None:
    room = gateway.create_room(name="mute told")
    record = peers.path("heard.wav")
    sip = peers.pjsua_call(
        f"sip:{room['number']}@{HOST}:{gateway.sip_port}",
        play=peers.tone(440),
        record=record,
        seconds=9,
        codecs=("PCMU",),
    )
    sip.wait_event("CONFIRMED", 10)
    [member] = gateway.wait_participants(str(room["id"]), 1)
    time.sleep(3)  # alone in the room: it hears silence
    status, body = gateway.api(
        "POST", f"/api/rooms/{room['id']}/participants/{member['id']}/mute", {"muted": True}
    )
    assert status == 200 and body["muted"] is True
    assert sip.wait_result(30).ok, sip.output()
    rate, x = read_wav(record)
    before = x[int(0.5 * rate) : int(2.5 * rate)]
    after = x[int(3.5 * rate) : int(6.5 * rate)]
    assert rms(before) < 0.003, rms(before)  # silence (the room is empty)
    assert rms(after) > 10 * max(rms(before), 1e-4), (rms(before), rms(after))  # the prompt


def test_muted_browser_is_told(gateway: GatewayProcess) -> None:  # noqa: F811
    room = gateway.create_room(name="mute told browser")
    token = urlsplit(room["links"]["guest"]).query.removeprefix("token=")
    with ThreadPoolExecutor(1) as pool:
        future = pool.submit(
            run_client, gateway.base_url, str(room["number"]), token, freq=500, seconds=4
        )
        [member] = gateway.wait_participants(str(room["id"]), 1, timeout=15)
        time.sleep(0.5)
        base = f"/api/rooms/{room['id']}/participants/{member['id']}/mute"
        assert gateway.api("POST", base, {"muted": True})[0] == 200
        assert gateway.api("POST", base, {"muted": True})[0] == 200  # no change: not told twice
        ask = f"/api/rooms/{room['id']}/participants/{member['id']}/ask-unmute"
        assert gateway.api("POST", ask)[0] == 204
        assert gateway.api("POST", base, {"muted": False})[0] == 200
        assert gateway.api("POST", ask)[0] == 409  # not muted
        result = future.result(60)
    told = [m["action"] for m in result.messages if m["type"] == "moderated"]
    assert told == ["muted", "ask_unmute", "unmuted"], result.messages


def test_phone_muted_by_mute_all_then_asked_to_unmute_hears_both(
    gateway: GatewayProcess,  # noqa: F811
    peers: PeerFactory,
) -> None:
    room = gateway.create_room(name="mute all")
    record = peers.path("heard.wav")
    sip = peers.pjsua_call(
        f"sip:{room['number']}@{HOST}:{gateway.sip_port}",
        play=peers.tone(440),
        record=record,
        seconds=14,
        codecs=("PCMU",),
    )
    sip.wait_event("CONFIRMED", 10)
    [member] = gateway.wait_participants(str(room["id"]), 1)
    time.sleep(2)
    status, changed = gateway.api("POST", f"/api/rooms/{room['id']}/mute-all", {"muted": True})
    assert status == 200 and [p["id"] for p in changed] == [member["id"]]
    time.sleep(5)  # the "muted" prompt, then silence
    ask = f"/api/rooms/{room['id']}/participants/{member['id']}/ask-unmute"
    assert gateway.api("POST", ask)[0] == 204
    assert sip.wait_result(30).ok, sip.output()
    rate, x = read_wav(record)
    quiet = rms(x[int(0.5 * rate) : int(1.5 * rate)])
    # each prompt is heard; between them the empty room is silent
    for start, end in ((2.5, 4.5), (7.5, 10.0)):
        assert rms(x[int(start * rate) : int(end * rate)]) > 10 * max(quiet, 1e-4), (start, quiet)
