"""A tiny SIP UAS over UDP, for the harness self-checks (not a model of correct SIP).

* ``sip:NNN@...`` with NNN in 300..699 is answered with that final status;
* other INVITEs get 100 + 200 with an SDP answer (first of PCMU/PCMA/G722 offered, plus
  telephone-event when offered; the direction mirrors the offer: sendonly -> recvonly);
  an INVITE without SDP gets an offer in the 200 (delayed offer), the answer comes in the ACK;
* OPTIONS, BYE, INFO, UPDATE get 200; CANCEL gets 200 (no 487: the stub answers at once);
* retransmitted requests get the same responses again; a 2xx to INVITE is retransmitted
  until its ACK arrives (so sipp's ``-lost`` works against it).

RTP arriving at the stub's media port is kept (``rtp_packets``); PCMU/PCMA payloads can be
written to a WAV with :meth:`StubUas.write_received_audio`.
"""

from __future__ import annotations

import re
import select
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import numpy as np

from .audio import write_wav
from .net import LOCALHOST, free_port, free_rtp_port_pair

_CODECS = {0: "PCMU/8000", 8: "PCMA/8000", 9: "G722/8000"}


@dataclass
class Request:
    method: str
    uri: str
    headers: dict[str, list[str]]
    body: str
    source: tuple[str, int]

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), [""])[0]


