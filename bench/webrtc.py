"""Browser legs one core carries in real time: a real gateway process, WebRTC clients in another
process joining through the join socket (ICE, DTLS-SRTP, Opus), rooms of ``--per-room`` legs.

The clients are aiortc peer connections that send a pre-encoded Opus tone every 20 ms from one
timer and count what they receive (no decoding), so that the client process costs little and
the gateway is what is measured. Once every leg is in and audio flows both ways, the gateway's
CPU time (``/proc/PID/stat``) over ``--seconds`` gives its share of a core; legs per core is
the leg count divided by that share. Real time is checked, not assumed: each client must
receive at least 95 % of the 50 packets a second it is due.

Printed beside it, measured in this process in the same run: bare Opus encode plus decode of
the same 20 ms frames with the gateway's settings (the codec's own ceiling in legs per core),
and the ratio of the two.

Run: ``python bench/webrtc.py [--legs 40] [--per-room 10] [--seconds 20]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from benchlib import api, free_port  # noqa: E402

from media.opus import FRAME, OpusDecoder, OpusEncoder, OpusSettings  # noqa: E402

TOKEN = "bench-webrtc-admin-token-0123456789"
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def tone_packets(count: int = 50, freq: float = 700.0) -> list[bytes]:
    """A tone, or for ``freq`` 0 the noise floor of a quiet room (-70 dBFS)."""
    encoder = OpusEncoder()
    t = np.arange(FRAME * count) / 16000
    if freq:
        pcm = (8000 * np.sin(2 * np.pi * freq * t)).astype(np.int16)
    else:
        pcm = np.random.default_rng(1).normal(0, 10, len(t)).astype(np.int16)
    return [encoder.encode(frame) for frame in pcm.reshape(-1, FRAME)]


def codec_reference(frames: int = 2000) -> float:
    """Seconds of CPU for one Opus encode plus one decode of a 20 ms frame."""
    encoder, decoder = OpusEncoder(OpusSettings()), OpusDecoder()
    t = np.arange(FRAME * 50) / 16000
    pcm = (8000 * np.sin(2 * np.pi * 700 * t)).astype(np.int16).reshape(-1, FRAME)
    began = time.process_time()
    for i in range(frames):
        decoder.decode(encoder.encode(pcm[i % 50]))
    return (time.process_time() - began) / frames


# -- the client process ----------------------------------------------------------------------
async def client_main(url: str, joins: list[tuple[str, str, bool]], seconds: float) -> None:
    import aiohttp
    from aiortc import RTCPeerConnection, RTCSessionDescription
    from aiortc.rtp import HeaderExtensionsMap, RtpPacket

    from webrtc.leg import _Placeholder, drive

    packets = tone_packets()
    silence = tone_packets(freq=0.0)  # what an open microphone in a quiet room sends, near enough
    legs: list[dict[str, Any]] = []
    http = aiohttp.ClientSession()

    async def join(number: str, token: str, talks: bool, index: int) -> None:
        ws = await http.ws_connect(f"{url}/api/join/{number}/ws")
        await ws.send_str(json.dumps({"type": "join", "token": token, "name": f"bench {index}"}))
        pc = RTCPeerConnection()
        leg: dict[str, Any] = {
            "pc": pc,
            "ws": ws,
            "received": 0,
            "sender": None,
            "seq": 0,
            "talks": talks,
        }
        transceiver = pc.addTransceiver(_Placeholder(), direction="sendrecv")
        ext = HeaderExtensionsMap()

        async def handle(packet: RtpPacket, arrival_time_ms: int = 0) -> None:
            leg["received"] += 1

        async def receive(parameters: Any) -> None:
            transceiver.receiver.transport._register_rtp_receiver(transceiver.receiver, parameters)

        async def send(parameters: Any) -> None:
            transceiver.sender.transport._register_rtp_sender(transceiver.sender, parameters)
            ext.configure(parameters)
            leg.update(
                sender=transceiver.sender,
                pt=parameters.codecs[0].payloadType,
                mid=parameters.muxId,
                ext=ext,
            )

        transceiver.receiver.receive = receive
        transceiver.receiver._handle_rtp_packet = handle
        transceiver.sender.send = send
        async for msg in ws:
            message = json.loads(msg.data)
            if message["type"] == "welcome":
                await pc.setLocalDescription(await pc.createOffer())
                await ws.send_str(json.dumps({"type": "offer", "sdp": pc.localDescription.sdp}))
            elif message["type"] == "answer":
                await pc.setRemoteDescription(RTCSessionDescription(message["sdp"], "answer"))
            elif message["type"] == "state" and message["state"] == "joined":
                break
        legs.append(leg)

        async def drain() -> None:  # keep reading: aiohttp answers the server's pings then
            async for _ in ws:
                pass

        leg["reader"] = asyncio.ensure_future(drain())

    await asyncio.gather(*(join(n, t, k, i) for i, (n, t, k) in enumerate(joins)))
    print(json.dumps({"joined": len(legs)}), flush=True)

    loop = asyncio.get_running_loop()
    began = next_tick = loop.time()
    tick = 0
    counted_from = {id(leg): 0 for leg in legs}
    while loop.time() - began < seconds:
        for leg in legs:
            payload = (packets if leg["talks"] else silence)[tick % len(packets)]
            sender = leg["sender"]
            if sender is None:
                continue
            packet = RtpPacket(
                payload_type=leg["pt"],
                sequence_number=leg["seq"] & 0xFFFF,
                timestamp=(960 * tick) & 0xFFFFFFFF,
                ssrc=sender._ssrc,
                payload=payload,
            )
            packet.extensions.mid = leg["mid"]
            leg["seq"] += 1
            drive(sender.transport._send_rtp(packet.serialize(leg["ext"])))
        tick += 1
        if tick == 100:  # 2 s in: count from here
            counted_from = {id(leg): leg["received"] for leg in legs}
            counted_at = loop.time()
            cpu_at = time.process_time()
        next_tick += 0.02
        await asyncio.sleep(max(0.0, next_tick - loop.time()))
    span = loop.time() - counted_at
    rates = [(leg["received"] - counted_from[id(leg)]) / span for leg in legs]
    cpu = (time.process_time() - cpu_at) / span
    print(json.dumps({"rates": rates, "client_cpu": cpu, "sent": tick}), flush=True)
    for leg in legs:
        leg["reader"].cancel()
        await leg["ws"].close()
        await leg["pc"].close()
    await http.close()


# -- the driver ------------------------------------------------------------------------------
def run(
    legs: int, per_room: int, talkers: int, seconds: float, profile: str | None = None
) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="bench-webrtc-"))
    http = free_port(socket.SOCK_STREAM)
    env = {
        **os.environ,
        "GATEWAY_HTTP_PORT": str(http),
        "GATEWAY_SIP_PORT": str(free_port(socket.SOCK_DGRAM)),
        "GATEWAY_DATABASE_URL": f"sqlite:///{work / 'gateway.db'}",
        "GATEWAY_ADMIN_TOKEN": TOKEN,
        "GATEWAY_MAX_BROWSER_LEGS": str(legs + 10),
    }
    base = f"http://127.0.0.1:{http}"
    log = open(work / "gateway.log", "wb")
    gateway = subprocess.Popen(
        [sys.executable, "-m", "gateway"], cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    client: subprocess.Popen[str] | None = None
    try:
        for _ in range(150):
            try:
                urllib.request.urlopen(base + "/api/health", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        joins = []
        for r in range((legs + per_room - 1) // per_room):
            room = api(base, TOKEN, "POST", "/api/rooms", {"name": f"bench {r}"})
            token = room["links"]["guest"].split("token=", 1)[1]
            for k in range(min(per_room, legs - len(joins))):
                joins.append((room["number"], token, k < talkers))
        client = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--client",
                base.replace("http", "ws"),
                json.dumps(joins),
                str(seconds + 6),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert client.stdout is not None
        joined = json.loads(client.stdout.readline())
        time.sleep(3)  # settle: playout started everywhere
        spy = None
        if profile:  # py-spy's collapsed stacks of the gateway over the measured window
            spy = subprocess.Popen(
                [
                    shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy"),
                    "record",
                    "-p",
                    str(gateway.pid),
                    "-d",
                    str(int(seconds)),
                    "-f",
                    "raw",
                    "-o",
                    profile,
                    "-r",
                    "200",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        cpu0, wall0 = cpu_seconds(gateway.pid), time.monotonic()
        time.sleep(seconds)
        cpu1, wall1 = cpu_seconds(gateway.pid), time.monotonic()
        if spy is not None:
            spy.wait(30)
        report = json.loads(client.stdout.readline())
        rates = report["rates"]
        client.wait(60)
        share = (cpu1 - cpu0) / (wall1 - wall0)
        return {
            "legs": joined["joined"],
            "cpu_share": share,
            "legs_per_core": joined["joined"] / share if share else float("inf"),
            "rate_min": min(rates),
            "rate_median": statistics.median(rates),
            "client_cpu": report["client_cpu"],
        }
    finally:
        if client is not None and client.poll() is None:
            client.kill()
        gateway.terminate()
        gateway.wait(20)
        log.close()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--client":
        url, joins, seconds = sys.argv[2], json.loads(sys.argv[3]), float(sys.argv[4])
        asyncio.run(client_main(url, [(n, t, bool(k)) for n, t, k in joins], seconds))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--legs", type=int, default=40)
    parser.add_argument("--per-room", type=int, default=10)
    parser.add_argument("--talkers", type=int, default=1, help="legs per room that talk")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--py-spy", metavar="FILE", help="also profile the gateway (py-spy, raw)")
    args = parser.parse_args()
    reference = codec_reference()
    codec_legs = 0.020 / reference
    result = run(args.legs, args.per_room, args.talkers, args.seconds, args.py_spy)
    real_time = result["rate_min"] >= 47.5
    print(
        f"browser legs: {result['legs']} in rooms of {args.per_room}, "
        f"gateway CPU {100 * result['cpu_share']:.1f} % of a core over {args.seconds:g} s"
    )
    print(
        f"  received per leg: min {result['rate_min']:.1f}, median "
        f"{result['rate_median']:.1f} packets/s (due: 50) -> "
        f"{'real time' if real_time else 'NOT real time'}; "
        f"client process CPU {100 * result['client_cpu']:.0f} % of a core"
    )
    print(f"  legs per core: {result['legs_per_core']:.0f}")
    print(
        f"reference, same run: bare Opus encode+decode {1e6 * reference:.0f} us per 20 ms "
        f"frame = {codec_legs:.0f} legs per core for the codec alone"
    )
    print(f"ratio legs per core / codec-only: {result['legs_per_core'] / codec_legs:.2f}")


if __name__ == "__main__":
    main()
