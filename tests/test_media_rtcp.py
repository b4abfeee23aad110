from __future__ import annotations

import random

import numpy as np
import pytest
from aiortc.rtp import RtcpPacket, RtcpRrPacket, RtcpSdesPacket, RtcpSrPacket

from gateway.media import AudioLeg, LegConfig
from gateway.media.rtcp import ReceiverStats, RtcpState, ntp_from_unix, ntp_middle


def test_receiver_stats_expected_lost_and_fraction() -> None:
    stats = ReceiverStats(ssrc=7, clock_rate=8000, seq=65531)  # first seen
    seqs = [s & 0xFFFF for s in range(65530, 65530 + 20) if s % 5 != 0]  # every 5th lost, wraps
    for i, seq in enumerate(seqs):
        stats.update(seq, i * 160, i * 0.02)
    # first seen is 65531 (the base); 65535, 65540 (=4) and 65545 (=9) are lost
    assert stats.expected == 19
    assert stats.received == 16
    assert stats.lost == 3
    assert stats.extended_max == 0x10000 + 13
    block = stats.report_block()
    assert block.ssrc == 7
    assert block.packets_lost == 3
    assert block.fraction_lost == (3 << 8) // 19
    assert block.highest_sequence == stats.extended_max
    # next interval: nothing lost
    for k, seq in enumerate(range(13, 23)):
        stats.update(seq, (20 + k) * 160, (20 + k) * 0.02)
    assert stats.report_block().fraction_lost == 0


def test_interarrival_jitter_follows_rfc3550_a8() -> None:
    stats = ReceiverStats(ssrc=1, clock_rate=8000, seq=0)
    rng = random.Random(3)
    expected = 0.0
    prev_transit = None
    for i in range(200):
        arrival = i * 0.02 + rng.uniform(0, 0.01)
        stats.update(i, i * 160, arrival)
        transit = int(arrival * 8000) - i * 160
        if prev_transit is not None:
            expected += (abs(transit - prev_transit) - expected) / 16
        prev_transit = transit
    assert stats.jitter == pytest.approx(expected)
    assert 10 < stats.jitter < 60  # a few ms of jitter, in 8 kHz units
    perfect = ReceiverStats(ssrc=1, clock_rate=8000, seq=0)
    for i in range(50):
        perfect.update(i, i * 160, i * 0.02)
    assert perfect.jitter < 1


def test_sender_report_then_receiver_report() -> None:
    state = RtcpState(ssrc=0x11, clock_rate=8000, cname="gw@test", rng=random.Random(1))
    state.on_rtp_received(0x22, 1, 160, 0.0)
    state.on_rtp_sent(1000, 160, 0.0)
    state.on_rtp_sent(1160, 160, 0.02)
    packets = RtcpPacket.parse(state.build_report(0.04, 1_700_000_000.0))
    sr, sdes = packets
    assert isinstance(sr, RtcpSrPacket) and isinstance(sdes, RtcpSdesPacket)
    assert sr.ssrc == 0x11
    assert sr.sender_info.packet_count == 2 and sr.sender_info.octet_count == 320
    assert sr.sender_info.rtp_timestamp == 1160 + 160  # extrapolated to "now"
    assert sr.sender_info.ntp_timestamp >> 32 == 1_700_000_000 + 2208988800
    assert [r.ssrc for r in sr.reports] == [0x22]
    assert sdes.chunks[0].items == [(1, b"gw@test")]
    # nothing sent since: an RR
    rr, _ = RtcpPacket.parse(state.build_report(5.0, 1_700_000_005.0))
    assert isinstance(rr, RtcpRrPacket) and rr.ssrc == 0x11


def test_round_trip_time_from_lsr_and_dlsr() -> None:
    wall = 1_700_000_000.0
    ours = RtcpState(ssrc=1, clock_rate=8000, rng=random.Random(1))
    theirs = RtcpState(ssrc=2, clock_rate=8000, rng=random.Random(2))
    ours.on_rtp_received(2, 1, 0, 0.0)
    theirs.on_rtp_received(1, 1, 0, 0.0)
    ours.on_rtp_sent(0, 160, 0.0)
    sr = ours.build_report(1.0, wall + 1.0)
    assert theirs.on_rtcp(sr, 1.05, wall + 1.05)  # 50 ms one way
    rr = theirs.build_report(1.25, wall + 1.25)  # held 200 ms before answering
    assert ours.on_rtcp(rr, 1.30, wall + 1.30)  # 50 ms back
    assert ours.remote.rtt == pytest.approx(0.100, abs=0.001)
    assert ours.remote.fraction_lost == 0.0


