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


def _leg(*, now: float = 0.0, sending: bool = True, **kw: object) -> AudioLeg:
    config = LegConfig(**{"codec": "PCMU", "payload_type": 0, "remote_addr": SDP_ADDR, **kw})  # type: ignore[arg-type]
    leg = AudioLeg(config, ssrc=0xABCDEF01, now=now, send_before_confirm=False)
    if sending:
        leg.start_sending()  # what the SIP layer does on the ACK
    return leg


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
    leg.start_sending()
    a, b = (RtpPacket.parse(leg.push_frame(tone(1000, 320, 16000))[0][0]) for _ in range(2))
    assert (b.timestamp - a.timestamp) & 0xFFFFFFFF == 160
    assert len(a.payload) == 160
    with pytest.raises(ValueError):
        AudioLeg(LegConfig(codec="G722", payload_type=9, clock_rate=16000))


def test_audio_flows_between_two_legs() -> None:
    for codec, pt in (("PCMU", 0), ("PCMA", 8), ("G722", 9)):
        a = AudioLeg(LegConfig(codec=codec, payload_type=pt, remote_addr=SDP_ADDR))
        b = AudioLeg(LegConfig(codec=codec, payload_type=pt, remote_addr=NAT_ADDR))
        a.start_sending()
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
    leg.on_rtp(_rtp(1, 160), (SDP_ADDR[0], 40002), 150.0)  # the SDP host, another port
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
    assert leg.on_rtp(_rtp(1, 160), NAT_ADDR, 0.5)
    assert leg.on_rtp(report, NAT_ADDR, 1.0)
    assert leg.last_rtcp_at == 1.0
    assert leg.stats().bad_packets == 0
    assert struct.unpack("!B", report[1:2])[0] == 200  # an SR


# -- latching: no RTP hijack -------------------------------------------------------------------

ATTACKER = ("203.0.113.66", 41000)
SILENCE = np.zeros(320, dtype=np.int16)


def _dest(leg: AudioLeg) -> tuple[str, int]:
    [(_, dest)] = leg.push_frame(SILENCE)
    return dest


def test_a_stranger_cannot_take_over_a_latched_leg() -> None:
    leg = _leg()
    assert leg.on_rtp(_rtp(1, 160), SDP_ADDR, 0.0)
    for i in range(200):  # the attacker floods, the peer keeps talking
        assert not leg.on_rtp(_rtp(1000 + i, 160 * i, ssrc=0x666), ATTACKER, 0.01 + i * 0.02)
        assert leg.on_rtp(_rtp(2 + i, 160 * (i + 1)), SDP_ADDR, 0.02 + i * 0.02)
    assert leg.rtp_peer == SDP_ADDR and _dest(leg) == SDP_ADDR
    stats = leg.stats()
    assert stats.strangers == 200 and stats.latch_changes == 0
    assert stats.packets_received == 201  # strangers are neither decoded nor counted


def test_the_sdp_host_wins_over_an_earlier_stranger_same_host_any_port() -> None:
    leg = _leg()
    # off the SDP host, early: taken for a NAT, latched provisionally
    assert leg.on_rtp(_rtp(1, 160, ssrc=0x666), ATTACKER, 0.0)
    nat_port = (SDP_ADDR[0], 50000)  # the peer's NAT rewrote the port
    assert leg.on_rtp(_rtp(1, 160), nat_port, 0.05)
    assert leg.rtp_peer == nat_port
    # the exact SDP address is preferred while the latch window is open
    assert leg.on_rtp(_rtp(2, 320), SDP_ADDR, 0.1)
    assert leg.rtp_peer == SDP_ADDR
    # but nobody else on that host moves it afterwards
    assert not leg.on_rtp(_rtp(3, 480), (SDP_ADDR[0], 50002), 0.15)
    assert leg.rtp_peer == SDP_ADDR
    assert not leg.on_rtp(_rtp(4, 640), nat_port, 0.2)
    assert leg.rtp_peer == SDP_ADDR


