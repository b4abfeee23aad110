"""RTCP bookkeeping for one audio leg: receiver statistics and SR/RR reports.

Wire formats are aiortc's (``RtcpSrPacket``, ``RtcpRrPacket``, ``RtcpReceiverInfo``,
``RtcpSdesPacket``, ``RtcpByePacket``, ``RtcpPacket.parse``); this module adds the
statistics of RFC 3550 appendix A.1 (sequence tracking), A.3 (expected / lost / fraction
lost) and A.8 (interarrival jitter), and the LSR/DLSR round-trip estimate of section 6.4.1.
Time is passed in (seconds, on a clock whose offset to Unix time the caller supplies).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from aiortc.rtp import (
    RtcpByePacket,
    RtcpPacket,
    RtcpReceiverInfo,
    RtcpRrPacket,
    RtcpSdesPacket,
    RtcpSenderInfo,
    RtcpSourceInfo,
    RtcpSrPacket,
)

NTP_UNIX_OFFSET = 2208988800  # seconds from 1900-01-01 to 1970-01-01
MAX_DROPOUT = 3000
MAX_MISORDER = 100
SDES_CNAME = 1


def ntp_from_unix(t: float) -> int:
    """64-bit NTP timestamp for a Unix time in seconds."""
    seconds = int(t) + NTP_UNIX_OFFSET
    fraction = int((t - int(t)) * (1 << 32)) & 0xFFFFFFFF
    return ((seconds & 0xFFFFFFFF) << 32) | fraction


def ntp_middle(ntp: int) -> int:
    """The middle 32 bits of an NTP timestamp (the LSR / DLSR unit: 1/65536 s)."""
    return (ntp >> 16) & 0xFFFFFFFF


class ReceiverStats:
    """Statistics about one remote source (RFC 3550 A.1, A.3, A.8)."""

    def __init__(self, ssrc: int, clock_rate: int, seq: int) -> None:
        self.ssrc = ssrc
        self.clock_rate = clock_rate
        self.jitter = 0.0  # in RTP timestamp units
        self._start(seq)

    def _start(self, seq: int) -> None:
        """(Re)start the sequence state at ``seq`` (RFC 3550 A.1 init_seq)."""
        self.base_seq = seq
        self.max_seq = seq
        self.cycles = 0
        self.bad_seq = -1
        self.received = 0
        self.expected_prior = 0
        self.received_prior = 0
        self._transit: int | None = None

    def update(self, seq: int, timestamp: int, arrival: float, timing: bool = True) -> bool:
        """Account one packet (A.1 update_seq + A.8); False if it looks like a restart.

        ``timing=False`` counts the packet but leaves the jitter estimate alone (RFC 4733
        telephone-event packets carry the event's start timestamp, not their own time)."""
        udelta = (seq - self.max_seq) & 0xFFFF
        if udelta < MAX_DROPOUT:
            if seq < self.max_seq:
                self.cycles += 0x10000
            self.max_seq = seq
        elif udelta <= 0x10000 - MAX_MISORDER:
            if seq == self.bad_seq:
                # two sequential packets after a big jump: the source restarted
                self._start(seq)
            else:
                self.bad_seq = (seq + 1) & 0xFFFF
                return False
        # else: duplicate or reordered packet, counted but does not move max_seq
        self.received += 1
        if not timing:
            return True
        # RTP timestamps wrap at 2^32: transit times are compared modulo 2^32, signed
        transit = (int(arrival * self.clock_rate) - timestamp) & 0xFFFFFFFF
        if self._transit is not None:
            d = abs(((transit - self._transit + 0x80000000) & 0xFFFFFFFF) - 0x80000000)
            self.jitter += (d - self.jitter) / 16.0
        self._transit = transit
        return True

    @property
    def extended_max(self) -> int:
        return self.cycles + self.max_seq

    @property
    def expected(self) -> int:
        return self.extended_max - self.base_seq + 1

    @property
    def lost(self) -> int:
        return self.expected - self.received

    def report_block(self, lsr: int = 0, dlsr: int = 0) -> RtcpReceiverInfo:
        """An RR block for this source; resets the 'since last report' interval (A.3)."""
        expected = self.expected
        expected_interval = expected - self.expected_prior
        received_interval = self.received - self.received_prior
        self.expected_prior = expected
        self.received_prior = self.received
        lost_interval = expected_interval - received_interval
        if expected_interval == 0 or lost_interval <= 0:
            fraction = 0
        else:
            fraction = min(255, (lost_interval << 8) // expected_interval)
        lost = max(-(1 << 23), min((1 << 23) - 1, self.lost))
        return RtcpReceiverInfo(
            ssrc=self.ssrc,
            fraction_lost=fraction,
            packets_lost=lost,
            highest_sequence=self.extended_max & 0xFFFFFFFF,
            jitter=int(self.jitter),
            lsr=lsr,
            dlsr=dlsr,
        )


@dataclass
class RemoteReport:
    """What the peer last told us about the stream we send."""

    fraction_lost: float = 0.0  # 0..1
    packets_lost: int = 0
    jitter: float = 0.0  # seconds
    rtt: float | None = None  # seconds


class RtcpState:
    """RTCP for one leg: feeds on sent/received RTP, builds and parses compound packets."""

    def __init__(
        self,
        ssrc: int,
        clock_rate: int,
        cname: str = "gateway",
        interval: float = 5.0,
        rng: random.Random | None = None,
    ) -> None:
        self.ssrc = ssrc
        self.clock_rate = clock_rate
        self.cname = cname
        self.interval = interval
        self._rng = rng or random.Random()
        self.receiver: ReceiverStats | None = None
        self.remote = RemoteReport()
        self.packets_sent = 0
        self.octets_sent = 0
        self._sent_since_report = False
        self._last_rtp_ts = 0
        self._last_rtp_time: float | None = None
        self._last_sr_lsr = 0  # middle 32 bits of the last SR's NTP time
        self._last_sr_at: float | None = None
        self._next_report: float | None = None
        self.reports_received = 0
        self.bye_received = False

    # -- feeding ---------------------------------------------------------------------------

    def on_rtp_received(
        self, ssrc: int, seq: int, timestamp: int, now: float, timing: bool = True
    ) -> None:
        receiver = self.receiver
        if receiver is None or receiver.ssrc != ssrc:
            receiver = self.receiver = ReceiverStats(ssrc, self.clock_rate, seq)
        receiver.update(seq, timestamp, now, timing)

    def on_rtp_sent(self, timestamp: int, payload_len: int, now: float) -> None:
        self.packets_sent += 1
        self.octets_sent += payload_len
        self._sent_since_report = True
        self._last_rtp_ts = timestamp
        self._last_rtp_time = now

    # -- reports ---------------------------------------------------------------------------

    def due(self, now: float) -> bool:
        if self._next_report is None:
            # first report after a randomised half interval
            self._next_report = now + self.interval * self._rng.uniform(0.25, 0.75)
        return now >= self._next_report

    def build_report(self, now: float, unix_now: float) -> bytes:
        """A compound SR (if we sent since the last report) or RR, plus SDES CNAME."""
        self._next_report = now + self.interval * self._rng.uniform(0.5, 1.5)
        blocks: list[RtcpReceiverInfo] = []
        if self.receiver is not None:
            lsr = dlsr = 0
            if self._last_sr_at is not None:
                lsr = self._last_sr_lsr
                dlsr = int((now - self._last_sr_at) * 65536) & 0xFFFFFFFF
            blocks.append(self.receiver.report_block(lsr, dlsr))
        first: RtcpSrPacket | RtcpRrPacket
        if self._sent_since_report:
            elapsed = 0.0 if self._last_rtp_time is None else now - self._last_rtp_time
            rtp_ts = (self._last_rtp_ts + int(elapsed * self.clock_rate)) & 0xFFFFFFFF
            first = RtcpSrPacket(
                ssrc=self.ssrc,
                sender_info=RtcpSenderInfo(
                    ntp_timestamp=ntp_from_unix(unix_now),
                    rtp_timestamp=rtp_ts,
                    packet_count=self.packets_sent & 0xFFFFFFFF,
                    octet_count=self.octets_sent & 0xFFFFFFFF,
                ),
                reports=blocks,
            )
        else:
            first = RtcpRrPacket(ssrc=self.ssrc, reports=blocks)
        self._sent_since_report = False
        sdes = RtcpSdesPacket(
            chunks=[RtcpSourceInfo(ssrc=self.ssrc, items=[(SDES_CNAME, self.cname.encode())])]
        )
        return bytes(first) + bytes(sdes)

    def build_bye(self) -> bytes:
        rr = RtcpRrPacket(ssrc=self.ssrc)
        return bytes(rr) + bytes(RtcpByePacket(sources=[self.ssrc]))

    def on_rtcp(self, data: bytes, now: float, unix_now: float) -> bool:
        """Parse an incoming compound packet; False if it was not valid RTCP."""
        try:
            packets = RtcpPacket.parse(data)
        except Exception:  # any garbage from the network is "not RTCP", never raised
            return False
        if not packets:
            return False
        arrival = ntp_middle(ntp_from_unix(unix_now))
        for packet in packets:
            if isinstance(packet, RtcpSrPacket):
                self._last_sr_lsr = ntp_middle(packet.sender_info.ntp_timestamp)
                self._last_sr_at = now
                self._take_blocks(packet.reports, arrival)
            elif isinstance(packet, RtcpRrPacket):
                self._take_blocks(packet.reports, arrival)
            elif isinstance(packet, RtcpByePacket):
                if self.receiver is not None and self.receiver.ssrc in packet.sources:
                    self.bye_received = True
        self.reports_received += 1
        return True

    def _take_blocks(self, blocks: list[RtcpReceiverInfo], arrival: int) -> None:
        for block in blocks:
            if block.ssrc != self.ssrc:
                continue
            self.remote.fraction_lost = block.fraction_lost / 256.0
            self.remote.packets_lost = block.packets_lost
            self.remote.jitter = block.jitter / self.clock_rate
            if block.lsr:
                rtt = ((arrival - block.lsr - block.dlsr) & 0xFFFFFFFF) / 65536.0
                if rtt < 60.0:  # ignore nonsense from clock mismatch
                    self.remote.rtt = rtt
