"""Room audio over RTP: RTCP and the RTP leg (codecs, resampling, jitter buffer and PLC are in
``media``, shared with browser legs).

Everything imported here is pure (no asyncio, no sockets).  The asyncio pieces (UDP port
pairs, the datagram protocols and the mixer clock) live in ``gateway.media.transport``.
"""

from media.codecs import CODECS, CodecInfo, UnsupportedCodec, get_codec
from media.jitter import JitterBuffer
from media.plc import Concealer
from media.resample import Resampler

from .leg import MIX_FRAME, MIX_RATE, Addr, AudioLeg, Datagram, LegConfig, LegStats, TelephoneEvent
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
