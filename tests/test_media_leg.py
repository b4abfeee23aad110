from __future__ import annotations

import struct

import numpy as np
import pytest
from aiortc.rtp import RtpPacket
from test_media_signals import peak_frequency, tone

from gateway.media import AudioLeg, LegConfig, TelephoneEvent

SDP_ADDR = ("192.0.2.10", 40000)
NAT_ADDR = ("198.51.100.7", 61000)


def _rtp(
    seq: int, ts: int, pt: int = 0, payload: bytes = b"\xff" * 160, ssrc: int = 0x1234
) -> bytes:
    return RtpPacket(
        payload_type=pt, sequence_number=seq, timestamp=ts, ssrc=ssrc, payload=payload
    ).serialize()


def _leg(**kw: object) -> AudioLeg:
    config = LegConfig(**{"codec": "PCMU", "payload_type": 0, "remote_addr": SDP_ADDR, **kw})  # type: ignore[arg-type]
    return AudioLeg(config, ssrc=0xABCDEF01)


def test_sends_to_the_sdp_address_until_rtp_arrives_then_latches() -> None:
    leg = _leg()
    silence = np.zeros(320, dtype=np.int16)
    [(_, dest)] = leg.push_frame(silence)
    assert dest == SDP_ADDR
    assert leg.on_rtp(_rtp(1, 160), NAT_ADDR, 0.0)
    [(_, dest)] = leg.push_frame(silence)
    assert dest == NAT_ADDR
    assert leg.rtp_peer == NAT_ADDR
    assert leg.rtcp_send_addr == (SDP_ADDR[0], SDP_ADDR[1] + 1)  # no RTCP seen yet


def test_latching_can_be_turned_off() -> None:
    leg = _leg(symmetric_rtp=False)
    leg.on_rtp(_rtp(1, 160), NAT_ADDR, 0.0)
    [(_, dest)] = leg.push_frame(np.zeros(320, dtype=np.int16))
    assert dest == SDP_ADDR


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00" * 5,
        b"\x00" * 40,  # version 0
        b"\x8f" + b"\x00" * 11,  # 15 CSRCs announced, none there
        b"\xa0\x00\x00\x01" + b"\x00" * 8 + b"\x00",  # padding length 0
        bytes(range(256)),
    ],
)
def test_garbage_is_ignored_without_raising(data: bytes) -> None:
    leg = _leg()
    assert not leg.on_rtp(data, NAT_ADDR, 0.0)
    assert leg.rtp_peer is None
    assert leg.last_rtp_at is None


def test_wrong_payload_type_is_ignored_and_does_not_latch() -> None:
    leg = _leg()
    assert not leg.on_rtp(_rtp(1, 160, pt=8), NAT_ADDR, 0.0)
    assert leg.rtp_peer is None and leg.stats().wrong_payload_type == 1


def test_packets_we_send_are_well_formed() -> None:
    leg = _leg()
    frames = [leg.push_frame(tone(1000, 320, 16000))[0][0] for _ in range(3)]
    packets = [RtpPacket.parse(f) for f in frames]
    assert [p.payload_type for p in packets] == [0, 0, 0]
    assert [p.ssrc for p in packets] == [0xABCDEF01] * 3
    assert packets[0].marker == 1 and packets[1].marker == 0
    seqs = [p.sequence_number for p in packets]
    assert [(s - seqs[0]) & 0xFFFF for s in seqs] == [0, 1, 2]
    assert [(p.timestamp - packets[0].timestamp) & 0xFFFFFFFF for p in packets] == [0, 160, 320]
    assert all(len(p.payload) == 160 for p in packets)


def test_g722_uses_an_8000_hz_rtp_clock() -> None:
    leg = AudioLeg(LegConfig(codec="G722", payload_type=9, remote_addr=SDP_ADDR))
    a, b = (RtpPacket.parse(leg.push_frame(tone(1000, 320, 16000))[0][0]) for _ in range(2))
    assert (b.timestamp - a.timestamp) & 0xFFFFFFFF == 160
    assert len(a.payload) == 160
    with pytest.raises(ValueError):
        AudioLeg(LegConfig(codec="G722", payload_type=9, clock_rate=16000))


def test_audio_flows_between_two_legs() -> None:
    for codec, pt in (("PCMU", 0), ("PCMA", 8), ("G722", 9)):
        a = AudioLeg(LegConfig(codec=codec, payload_type=pt, remote_addr=SDP_ADDR))
        b = AudioLeg(LegConfig(codec=codec, payload_type=pt, remote_addr=NAT_ADDR))
        x = tone(700, 320 * 50, 16000)
        out = []
        for i in range(50):
            for data, _ in a.push_frame(x[i * 320 : (i + 1) * 320], i * 0.02):
                b.on_rtp(data, SDP_ADDR, i * 0.02)
            frame = b.pull_frame(i * 0.02)
            assert frame.dtype == np.int16 and frame.shape == (320,)
            out.append(frame)
        assert peak_frequency(np.concatenate(out)[3200:], 16000) == pytest.approx(700, abs=3)


