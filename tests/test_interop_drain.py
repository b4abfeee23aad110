"""SIGTERM against a real gateway with a live PJSIP call: the drain refuses new calls (503
with Retry-After, raw SIP over UDP), ``/api/health`` says draining (and its detail shows the
database, the SIP transports and the mixer), the live call hears the spoken notice that the
conference has ended (energy in what PJSIP recorded; alone in its room it otherwise hears
silence) and gets a BYE, and the process exits with 0. A second SIGTERM ends a long drain at
once."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import numpy as np
import pytest

from tests.gateway_proc import GatewayProcess, start_gateway
from tests.peers.audio import read_wav
from tests.peers.fixtures import PeerFactory
from tests.peers.pjsua import PjsuaPeer

pytestmark = pytest.mark.interop

HOST = "127.0.0.1"


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x)))) if len(x) else 0.0


def health(gateway: GatewayProcess) -> dict[str, Any]:
    with urllib.request.urlopen(gateway.base_url + "/api/health", timeout=5) as response:
        body: dict[str, Any] = json.loads(response.read())
    return body


def wait_draining(gateway: GatewayProcess, timeout: float = 10.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body = health(gateway)
        if body["status"] == "draining" or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


def invite(number: str, gw_port: int, sip_port: int, call_id: str) -> bytes:
    sdp = (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        "m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
    )
    return (
        f"INVITE sip:{number}@{HOST}:{gw_port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {HOST}:{sip_port};branch=z9hG4bK{call_id};rport\r\n"
        f"From: <sip:late@{HOST}>;tag=t{call_id}\r\n"
        f"To: <sip:{number}@{HOST}>\r\n"
        f"Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\n"
        f"Contact: <sip:late@{HOST}:{sip_port}>\r\nMax-Forwards: 70\r\n"
        f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}"
    ).encode()


def final_response(gateway: GatewayProcess, number: str, call_id: str) -> bytes:
    """Send an INVITE from a socket of our own; the first final response to it."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sip:
        sip.bind((HOST, 0))
        sip.settimeout(5)
        sip.sendto(
            invite(number, gateway.sip_port, sip.getsockname()[1], call_id),
            (HOST, gateway.sip_port),
        )
        while True:
            data = sip.recv(65535)
            if int(data.split(b" ", 2)[1]) >= 200:
                return data


def live_call(gateway: GatewayProcess, peers: PeerFactory, record: Path) -> tuple[str, PjsuaPeer]:
    room = gateway.create_room(name="drain")
    caller = peers.pjsua_call(
        f"sip:{room['number']}@{HOST}:{gateway.sip_port}", record=record, codecs=("PCMU",)
    )
    caller.wait_event("CONFIRMED", 10)
    [member] = gateway.wait_participants(str(room["id"]), 1)
    assert member["state"] == "joined", member
    time.sleep(1.0)  # a second of the lone room's silence in the recording
    return str(room["number"]), caller


def assert_heard_notice(record: Path) -> None:
    """Silence while alone in the room, then the spoken notice."""
    rate, x = read_wav(record)
    quiet = rms(x[int(0.2 * rate) : int(0.9 * rate)])
    assert quiet < 0.003, quiet
    frame = rate // 50
    later = x[int(1.2 * rate) :]
    loudest = max(
        (rms(later[i : i + frame]) for i in range(0, len(later) - frame, frame)), default=0.0
    )
    assert loudest > 10 * max(quiet, 1e-4), (quiet, loudest)


def test_sigterm_drains_refuses_new_calls_then_ends_the_live_one(
    tmp_path: Path, peers: PeerFactory
) -> None:
    record = peers.path("heard.wav")
    for gateway in start_gateway(tmp_path, GATEWAY_DRAIN_SECONDS="3", GATEWAY_LANGUAGE="en"):
        number, caller = live_call(gateway, peers, record)
        assert health(gateway) == {"status": "ok"}
        gateway.process.send_signal(signal.SIGTERM)
        assert wait_draining(gateway) == {"status": "draining"}
        refused = final_response(gateway, number, "drain-late-1")
        assert refused.split(b" ", 2)[1] == b"503", refused
        assert b"\r\nRetry-After: " in refused, refused
        status, detail = gateway.api("GET", "/api/health?detail=1")
        assert status == 200, detail
        assert detail["status"] == "draining" and detail["draining"] is True
        assert detail["database"]["reachable"] is True, detail
        assert {"transport": "udp", "address": f"{HOST}:{gateway.sip_port}"} in detail["sip"]
        assert {"transport": "tcp", "address": f"{HOST}:{gateway.sip_port}"} in detail["sip"]
        assert detail["mixer"]["ticks"] > 0 and detail["mixer"]["late_p99_ms"] >= 0, detail
        # the live call goes on during the drain, then hears the notice and gets a BYE
        assert len(gateway.participants(gateway.api("GET", "/api/rooms")[1][0]["id"])) == 1
        caller.wait_event("DISCONNECTED", 30)
        assert gateway.process.wait(30) == 0, gateway.log()
        assert caller.wait_result(15).ok, caller.output()
    assert_heard_notice(record)
    log = gateway.log()
    assert "draining" in log and "stopped" in log, log


def test_sigterm_without_drain_time_ends_calls_with_the_notice(
    tmp_path: Path, peers: PeerFactory
) -> None:
    record = peers.path("heard.wav")
    for gateway in start_gateway(tmp_path, GATEWAY_LANGUAGE="en"):  # drain 0, the default
        _, caller = live_call(gateway, peers, record)
        gateway.process.send_signal(signal.SIGTERM)
        caller.wait_event("DISCONNECTED", 20)
        assert gateway.process.wait(30) == 0, gateway.log()
        assert caller.wait_result(15).ok, caller.output()
    assert_heard_notice(record)


async def join_socket(
    gateway: GatewayProcess, number: str, join: dict[str, Any]
) -> tuple[list[Any], int | None]:
    """The messages and close code a join socket gets for ``join``."""
    url = gateway.base_url.replace("http", "ws") + f"/api/join/{number}/ws"
    got: list[Any] = []
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        await ws.send_str(json.dumps(join))
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                got.append(json.loads(msg.data))
        return got, ws.close_code


def test_second_sigterm_ends_a_long_drain_at_once(tmp_path: Path, peers: PeerFactory) -> None:
    record = peers.path("heard.wav")
    for gateway in start_gateway(tmp_path, GATEWAY_DRAIN_SECONDS="600"):
        _, caller = live_call(gateway, peers, record)
        gateway.process.send_signal(signal.SIGTERM)
        assert wait_draining(gateway)["status"] == "draining"
        assert caller.running()  # the drain lets it go on
        # a browser joining now is turned away with a close its page retries (1012, service
        # restart), not the final "busy": it rejoins once a gateway answers again
        room = gateway.create_room(name="drain browser")
        token = urlsplit(room["links"]["guest"]).query.removeprefix("token=")
        got, code = asyncio.run(
            join_socket(gateway, str(room["number"]), {"type": "join", "token": token, "name": "B"})
        )
        assert code == 1012 and got[-1]["code"] == "restarting", (code, got)
        gateway.process.send_signal(signal.SIGTERM)
        # far less than the 600 s drain: the second signal ended it
        assert gateway.process.wait(30) == 0, gateway.log()
        caller.wait_event("DISCONNECTED", 10)
    assert "second signal" in gateway.log()
