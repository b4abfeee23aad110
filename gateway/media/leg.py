"""One SIP audio leg as a pure state object: RTP in, 16 kHz PCM frames out, and back.

No sockets and no clock: the transport feeds datagrams with :meth:`AudioLeg.on_rtp` /
:meth:`AudioLeg.on_rtcp`, and sends whatever :meth:`push_frame` / :meth:`poll_rtcp` return.
The mixer pulls one 20 ms, 16 kHz frame per tick with :meth:`pull_frame`.

Receive path: RTP parse (aiortc ``RtpPacket``) -> source check / symmetric-RTP latch ->
RTCP receiver stats -> jitter buffer -> decode -> loss concealment -> resample to 16 kHz.
Send path: resample to the codec rate -> encode -> 12-byte RTP header with our SSRC,
sequence number and timestamp.  RFC 4733 telephone-events are not audio: they are surfaced
raw as :class:`TelephoneEvent` to a callback (or the ``events`` queue), and take their
sequence slot in the jitter buffer as one frame of "no audio".

Latching (who may feed this leg, and where our RTP goes).  RTP ports are guessable, so the
leg takes media from ONE source, latched once:

* a source whose host is the SDP address's host (any port: NATs rewrite ports) is latched as
  soon as it sends; while the latch window is open an exact host+port match still replaces
  a host-only match, and a host match replaces a non-matching (NAT) latch;
* with no such source, the first source seen within ``latch_window`` seconds (from the start
  of the leg or the last :meth:`AudioLeg.set_remote_addr`) is latched (a caller behind NAT);
* once latched it never switches while the latched source is alive.  Only when the latched
  source has been silent (no RTP) for ``relatch_after`` seconds may it re-latch, and then
  only to a source on the SDP host (a peer behind NAT whose mapping changed is not followed:
  it has to re-INVITE);
* packets from any other source are ignored (not parsed, not decoded, not counted as life)
  and counted in ``strangers``;
* RTCP is taken only from the latched RTP host (any port); before any RTP is latched, from
  the SDP host, or (a recvonly peer behind NAT) from the first RTCP host seen within the
  latch window.

Nothing is sent (RTP or RTCP) until :meth:`AudioLeg.start_sending` (the SIP layer calls it
on the ACK, also on a new leg that replaces one after a re-INVITE) unless the leg was made
with ``send_before_confirm=True``.

Liveness: RTP and RTCP from the latched peer both count.  When the peer does not send to us
(:meth:`AudioLeg.set_direction` with ``we_receive=False``: it is recvonly) only RTCP counts;
while we are on hold (we do not send) there is no timeout at all.
"""

from __future__ import annotations

import logging
import random
import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from aiortc.rtp import RtpPacket

from media.codecs import ALAW_DECODE, ULAW_DECODE, Pcm, get_codec
from media.jitter import JitterBuffer, JitterStats
from media.plc import Concealer
from media.resample import Resampler

from .rtcp import RemoteReport, RtcpState

logger = logging.getLogger(__name__)

Addr = tuple[str, int]
Datagram = tuple[bytes, Addr]

MIX_RATE = 16000
FRAME_MS = 20
MIX_FRAME = MIX_RATE * FRAME_MS // 1000  # 320 samples

_RTP_HEADER = struct.Struct("!BBHII")
_SEQ_TS_SSRC = struct.Struct("!HII")


@dataclass(frozen=True)
class TelephoneEvent:
    """One RFC 4733 packet, minimally decoded (the DTMF package does the rest)."""

    event: int
    end: bool
    volume: int
    duration: int
    timestamp: int
    sequence_number: int
    marker: bool
    ssrc: int

    @classmethod
    def parse(cls, packet: RtpPacket) -> TelephoneEvent | None:
        return cls.from_fields(
            packet.payload,
            packet.timestamp,
            packet.sequence_number,
            bool(packet.marker),
            packet.ssrc,
        )

    @classmethod
    def from_fields(
        cls, p: bytes, timestamp: int, sequence_number: int, marker: bool, ssrc: int
    ) -> TelephoneEvent | None:
        if len(p) < 4:
            return None
        return cls(
            event=p[0],
            end=bool(p[1] & 0x80),
            volume=p[1] & 0x3F,
            duration=(p[2] << 8) | p[3],
            timestamp=timestamp,
            sequence_number=sequence_number,
            marker=marker,
            ssrc=ssrc,
        )


