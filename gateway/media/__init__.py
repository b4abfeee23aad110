"""Room audio media: codecs, resampling, jitter buffer + PLC, RTCP and the RTP leg.

Everything imported here is pure (no asyncio, no sockets).  The asyncio pieces (UDP port
pairs, the datagram protocols and the mixer clock) live in ``gateway.media.transport``.
"""

from .codecs import CODECS, CodecInfo, UnsupportedCodec, get_codec
from .jitter import JitterBuffer
from .leg import MIX_FRAME, MIX_RATE, Addr, AudioLeg, Datagram, LegConfig, LegStats, TelephoneEvent
from .plc import Concealer
from .resample import Resampler
from .rtcp import ReceiverStats, RtcpState

__all__ = [
    "CODECS",
    "MIX_FRAME",
    "MIX_RATE",
    "Addr",
    "AudioLeg",
    "CodecInfo",
    "Concealer",
    "Datagram",
    "JitterBuffer",
    "LegConfig",
    "LegStats",
    "ReceiverStats",
    "Resampler",
    "RtcpState",
    "TelephoneEvent",
    "UnsupportedCodec",
    "get_codec",
]
