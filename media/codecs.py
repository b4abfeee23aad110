"""Audio codecs for RTP legs: PCMU, PCMA (G.711) and G.722.

Every codec speaks the same small interface (``Encoder.encode`` / ``Decoder.decode``) on
``int16`` numpy arrays at the codec's *sample* rate; ``CODECS`` maps the SDP encoding name
to a :class:`CodecInfo`.

G.711 is done with numpy lookup tables (a 65536-entry ``int16 -> uint8`` encode table and a
256-entry decode table), which is much cheaper than a per-sample Python loop and cheaper
than going through libav as ``aiortc.codecs.g711`` does.  G.722 uses the ``G722`` extension
from the ``g722`` PyPI package (``import G722``).

Note the G.722 quirk (RFC 3551 section 4.5.2): it samples at 16 kHz but its RTP clock rate
is 8000, so a 20 ms packet advances the RTP timestamp by 160.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

Pcm = npt.NDArray[np.int16]

FRAME_MS = 20


class Encoder(Protocol):
    def encode(self, pcm: Pcm) -> bytes: ...


class Decoder(Protocol):
    def decode(self, payload: bytes) -> Pcm: ...


# --- G.711 tables -------------------------------------------------------------------------


def _ulaw_decode_table() -> Pcm:
    """ITU-T G.711 mu-law expansion for all 256 code words."""
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = u & 0x80
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84
    return np.where(sign != 0, -magnitude, magnitude).astype(np.int16)


def _alaw_decode_table() -> Pcm:
    """ITU-T G.711 A-law expansion for all 256 code words."""
    a = np.arange(256, dtype=np.int32) ^ 0x55
    sign = a & 0x80
    exponent = (a >> 4) & 0x07
    mantissa = a & 0x0F
    magnitude = np.where(
        exponent == 0,
        (mantissa << 4) + 8,
        ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0),
    )
    return np.where(sign != 0, magnitude, -magnitude).astype(np.int16)


def _encode_table(decode: Pcm, mask: int) -> npt.NDArray[np.uint8]:
    """Compression of every int16 value, indexed by the value viewed as uint16.

    Built like libavcodec's ``build_xlaw_table`` (nearest code word, decision points
    half-way between neighbouring decoded values, on a 14-bit grid), so the output is
    bit-exact with ffmpeg's ``pcm_mulaw`` / ``pcm_alaw`` encoders.
    """
    small = np.zeros(16384, dtype=np.uint8)
    small[8192] = mask
    j = 1
    for i in range(127):
        v1 = int(decode[i ^ mask])
        v2 = int(decode[(i + 1) ^ mask])
        v = (v1 + v2 + 4) >> 3
        if j < v:
            small[8192 - v + 1 : 8192 - j + 1] = i ^ (mask ^ 0x80)
            small[8192 + j : 8192 + v] = i ^ mask
            j = v
    small[1 : 8192 - j + 1] = 127 ^ (mask ^ 0x80)
    small[8192 + j :] = 127 ^ mask
    small[0] = small[1]
    values = np.arange(65536, dtype=np.uint16).view(np.int16).astype(np.int32)
    return small[(values + 32768) >> 2]


ULAW_DECODE = _ulaw_decode_table()
ALAW_DECODE = _alaw_decode_table()
ULAW_ENCODE = _encode_table(ULAW_DECODE, 0xFF)
ALAW_ENCODE = _encode_table(ALAW_DECODE, 0xD5)


class TableDecoder:
    """Stateless G.711 decoder: one table lookup per packet."""

    def __init__(self, table: Pcm) -> None:
        self._table = table

    def decode(self, payload: bytes) -> Pcm:
        return self._table.take(np.frombuffer(payload, dtype=np.uint8))


class TableEncoder:
    """Stateless G.711 encoder: one table lookup per packet."""

    def __init__(self, table: npt.NDArray[np.uint8]) -> None:
        self._table = table

    def encode(self, pcm: Pcm) -> bytes:
        if pcm.dtype != np.int16 or not pcm.flags.c_contiguous:
            pcm = np.ascontiguousarray(pcm, dtype=np.int16)
        return self._table.take(pcm.view(np.uint16)).tobytes()


# --- G.722 --------------------------------------------------------------------------------


def _g722_codec() -> Any:
    import G722  # the ``g722`` PyPI distribution installs the module as ``G722``

    return G722.G722(16000, 64000)


class G722Encoder:
    """Stateful 64 kbit/s G.722 encoder (16 kHz in, 8 bits per two samples out)."""

    def __init__(self) -> None:
        self._codec = _g722_codec()

    def encode(self, pcm: Pcm) -> bytes:
        samples = np.ascontiguousarray(pcm, dtype=np.int16)
        return bytes(self._codec.encode(samples))


class G722Decoder:
    """Stateful 64 kbit/s G.722 decoder (one byte in, two 16 kHz samples out)."""

    def __init__(self) -> None:
        self._codec = _g722_codec()

    def decode(self, payload: bytes) -> Pcm:
        out = self._codec.decode(payload)
        return np.frombuffer(out, dtype=np.int16)


# --- the table ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CodecInfo:
    """What the rest of the gateway needs to know about one audio codec."""

    name: str  # SDP encoding name, upper case
    sample_rate: int  # rate of the PCM that encode() takes and decode() returns
    clock_rate: int  # RTP clock rate (a=rtpmap), 8000 for G.722 despite 16 kHz audio
    static_payload_type: int | None

    def new_encoder(self) -> Encoder:
        if self.name == "PCMU":
            return TableEncoder(ULAW_ENCODE)
        if self.name == "PCMA":
            return TableEncoder(ALAW_ENCODE)
        return G722Encoder()

    def new_decoder(self) -> Decoder:
        if self.name == "PCMU":
            return TableDecoder(ULAW_DECODE)
        if self.name == "PCMA":
            return TableDecoder(ALAW_DECODE)
        return G722Decoder()

    def samples_per_frame(self, ms: int = FRAME_MS) -> int:
        """PCM samples in ``ms`` milliseconds at the sample rate."""
        return self.sample_rate * ms // 1000

    def timestamp_step(self, ms: int = FRAME_MS) -> int:
        """RTP timestamp increment for ``ms`` milliseconds."""
        return self.clock_rate * ms // 1000

    @property
    def samples_per_tick(self) -> int:
        """PCM samples per RTP timestamp unit (2 for G.722, else 1)."""
        return self.sample_rate // self.clock_rate


PCMU = CodecInfo("PCMU", 8000, 8000, 0)
PCMA = CodecInfo("PCMA", 8000, 8000, 8)
G722 = CodecInfo("G722", 16000, 8000, 9)

CODECS: dict[str, CodecInfo] = {c.name: c for c in (PCMU, PCMA, G722)}


class UnsupportedCodec(ValueError):
    """The SDP named a codec this gateway cannot decode."""


def get_codec(name: str) -> CodecInfo:
    """Look a codec up by SDP encoding name (case-insensitive)."""
    try:
        return CODECS[name.upper()]
    except KeyError:
        raise UnsupportedCodec(name) from None