def test_behind_nat_the_first_source_within_the_window_is_latched_for_good() -> None:
    leg = _leg()
    assert leg.on_rtp(_rtp(1, 160), NAT_ADDR, 1.0)  # not the SDP host: a NAT
    assert leg.rtp_peer == NAT_ADDR
    for i in range(10):
        assert not leg.on_rtp(_rtp(100 + i, 160), ATTACKER, 1.1 + i * 0.02)
        leg.on_rtp(_rtp(2 + i, 160 * (2 + i)), NAT_ADDR, 1.1 + i * 0.02)
    assert _dest(leg) == NAT_ADDR


def test_after_the_window_only_the_sdp_host_can_latch() -> None:
    leg = _leg()
    assert not leg.on_rtp(_rtp(1, 160), NAT_ADDR, leg.latch_window + 1.0)
    assert leg.rtp_peer is None and leg.stats().strangers == 1
    assert leg.on_rtp(_rtp(2, 320), SDP_ADDR, leg.latch_window + 2.0)
    assert leg.rtp_peer == SDP_ADDR
    # a new SDP address (re-INVITE) opens a new window
    leg.set_remote_addr(("192.0.2.99", 42000))
    assert leg.rtp_peer is None
    assert leg.on_rtp(_rtp(3, 480), NAT_ADDR, leg.latch_window + 3.0)
    assert leg.rtp_peer == NAT_ADDR


def test_relatch_only_after_silence_and_only_to_the_sdp_host() -> None:
    leg = _leg()
    for i in range(500):  # a NATed peer, talking for 10 s (the latch window is over)
        assert leg.on_rtp(_rtp(1 + i, 160 * i), NAT_ADDR, i * 0.02)
    last = 499 * 0.02
    new_port = (SDP_ADDR[0], 40100)
    assert not leg.on_rtp(_rtp(600, 320), new_port, last + 0.5)  # latched peer still alive
    later = last + leg.relatch_after + 0.5
    assert not leg.on_rtp(_rtp(601, 320), ATTACKER, later)  # silent peer, but not the SDP host
    assert leg.on_rtp(_rtp(602, 480), new_port, later)  # silent, and from the SDP host
    assert leg.rtp_peer == new_port and leg.stats().latch_changes == 1
    assert not leg.on_rtp(_rtp(502, 480), NAT_ADDR, later + 0.1)  # the old one is out now


def test_rtcp_is_taken_only_from_the_latched_host() -> None:
    report = _report()
    sender = _leg()
    leg = _leg()
    assert leg.on_rtp(_rtp(1, 160), NAT_ADDR, 0.0)
    assert not leg.on_rtcp(report, ATTACKER, 0.5)
    assert leg.last_rtcp_at is None and leg.rtcp_peer is None
    assert leg.on_rtcp(report, (NAT_ADDR[0], 61001), 0.6)
    assert leg.rtcp_peer == (NAT_ADDR[0], 61001)
    bye = sender.bye()[0][0]
    assert not leg.on_rtcp(bye, ATTACKER, 0.7)
    assert not leg.bye_received
    assert leg.stats().strangers == 2


def test_a_strangers_packets_are_not_decoded() -> None:
    leg = _leg()
    loud = bytes([0x00]) * 160  # mu-law full scale
    leg.on_rtp(_rtp(1, 160), SDP_ADDR, 0.0)
    for i in range(20):
        leg.on_rtp(_rtp(2 + i, 160 * (i + 2), payload=loud, ssrc=0x666), ATTACKER, i * 0.02)
    out = np.concatenate([leg.pull_frame(i * 0.02) for i in range(20)])
    assert np.abs(out.astype(np.int32)).max() < 100


# -- no media before the ACK -------------------------------------------------------------------


def test_nothing_is_sent_before_start_sending() -> None:
    leg = _leg(sending=False)
    assert not leg.sending
    assert leg.push_frame(SILENCE, 0.0) == [] and leg.push_frame(SILENCE, 0.02) == []
    assert leg.poll_rtcp(0.0) == [] and leg.poll_rtcp(100.0) == []
    assert leg.bye() == []
    leg.start_sending()
    assert leg.sending
    first = RtpPacket.parse(leg.push_frame(SILENCE, 0.04)[0][0])
    second = RtpPacket.parse(leg.push_frame(SILENCE, 0.06)[0][0])
    assert first.marker == 1
    assert (second.timestamp - first.timestamp) & 0xFFFFFFFF == 160
    assert leg.poll_rtcp(200.0) != []
    # receiving works before the ACK (early media from the peer is fine)
    assert _leg(sending=False).on_rtp(_rtp(1, 160), SDP_ADDR, 0.0)


