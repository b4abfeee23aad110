"""One browser's audio leg: aiortc for ICE, DTLS and SRTP; the room's mixer tick for the audio.

aiortc's own media path runs a task per track to pull frames and encode them, and a decoder
thread per receiver, which costs a tenth of a core per browser. Here aiortc negotiates and
secures the session, and the leg takes over its audio transceiver's RTP:

* the receiver's ``receive()`` only registers the leg with the DTLS transport (no decoder
  thread, no RTCP task) and its packet handler puts Opus payloads in our jitter buffer
  (:class:`media.jitter.JitterBuffer`); SRTP has already authenticated them, so only the
  browser that did the DTLS handshake can be heard;
* :meth:`BrowserLeg.source` (called by the mixer tick) pops and decodes one 20 ms frame, or
  conceals a lost one with libopus; :meth:`BrowserLeg.sink` encodes the frame the browser
  should hear and sends it at once, protected by the transport's SRTP context.

So a browser leg costs an Opus encode and decode per tick and no task or thread of its own.
Sending never awaits: aiortc's ``_send_rtp`` coroutine completes without suspending on UDP
(it ends in a datagram ``sendto``); :func:`drive` runs it to the end in place, and only where
it does suspend (a TURN-over-TCP path) finishes it in a task.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCIceServer,
    RTCPeerConnection,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtpparameters import RTCRtpReceiveParameters, RTCRtpSendParameters
from aiortc.rtp import HeaderExtensionsMap, RtpPacket
from aiortc.sdp import candidate_from_sdp

from config import IceServer
from media.jitter import JitterBuffer
from media.opus import (
    FRAME,
    RTP_FRAME,
    OpusDecoder,
    OpusEncoder,
    OpusError,
    OpusSettings,
    SharedEncoder,
)
from webrtc.network import rewrite_candidates

__all__ = ["BrowserLeg", "LegStats", "WebRtcConfig", "drive"]

logger = logging.getLogger(__name__)

Pcm = np.ndarray[Any, np.dtype[np.int16]]
SILENCE = np.zeros(FRAME, dtype=np.int16)


@dataclass(frozen=True)
class WebRtcConfig:
    ice_servers: tuple[IceServer, ...] = ()
    #: The address written in our candidates when it differs from the bound one (1:1 NAT).
    announce: str | None = None
    jitter_depth: int = 3
    opus: OpusSettings = field(default_factory=OpusSettings)

    def rtc_configuration(self) -> RTCConfiguration:
        servers = [
            RTCIceServer(urls=s.url, username=s.username, credential=s.credential)
            for s in self.ice_servers
        ]
        return RTCConfiguration(iceServers=servers or None)


@dataclass
class LegStats:
    packets_in: int = 0
    packets_out: int = 0
    decode_errors: int = 0
    concealed: int = 0
    send_errors: int = 0
    shared_frames: int = 0  # frames sent from the room's shared encoder


class _Placeholder(MediaStreamTrack):
    """The audio track aiortc announces (``a=msid``) for what we send; never read: the leg
    sends its RTP itself."""

    kind = "audio"

    async def recv(self) -> Any:
        raise MediaStreamError("placeholder track")


@dataclass
class DriveStats:
    completed: int = 0
    suspended: int = 0  # finished in a task
    failed: int = 0


DRIVE = DriveStats()


def drive(coro: Coroutine[Any, Any, Any]) -> None:
    """Run a coroutine that normally completes without suspending, here and now; if it does
    suspend, finish it in a task. Errors are logged, not raised."""
    try:
        yielded = coro.send(None)
    except StopIteration:
        DRIVE.completed += 1
        return
    except ConnectionError:
        DRIVE.failed += 1
        return
    except Exception:
        DRIVE.failed += 1
        logger.exception("sending RTP")
        return
    DRIVE.suspended += 1
    asyncio.ensure_future(_finish(coro, yielded))


async def _finish(coro: Coroutine[Any, Any, Any], yielded: Any) -> None:
    while True:
        try:
            if yielded is None:
                await asyncio.sleep(0)
                result: Any = None
            else:
                result = await yielded
        except BaseException as exc:  # pass it into the coroutine, as the loop would
            try:
                yielded = coro.throw(exc)
            except (StopIteration, ConnectionError):
                return
            continue
        try:
            yielded = coro.send(result)
        except (StopIteration, ConnectionError):
            return


class BrowserLeg:
    """A browser's peer connection, with audio in and out through the mixer.

    ``on_connected`` is called once the media path is up (ICE and DTLS connected);
    ``on_failed`` once, when it is lost for good (ICE failed, consent expired, closed by the
    peer). Call :meth:`close` in any case.
    """

    def __init__(
        self,
        config: WebRtcConfig,
        *,
        on_connected: Callable[[], None] = lambda: None,
        on_failed: Callable[[str], None] = lambda reason: None,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.stats = LegStats()
        self.on_connected = on_connected
        self.on_failed = on_failed
        self.pc = RTCPeerConnection(config.rtc_configuration())
        self.pc.on("connectionstatechange", self._state_changed)
        self.connected = False
        self.closed = False
        self._failed = False
        #: False for a spectator: its audio is never decoded, nobody may hear it.
        self.heard = True
        #: The room's encoder for its common mix, and how to tell a frame is that mix.
        self.shared: SharedEncoder | None = None
        self.is_shared: Callable[[Pcm], bool] = lambda pcm: False
        self._jitter = JitterBuffer(depth=config.jitter_depth, quiet=lambda p: len(p) <= 3)
        self._decoder = OpusDecoder()
        self._encoder = OpusEncoder(config.opus)
        self._pending = np.zeros(0, dtype=np.int16)
        self._receiving = False
        self._opus_types: set[int] = set()
        self._sender: RTCRtpSender | None = None
        self._ext = HeaderExtensionsMap()
        self._mid: str | None = None
        self._pt = 111
        rng = rng or random.Random()
        self._ssrc = 0
        self._seq = rng.randrange(1 << 16)
        self._ts = rng.randrange(1 << 32)
        self._first = True

    # -- signalling ----------------------------------------------------------------------
    async def accept(self, offer_sdp: str) -> str:
        """Answer the browser's offer: its first audio m-line, Opus only; anything else
        (video, a second audio, data) declined as inactive. Raises ``ValueError`` when the
        offer has no usable audio."""
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(offer_sdp, "offer"))
        except Exception as exc:  # aiortc's parser also asserts on what it cannot read
            raise ValueError(f"bad offer: {type(exc).__name__} {exc}".rstrip()) from None
        audio = None
        for transceiver in self.pc.getTransceivers():
            if transceiver.kind == "audio" and audio is None:
                audio = transceiver
            else:
                transceiver.direction = "inactive"
        if audio is None:
            raise ValueError("the offer has no audio")
        capabilities = RTCRtpSender.getCapabilities("audio")
        opus = [c for c in capabilities.codecs if c.mimeType.lower() == "audio/opus"]
        audio.setCodecPreferences(opus)
        self.pc.addTrack(_Placeholder())
        self._take_over(audio)
        answer = await self.pc.createAnswer()
        if answer is None:
            raise ValueError("no answer")
        if "opus/48000" not in answer.sdp.lower():
            raise ValueError("the offer has no Opus")
        await self.pc.setLocalDescription(answer)
        sdp = self.pc.localDescription.sdp
        return rewrite_candidates(sdp, self.config.announce)

    async def add_candidate(self, candidate: str, sdp_mid: str | None, index: int | None) -> None:
        if not candidate:
            return  # end of candidates
        text = candidate.removeprefix("candidate:")
        try:
            parsed = candidate_from_sdp(text)
        except (ValueError, IndexError) as exc:
            raise ValueError(f"bad candidate: {exc}") from None
        parsed.sdpMid = sdp_mid
        parsed.sdpMLineIndex = index
        await self.pc.addIceCandidate(parsed)

    @property
    def jitter(self) -> JitterBuffer:
        """The receive jitter buffer (read its ``stats`` and ``len()``; metrics do)."""
        return self._jitter

    def _take_over(self, transceiver: Any) -> None:
        receiver, sender = transceiver.receiver, transceiver.sender
        leg = self

        async def receive(parameters: RTCRtpReceiveParameters) -> None:
            if leg._receiving:
                return
            leg._opus_types = {
                c.payloadType
                for c in parameters.codecs
                if c.mimeType.lower() == "audio/opus" and c.payloadType is not None
            }
            receiver.transport._register_rtp_receiver(receiver, parameters)
            leg._receiving = True

        async def handle_rtp(packet: RtpPacket, arrival_time_ms: int = 0) -> None:
            leg._on_rtp(packet)

        async def send(parameters: RTCRtpSendParameters) -> None:
            if leg._sender is not None:
                return
            sender.transport._register_rtp_sender(sender, parameters)
            leg._ext.configure(parameters)
            leg._mid = parameters.muxId
            leg._pt = parameters.codecs[0].payloadType or leg._pt
            leg._ssrc = sender._ssrc
            leg._sender = sender

        receiver.receive = receive
        receiver._handle_rtp_packet = handle_rtp
        sender.send = send

    def _state_changed(self) -> None:
        state = self.pc.connectionState
        if state == "connected" and not self.connected and not self.closed:
            self.connected = True
            self.on_connected()
        elif state in ("failed", "closed") and not self._failed:
            self._failed = True
            if not self.closed:
                self.on_failed("ice " + state)

    # -- media, from the mixer tick ------------------------------------------------------
    def _on_rtp(self, packet: RtpPacket) -> None:
        if packet.payload_type not in self._opus_types:
            return  # comfort noise, telephone-event, a codec we did not answer
        self.stats.packets_in += 1
        self._jitter.put(packet.sequence_number, packet.payload)

    def source(self, now: float) -> Pcm:
        """The browser's next 20 ms at 16 kHz."""
        if self.closed:
            return SILENCE  # the mixer fades a leaving leg out over a frame or two
        if not self.heard:
            if len(self._jitter):
                self._jitter.reset()  # never decoded: nobody may hear a spectator
            return SILENCE
        if self.stats.packets_in == 0:
            return SILENCE
        while len(self._pending) < FRAME:
            payload = self._jitter.pop()
            try:
                if payload:
                    pcm = self._decoder.decode(payload)
                else:
                    pcm = self._decoder.conceal()
                    self.stats.concealed += 1
            except OpusError:
                self.stats.decode_errors += 1
                pcm = self._decoder.conceal()
            self._pending = pcm if not len(self._pending) else np.concatenate((self._pending, pcm))
        out, self._pending = self._pending[:FRAME], self._pending[FRAME:]
        return out

    def sink(self, pcm: Pcm) -> None:
        """What the browser should hear now: encoded and sent."""
        sender = self._sender
        if sender is None or self.closed or not self.connected:
            return
        try:
            if self.shared is not None and self.is_shared(pcm):
                payload = self.shared.encode(pcm)
                self.stats.shared_frames += 1
            else:
                payload = self._encoder.encode(pcm)
        except (OpusError, ValueError):
            self.stats.send_errors += 1
            return
        self.send_encoded(payload)

    def send_encoded(self, payload: bytes) -> None:
        """Send one 20 ms Opus payload (encoded here, or once for many legs that hear the
        same mix)."""
        sender = self._sender
        if sender is None or self.closed or not self.connected:
            return
        packet = RtpPacket(
            payload_type=self._pt,
            marker=1 if self._first else 0,
            sequence_number=self._seq,
            timestamp=self._ts,
            ssrc=self._ssrc,
            payload=payload,
        )
        packet.extensions.mid = self._mid
        self._first = False
        self._seq = (self._seq + 1) & 0xFFFF
        self._ts = (self._ts + RTP_FRAME) & 0xFFFFFFFF
        self.stats.packets_out += 1
        drive(sender.transport._send_rtp(packet.serialize(self._ext)))

    # -- end -----------------------------------------------------------------------------
    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            await self.pc.close()
        except Exception:  # a half-set-up connection may fail to stop; it is gone anyway
            logger.debug("closing a peer connection", exc_info=True)
        self._decoder.close()
        self._encoder.close()