@dataclass
class StubUas:
    host: str = LOCALHOST
    port: int = 0
    media_port: int = 0
    requests: list[Request] = field(default_factory=list)
    rtp_packets: list[tuple[int, bytes]] = field(default_factory=list)  # (payload type, payload)

    def __post_init__(self) -> None:
        self.port = self.port or free_port("udp")
        self.media_port = self.media_port or free_rtp_port_pair()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((self.host, self.port))
        self._rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._rtp.bind((self.host, self.media_port))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="stub-uas", daemon=True)
        self._responses: dict[tuple[str, str, str], list[bytes]] = {}
        self._tags: dict[str, str] = {}
        # 2xx to INVITE is retransmitted until the ACK comes (RFC 3261 13.3.1.4)
        self._pending_2xx: dict[tuple[str, str], tuple[bytes, tuple[str, int], float, float]] = {}
        self._lock = threading.Lock()

    # -- lifecycle -----------------------------------------------------------------------
    def __enter__(self) -> StubUas:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join(2.0)
        self._sock.close()
        self._rtp.close()

    def methods(self) -> list[str]:
        with self._lock:
            return [r.method for r in self.requests]

    def wait_for(self, method: str, count: int = 1, timeout: float = 5.0) -> list[Request]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                got = [r for r in self.requests if r.method == method]
            if len(got) >= count:
                return got
            time.sleep(0.02)
        raise TimeoutError(f"stub UAS saw {self.methods()} (wanted {count} x {method})")

    def write_received_audio(self, path: str | Path) -> Path:
        """Decode received PCMU/PCMA payloads (in arrival order) to an 8 kHz WAV."""
        chunks = []
        for pt, payload in self.rtp_packets:
            if pt in (0, 8):
                chunks.append(_g711_decode(payload, pt))
        write_wav(path, 8000, np.concatenate(chunks) if chunks else np.zeros(0))
        return Path(path)

    # -- loop ----------------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._sock, self._rtp], [], [], 0.1)
            except (OSError, ValueError):
                return
            self._retransmit_2xx()
            for s in ready:
                try:
                    data, addr = s.recvfrom(65535)
                except OSError:
                    continue
                if s is self._rtp:
                    if len(data) >= 12 and data[0] >> 6 == 2:
                        cc = data[0] & 0x0F
                        self.rtp_packets.append((data[1] & 0x7F, data[12 + 4 * cc :]))
                    continue
                try:
                    self._handle(data.decode("utf-8", "replace"), addr)
                except Exception as exc:  # keep serving; a self-check will notice
                    print(f"stub_uas: {exc!r}")

    def _handle(self, text: str, addr: tuple[str, int]) -> None:
        head, _, body = text.partition("\r\n\r\n")
        lines = head.split("\r\n")
        if not lines or lines[0].startswith("SIP/2.0"):
            return  # responses (to nothing we sent) are ignored
        method, uri, _ = lines[0].split(" ", 2)
        headers: dict[str, list[str]] = {}
        compact = {
            "v": "via",
            "f": "from",
            "t": "to",
            "i": "call-id",
            "m": "contact",
            "l": "content-length",
            "c": "content-type",
        }
        for line in lines[1:]:
            if ":" not in line:
                continue
            k, v = line.split(":", 1)
            k = k.strip().lower()
            headers.setdefault(compact.get(k, k), []).append(v.strip())
        req = Request(method, uri, headers, body, addr)
        with self._lock:
            self.requests.append(req)
        cseq = req.header("cseq")
        key = (req.header("call-id"), cseq, req.header("via").split("branch=")[-1].split(";")[0])
        if method == "ACK":
            self._pending_2xx.pop((req.header("call-id"), cseq.split()[0] if cseq else ""), None)
            return
        if key in self._responses:  # retransmission
            for msg in self._responses[key]:
                self._sock.sendto(msg, addr)
            return
        out: list[bytes] = []
        user = re.match(r"sips?:([^@;>]+)@", uri)
        status = user.group(1) if user else ""
        if method == "INVITE":
            out.append(self._response(req, 100, "Trying", tag=False))
            if re.fullmatch(r"[3-6]\d\d", status):
                out.append(self._response(req, int(status), "Stub Status"))
            else:
                out.append(self._response(req, 200, "OK", body=self._sdp(req.body), contact=True))
        elif method == "CANCEL":
            out.append(self._response(req, 200, "OK"))
        else:
            out.append(self._response(req, 200, "OK", contact=method == "OPTIONS"))
        self._responses[key] = out
        for msg in out:
            self._sock.sendto(msg, addr)
        if method == "INVITE" and out[-1].startswith(b"SIP/2.0 2"):
            self._pending_2xx[(req.header("call-id"), cseq.split()[0])] = (
                out[-1],
                addr,
                time.monotonic() + 0.5,
                0.5,
            )

    def _retransmit_2xx(self) -> None:
        now = time.monotonic()
        for k, (msg, addr, due, interval) in list(self._pending_2xx.items()):
            if due <= now:
                if interval > 16.0:
                    del self._pending_2xx[k]
                    continue
                self._sock.sendto(msg, addr)
                self._pending_2xx[k] = (msg, addr, now + min(2 * interval, 4.0), 2 * interval)

    def _response(
        self,
        req: Request,
        code: int,
        reason: str,
        *,
        tag: bool = True,
        body: str = "",
        contact: bool = False,
    ) -> bytes:
        to = req.header("to")
        if tag and ";tag=" not in to:
            to += ";tag=" + self._tags.setdefault(
                req.header("call-id"), f"stub{len(self._tags) + 1}"
            )
        lines = [f"SIP/2.0 {code} {reason}"]
        lines += [f"Via: {v}" for v in req.headers.get("via", [])]
        lines += [
            f"From: {req.header('from')}",
            f"To: {to}",
            f"Call-ID: {req.header('call-id')}",
            f"CSeq: {req.header('cseq')}",
        ]
        if contact:
            lines.append(f"Contact: <sip:stub@{self.host}:{self.port}>")
            lines.append("Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, INFO, UPDATE")
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body.encode())}")
        return ("\r\n".join(lines) + "\r\n\r\n" + body).encode()

    def _sdp(self, offer: str) -> str:
        pts: list[int] = [0, 8, 101]
        direction = "sendrecv"
        if offer.strip():
            m = re.search(r"^m=audio \d+ RTP/AVP ([\d ]+)", offer, re.M)
            offered = [int(p) for p in m.group(1).split()] if m else []
            first = next((p for p in offered if p in _CODECS), 0)
            te = re.search(r"a=rtpmap:(\d+) telephone-event/8000", offer)
            pts = [first] + ([int(te.group(1))] if te else [])
            for d, mirror in (
                ("sendonly", "recvonly"),
                ("recvonly", "sendonly"),
                ("inactive", "inactive"),
            ):
                if re.search(rf"^a={d}\s*$", offer, re.M):
                    direction = mirror
        sdp = [
            "v=0",
            f"o=stub 1 {int(time.time())} IN IP4 {self.host}",
            "s=stub",
            f"c=IN IP4 {self.host}",
            "t=0 0",
            f"m=audio {self.media_port} RTP/AVP {' '.join(map(str, pts))}",
        ]
        for p in pts:
            if p in _CODECS:
                sdp.append(f"a=rtpmap:{p} {_CODECS[p]}")
            else:
                sdp += [f"a=rtpmap:{p} telephone-event/8000", f"a=fmtp:{p} 0-16"]
        sdp.append(f"a={direction}")
        return "\r\n".join(sdp) + "\r\n"


def _g711_decode(payload: bytes, pt: int) -> np.ndarray:
    b = np.frombuffer(payload, dtype=np.uint8).astype(np.int32)
    if pt == 0:
        u = ~b & 0xFF
        t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4)
        lin = np.where(u & 0x80, 0x84 - t, t - 0x84)
    else:
        a = b ^ 0x55
        seg = (a & 0x70) >> 4
        t = (a & 0x0F) << 4
        t = np.where(
            seg == 0, t + 8, np.where(seg == 1, t + 0x108, (t + 0x108) << np.maximum(seg - 1, 0))
        )
        lin = np.where(a & 0x80, t, -t)
    return lin.astype(np.float64) / 32768.0


def unpack_rtp_header(data: bytes) -> tuple[int, int, int, int]:
    """(payload type, seq, timestamp, ssrc) of an RTP packet."""
    _, b1, seq, ts, ssrc = struct.unpack("!BBHII", data[:12])
    return b1 & 0x7F, seq, ts, ssrc
