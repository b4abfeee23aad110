"""End-to-end media capacity: how many SIP legs one core of the gateway carries, real sockets.

Not part of ``make test``. For each step of ``--steps`` (a number of legs N) and each codec of
``--codecs`` (PCMU, G722):

1. ``python -m gateway`` (SQLite in a temp dir, admission limits and RTP timeout raised) has
   rooms of 10 legs. A far-end process of this script (``farend``) binds N UDP sockets;
   sipp (``bench/scenarios/media_call.xml``, signalling only) places N calls offering only
   the one codec, each with one of those sockets as its SDP media address, and logs the
   gateway's RTP port from each 200 OK.
2. Once every call is connected, the far end sends each leg one RTP packet every 20 ms
   (a speech-like signal, pre-encoded; the legs in 10 groups 2 ms apart, as independent
   peers' phases spread over the 20 ms) to the gateway's port and counts the RTP packets of
   that payload type that come back on each socket (the gateway sends each leg its N-1 mix).
   After ``--settle`` seconds a ``--window``-second measurement, from one of the gateway's
   ``stats:`` lines to the next (it runs with ``GATEWAY_STATS_SECONDS`` = the window, so the
   line's lateness p99 covers exactly the window's ticks): the gateway's CPU (utime+stime
   from ``/proc/PID/stat``, all threads, as a fraction of one core), the mixer clock's p99
   lateness and skipped ticks, its resident memory (and per leg: the growth over the idle
   gateway's, divided by N), the packets the far end received against N x 50/s x window
   (the gateway's own 20 ms clock), and the far end's own sending rate (to show it kept up).
   G.711 steps also time a click: the first room is quiet but for its leg 0, which sends a
   20 ms 1 kHz burst every 500 ms; leg 1 decodes what it hears and takes the time from the
   burst's sending to the arrival of the first loud packet (jitter buffer, waiting for the
   tick, the mix, encoding, the network both ways). sipp hangs up after the hold.
3. G.711 only: the bare reference, in another process (``bare``, asyncio; uvloop when
   importable): N UDP sockets receiving from a fresh far end, every 20 ms decode each leg's
   latest 160-byte PCMU payload with a 256-entry table, sum per room of 10, N-1 by
   subtraction, encode with a 65536-entry table and ``sendto`` each far end. Its CPU is
   measured over the same kind of window; the ratio is gateway CPU per leg / bare CPU per leg.
   A second bare loop (``bare ... poll``) does the same but reads its non-blocking sockets
   once per tick instead of through asyncio's datagram protocol, as the gateway does since
   it reads its RTP sockets on the mixer clock: ``ratio_poll`` compares like with like.

A step is carried when every call connected, the gateway's CPU is under 90 % of one core, at
most 0.1 % of the expected packets are missing at the far ends (the window's edges cost a
few packets of counting noise) and the mixer clock's p99 lateness over the window is under
5 ms. Steps stop at the first failure per codec. Everything
runs on one machine: sipp, the far end and the bare loop share the two cores with the
gateway. The calls offer RFC 4733 telephone-event besides the codec, as room systems and
phone gateways do: the gateway then looks for DTMF in those events, not in the audio (a
peer without them costs the in-band detector, about 8 % more CPU per leg).

Output: one ``STEP`` line per step and codec, then ``SUMMARY: N G.711 legs per core (CPU per
leg X % vs bare loop Y %, ratio R)`` with N the largest carried G.711 step.

Run: ``python bench/media_capacity.py [--steps 50,100,150,200,300,400] [--codecs PCMU,G722]
[--window 10]`` (needs Debian's sip-tester).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import resource
import selectors
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import numpy.typing as npt
from benchlib import api, free_port

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from media.codecs import ULAW_DECODE, ULAW_ENCODE  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "bench" / "scenarios" / "media_call.xml"
TOKEN = "media-bench-admin-token-0123456789"
LEGS_PER_ROOM = 10
TICK = 0.020
PACKETS_PER_SECOND = 50
CPU_LIMIT = 0.90
LOSS_LIMIT = 0.001
LATE_LIMIT_MS = 5.0  # p99 of the mixer clock's lateness, worst second of the window
RATE = 100  # calls/s offered by sipp
SLOTS = 10  # the far end sends each 20 ms in this many evenly spaced groups of legs
RTP = struct.Struct("!BBHII")
CODECS = {"PCMU": (0, "0 PCMU/8000"), "G722": (9, "9 G722/8000")}
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of process ``pid`` (every thread), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# --- payloads and G.711 tables ------------------------------------------------------------


def ulaw_decode_table() -> npt.NDArray[np.int32]:
    """The project's G.711 mu-law tables (the bare loop uses them too: the same lookups)."""
    return ULAW_DECODE.astype(np.int32)