def test_hold_stops_sending_and_resume_restarts_with_a_marker() -> None:
    leg = _leg()
    pcm = np.zeros(320, dtype=np.int16)
    first = RtpPacket.parse(leg.push_frame(pcm)[0][0])
    leg.hold()
    assert leg.on_hold
    assert leg.push_frame(pcm) == [] and leg.push_frame(pcm) == []
    leg.resume()
    again = RtpPacket.parse(leg.push_frame(pcm)[0][0])
    assert again.marker == 1
    assert again.sequence_number == (first.sequence_number + 1) & 0xFFFF  # no seq gap
    assert (again.timestamp - first.timestamp) & 0xFFFFFFFF == 3 * 160  # time ran on


def test_inactivity_timeout_not_while_on_hold() -> None:
    leg = AudioLeg(
        LegConfig(codec="PCMU", payload_type=0, remote_addr=SDP_ADDR, inactivity_timeout=60.0),
        now=100.0,
    )
    assert not leg.timed_out(159.0)
    assert leg.timed_out(161.0)  # never heard anything
    leg.on_rtp(_rtp(1, 160), NAT_ADDR, 150.0)
    assert leg.last_rtp_at == 150.0
    assert not leg.timed_out(209.0) and leg.timed_out(211.0)
    leg.hold()
    assert not leg.timed_out(1000.0)
    leg.resume(1000.0)
    assert not leg.timed_out(1059.0) and leg.timed_out(1061.0)


def test_telephone_events_are_surfaced_not_played() -> None:
    got: list[TelephoneEvent] = []
    leg = AudioLeg(
        LegConfig(codec="PCMU", payload_type=0, remote_addr=SDP_ADDR, telephone_event_pt=101),
        on_event=got.append,
    )
    # digit 5, volume 10, duration 800, then the end packet
    assert leg.on_rtp(_rtp(7, 8000, pt=101, payload=bytes([5, 10, 0x03, 0x20])), NAT_ADDR, 0.0)
    assert leg.on_rtp(_rtp(8, 8000, pt=101, payload=bytes([5, 0x8A, 0x06, 0x40])), NAT_ADDR, 0.1)
    assert [(e.event, e.end, e.volume, e.duration, e.timestamp) for e in got] == [
        (5, False, 10, 800, 8000),
        (5, True, 10, 1600, 8000),
    ]
    # without a callback they queue up
    leg2 = _leg(telephone_event_pt=101)
    leg2.on_rtp(_rtp(7, 8000, pt=101, payload=bytes([11, 0x80, 0, 160])), NAT_ADDR, 0.0)
    assert [e.event for e in leg2.drain_events()] == [11]
    assert leg2.drain_events() == []
    # events without a negotiated telephone-event type are just a wrong payload type
    leg3 = _leg()
    assert not leg3.on_rtp(_rtp(7, 8000, pt=101, payload=bytes([5, 10, 0, 160])), NAT_ADDR, 0.0)


def test_events_between_audio_do_not_count_as_lost_audio() -> None:
    leg = _leg(telephone_event_pt=101)
    seq = 0
    for i in range(10):
        leg.on_rtp(_rtp(seq, i * 160), NAT_ADDR, i * 0.02)
        seq += 1
        if i == 4:
            leg.on_rtp(
                _rtp(seq, i * 160, pt=101, payload=bytes([1, 0, 0, 160])), NAT_ADDR, i * 0.02
            )
            seq += 1
        leg.pull_frame(i * 0.02)
    assert leg.stats().jitter_buffer.missing == 0


def test_ssrc_change_resets_the_jitter_buffer() -> None:
    leg = _leg()
    for i in range(5):
        leg.on_rtp(_rtp(i, i * 160, ssrc=1), NAT_ADDR, i * 0.02)
        leg.pull_frame(i * 0.02)
    leg.on_rtp(_rtp(40000, 0, ssrc=2), NAT_ADDR, 0.2)
    assert leg.stats().jitter_buffer.resets == 1


def test_rtcp_multiplexed_on_the_rtp_port_is_taken_as_rtcp() -> None:
    sender = _leg()
    sender.push_frame(np.zeros(320, dtype=np.int16), 0.0)
    assert sender.poll_rtcp(0.0) == []  # the first report comes after about half an interval
    [(report, _)] = sender.poll_rtcp(100.0)
    leg = _leg(rtcp_mux=True)
    assert leg.on_rtp(report, NAT_ADDR, 1.0)
    assert leg.last_rtcp_at == 1.0
    assert leg.stats().bad_packets == 0
    assert struct.unpack("!B", report[1:2])[0] == 200  # an SR
