"""Write RTP streams as classic libpcap files that sipp's ``play_pcap_audio`` can replay.

sipp keeps each packet's RTP header and payload as they are and only rewrites addresses,
so the payload type here must be the one the far end negotiated (PCMU=0, PCMA=8, G722=9,
telephone-event=101 by default in our scenarios). Packet timing comes from the pcap
timestamps (20 ms apart).

Usage::

    python -m tests.peers.pcap tone.wav out.pcap --codec PCMU
"""

from __future__ import annotations

import argparse
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from .audio import FloatArray, read_wav

PT_PCMU = 0
PT_PCMA = 8
PT_G722 = 9
PT_TELEPHONE_EVENT = 101

_PCAP_GLOBAL = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)  # LINKTYPE_ETHERNET


@dataclass(frozen=True)
class RtpPacket:
    time: float  # seconds from the start of the capture
    payload_type: int
    seq: int
    timestamp: int
    ssrc: int
    payload: bytes
    marker: bool = False

    def encode(self) -> bytes:
        b0 = 0x80
        b1 = (0x80 if self.marker else 0) | (self.payload_type & 0x7F)
        return (
            struct.pack("!BBHII", b0, b1, self.seq & 0xFFFF, self.timestamp & 0xFFFFFFFF, self.ssrc)
            + self.payload
        )


# -- G.711 ---------------------------------------------------------------------------
def linear_to_ulaw(samples: npt.ArrayLike) -> bytes:
    x = np.clip(np.round(np.asarray(samples, dtype=np.float64) * 32767.0), -32768, 32767).astype(
        np.int32
    )
    bias, clip = 0x84, 32635
    sign = np.where(x < 0, 0x80, 0)
    mag = np.minimum(np.abs(x), clip) + bias
    exponent = np.floor(np.log2(mag)).astype(np.int32) - 7
    exponent = np.clip(exponent, 0, 7)
    mantissa = (mag >> (exponent + 3)) & 0x0F
    out = ~(sign | (exponent << 4) | mantissa) & 0xFF
    return out.astype(np.uint8).tobytes()


def linear_to_alaw(samples: npt.ArrayLike) -> bytes:
    x = np.clip(np.round(np.asarray(samples, dtype=np.float64) * 32767.0), -32768, 32767).astype(
        np.int32
    )
    v = x >> 3  # 13-bit
    mask = np.where(v >= 0, 0xD5, 0x55)
    v = np.where(v >= 0, v, -v - 1)
    seg = np.where(v <= 0x1F, 0, np.floor(np.log2(np.maximum(v, 1))).astype(np.int32) - 4)
    mant = np.where(seg < 2, v >> 1, v >> np.maximum(seg, 1)) & 0x0F
    aval = np.where(seg >= 8, 0x7F, (np.minimum(seg, 7) << 4) | mant)
    return ((aval ^ mask) & 0xFF).astype(np.uint8).tobytes()


def _resample(x: FloatArray, src: int, dst: int) -> FloatArray:
    if src == dst:
        return x
    n = int(round(len(x) * dst / src))
    return np.interp(np.arange(n) * (src / dst), np.arange(len(x)), x)


# -- packets -------------------------------------------------------------------------
def audio_packets(
    samples: FloatArray,
    rate: int,
    codec: str = "PCMU",
    ptime_ms: int = 20,
    ssrc: int = 0x1234ABCD,
    start_seq: int = 1,
) -> list[RtpPacket]:
    """Encode mono float samples as RTP packets (PCMU, PCMA or G722)."""
    codec = codec.upper()
    if codec in ("PCMU", "PCMA"):
        pcm = _resample(samples, rate, 8000)
        per = 8 * ptime_ms
        enc = linear_to_ulaw if codec == "PCMU" else linear_to_alaw
        pt = PT_PCMU if codec == "PCMU" else PT_PCMA
        frames = [enc(pcm[i : i + per]) for i in range(0, len(pcm) - per + 1, per)]
        ts_step = per
    elif codec == "G722":
        import G722 as g722  # the g722 package installs the module G722

        pcm = _resample(samples, rate, 16000)
        per = 16 * ptime_ms
        coder = g722.G722(16000, 64000)
        ints = np.clip(np.round(pcm * 32767.0), -32768, 32767).astype(np.int16)
        frames = [
            bytes(coder.encode(ints[i : i + per])) for i in range(0, len(ints) - per + 1, per)
        ]
        pt = PT_G722
        ts_step = 8 * ptime_ms  # G.722 RTP clock is 8000 (RFC 3551)
    else:
        raise ValueError(f"unsupported codec {codec}")
    return [
        RtpPacket(i * ptime_ms / 1000.0, pt, start_seq + i, i * ts_step, ssrc, f, marker=(i == 0))
        for i, f in enumerate(frames)
    ]