def ulaw_encode(samples: npt.NDArray[np.int32]) -> npt.NDArray[np.uint8]:
    """mu-law codes of int samples (clipped to int16), one table lookup."""
    return ULAW_ENCODE[np.clip(samples, -32768, 32767).astype(np.int16).view(np.uint16)]


def voice(seed: int, rate: int, seconds: float = 1.0) -> npt.NDArray[np.int16]:
    """A speech-ish signal: a few harmonics plus noise, with a moving level."""
    rng = np.random.default_rng(seed)
    n = int(rate * seconds)
    t = np.arange(n) / rate
    f0 = rng.uniform(100, 250)
    x = sum(np.sin(2 * np.pi * f0 * k * t + rng.uniform(0, 6)) / k for k in range(1, 6))
    x = x * (3000 + 2500 * np.sin(2 * np.pi * rng.uniform(0.5, 3) * t)) + rng.normal(0, 300, n)
    return np.clip(x, -32768, 32767).astype(np.int16)


def payloads(codec: str, seed: int) -> list[bytes]:
    """One second of 20 ms payloads (160 bytes each for both codecs)."""
    if codec == "PCMU":
        pcm = voice(seed, 8000).astype(np.int32)
        return [ulaw_encode(pcm[i : i + 160]).tobytes() for i in range(0, 8000, 160)]
    from media.codecs import G722Encoder  # the project's own G.722 (the g722 package)

    encoder = G722Encoder()
    pcm16 = voice(seed, 16000)
    return [encoder.encode(pcm16[i : i + 320]) for i in range(0, 16000, 320)]


# --- the far end (a process of its own) ----------------------------------------------------


CLICK_EVERY = 25  # frames: a click every 500 ms from leg 0 (G.711 steps)
CLICK_ON = 8000  # a received frame's peak above this (after one below CLICK_OFF) is a click
CLICK_OFF = 2000


def click_payloads() -> tuple[bytes, bytes]:
    """PCMU silence, and a click: 20 ms of a 1 kHz tone at -6 dBFS."""
    silence = ulaw_encode(np.zeros(160, dtype=np.int32)).tobytes()
    tone = (16000 * np.sin(2 * np.pi * 1000 * np.arange(160) / 8000)).astype(np.int32)
    return silence, ulaw_encode(tone).tobytes()