def test_timestamps_run_on_before_start_sending() -> None:
    a = _leg(sending=False)
    b = _leg()
    for _ in range(3):
        a.push_frame(SILENCE)
    a.start_sending()
    ts_a = RtpPacket.parse(a.push_frame(SILENCE)[0][0]).timestamp
    assert a.stats().packets_sent == 1 and b.stats().packets_sent == 0
    assert isinstance(ts_a, int)


def test_send_before_confirm_flag() -> None:
    leg = AudioLeg(LegConfig(remote_addr=SDP_ADDR), send_before_confirm=True)
    assert leg.sending and leg.push_frame(SILENCE) != []


# -- activity: RTCP counts, recvonly peers --------------------------------------------------------


def _report() -> bytes:
    sender = _leg()
    sender.push_frame(SILENCE, 0.0)
    sender.poll_rtcp(0.0)
    [(report, _)] = sender.poll_rtcp(100.0)
    return report


def test_rtcp_from_the_peer_counts_as_life() -> None:
    leg = _leg(inactivity_timeout=60.0)
    assert leg.on_rtp(_rtp(1, 160), SDP_ADDR, 0.0)
    for t in range(5, 200, 5):  # VAD: silence is only RTCP
        assert leg.on_rtcp(_report(), (SDP_ADDR[0], SDP_ADDR[1] + 1), float(t))
        assert not leg.timed_out(t + 1.0)
    assert leg.timed_out(195.0 + 61.0)


def test_a_recvonly_peer_is_judged_by_its_rtcp() -> None:
    leg = _leg(inactivity_timeout=60.0)
    leg.set_direction(we_send=True, we_receive=False)  # the peer is recvonly
    assert leg.we_receive is False
    for t in range(5, 300, 5):
        assert leg.on_rtcp(_report(), (SDP_ADDR[0], SDP_ADDR[1] + 1), float(t))
        assert not leg.timed_out(t + 1.0)
    assert leg.push_frame(SILENCE) != []  # we still send to it
    assert leg.timed_out(295.0 + 61.0)  # no RTCP either: gone


def test_a_recvonly_peer_without_rtcp_still_times_out() -> None:
    leg = _leg(inactivity_timeout=60.0)
    leg.set_direction(we_send=True, we_receive=False)
    assert not leg.timed_out(59.0) and leg.timed_out(61.0)


def test_set_direction_we_do_not_send_is_hold() -> None:
    leg = _leg(inactivity_timeout=60.0)
    leg.set_direction(we_send=False, we_receive=True)
    assert leg.on_hold and leg.push_frame(SILENCE) == []
    assert not leg.timed_out(1000.0)
    leg.set_direction(we_send=True, we_receive=True, now=1000.0)
    assert not leg.on_hold and leg.push_frame(SILENCE) != []
    assert not leg.timed_out(1059.0) and leg.timed_out(1061.0)


# -- memory ----------------------------------------------------------------------------------------


def test_a_waiting_member_does_not_grow_without_bound() -> None:
    leg = _leg(telephone_event_pt=101)
    for i in range(20_000):  # nobody pulls: a waiting-room member
        leg.on_rtp(_rtp(i & 0xFFFF, 160 * i & 0xFFFFFFFF), SDP_ADDR, i * 0.02)
        if i % 100 == 0:
            leg.on_rtp(
                _rtp(i & 0xFFFF, 0, pt=101, payload=bytes([1, 0, 0, 160])), SDP_ADDR, i * 0.02
            )
    assert len(leg._jitter) <= leg._jitter.capacity
    assert len(leg.events) <= 256


# -- jitter: DTMF and drift through the leg ----------------------------------------------------------