@dataclass(frozen=True)
class LegConfig:
    """What SDP negotiation decided for one audio leg."""

    codec: str = "PCMU"  # SDP encoding name: PCMU, PCMA, G722
    payload_type: int = 0
    remote_addr: Addr | None = None  # from the SDP c=/m= lines
    clock_rate: int | None = None  # a=rtpmap rate; checked against the codec if given
    telephone_event_pt: int | None = None
    remote_rtcp_addr: Addr | None = None  # default: remote RTP port + 1 (or the same if mux)
    rtcp_mux: bool = False
    symmetric_rtp: bool = True  # send to where the peer's RTP comes from ("latching")
    ptime_ms: int = FRAME_MS  # what the peer is expected to send (we always send 20 ms)
    jitter_depth: int = 3  # packets of playout delay (3 x 20 ms)
    inactivity_timeout: float = 60.0
    rtcp_interval: float = 5.0
    cname: str = "conference-gateway"
    latch_window: float = 5.0  # s: a source off the SDP host may latch only this early
    relatch_after: float = 3.0  # s of silence from the latched source before a re-latch


@dataclass(frozen=True)
class LegStats:
    packets_received: int
    packets_sent: int
    bad_packets: int
    wrong_payload_type: int
    events_received: int
    latch_changes: int
    strangers: int  # packets (RTP or RTCP) from sources other than the latched peer
    jitter_buffer: JitterStats
    concealed_frames: int
    expected: int
    lost: int
    jitter_s: float
    remote: RemoteReport


def _quiet_predicate(codec: str) -> Callable[[bytes], bool] | None:
    """For the jitter buffer's drift adjustments: is a payload (near) silent?  G.711 is
    stateless, so a payload can be looked at without decoding the stream; G.722 is not
    (None: the buffer adjusts when it must)."""
    table = {"PCMU": ULAW_DECODE, "PCMA": ALAW_DECODE}.get(codec.upper())
    if table is None:
        return None
    magnitude = np.abs(table.astype(np.int32))

    def quiet(payload: bytes) -> bool:
        samples = magnitude[np.frombuffer(payload, dtype=np.uint8)]
        return bool(len(samples)) and int(samples.max()) < QUIET_LEVEL

    return quiet


QUIET_LEVEL = 500  # about -36 dBFS peak