def farend(legs: int, codec: str) -> None:
    """N sockets; commands on stdin, one JSON answer per command on stdout.

    ``go HOST:PORT ...`` starts sending (one target per leg); ``mark`` answers the counts so
    far; ``quit`` ends. Received packets count only with the codec's payload type (RTCP sent
    to a neighbouring port is not counted)."""
    raise_fd_limit()
    pt = CODECS[codec][0]
    frames = [payloads(codec, 7 + k) for k in range(LEGS_PER_ROOM)]
    # G.711: the first room is quiet but for leg 0's click every 500 ms, which leg 1 times
    # (send to arrival through the gateway: jitter buffer, mixer tick, encode, network)
    clicks = codec == "PCMU" and legs >= LEGS_PER_ROOM
    silence, click = click_payloads() if clicks else (b"", b"")
    decode = ulaw_decode_table()
    clicked_at: float | None = None
    last_peak = 0
    latencies: list[float] = []
    socks = []
    for _ in range(legs):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 18)
        s.bind(("127.0.0.1", 0))
        s.setblocking(False)
        socks.append(s)
    print(json.dumps({"ports": [s.getsockname()[1] for s in socks]}), flush=True)
    sel = selectors.DefaultSelector()
    for i, s in enumerate(socks):
        sel.register(s, selectors.EVENT_READ, i)
    stdin = sys.stdin.fileno()
    os.set_blocking(stdin, False)
    sel.register(stdin, selectors.EVENT_READ, -1)
    rx = [0] * legs
    tx = 0
    targets: list[tuple[str, int]] = []
    pending = b""
    k = 0
    deadline = time.monotonic()
    slot = 0
    while True:
        now = time.monotonic()
        if targets and now >= deadline:
            # independent peers send at independent phases: leg i in slot i % SLOTS of each
            # 20 ms, not all legs in one burst
            seq = k & 0xFFFF
            ts = (k * 160) & 0xFFFFFFFF
            for i in range(slot, legs, SLOTS):
                header = RTP.pack(0x80, pt, seq, ts, 0x1000 + i)
                payload = frames[i % LEGS_PER_ROOM][k % PACKETS_PER_SECOND]
                if clicks and i < LEGS_PER_ROOM:
                    payload = silence
                    if i == 0 and k % CLICK_EVERY == 0:
                        payload = click
                        clicked_at = time.monotonic()
                try:
                    socks[i].sendto(header + payload, targets[i])
                    tx += 1
                except OSError:
                    pass
            slot += 1
            if slot == SLOTS:
                slot = 0
                k += 1
            deadline += TICK / SLOTS
            continue
        timeout = max(0.0, deadline - now) if targets else 0.5
        for key, _ in sel.select(timeout):
            i = key.data
            if i >= 0:
                s = socks[i]
                while True:
                    try:
                        data = s.recv(2048)
                    except BlockingIOError:
                        break
                    except OSError:
                        break
                    if len(data) > 12 and data[1] & 0x7F == pt:
                        rx[i] += 1
                        if clicks and i == 1:
                            peak = int(np.abs(decode[np.frombuffer(data[12:], np.uint8)]).max())
                            if peak > CLICK_ON and last_peak < CLICK_OFF and clicked_at:
                                latencies.append(time.monotonic() - clicked_at)
                                clicked_at = None
                            last_peak = peak
                continue
            chunk = os.read(stdin, 1 << 20)
            if not chunk:
                return
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                words = line.decode().split()
                if not words:
                    continue
                if words[0] == "go":
                    targets = [(h, int(p)) for h, p in (w.rsplit(":", 1) for w in words[1:])]
                    deadline = time.monotonic()
                elif words[0] == "mark":
                    answer = {"t": time.monotonic(), "rx": rx, "tx": tx, "clicks": latencies}
                    print(json.dumps(answer), flush=True)
                elif words[0] == "quit":
                    return


# --- the bare reference (a process of its own) ---------------------------------------------


class _Leg(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.latest = b"\xff" * 160  # PCMU silence until the first packet
        self.peer: tuple[str, int] | None = None
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's UDP transport is not an asyncio.DatagramTransport subclass
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        if len(data) == 172:
            self.latest = data[12:]
            self.peer = addr


async def bare_main(legs: int) -> None:
    raise_fd_limit()
    loop = asyncio.get_running_loop()
    decode = ulaw_decode_table()
    protos: list[_Leg] = []
    for _ in range(legs):
        _, proto = await loop.create_datagram_endpoint(_Leg, local_addr=("127.0.0.1", 0))
        protos.append(proto)
    ports = [p.transport.get_extra_info("sockname")[1] for p in protos if p.transport]
    print(json.dumps({"ports": ports}), flush=True)
    rooms = [protos[i : i + LEGS_PER_ROOM] for i in range(0, legs, LEGS_PER_ROOM)]
    stop = asyncio.Event()
    loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not os.read(0, 4096) else None)
    k = 0
    deadline = loop.time()
    while not stop.is_set():
        seq = k & 0xFFFF
        ts = (k * 160) & 0xFFFFFFFF
        for room in rooms:
            pcm = decode[np.frombuffer(b"".join(p.latest for p in room), np.uint8)]
            frames = pcm.reshape(len(room), 160)
            mixes = frames.sum(axis=0) - frames  # N-1 by subtraction
            out = ulaw_encode(mixes)
            for i, p in enumerate(room):
                if p.peer is not None and p.transport is not None:
                    p.transport.sendto(
                        RTP.pack(0x80, 0, seq, ts, 0x2000 + i) + out[i].tobytes(), p.peer
                    )
        k += 1
        deadline += TICK
        await asyncio.sleep(max(0.0, deadline - loop.time()))


