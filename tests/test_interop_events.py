"""The events socket of a real gateway, watched with the organiser's link token, while a SIP
phone (PJSIP) and a browser (aiortc client) join, talk, are muted and leave."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import pytest

from tests.gateway_proc import GatewayProcess, gateway  # noqa: F401  (fixture)
from tests.peers.fixtures import PeerFactory
from tests.peers.webrtc_client import run_client

pytestmark = pytest.mark.interop

HOST = "127.0.0.1"


class Watcher(threading.Thread):
    """Reads the events socket on a loop of its own until stopped."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.events: list[dict[str, Any]] = []
        self.ready = threading.Event()
        self.stopping = threading.Event()

    def run(self) -> None:
        async def main() -> None:
            async with aiohttp.ClientSession() as http, http.ws_connect(self.url) as ws:
                self.ready.set()
                while not self.stopping.is_set():
                    try:
                        msg = await ws.receive(timeout=0.2)
                    except TimeoutError:
                        continue
                    if msg.type != aiohttp.WSMsgType.TEXT:
                        return
                    self.events.append(json.loads(msg.data))

        asyncio.run(main())

    def of(self, pid: str) -> list[str]:
        return [e["type"] for e in self.events if e["participant"]["id"] == pid]


def test_events_follow_a_phone_and_a_browser(
    gateway: GatewayProcess,  # noqa: F811
    peers: PeerFactory,
) -> None:
    room = gateway.create_room(name="events")
    organiser = urlsplit(room["links"]["organiser"]).query.removeprefix("token=")
    ws_url = gateway.base_url.replace("http", "ws") + f"/api/rooms/{room['id']}/events"
    watcher = Watcher(f"{ws_url}?token={organiser}")
    watcher.start()
    assert watcher.ready.wait(10)
    sip = peers.pjsua_call(
        f"sip:{room['number']}@{HOST}:{gateway.sip_port}",
        play=peers.tone(440),
        record=peers.path("heard.wav"),
        seconds=8,
        codecs=("PCMU",),
    )
    sip.wait_event("CONFIRMED", 10)
    guest = urlsplit(room["links"]["guest"]).query.removeprefix("token=")
    with ThreadPoolExecutor(1) as pool:
        browser = pool.submit(
            run_client,
            gateway.base_url,
            str(room["number"]),
            guest,
            name="Web",
            freq=900,
            seconds=5,
        )
        members = gateway.wait_participants(str(room["id"]), 2, timeout=15)
        time.sleep(1.5)  # both talk
        for m in members:
            status, _ = gateway.api(
                "POST", f"/api/rooms/{room['id']}/participants/{m['id']}/mute", {"muted": True}
            )
            assert status == 200
        result = browser.result(60)
    assert result.states() == ["joined"]
    assert sip.wait_result(30).ok, sip.output()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and sum(e["type"] == "left" for e in watcher.events) < 2:
        time.sleep(0.1)
    watcher.stopping.set()
    watcher.join(5)
    for m in members:
        seen = watcher.of(m["id"])
        assert seen[0] == "joined" and seen[-1] == "left", (m["kind"], seen)
        assert seen.index("talking_started") < seen.index("muted"), (m["kind"], seen)
        # muted: its talking stops (it is no longer heard)
        assert "talking_stopped" in seen[seen.index("muted") :], (m["kind"], seen)
    kinds = {e["participant"]["kind"] for e in watcher.events}
    assert kinds == {"sip", "browser"}