class AudioLeg:
    """RTP/RTCP state of one audio leg.  Every method is cheap and never raises on input."""

    def __init__(
        self,
        config: LegConfig,
        *,
        now: float = 0.0,
        ssrc: int | None = None,
        on_event: Callable[[TelephoneEvent], None] | None = None,
        wall_offset: float = 0.0,
        rng: random.Random | None = None,
        send_before_confirm: bool = True,
    ) -> None:
        codec = get_codec(config.codec)
        if config.clock_rate is not None and config.clock_rate != codec.clock_rate:
            raise ValueError(
                f"{codec.name} has RTP clock rate {codec.clock_rate}, not {config.clock_rate}"
            )
        rng = rng or random.Random()
        self.config = config
        self.codec = codec
        self.payload_type = config.payload_type
        self.ssrc = ssrc if ssrc is not None else rng.getrandbits(32)
        self.on_event = on_event
        self.events: deque[TelephoneEvent] = deque(maxlen=256)
        self.wall_offset = wall_offset  # Unix time = now + wall_offset (for RTCP NTP times)

        # receive side
        self._decoder = codec.new_decoder()
        self._jitter = JitterBuffer(depth=config.jitter_depth, quiet=_quiet_predicate(codec.name))
        self._plc = Concealer(codec.sample_rate)
        self._up = Resampler(codec.sample_rate, MIX_RATE)
        self._codec_frame = codec.samples_per_frame(FRAME_MS)
        self._packet_samples = codec.samples_per_frame(config.ptime_ms)
        self._rest: Pcm | None = None  # decoded samples not yet played
        self._remote_ssrc: int | None = None
        self.rtp_peer: Addr | None = None  # latched source of the peer's RTP
        self.rtcp_peer: Addr | None = None  # latched source of the peer's RTCP
        self.last_rtp_at: float | None = None
        self.last_rtcp_at: float | None = None
        self._activity_ref = now  # inactivity is measured from here if no RTP yet
        self.packets_received = 0
        self.bad_packets = 0
        self.wrong_payload_type = 0
        self.events_received = 0
        self.latch_changes = 0
        self.strangers = 0
        self.latch_window = config.latch_window
        self.relatch_after = config.relatch_after
        self._latch_since = now  # the latch window opens here (and on set_remote_addr)
        self._exact_latch = False  # rtp_peer is exactly the SDP address
        self._host_latch = False  # rtp_peer's host is the SDP host
        self.we_receive = True  # False: the peer does not send us RTP (recvonly/inactive)

        # send side
        self._encoder = codec.new_encoder()
        self._down = Resampler(MIX_RATE, codec.sample_rate)
        self._seq = rng.getrandbits(16)
        self._ts = rng.getrandbits(32)
        self._ts_step = codec.timestamp_step(FRAME_MS)
        self._marker = True  # first packet of a talkspurt
        self._on_hold = False
        self._sending = send_before_confirm
        self._now = now
        self.packets_sent = 0

        self.rtcp = RtcpState(
            self.ssrc, codec.clock_rate, cname=config.cname, interval=config.rtcp_interval, rng=rng
        )
        self.remote_addr = config.remote_addr

    # -- addresses -------------------------------------------------------------------------

    def set_remote_addr(self, addr: Addr | None, now: float | None = None) -> None:
        """New SDP address (re-INVITE); forgets the latch and opens a new latch window."""
        self.remote_addr = addr
        self.rtp_peer = None
        self.rtcp_peer = None
        self._exact_latch = self._host_latch = False
        self._latch_since = self._now if now is None else now

    def _sdp_hosts(self) -> tuple[str, ...]:
        hosts = []
        if self.remote_addr is not None:
            hosts.append(self.remote_addr[0])
        rtcp = self.config.remote_rtcp_addr
        if rtcp is not None and rtcp[0] not in hosts:
            hosts.append(rtcp[0])
        return tuple(hosts)

    def _from_peer(self, addr: Addr) -> bool | None:
        """Cheap check before parsing: True (the latched peer), False (a stranger to
        ignore) or None (a latch candidate: parse it, then :meth:`_latch`)."""
        peer = self.rtp_peer
        if peer is None:
            return None
        if addr == peer:
            return True
        now = self._now
        remote = self.remote_addr
        on_sdp_host = remote is not None and addr[0] == remote[0]
        if now - self._latch_since <= self.latch_window and (
            (addr == remote and not self._exact_latch) or (on_sdp_host and not self._host_latch)
        ):
            return None  # a better match while the window is open
        last = self.last_rtp_at
        if on_sdp_host and (last is None or now - last >= self.relatch_after):
            return None  # the latched source went silent: the SDP host may take over
        return False

    def _may_latch(self, addr: Addr) -> bool:
        """Whether a valid packet from ``addr`` (not the latched peer) may latch."""
        remote = self.remote_addr
        if remote is not None and addr[0] == remote[0]:
            return True
        return self.rtp_peer is None and self._now - self._latch_since <= self.latch_window

    def _latch(self, addr: Addr) -> None:
        if self.rtp_peer is not None:
            self.latch_changes += 1
            logger.info("leg %08x: RTP source %s -> %s", self.ssrc, self.rtp_peer, addr)
            if self.rtcp_peer is not None and self.rtcp_peer[0] != addr[0]:
                self.rtcp_peer = None
        self.rtp_peer = addr
        remote = self.remote_addr
        self._exact_latch = addr == remote
        self._host_latch = remote is not None and addr[0] == remote[0]

    @property
    def send_addr(self) -> Addr | None:
        if self.config.symmetric_rtp and self.rtp_peer is not None:
            return self.rtp_peer
        return self.remote_addr

    @property
    def rtcp_send_addr(self) -> Addr | None:
        if self.config.symmetric_rtp and self.rtcp_peer is not None:
            return self.rtcp_peer
        if self.config.rtcp_mux:
            return self.send_addr
        if self.config.remote_rtcp_addr is not None:
            return self.config.remote_rtcp_addr
        if self.remote_addr is not None:
            return (self.remote_addr[0], self.remote_addr[1] + 1)
        return None

    # -- receive ---------------------------------------------------------------------------

    def on_rtp(self, data: bytes, addr: Addr, now: float) -> bool:
        """One datagram from the RTP port; True if it was accepted."""
        self._now = now
        if len(data) < 12 or data[0] >> 6 != 2:
            self.bad_packets += 1
            return False
        if 192 <= data[1] <= 223:  # RTCP multiplexed on the RTP port (RFC 5761)
            return self.on_rtcp(data, addr, now)
        known = self._from_peer(addr)
        if known is False:
            self.strangers += 1
            return False
        if data[0] == 0x80:
            # the common case, read straight off the 12 bytes: version 2, no padding, no
            # header extension, no CSRC (aiortc's parser for the rest)
            second = data[1]
            pt = second & 0x7F
            marker = bool(second & 0x80)
            seq, timestamp, ssrc = _SEQ_TS_SSRC.unpack_from(data, 2)
            payload = data[12:]
        else:
            try:
                packet = RtpPacket.parse(data)
            except Exception:  # garbage from the network is counted, never raised
                self.bad_packets += 1
                return False
            pt = packet.payload_type
            marker = bool(packet.marker)
            seq, timestamp, ssrc = packet.sequence_number, packet.timestamp, packet.ssrc
            payload = packet.payload
        is_event = pt == self.config.telephone_event_pt
        if pt != self.payload_type and not is_event:
            self.wrong_payload_type += 1
            return False
        if known is None:
            if not self._may_latch(addr):
                self.strangers += 1
                return False
            self._latch(addr)
        if ssrc != self._remote_ssrc:
            if self._remote_ssrc is not None:
                logger.debug("leg %08x: peer SSRC changed to %08x", self.ssrc, ssrc)
                self._jitter.reset()
            self._remote_ssrc = ssrc
        self.last_rtp_at = now
        self.packets_received += 1
        self.rtcp.on_rtp_received(ssrc, seq, timestamp, now, timing=not is_event)
        if is_event:
            # the event takes its sequence slot as one frame of "no audio": the audio
            # timeline around the digit keeps its place (nothing after it is "late")
            self._jitter.put(seq, b"")
            event = TelephoneEvent.from_fields(payload, timestamp, seq, marker, ssrc)
            if event is None:
                self.bad_packets += 1
                return False
            self.events_received += 1
            if self.on_event is not None:
                self.on_event(event)
            else:
                self.events.append(event)
            return True
        if payload:
            self._jitter.put(seq, payload)
        return True

    @property
    def jitter(self) -> JitterBuffer:
        """The receive jitter buffer (read its ``stats`` and ``len()``; metrics do)."""
        return self._jitter

    def drain_events(self) -> list[TelephoneEvent]:
        events = list(self.events)
        self.events.clear()
        return events

    def pull_frame(self, now: float) -> Pcm:
        """The next 20 ms of the peer's audio at 16 kHz (320 int16 samples), never fails."""
        return self._up.process(self.pull_native(now))

    def pull_native(self, now: float) -> Pcm:
        """The next 20 ms of the peer's audio at the codec's own rate (160 samples at 8 kHz
        for G.711, 320 at 16 kHz for G.722): what a room mixing at that rate takes as it is."""
        self._now = now
        need = self._codec_frame
        rest = self._rest
        if rest is None:
            pcm = self._next_chunk()
            if len(pcm) == need:  # the common case: one 20 ms packet per tick
                return pcm
            chunks = [pcm]
            have = len(pcm)
        else:
            chunks = [rest]
            have = len(rest)
        guard = 0
        while have < need and guard < 64:
            pcm = self._next_chunk()
            chunks.append(pcm)
            have += len(pcm)
            guard += 1
        joined = np.concatenate(chunks) if len(chunks) > 1 else chunks[0]
        if len(joined) < need:
            joined = np.concatenate((joined, np.zeros(need - len(joined), dtype=np.int16)))
        self._rest = joined[need:] if len(joined) > need else None
        return joined[:need]

    def _next_chunk(self) -> Pcm:
        jitter = self._jitter
        payload = jitter.pop()
        if payload is None:
            return self._plc.conceal(self._packet_samples)
        if not payload:  # a telephone-event slot: one frame of no audio
            return self._plc.good(
                np.zeros(self._packet_samples, dtype=np.int16), jitter.discontinuity
            )
        try:
            pcm = self._decoder.decode(payload)
        except Exception:  # a broken payload is a lost packet, not a crash
            logger.debug("leg %08x: undecodable payload", self.ssrc, exc_info=True)
            return self._plc.conceal(self._packet_samples)
        if not len(pcm):
            return self._plc.conceal(self._packet_samples)
        if len(pcm) > 8 * self._codec_frame:  # absurd packet: keep the first 160 ms only
            pcm = pcm[: 8 * self._codec_frame]
        self._packet_samples = len(pcm)
        return self._plc.good(pcm, jitter.discontinuity)

    # -- send ------------------------------------------------------------------------------

    @property
    def sending(self) -> bool:
        """False until :meth:`start_sending` (unless made with ``send_before_confirm``)."""
        return self._sending

    def start_sending(self) -> None:
        """The call is confirmed (ACK): RTP and RTCP may go out from now on."""
        self._sending = True

    def push_frame(self, pcm16k: Pcm, now: float | None = None) -> list[Datagram]:
        """Encode 20 ms of 16 kHz audio (or of audio at the codec's own rate, as
        :meth:`pull_native` gives) for the peer; ``[]`` when not sending yet, on hold or
        without an address (the RTP timestamp runs on in any case)."""
        if now is not None:
            self._now = now
        ts = self._ts
        self._ts = (ts + self._ts_step) & 0xFFFFFFFF  # time runs on while we are silent
        dest = self.send_addr
        if self._on_hold or dest is None or not self._sending:
            self._marker = True
            return []
        pcm = pcm16k if len(pcm16k) == self._codec_frame else self._down.process(pcm16k)
        payload = self._encoder.encode(pcm)
        seq = self._seq
        self._seq = (seq + 1) & 0xFFFF
        header = _RTP_HEADER.pack(
            0x80, (0x80 if self._marker else 0) | self.payload_type, seq, ts, self.ssrc
        )
        self._marker = False
        self.packets_sent += 1
        self.rtcp.on_rtp_sent(ts, len(payload), self._now)
        return [(header + payload, dest)]

    # -- hold / activity -------------------------------------------------------------------

    @property
    def on_hold(self) -> bool:
        return self._on_hold

    def hold(self) -> None:
        """Stop sending (and stop the inactivity timer) until :meth:`resume`."""
        self._on_hold = True

    def resume(self, now: float | None = None) -> None:
        self._on_hold = False
        self._activity_ref = self._now if now is None else now

    def set_direction(self, we_send: bool, we_receive: bool, now: float | None = None) -> None:
        """What the SDP says: ``we_send`` False is :meth:`hold` (no sending, no timeout);
        ``we_receive`` False (the peer is recvonly) judges liveness by RTCP only."""
        if now is not None:
            self._now = now
        if we_send:
            if self._on_hold:
                self.resume(now)
        else:
            self.hold()
        if we_receive != self.we_receive:
            self.we_receive = we_receive
            self._activity_ref = self._now  # a fresh timeout for the new rule

    def timed_out(self, now: float) -> bool:
        """True if nothing came from the peer for ``inactivity_timeout`` seconds: RTP or
        RTCP, or RTCP only when the peer does not send to us; never while on hold."""
        if self._on_hold:
            return False
        last = self._activity_ref
        if self.we_receive and self.last_rtp_at is not None and self.last_rtp_at > last:
            last = self.last_rtp_at
        if self.last_rtcp_at is not None and self.last_rtcp_at > last:
            last = self.last_rtcp_at
        return now - last > self.config.inactivity_timeout

    # -- RTCP ------------------------------------------------------------------------------

    def _rtcp_source_ok(self, addr: Addr) -> bool:
        if self.rtp_peer is not None:
            return addr[0] == self.rtp_peer[0]
        if self.rtcp_peer is not None:
            return addr[0] == self.rtcp_peer[0]
        if addr[0] in self._sdp_hosts():
            return True
        return self._now - self._latch_since <= self.latch_window

    def on_rtcp(self, data: bytes, addr: Addr, now: float) -> bool:
        """One datagram from the RTCP port (or muxed); True if it was taken."""
        self._now = now
        if not self._rtcp_source_ok(addr):
            self.strangers += 1
            return False
        try:
            ok = self.rtcp.on_rtcp(data, now, now + self.wall_offset)
        except Exception:  # never raise on network input
            logger.debug("leg %08x: RTCP handling failed", self.ssrc, exc_info=True)
            ok = False
        if not ok:
            self.bad_packets += 1
            return False
        self.last_rtcp_at = now
        if self.rtcp_peer is None and not self.config.rtcp_mux:
            self.rtcp_peer = addr  # latched once, like RTP
        return True

    def poll_rtcp(self, now: float) -> list[Datagram]:
        """A compound RTCP report when one is due (about every ``rtcp_interval`` s);
        nothing before :meth:`start_sending`."""
        due = self.rtcp.due(now)  # the schedule starts with the leg, sending or not
        if not self._sending or not due:
            return []
        dest = self.rtcp_send_addr
        data = self.rtcp.build_report(now, now + self.wall_offset)
        return [(data, dest)] if dest is not None else []

    def bye(self) -> list[Datagram]:
        if not self._sending:
            return []
        dest = self.rtcp_send_addr
        return [(self.rtcp.build_bye(), dest)] if dest is not None else []

    @property
    def bye_received(self) -> bool:
        return self.rtcp.bye_received

    def stats(self) -> LegStats:
        receiver = self.rtcp.receiver
        return LegStats(
            packets_received=self.packets_received,
            packets_sent=self.packets_sent,
            bad_packets=self.bad_packets,
            wrong_payload_type=self.wrong_payload_type,
            events_received=self.events_received,
            latch_changes=self.latch_changes,
            strangers=self.strangers,
            jitter_buffer=JitterStats(**vars(self._jitter.stats)),
            concealed_frames=self._plc.concealed_frames,
            expected=receiver.expected if receiver else 0,
            lost=receiver.lost if receiver else 0,
            jitter_s=(receiver.jitter / self.codec.clock_rate) if receiver else 0.0,
            remote=RemoteReport(**vars(self.rtcp.remote)),
        )