async def bare_poll_main(legs: int) -> None:
    """The bare loop reading its sockets once per tick, as the gateway does (no datagram
    protocol): non-blocking sockets drained at each tick, replies by ``socket.sendto``."""
    raise_fd_limit()
    loop = asyncio.get_running_loop()
    decode = ulaw_decode_table()
    socks: list[socket.socket] = []
    for _ in range(legs):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setblocking(False)
        sock.bind(("127.0.0.1", 0))
        socks.append(sock)
    print(json.dumps({"ports": [s.getsockname()[1] for s in socks]}), flush=True)
    latest = [b"\xff" * 160] * legs
    peers: list[tuple[str, int] | None] = [None] * legs
    rooms = [range(i, min(i + LEGS_PER_ROOM, legs)) for i in range(0, legs, LEGS_PER_ROOM)]
    stop = asyncio.Event()
    loop.add_reader(sys.stdin.fileno(), lambda: stop.set() if not os.read(0, 4096) else None)
    k = 0
    deadline = loop.time()
    while not stop.is_set():
        for i, sock in enumerate(socks):
            while True:
                try:
                    data, addr = sock.recvfrom(2048)
                except BlockingIOError:
                    break
                if len(data) == 172:
                    latest[i] = data[12:]
                    peers[i] = addr
        seq = k & 0xFFFF
        ts = (k * 160) & 0xFFFFFFFF
        for room in rooms:
            pcm = decode[np.frombuffer(b"".join(latest[i] for i in room), np.uint8)]
            frames = pcm.reshape(len(room), 160)
            mixes = frames.sum(axis=0) - frames  # N-1 by subtraction
            out = ulaw_encode(mixes)
            for j, i in enumerate(room):
                peer = peers[i]
                if peer is not None:
                    socks[i].sendto(RTP.pack(0x80, 0, seq, ts, 0x2000 + j) + out[j].tobytes(), peer)
        k += 1
        deadline += TICK
        await asyncio.sleep(max(0.0, deadline - loop.time()))


def bare(legs: int, io: str = "protocol") -> None:
    if io == "poll":
        asyncio.run(bare_poll_main(legs))
        return
    try:
        import uvloop  # type: ignore[import-not-found]

        uvloop.run(bare_main(legs))
    except ImportError:
        asyncio.run(bare_main(legs))


# --- the driver ----------------------------------------------------------------------------