_DTMF_EVENTS = {
    **{str(d): d for d in range(10)},
    "*": 10,
    "#": 11,
    "A": 12,
    "B": 13,
    "C": 14,
    "D": 15,
}


def dtmf_packets(
    digits: str,
    *,
    start: float = 0.5,
    tone_ms: int = 160,
    gap_ms: int = 240,
    payload_type: int = PT_TELEPHONE_EVENT,
    ssrc: int = 0x5EED0101,
    start_seq: int = 1,
    volume: int = 10,
) -> list[RtpPacket]:
    """RFC 4733 events for ``digits`` with increasing seq numbers, 20 ms apart, 3 end packets."""
    pkts: list[RtpPacket] = []
    seq = start_seq
    t = start
    for digit in digits.upper():
        ev = _DTMF_EVENTS[digit]
        ts = int(t * 8000)
        steps = max(1, tone_ms // 20)
        for k in range(1, steps + 1):
            dur = k * 160
            end = k == steps
            reps = 3 if end else 1
            for _ in range(reps):
                payload = struct.pack("!BBH", ev, (0x80 if end else 0) | (volume & 0x3F), dur)
                pkts.append(
                    RtpPacket(
                        t + (k - 1) * 0.02, payload_type, seq, ts, ssrc, payload, marker=(k == 1)
                    )
                )
                seq += 1
        t += (tone_ms + gap_ms) / 1000.0
    return pkts


# -- pcap ----------------------------------------------------------------------------
def _ip_checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _frame(payload: bytes, src: tuple[str, int], dst: tuple[str, int], ident: int) -> bytes:
    udp_len = 8 + len(payload)
    udp = struct.pack("!HHHH", src[1], dst[1], udp_len, 0) + payload
    ip_wo_sum = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,
        0,
        20 + udp_len,
        ident & 0xFFFF,
        0x4000,
        64,
        17,
        0,
        bytes(int(p) for p in src[0].split(".")),
        bytes(int(p) for p in dst[0].split(".")),
    )
    csum = _ip_checksum(ip_wo_sum)
    ip = ip_wo_sum[:10] + struct.pack("!H", csum) + ip_wo_sum[12:]
    eth = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00"
    return eth + ip + udp


def write_pcap(
    path: str | Path,
    packets: Iterable[RtpPacket],
    src: tuple[str, int] = ("127.0.0.1", 6000),
    dst: tuple[str, int] = ("127.0.0.1", 7000),
) -> Path:
    """Write RTP packets as Ethernet/IPv4/UDP frames in a little-endian libpcap file."""
    out = bytearray(_PCAP_GLOBAL)
    base = 1_700_000_000.0
    for i, p in enumerate(sorted(packets, key=lambda q: (q.time, q.seq))):
        frame = _frame(p.encode(), src, dst, i)
        t = base + p.time
        sec = int(t)
        usec = int(round((t - sec) * 1e6))
        if usec >= 1_000_000:
            sec, usec = sec + 1, usec - 1_000_000
        out += struct.pack("<IIII", sec, usec, len(frame), len(frame)) + frame
    Path(path).write_bytes(bytes(out))
    return Path(path)


def wav_to_pcap(path_wav: str | Path, path_pcap: str | Path, codec: str = "PCMU") -> Path:
    rate, x = read_wav(path_wav)
    return write_pcap(path_pcap, audio_packets(x, rate, codec))


def pcap_duration(packets: Sequence[RtpPacket]) -> float:
    return max((p.time for p in packets), default=0.0) + 0.02


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("wav")
    ap.add_argument("pcap")
    ap.add_argument("--codec", default="PCMU", choices=["PCMU", "PCMA", "G722"])
    args = ap.parse_args(argv)
    wav_to_pcap(args.wav, args.pcap, args.codec)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


# -- phone menu helpers (DTMF schedules, in-band tones) ------------------------------
def dtmf_schedule(
    groups: Sequence[tuple[float, str]],
    *,
    tone_ms: int = 120,
    gap_ms: int = 120,
    payload_type: int = PT_TELEPHONE_EVENT,
    ssrc: int = 0x5EED0101,
) -> list[RtpPacket]:
    """RFC 4733 events for several digit groups ``[(start_seconds, "123#"), ...]`` in one
    stream: one SSRC, sequence numbers increasing across the groups (sipp replays a pcap as
    it is, so a later group must not restart at seq 1).

    sipp's ``play_pcap_audio`` sends the first packet at once and then keeps the gaps between
    packets, so only the groups' times relative to the first group matter on the wire; delay
    the first one in the scenario (``sipp.run_dialin_dtmf(lead_ms=...)``)."""
    pkts: list[RtpPacket] = []
    seq = 1
    last_end = -1.0
    for start, digits in sorted(groups):
        if start < last_end:
            raise ValueError(
                f"digit group at {start}s overlaps the previous one (ends {last_end:.2f}s)"
            )
        group = dtmf_packets(
            digits,
            start=start,
            tone_ms=tone_ms,
            gap_ms=gap_ms,
            payload_type=payload_type,
            ssrc=ssrc,
            start_seq=seq,
        )
        pkts += group
        seq = group[-1].seq + 1 if group else seq
        last_end = start + len(digits) * (tone_ms + gap_ms) / 1000.0
    return pkts