def test_garbage_rtcp_is_rejected() -> None:
    state = RtcpState(ssrc=1, clock_rate=8000)
    assert not state.on_rtcp(b"\x00\x01\x02", 0.0, 0.0)
    assert not state.on_rtcp(b"", 0.0, 0.0)
    assert not state.on_rtcp(b"\x81\xc9\x00\x09" + b"\x00" * 4, 0.0, 0.0)  # truncated RR


def test_ntp_helpers() -> None:
    ntp = ntp_from_unix(0.5)
    assert ntp >> 32 == 2208988800
    assert ntp & 0xFFFFFFFF == 1 << 31
    assert ntp_middle(ntp) == ((2208988800 & 0xFFFF) << 16) | 0x8000


def test_leg_reports_about_every_five_seconds_and_reads_the_peers() -> None:
    # a is at 192.0.2.1:4000, b at 192.0.2.2:5000
    a = AudioLeg(
        LegConfig(codec="PCMU", payload_type=0, remote_addr=("192.0.2.2", 5000)),
        rng=random.Random(5),
    )
    b = AudioLeg(
        LegConfig(codec="PCMU", payload_type=0, remote_addr=("192.0.2.1", 4000)),
        rng=random.Random(6),
    )
    a.start_sending()
    b.start_sending()
    sent_times = []
    rng = np.random.default_rng(0)
    for i in range(1500):  # 30 s
        now = i * 0.02
        for data, _ in a.push_frame(np.zeros(320, dtype=np.int16), now):
            if rng.random() > 0.1:  # 10 % loss a -> b
                b.on_rtp(data, ("192.0.2.1", 4000), now)
        for data, _ in b.push_frame(np.zeros(320, dtype=np.int16), now):
            a.on_rtp(data, ("192.0.2.2", 5000), now)
        b.pull_frame(now)
        a.pull_frame(now)
        for data, addr in b.poll_rtcp(now):
            assert addr == ("192.0.2.1", 4001)  # SDP RTP port + 1 until RTCP is heard
            sent_times.append(now)
            assert a.on_rtcp(data, ("192.0.2.2", 5001), now)
        a.poll_rtcp(now)
    gaps = np.diff(sent_times)
    assert 4 <= len(sent_times) <= 12
    assert gaps.min() >= 2.5 - 1e-9 and gaps.max() <= 7.5 + 1e-9
    remote = a.stats().remote
    assert remote.fraction_lost == pytest.approx(0.1, abs=0.06)
    assert remote.packets_lost > 100
    assert b.stats().lost >= remote.packets_lost  # b counted on after its last report


def test_interarrival_jitter_across_the_timestamp_wrap() -> None:
    stats = ReceiverStats(ssrc=1, clock_rate=8000, seq=0)
    start = (1 << 32) - 5 * 160  # wraps after five packets
    for i in range(50):
        stats.update(i, (start + i * 160) & 0xFFFFFFFF, 10.0 + i * 0.02)
    assert stats.jitter < 1  # a perfectly regular stream, across 2^32


def test_interarrival_jitter_across_the_wrap_matches_unwrapped() -> None:
    rng = random.Random(9)
    wrapped = ReceiverStats(ssrc=1, clock_rate=8000, seq=0)
    plain = ReceiverStats(ssrc=1, clock_rate=8000, seq=0)
    start = (1 << 32) - 100 * 160
    for i in range(200):
        arrival = 3.0 + i * 0.02 + rng.uniform(0, 0.01)
        wrapped.update(i, (start + i * 160) & 0xFFFFFFFF, arrival)
        plain.update(i, 1000 + i * 160, arrival)
    assert wrapped.jitter == pytest.approx(plain.jitter, abs=1.0)