class Child:
    """A process of this script, spoken to by lines on stdin/stdout."""

    def __init__(self, *argv: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, *argv],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.first = self.read()

    def read(self) -> Any:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"child {self.proc.args} ended")
        return json.loads(line)

    def send(self, line: str) -> None:
        stdin: IO[str] | None = self.proc.stdin
        assert stdin is not None
        stdin.write(line + "\n")
        stdin.flush()

    def close(self) -> None:
        try:
            self.send("quit")
            assert self.proc.stdin is not None
            self.proc.stdin.close()
        except (OSError, ValueError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclass
class Window:
    cpu: float  # fraction of one core, the measured process
    farend_cpu: float
    received: int
    expected: int
    sent_ratio: float  # far end's packets sent / expected (did it keep up)
    silent_legs: int  # legs that received nothing in the window
    clicks_ms: list[float] = field(default_factory=list)  # click send -> arrival, ms
    late_p99_ms: float | None = None  # worst 1 s p99 of the mixer clock's lateness
    skipped: int = 0  # mixer ticks skipped (the clock fell more than 3 frames behind)
    rss_kib: int | None = None  # the gateway's resident memory at the window's end

    @property
    def loss(self) -> float:
        return max(0.0, 1 - self.received / self.expected) if self.expected else 1.0


STATS_LINE = re.compile(r"stats: .*? skipped=(\d+) .*?late_p99_ms=([\d.]+).*? rss_kib=(\d+)")


def wait_stats_line(log: Path, offset: int, timeout: float) -> tuple[str, str, str] | None:
    """The first stats: line written after ``offset`` (polled), or None after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(log, "rb") as f:
            f.seek(offset)
            found = STATS_LINE.findall(f.read().decode(errors="replace"))
        if found:
            return found[0]
        time.sleep(0.02)
    return None


def measure(
    pid: int, far: Child, legs: int, settle: float, window: float, log: Path | None = None
) -> Window:
    time.sleep(settle)
    # the gateway logs a stats: line every `window` s (the clock's lateness since the last
    # line): the window runs from one such line to the next, so its p99 covers exactly the
    # window's ticks
    if log is not None:
        wait_stats_line(log, log.stat().st_size, window + 5)
    far.send("mark")
    a = far.read()
    c0, f0 = cpu_seconds(pid), cpu_seconds(far.proc.pid)
    line: tuple[str, str, str] | None = None
    if log is not None:
        line = wait_stats_line(log, log.stat().st_size, window + 5)
    else:
        time.sleep(window)
    far.send("mark")
    b = far.read()
    c1, f1 = cpu_seconds(pid), cpu_seconds(far.proc.pid)
    late = float(line[1]) if line else None
    skipped = int(line[0]) if line else 0
    rss = int(line[2]) if line else None
    seconds = b["t"] - a["t"]
    expected = round(legs * PACKETS_PER_SECOND * seconds)
    per_leg = [y - x for x, y in zip(a["rx"], b["rx"], strict=True)]
    return Window(
        cpu=(c1 - c0) / seconds,
        farend_cpu=(f1 - f0) / seconds,
        received=sum(per_leg),
        expected=expected,
        sent_ratio=(b["tx"] - a["tx"]) / expected if expected else 0.0,
        silent_legs=sum(1 for n in per_leg if n == 0),
        clicks_ms=[x * 1000 for x in b["clicks"][len(a["clicks"]) :]],
        late_p99_ms=late,
        skipped=skipped,
        rss_kib=rss,
    )


class Bench:
    def __init__(self, work: Path, args: argparse.Namespace) -> None:
        self.work = work
        self.args = args
        self.http, self.sip = free_port(socket.SOCK_STREAM), free_port()
        self.base = f"http://127.0.0.1:{self.http}"
        self.log = work / "gateway.log"
        self.rooms: list[str] = []
        big = str(100_000)
        env = {
            **os.environ,
            "GATEWAY_HTTP_PORT": str(self.http),
            "GATEWAY_SIP_PORT": str(self.sip),
            # below the kernel's ephemeral range, where the far ends' sockets are
            "GATEWAY_RTP_PORTS": "20000-29999",
            "GATEWAY_DATABASE_URL": f"sqlite:///{work / 'gateway.db'}",
            "GATEWAY_ADMIN_TOKEN": TOKEN,
            "GATEWAY_MAX_CALLS_PER_SOURCE": big,
            "GATEWAY_MAX_PENDING_PER_SOURCE": big,
            "GATEWAY_MAX_CALLS": big,
            "GATEWAY_MAX_SETUPS": big,
            "GATEWAY_RTP_TIMEOUT": "3600",
            # the mixer clock's lateness over each measurement window
            "GATEWAY_STATS_SECONDS": str(args.window),
        }
        with open(self.log, "wb") as out:
            self.gateway = subprocess.Popen(
                [sys.executable, "-m", "gateway"],
                cwd=work,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        for _ in range(150):
            try:
                urllib.request.urlopen(self.base + "/api/health", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        else:
            raise RuntimeError(f"the gateway did not start; see {self.log}")
        # the idle gateway's memory, from its first stats: line
        first = wait_stats_line(self.log, 0, args.window + 5)
        self.idle_rss_kib = int(first[2]) if first else None

    def room_numbers(self, legs: int) -> list[str]:
        while len(self.rooms) * LEGS_PER_ROOM < legs:
            room = api(self.base, TOKEN, "POST", "/api/rooms", {"name": f"media {len(self.rooms)}"})
            assert isinstance(room, dict)
            self.rooms.append(str(room["number"]))
        return self.rooms

    def gateway_step(self, legs: int, codec: str) -> tuple[int, Window | None]:
        """Place ``legs`` calls, measure; (calls connected, window or None)."""
        pt, rtpmap = CODECS[codec]
        rooms = self.room_numbers(legs)
        far = Child("farend", str(legs), codec)
        ports: list[int] = far.first["ports"]
        step = self.work / f"{codec}-{legs}"
        step.mkdir()
        ramp = legs / RATE
        hold = ramp + 10 + self.args.settle + self.args.window + 5
        scenario = SCENARIO.read_text()
        for key, value in (("pt", str(pt)), ("rtpmap", rtpmap), ("hold_ms", str(int(hold * 1000)))):
            scenario = scenario.replace(f"[{key}]", value)
        (step / "media_call.xml").write_text(scenario)
        rows = [f"{port};{rooms[i // LEGS_PER_ROOM]}" for i, port in enumerate(ports)]
        (step / "legs.csv").write_text("SEQUENTIAL\n" + "\n".join(rows) + "\n")
        sipp_log = step / "legs.log"
        sipp = subprocess.Popen(
            [
                "sipp",
                f"127.0.0.1:{self.sip}",
                "-sf",
                "media_call.xml",
                "-inf",
                "legs.csv",
                "-i",
                "127.0.0.1",
                "-p",
                str(free_port()),
                "-mp",
                str(free_port()),
                "-l",
                str(legs),
                "-r",
                str(RATE),
                "-m",
                str(legs),
                "-nostdin",
                "-trace_logs",
                "-log_file",
                str(sipp_log),
                "-trace_stat",
                "-stf",
                "stat.csv",
                "-timeout",
                str(int(2 * hold + 60)),
                "-timeout_error",
            ],
            cwd=step,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            gw_port: dict[int, int] = {}
            deadline = time.monotonic() + ramp + 10
            while time.monotonic() < deadline and len(gw_port) < legs and sipp.poll() is None:
                time.sleep(0.5)
                if sipp_log.exists():
                    for line in sipp_log.read_text().splitlines():
                        words = line.split()
                        if len(words) >= 3 and words[-3] == "leg" and words[-1].isdigit():
                            gw_port[int(words[-2])] = int(words[-1])
            connected = len(gw_port)
            window = None
            if connected == legs:
                far.send("go " + " ".join(f"127.0.0.1:{gw_port[p]}" for p in ports))
                window = measure(
                    self.gateway.pid, far, legs, self.args.settle, self.args.window, self.log
                )
            sipp.wait(timeout=2 * hold + 90)
            return connected, window
        finally:
            if sipp.poll() is None:
                sipp.kill()
                sipp.wait()
            far.close()
            time.sleep(2)  # the gateway releases the legs

    def bare_step(self, legs: int, io: str = "protocol") -> Window:
        ref = Child("bare", str(legs), io)
        far = Child("farend", str(legs), "PCMU")
        try:
            far.send("go " + " ".join(f"127.0.0.1:{p}" for p in ref.first["ports"]))
            return measure(ref.proc.pid, far, legs, self.args.settle, self.args.window)
        finally:
            far.close()
            ref.close()

    def close(self) -> None:
        self.gateway.terminate()
        try:
            self.gateway.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.gateway.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", default="100,150,200,250,300,350,400,500")
    parser.add_argument("--codecs", default="PCMU,G722")
    parser.add_argument("--settle", type=float, default=3.0, help="s after media starts")
    parser.add_argument("--window", type=float, default=10.0, help="s of measurement")
    args = parser.parse_args()
    steps = [int(s) for s in args.steps.split(",")]
    codecs = [c.strip().upper() for c in args.codecs.split(",")]
    raise_fd_limit()
    work = Path(tempfile.mkdtemp(prefix="media-capacity-"))
    print(f"work files in {work}", flush=True)
    bench = Bench(work, args)
    best: dict[str, tuple[int, float, float | None]] = {}  # codec: legs, cpu/leg, bare cpu/leg
    try:
        for codec in codecs:
            for legs in steps:
                connected, w = bench.gateway_step(legs, codec)
                if w is None:
                    print(
                        f"STEP codec={codec} legs={legs} connected={connected} carried=no",
                        flush=True,
                    )
                    break
                per_leg = w.cpu / legs
                carried = (
                    w.cpu < CPU_LIMIT
                    and w.loss <= LOSS_LIMIT
                    and w.silent_legs == 0
                    and w.late_p99_ms is not None
                    and w.late_p99_ms < LATE_LIMIT_MS
                )
                line = (
                    f"STEP codec={codec} legs={legs} connected={connected} "
                    f"gateway_cpu={w.cpu * 100:.1f}% per_leg={per_leg * 100:.3f}% "
                    f"rx={w.received}/{w.expected} loss={w.loss * 100:.3f}% "
                    f"silent_legs={w.silent_legs} late_p99_ms={w.late_p99_ms} "
                    f"skipped_ticks={w.skipped} farend_sent={w.sent_ratio * 100:.1f}% "
                    f"farend_cpu={w.farend_cpu * 100:.1f}%"
                )
                if w.rss_kib is not None and bench.idle_rss_kib is not None:
                    line += (
                        f" rss_kib={w.rss_kib}"
                        f" rss_per_leg_kib={(w.rss_kib - bench.idle_rss_kib) / legs:.0f}"
                    )
                if w.clicks_ms:
                    line += (
                        f" click_ms_p50={np.percentile(w.clicks_ms, 50):.1f}"
                        f" click_ms_p99={np.percentile(w.clicks_ms, 99):.1f}"
                        f" clicks={len(w.clicks_ms)}"
                    )
                bare_per_leg: float | None = None
                if codec == "PCMU":
                    b = bench.bare_step(legs)
                    bare_per_leg = b.cpu / legs
                    line += (
                        f" | bare_cpu={b.cpu * 100:.1f}% bare_per_leg={bare_per_leg * 100:.3f}% "
                        f"bare_rx={b.received}/{b.expected} bare_loss={b.loss * 100:.3f}% "
                        f"ratio={per_leg / bare_per_leg if bare_per_leg else math.inf:.1f}x"
                    )
                    p = bench.bare_step(legs, "poll")
                    poll_per_leg = p.cpu / legs
                    line += (
                        f" | bare_poll_cpu={p.cpu * 100:.1f}%"
                        f" bare_poll_per_leg={poll_per_leg * 100:.3f}%"
                        f" bare_poll_loss={p.loss * 100:.3f}%"
                        f" ratio_poll={per_leg / poll_per_leg if poll_per_leg else math.inf:.1f}x"
                    )
                print(f"{line} carried={'yes' if carried else 'no'}", flush=True)
                if not carried:
                    break
                best[codec] = (legs, per_leg, bare_per_leg)
        print(f"tracebacks in the gateway log: {bench.log.read_text().count('Traceback')}")
        for codec, (legs, per_leg, _) in best.items():
            if codec != "PCMU":
                print(f"{codec}: {legs} legs carried (CPU per leg {per_leg * 100:.3f} %)")
        if "PCMU" in best:
            legs, per_leg, bare_per_leg = best["PCMU"]
            ratio = per_leg / bare_per_leg if bare_per_leg else math.inf
            print(
                f"SUMMARY: {legs} G.711 legs per core (CPU per leg {per_leg * 100:.3f} % "
                f"vs bare loop {(bare_per_leg or 0) * 100:.3f} %, ratio {ratio:.1f})"
            )
        else:
            print("SUMMARY: no G.711 step carried")
    finally:
        bench.close()


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "farend":
        farend(int(sys.argv[2]), sys.argv[3])
    elif len(sys.argv) > 1 and sys.argv[1] == "bare":
        bare(int(sys.argv[2]), *sys.argv[3:4])
    else:
        main()