def test_audio_after_a_200_ms_digit_is_not_dropped_as_late() -> None:
    leg = _leg(telephone_event_pt=101)
    got: list[TelephoneEvent] = []
    leg.on_event = got.append
    packets: list[bytes] = []
    seq = ts = 0
    for _ in range(50):  # 1 s of audio
        packets.append(_rtp(seq, ts))
        seq, ts = seq + 1, ts + 160
    start = ts
    for k in range(10):  # 200 ms digit, one packet per 20 ms, all with the event timestamp
        packets.append(
            _rtp(seq, start, pt=101, payload=bytes([5, 10]) + (160 * (k + 1)).to_bytes(2, "big"))
        )
        seq += 1
    for _ in range(3):  # the end packet, three times
        packets.append(
            _rtp(seq, start, pt=101, payload=bytes([5, 0x8A]) + (1600).to_bytes(2, "big"))
        )
        seq += 1
    ts = start + 1600 + 3 * 160
    for _ in range(50):  # audio again
        packets.append(_rtp(seq, ts))
        seq, ts = seq + 1, ts + 160
    for i, data in enumerate(packets):
        assert leg.on_rtp(data, SDP_ADDR, i * 0.02)
        leg.pull_frame(i * 0.02 + 0.01)
    jb = leg.stats().jitter_buffer
    assert jb.late == 0, jb
    assert jb.missing == 0 and jb.skipped == 0
    assert len(got) == 13


@pytest.mark.parametrize("interval", [0.0201, 0.0199])
def test_leg_under_sender_clock_drift(interval: float) -> None:
    leg = _leg()
    voice = tone(300, 160 * 8, 8000)
    from media.codecs import ULAW_ENCODE

    payload = ULAW_ENCODE[voice[:160].view(np.uint16)].tobytes()
    n_packets = int(120.0 / interval)
    n_pulls = 6000
    k = 0
    for j in range(n_pulls):
        now = j * 0.02 + 0.0101
        while k < n_packets and k * interval <= now:
            leg.on_rtp(_rtp(k & 0xFFFF, 160 * k, payload=payload), SDP_ADDR, k * interval)
            k += 1
        leg.pull_frame(now)
    stats = leg.stats()
    jb = stats.jitter_buffer
    irregular = stats.concealed_frames + jb.dropped + jb.skipped + jb.late
    assert irregular <= abs(n_pulls - n_packets) + 6, (stats.concealed_frames, jb)


# -- hostile input ---------------------------------------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    first=st.binary(max_size=300),
    data=st.lists(st.binary(max_size=300), max_size=8),
    mux=st.booleans(),
)
def test_any_bytes_never_raise(first: bytes, data: list[bytes], mux: bool) -> None:
    leg = _leg(telephone_event_pt=101, rtcp_mux=mux)
    leg.on_rtp(_rtp(1, 160), SDP_ADDR, 0.0)  # latched, so the bytes get past the source check
    for i, d in enumerate([first, *data]):
        for blob in (d, b"\x80\x00" + d, b"\x80\x65" + d, b"\x81\xc8" + d, b"\x80\xc9" + d):
            leg.on_rtp(blob, SDP_ADDR, 0.01 * i)
            leg.on_rtcp(blob, (SDP_ADDR[0], SDP_ADDR[1] + 1), 0.01 * i)
            leg.on_rtp(blob, ATTACKER, 0.01 * i)
            leg.on_rtcp(blob, ATTACKER, 0.01 * i)
        leg.pull_frame(0.01 * i)
    leg.poll_rtcp(100.0)
    leg.stats()


def test_headers_with_csrcs_or_an_extension_carry_the_same_audio() -> None:
    """The common 12-byte header is read directly; CSRCs, a header extension (a mixer's or
    an SBC's) and marker bits go through aiortc's parser: the audio is the same."""
    payload = bytes(range(0, 160))
    plain = _rtp(1, 160, payload=payload)
    with_csrc = RtpPacket(
        payload_type=0, sequence_number=1, timestamp=160, ssrc=0x1234, payload=payload
    )
    with_csrc.csrc = [0x55667788]
    extension = bytes([0x90]) + plain[1:12] + b"\xbe\xde\x00\x01" + b"\x10\xaa\x00\x00" + payload
    heard = []
    for data in (plain, with_csrc.serialize(), extension):
        leg = _leg(jitter_depth=1)
        assert leg.on_rtp(data, SDP_ADDR, 0.0)
        assert leg.stats().packets_received == 1
        heard.append(leg.pull_native(0.02).copy())
        assert len(heard[-1]) == 160
    assert np.array_equal(heard[0], heard[1]) and np.array_equal(heard[0], heard[2])
    assert np.abs(heard[0].astype(int)).max() > 1000  # the payload, not concealment
