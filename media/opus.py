"""Opus (RFC 6716) at the mixer's rate: 16 kHz mono in and out, 20 ms frames, over libopus.

The RTP clock of Opus is always 48 kHz (RFC 7587), but libopus encodes from and decodes to
8, 12, 16, 24 or 48 kHz itself: at 16 kHz the mixer's frames go in and come out as they are,
without a resampler (wideband voice: everything a browser microphone carries that a G.722 room
system or a phone could hear anyway). Decoding is always mono: libopus downmixes a stereo stream.

libopus is called through ``ctypes`` (the system ``libopus.so.0``, else the copy PyAV ships):
one C call per frame, no Python frame objects, and access to what PyAV does not expose per
call (loss concealment with no packet, in-band FEC, complexity). Pure: no asyncio, no sockets.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import os
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

__all__ = [
    "FRAME",
    "RATE",
    "OpusDecoder",
    "OpusEncoder",
    "OpusError",
    "OpusSettings",
    "SharedEncoder",
]

Pcm = npt.NDArray[np.int16]

RATE = 16000  # what the mixer speaks
FRAME = 320  # 20 ms at RATE
RTP_CLOCK = 48000  # RFC 7587: the RTP timestamp always counts at 48 kHz
RTP_FRAME = 960  # 20 ms of RTP clock
MAX_PACKET = 1275  # RFC 6716 3.2.1: the largest frame
MAX_DECODE = RATE * 120 // 1000  # a packet holds up to 120 ms

_APPLICATION_VOIP = 2048
_SET_BITRATE = 4002
_SET_COMPLEXITY = 4010
_SET_INBAND_FEC = 4012
_SET_PACKET_LOSS_PERC = 4014
_SET_DTX = 4016
_SET_SIGNAL = 4024
_SIGNAL_VOICE = 3001


class OpusError(RuntimeError):
    """libopus refused (bad packet, bad setting) or is missing."""


def _load() -> ctypes.CDLL:
    candidates = [ctypes.util.find_library("opus") or "", "libopus.so.0"]
    try:
        import av

        libs = os.path.join(os.path.dirname(os.path.dirname(av.__file__)), "av.libs")
        candidates += sorted(glob.glob(os.path.join(libs, "libopus*.so*")))
    except ImportError:  # pragma: no cover - av comes with aiortc
        pass
    for name in candidates:
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        _declare(lib)
        return lib
    raise OpusError("libopus not found (install libopus0, or PyAV which ships it)")


def _declare(lib: ctypes.CDLL) -> None:
    c_int, c_void_p, c_char_p = ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p
    pcm_p = ctypes.POINTER(ctypes.c_int16)
    lib.opus_encoder_create.argtypes = [ctypes.c_int32, c_int, c_int, ctypes.POINTER(c_int)]
    lib.opus_encoder_create.restype = c_void_p
    lib.opus_encode.argtypes = [c_void_p, pcm_p, c_int, c_char_p, ctypes.c_int32]
    lib.opus_encode.restype = ctypes.c_int32
    lib.opus_encoder_destroy.argtypes = [c_void_p]
    lib.opus_encoder_destroy.restype = None
    lib.opus_decoder_create.argtypes = [ctypes.c_int32, c_int, ctypes.POINTER(c_int)]
    lib.opus_decoder_create.restype = c_void_p
    lib.opus_decode.argtypes = [c_void_p, c_char_p, ctypes.c_int32, pcm_p, c_int, c_int]
    lib.opus_decode.restype = c_int
    lib.opus_decoder_destroy.argtypes = [c_void_p]
    lib.opus_decoder_destroy.restype = None
    lib.opus_encoder_ctl.restype = c_int  # variadic: (state, request, int)
    lib.opus_strerror.argtypes = [c_int]
    lib.opus_strerror.restype = c_char_p


_LIB: ctypes.CDLL | None = None


def _lib() -> ctypes.CDLL:
    global _LIB
    if _LIB is None:
        _LIB = _load()
    return _LIB


def _check(code: int, what: str) -> int:
    if code < 0:
        message = _lib().opus_strerror(code) or b"error"
        raise OpusError(f"{what}: {message.decode()}")
    return code


@dataclass(frozen=True)
class OpusSettings:
    """Encoder settings. Complexity 5 of 10 costs about half of 10 for speech that nobody can
    tell apart at these bit rates; in-band FEC for a browser on Wi-Fi."""

    bitrate: int = 32000
    complexity: int = 5
    fec: bool = True
    expected_loss_percent: int = 5
    dtx: bool = False


class OpusEncoder:
    """20 ms of 16 kHz mono PCM in, one Opus packet out."""

    def __init__(self, settings: OpusSettings | None = None) -> None:
        lib = _lib()
        settings = settings or OpusSettings()
        error = ctypes.c_int(0)
        state = lib.opus_encoder_create(RATE, 1, _APPLICATION_VOIP, ctypes.byref(error))
        _check(error.value, "opus_encoder_create")
        self._state: int | None = state
        for request, value in (
            (_SET_BITRATE, settings.bitrate),
            (_SET_COMPLEXITY, settings.complexity),
            (_SET_INBAND_FEC, int(settings.fec)),
            (_SET_PACKET_LOSS_PERC, settings.expected_loss_percent),
            (_SET_DTX, int(settings.dtx)),
            (_SET_SIGNAL, _SIGNAL_VOICE),
        ):
            _check(
                lib.opus_encoder_ctl(
                    ctypes.c_void_p(state), ctypes.c_int(request), ctypes.c_int(value)
                ),
                "opus_encoder_ctl",
            )
        self._out = ctypes.create_string_buffer(MAX_PACKET)
        self._encode = lib.opus_encode

    def encode(self, pcm: Pcm) -> bytes:
        if self._state is None:
            raise OpusError("encoder closed")
        frame = np.ascontiguousarray(pcm, dtype=np.int16)
        if frame.shape != (FRAME,):
            raise ValueError(f"expected {FRAME} samples, got {frame.shape}")
        size = self._encode(
            self._state,
            frame.ctypes.data_as(ctypes.POINTER(ctypes.c_int16)),
            FRAME,
            self._out,
            MAX_PACKET,
        )
        _check(size, "opus_encode")
        return self._out.raw[:size]

    def close(self) -> None:
        if self._state is not None:
            _lib().opus_encoder_destroy(self._state)
            self._state = None

    def __del__(self) -> None:
        self.close()


class SharedEncoder:
    """One encoder for a frame that many legs hear alike (a room's common mix): the first leg
    to ask encodes it, the others get the same packet. Legs switch between it and their own
    encoder as they stop and start talking; an Opus decoder takes such a switch as it takes a
    lost packet, with a few milliseconds of concealment at worst."""

    def __init__(self, settings: OpusSettings | None = None) -> None:
        self._encoder = OpusEncoder(settings)
        self._last: Pcm | None = None
        self._payload = b""
        self.encoded = 0  # frames actually encoded
        self.served = 0  # packets handed out

    def encode(self, pcm: Pcm) -> bytes:
        self.served += 1
        if pcm is not self._last:
            self._payload = self._encoder.encode(pcm)
            self._last = pcm
            self.encoded += 1
        return self._payload

    def close(self) -> None:
        self._encoder.close()
        self._last = None


class OpusDecoder:
    """Opus packets in, 16 kHz mono PCM out; ``conceal()`` for a packet that never came."""

    def __init__(self) -> None:
        lib = _lib()
        error = ctypes.c_int(0)
        state = lib.opus_decoder_create(RATE, 1, ctypes.byref(error))
        _check(error.value, "opus_decoder_create")
        self._state: int | None = state
        self._pcm = np.zeros(MAX_DECODE, dtype=np.int16)
        self._pcm_p = self._pcm.ctypes.data_as(ctypes.POINTER(ctypes.c_int16))
        self._decode = lib.opus_decode

    def _run(self, data: bytes | None, frame_size: int, fec: int) -> Pcm:
        if self._state is None:
            raise OpusError("decoder closed")
        n = self._decode(self._state, data, len(data) if data else 0, self._pcm_p, frame_size, fec)
        _check(n, "opus_decode")
        return self._pcm[:n].copy()

    def decode(self, payload: bytes) -> Pcm:
        """One RTP payload (a 2.5 to 120 ms packet) to PCM; raises :class:`OpusError` on a
        packet libopus cannot read."""
        if not payload:
            return self.conceal()
        return self._run(payload, MAX_DECODE, 0)

    def conceal(self, samples: int = FRAME) -> Pcm:
        """Loss concealment for ``samples`` (a multiple of 2.5 ms) that never arrived."""
        return self._run(None, samples, 0)

    def recover(self, next_payload: bytes, samples: int = FRAME) -> Pcm:
        """The lost frame before ``next_payload``, rebuilt from its in-band FEC data (or
        concealed when it has none)."""
        return self._run(next_payload, samples, 1)

    def close(self) -> None:
        if self._state is not None:
            _lib().opus_decoder_destroy(self._state)
            self._state = None

    def __del__(self) -> None:
        self.close()