#: (low, high) frequencies of the DTMF keypad (ITU-T Q.23)
DTMF_FREQUENCIES: dict[str, tuple[int, int]] = {
    "1": (697, 1209),
    "2": (697, 1336),
    "3": (697, 1477),
    "A": (697, 1633),
    "4": (770, 1209),
    "5": (770, 1336),
    "6": (770, 1477),
    "B": (770, 1633),
    "7": (852, 1209),
    "8": (852, 1336),
    "9": (852, 1477),
    "C": (852, 1633),
    "*": (941, 1209),
    "0": (941, 1336),
    "#": (941, 1477),
    "D": (941, 1633),
}


def sox_dtmf_tone(digit: str, seconds: float, rate: int = 8000, volume: float = 0.35) -> FloatArray:
    """One DTMF digit made by sox (``synth sine LOW sine HIGH remix 1-2``: both sines mixed
    into one channel), as float samples. ``volume`` scales the sum (peak about ``volume``)."""
    import shutil
    import subprocess
    import tempfile

    low, high = DTMF_FREQUENCIES[digit.upper()]
    sox = shutil.which("sox") or "/usr/bin/sox"
    with tempfile.TemporaryDirectory(prefix="dtmf-") as tmp:
        out = Path(tmp) / "d.wav"
        subprocess.run(
            [
                sox,
                "-n",
                "-r",
                str(rate),
                "-c",
                "1",
                "-b",
                "16",
                str(out),
                "synth",
                f"{seconds:.3f}",
                "sine",
                str(low),
                "sine",
                str(high),
                "remix",
                "1-2",
                "vol",
                f"{volume}",
            ],
            check=True,
            capture_output=True,
            timeout=20,
        )
        got_rate, samples = read_wav(out)
    if got_rate != rate:
        raise RuntimeError(f"sox wrote {got_rate} Hz, wanted {rate}")
    return samples


def inband_dtmf_samples(
    groups: Sequence[tuple[float, str]],
    *,
    total_seconds: float | None = None,
    tone_ms: int = 150,
    gap_ms: int = 150,
    rate: int = 8000,
    volume: float = 0.35,
) -> FloatArray:
    """Mono samples: silence with DTMF tones (made by sox) for each ``(start, digits)`` group."""
    end = max((s + len(d) * (tone_ms + gap_ms) / 1000.0 for s, d in groups), default=0.0)
    n = int(round(max(end + 0.5, total_seconds or 0.0) * rate))
    out = np.zeros(n, dtype=np.float64)
    cache: dict[str, FloatArray] = {}
    for start, digits in groups:
        t = start
        for d in digits:
            tone = cache.get(d)
            if tone is None:
                tone = cache[d] = sox_dtmf_tone(d, tone_ms / 1000.0, rate, volume)
            a = int(round(t * rate))
            out[a : a + len(tone)] += tone[: max(0, n - a)]
            t += (tone_ms + gap_ms) / 1000.0
    return out


def inband_dtmf_packets(
    digits: str | Sequence[tuple[float, str]],
    *,
    start: float = 0.5,
    total_seconds: float | None = None,
    tone_ms: int = 150,
    gap_ms: int = 150,
    codec: str = "PCMU",
    ssrc: int = 0x1B0BD7F0,
) -> list[RtpPacket]:
    """A continuous G.711 stream (silence between digits, as a phone sends) carrying
    ``digits`` as in-band DTMF tones from sox; ``digits`` is a string (sent from ``start``)
    or ``[(start_seconds, digits), ...]``."""
    groups = [(start, digits)] if isinstance(digits, str) else list(digits)
    samples = inband_dtmf_samples(
        groups, total_seconds=total_seconds, tone_ms=tone_ms, gap_ms=gap_ms
    )
    return audio_packets(samples, 8000, codec, ssrc=ssrc)


def silence_packets(seconds: float, codec: str = "PCMU", ssrc: int = 0x51E7C0DE) -> list[RtpPacket]:
    """``seconds`` of G.711 silence (a caller who says and types nothing)."""
    return audio_packets(np.zeros(int(round(seconds * 8000))), 8000, codec, ssrc=ssrc)
