"""A browser without a browser: an aiortc client that speaks the join page's signalling
(``docs/signalling.md``) to a real gateway, sends a tone and records what it hears.

Runs on its own event loop (:func:`run_client` in a thread, or ``await`` :meth:`Client.run`),
independent of the gateway process.
"""

from __future__ import annotations

import asyncio
import fractions
import json
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import numpy as np
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from av import AudioFrame

RATE = 48000
SAMPLES = 960


class ToneTrack(MediaStreamTrack):
    """A sine at ``freq`` Hz (silence for 0), 20 ms frames at real-time pace."""

    kind = "audio"

    def __init__(self, freq: float, amplitude: float = 0.3) -> None:
        super().__init__()
        self.freq = freq
        self.amplitude = amplitude
        self._pts = 0
        self._start: float | None = None

    async def recv(self) -> AudioFrame:
        loop = asyncio.get_running_loop()
        if self._start is None:
            self._start = loop.time()
        due = self._start + self._pts / RATE
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        t = (self._pts + np.arange(SAMPLES)) / RATE
        wave = self.amplitude * 32767 * np.sin(2 * np.pi * self.freq * t) if self.freq else 0 * t
        frame = AudioFrame.from_ndarray(
            wave.astype(np.int16).reshape(1, -1), format="s16", layout="mono"
        )
        frame.sample_rate = RATE
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, RATE)
        self._pts += SAMPLES
        return frame


@dataclass
class Result:
    messages: list[dict[str, Any]] = field(default_factory=list)
    close_code: int | None = None
    heard: list[np.ndarray] = field(default_factory=list)  # 48 kHz mono int16 chunks
    participant_id: str | None = None
    answer_sdp: str = ""

    def states(self) -> list[str]:
        return [m["state"] for m in self.messages if m.get("type") == "state"]

    def errors(self) -> list[str]:
        return [m["code"] for m in self.messages if m.get("type") == "error"]

    def audio(self) -> np.ndarray:
        return np.concatenate(self.heard) if self.heard else np.zeros(0, dtype=np.int16)

    def save(self, path: Any) -> Any:
        """What was heard, as a 48 kHz WAV file (for the tone assertions of tests.peers.audio)."""
        from tests.peers.audio import write_wav

        write_wav(path, RATE, self.audio())
        return path

    def last_participants(self) -> list[dict[str, Any]]:
        lists = [m["participants"] for m in self.messages if m.get("type") == "participants"]
        return lists[-1] if lists else []


class Client:
    def __init__(
        self,
        base_url: str,
        number: str,
        token: str,
        *,
        name: str = "Browser",
        freq: float = 0,
        seconds: float = 6.0,
        send_audio: bool = True,
        video: bool = False,
    ) -> None:
        self.url = base_url.replace("http", "ws", 1) + f"/api/join/{number}/ws"
        self.token, self.name, self.freq, self.seconds = token, name, freq, seconds
        self.send_audio = send_audio
        self.video = video
        self.result = Result()
        self.pc: RTCPeerConnection | None = None
        self.joined = asyncio.Event()

    async def _record(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except Exception:
                return
            data = frame.to_ndarray().reshape(-1)
            if frame.layout.name == "stereo":
                data = data[::2]
            self.result.heard.append(data.astype(np.int16))

    async def run(self) -> Result:
        async with aiohttp.ClientSession() as http, http.ws_connect(self.url) as ws:
            await ws.send_str(json.dumps({"type": "join", "token": self.token, "name": self.name}))
            recorder: asyncio.Task[None] | None = None
            timer: asyncio.Task[None] | None = None
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                message = json.loads(msg.data)
                self.result.messages.append(message)
                kind = message.get("type")
                if kind == "welcome":
                    self.result.participant_id = message["participant_id"]
                    self.pc = pc = RTCPeerConnection()

                    @pc.on("track")
                    def on_track(track: MediaStreamTrack) -> None:
                        nonlocal recorder
                        recorder = asyncio.ensure_future(self._record(track))

                    if self.send_audio:
                        pc.addTrack(ToneTrack(self.freq))
                    else:
                        pc.addTransceiver("audio", direction="recvonly")
                    if self.video:
                        pc.addTransceiver("video", direction="sendrecv")
                    await pc.setLocalDescription(await pc.createOffer())
                    await ws.send_str(json.dumps({"type": "offer", "sdp": pc.localDescription.sdp}))
                elif kind == "answer":
                    assert self.pc is not None
                    self.result.answer_sdp = message["sdp"]
                    await self.pc.setRemoteDescription(
                        RTCSessionDescription(message["sdp"], "answer")
                    )
                elif kind == "state" and message["state"] == "joined" and timer is None:
                    self.joined.set()

                    async def leave_later() -> None:
                        await asyncio.sleep(self.seconds)
                        await ws.send_str(json.dumps({"type": "leave"}))
                        await ws.close()

                    timer = asyncio.ensure_future(leave_later())
            self.result.close_code = ws.close_code
            for task in (recorder, timer):
                if task is not None:
                    task.cancel()
            if self.pc is not None:
                await self.pc.close()
        return self.result


def run_client(*args: Any, timeout: float = 60.0, **kw: Any) -> Result:
    """Run one client to the end on a loop of its own (call it from a thread)."""

    async def main() -> Result:
        return await asyncio.wait_for(Client(*args, **kw).run(), timeout)

    return asyncio.run(main())
