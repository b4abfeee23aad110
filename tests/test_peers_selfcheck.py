"""Self-checks of the SIP peer harness in tests/peers, without the gateway.

The unit tests check the tone detector and pcap writer; the ``interop`` tests put real
peers (PJSIP, baresip, sipp, and a stub UAS) against each other.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from peers import ManagedProcess, free_port, free_port_range, free_rtp_port_pair
from peers.audio import (
    assert_contains_tone,
    assert_lacks_tone,
    contains_tone,
    dominant_frequencies,
    has_silence_gaps,
    make_tone,
    read_wav,
    tone_power,
    tone_presence,
    write_wav,
)
from peers.baresip import Baresip, wav_header_complete
from peers.fixtures import PeerFactory
from peers.pcap import audio_packets, dtmf_packets, linear_to_alaw, linear_to_ulaw, write_pcap
from peers.pjsua import PjsuaPeer
from peers.sipp import (
    run_delayed_offer,
    run_expect_status,
    run_hold_unhold,
    run_options,
    run_pcap_call,
    run_uac,
    scenario,
)
from peers.stub_uas import StubUas, _g711_decode

# -- audio analysis (unit) -----------------------------------------------------------


def _tones(freqs: list[float], seconds: float = 3.0, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return sum(0.25 * np.sin(2 * np.pi * f * t) for f in freqs)  # type: ignore[return-value]


def test_mix_of_two_tones_is_detected_and_a_missing_one_is_not(tmp_path: Path) -> None:
    p = make_tone(tmp_path / "mix.wav", [440, 700], 4.0)
    assert contains_tone(p, 440)
    assert contains_tone(p, 700)
    assert not contains_tone(p, 1100)
    assert_contains_tone(p, 700)
    assert_lacks_tone(p, 1100)
    with pytest.raises(AssertionError, match="no 1100 Hz tone"):
        assert_contains_tone(p, 1100)
    rate, x = read_wav(p)
    assert rate == 16000
    assert tone_power(x, rate, 440) == pytest.approx(0.125**2 / 2 * 4, rel=0.1)  # amplitude 0.25
    assert sorted(round(f / 10) * 10 for f, _ in dominant_frequencies(x, rate, count=2)) == [
        440,
        700,
    ]


@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_three_tones_survive_g711_resampling_and_noise(tmp_path: Path, law: str) -> None:
    x16 = _tones([440, 700, 1100], 3.0, 16000)
    x8 = np.interp(np.arange(0, len(x16), 2), np.arange(len(x16)), x16)  # 16k -> 8k
    enc = linear_to_ulaw(x8) if law == "ulaw" else linear_to_alaw(x8)
    dec = _g711_decode(enc, 0 if law == "ulaw" else 8)
    dec = dec + np.random.default_rng(1).normal(0, 0.01, len(dec))  # -40 dBFS noise
    back = np.interp(np.arange(len(dec) * 2) / 2, np.arange(len(dec)), dec)  # 8k -> 16k
    p = tmp_path / "g711.wav"
    write_wav(p, 16000, back)
    for f in (440, 700, 1100):
        assert contains_tone(p, f), f
    for f in (1500, 300, 2000):
        assert not contains_tone(p, f), f


def test_silence_and_noise_contain_no_tone(tmp_path: Path) -> None:
    silent = tmp_path / "silent.wav"
    write_wav(silent, 8000, np.zeros(16000))
    noise = tmp_path / "noise.wav"
    write_wav(noise, 8000, np.random.default_rng(2).normal(0, 0.2, 24000))
    for p in (silent, noise):
        for f in (440, 700, 1100):
            assert not contains_tone(p, f)
    assert has_silence_gaps(silent, 440)


def test_silence_gaps_are_found(tmp_path: Path) -> None:
    rate = 8000
    x = _tones([700], 4.0, rate)
    steady = tmp_path / "steady.wav"
    write_wav(steady, rate, x)
    assert tone_presence(steady, 700) > 0.99
    assert not has_silence_gaps(steady, 700)
    gappy = x.copy()
    for start in (1.5, 2.2, 2.9):  # three 100 ms dropouts = 10 % of the analysed 2.5 s
        gappy[int(start * rate) : int((start + 0.1) * rate)] = 0.0
    p = tmp_path / "gappy.wav"
    write_wav(p, rate, gappy)
    assert 0.8 < tone_presence(p, 700) < 0.95
    assert has_silence_gaps(p, 700)


def test_pcap_is_readable_rtp(tmp_path: Path) -> None:
    rate, x = 8000, _tones([700], 1.0, 8000)
    pkts = audio_packets(x, rate, "PCMU") + dtmf_packets("15#", start=1.0, ssrc=0x42)
    pcap = write_pcap(tmp_path / "a.pcap", pkts)
    assert len(pkts) == 50 + 3 * 10
    if shutil.which("tshark") is None:
        pytest.skip("no tshark")
    out = subprocess.run(
        [
            "tshark",
            "-r",
            str(pcap),
            "-d",
            "udp.port==7000,rtp",
            "-T",
            "fields",
            "-e",
            "rtp.p_type",
            "-e",
            "rtp.seq",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.split("\n")
    rows = [r.split("\t") for r in out if r.strip()]
    assert len(rows) == len(pkts)
    assert {r[0] for r in rows} == {"0", "101"}


# -- interop: real peers against each other --------------------------------------------


@pytest.fixture
def tones(tmp_path: Path) -> dict[int, Path]:
    return {f: make_tone(tmp_path / f"tone{f}.wav", f, 30.0, 16000) for f in (440, 700, 1100)}


@pytest.mark.interop
def test_pjsua_calls_baresip_tones_both_ways(tmp_path: Path, tones: dict[int, Path]) -> None:
    heard_by_pjsua = tmp_path / "pjsua_heard.wav"
    with Baresip(tmp_path / "baresip", source_wav=tones[700], user="bob") as bob:
        caller = PjsuaPeer.call(
            bob.uri, play=tones[440], record=heard_by_pjsua, seconds=3.5, max_seconds=20
        )
        with caller:
            caller.wait_event("CONFIRMED", timeout=10)
            bob.wait_event("CALL_ESTABLISHED", timeout=10)
            result = caller.wait_result(timeout=20)
        assert result.ok, result.output
        assert result.codes == [200]
        bob.wait_event("CALL_CLOSED", timeout=10)
        recs = bob.wait_recordings_final(timeout=5)
        assert all(wav_header_complete(p) for p in recs)
        heard_by_bob = bob.last_recording("dec")
    assert_contains_tone(heard_by_bob, 440)
    assert_lacks_tone(heard_by_bob, 700)
    assert wav_header_complete(heard_by_pjsua)
    assert_contains_tone(heard_by_pjsua, 700)
    assert_lacks_tone(heard_by_pjsua, 440)
    assert not has_silence_gaps(heard_by_pjsua, 700)


@pytest.mark.interop
def test_baresip_calls_pjsua_with_g722_and_rfc4733_dtmf(
    tmp_path: Path, tones: dict[int, Path]
) -> None:
    heard_by_pjsua = tmp_path / "pjsua_heard.wav"
    callee = PjsuaPeer.answer(play=tones[700], record=heard_by_pjsua, max_seconds=20)
    with (
        callee,
        Baresip(tmp_path / "alice", source_wav=tones[1100], user="alice", codecs=["G722"]) as alice,
    ):
        alice.dial(callee.uri)
        alice.wait_event("CALL_ESTABLISHED", timeout=10)
        media = callee.wait_event("MEDIA", timeout=10, status="ACTIVE")
        assert media["codec"] == "G722/16000"
        time.sleep(1.5)
        alice.send_dtmf("12#")
        time.sleep(2.0)
        alice.hangup()
        alice.wait_event("CALL_CLOSED", timeout=10)
        result = callee.wait_result(timeout=15)
        alice.wait_recordings_final(timeout=5)
        heard_by_alice = alice.last_recording("dec")
    assert result.ok, result.output
    assert result.dtmf_received == "12#"
    assert_contains_tone(heard_by_pjsua, 1100)
    assert_lacks_tone(heard_by_pjsua, 700)
    assert read_wav(heard_by_alice)[0] == 16000  # G.722 decodes at 16 kHz
    assert_contains_tone(heard_by_alice, 700)
    assert_lacks_tone(heard_by_alice, 1100)


@pytest.mark.interop
def test_pjsua_to_pjsua_info_dtmf_and_hold(tmp_path: Path, tones: dict[int, Path]) -> None:
    callee = PjsuaPeer.answer(play=tones[700], record=tmp_path / "callee.wav", max_seconds=20)
    with callee:
        caller = PjsuaPeer.call(
            callee.uri,
            play=tones[440],
            record=tmp_path / "caller.wav",
            seconds=4.0,
            dtmf="9*",
            dtmf_method="info",
            dtmf_at=0.5,
            hold_at=1.5,
            unhold_at=2.5,
            max_seconds=20,
        )
        with caller:
            res_caller = caller.wait_result(timeout=20)
        res_callee = callee.wait_result(timeout=10)
    assert res_caller.ok and res_callee.ok, res_caller.output + res_callee.output
    assert res_callee.dtmf_received == "9*"
    assert {e["method"] for e in res_callee.named("DTMF")} == {"info"}
    statuses = [e["status"] for e in res_callee.named("MEDIA")]
    assert statuses == ["ACTIVE", "REMOTE_HOLD", "ACTIVE"], statuses
    assert_contains_tone(tmp_path / "callee.wav", 440)
    assert has_silence_gaps(tmp_path / "callee.wav", 440)  # no audio while held


@pytest.mark.interop
def test_sipp_uac_calls_pjsua_over_udp_and_tcp(peers: PeerFactory) -> None:
    callee = peers.pjsua_answer(calls=5, max_seconds=25)
    udp = run_uac("127.0.0.1", callee.port, "1000", calls=3, rate=10, timeout=15)
    assert udp.ok and udp.successful == 3, udp.summary()
    tcp = run_uac("127.0.0.1", callee.port, "1000", transport="tcp", calls=2, rate=10, timeout=15)
    assert tcp.ok and tcp.successful == 2, tcp.summary()
    result = callee.wait_result(timeout=10)
    assert result.ok and result.codes == [200] * 5


@pytest.mark.interop
def test_sipp_reinvite_and_delayed_offer_against_pjsua() -> None:
    with PjsuaPeer.answer(calls=2, max_seconds=25) as callee:
        hold = run_hold_unhold("127.0.0.1", callee.port, "1000", hold_ms=400, timeout=15)
        assert hold.ok, hold.summary()
        delayed = run_delayed_offer("127.0.0.1", callee.port, "1000", timeout=15)
        assert delayed.ok, delayed.summary()
        result = callee.wait_result(timeout=10)
    statuses = [e["status"] for e in result.named("MEDIA")]
    assert "REMOTE_HOLD" in statuses, statuses


@pytest.mark.interop
def test_sipp_scenarios_against_stub_uas(tmp_path: Path) -> None:
    tone = make_tone(tmp_path / "t.wav", 700, 2.0, 8000)
    rate, x = read_wav(tone)
    pcap = write_pcap(tmp_path / "tone700.pcap", audio_packets(x, rate, "PCMU"))
    with StubUas() as uas:
        assert run_options("127.0.0.1", uas.port, timeout=10).ok
        r404 = run_expect_status("127.0.0.1", uas.port, "404", 404, timeout=10)
        assert r404.ok, r404.summary()
        wrong = run_expect_status("127.0.0.1", uas.port, "480", 404, timeout=10)
        assert wrong.failed == 1 and not wrong.ok
        fixed = run_uac(
            "127.0.0.1", uas.port, "404", scenario_file=scenario("uac_expect_404"), timeout=10
        )
        assert fixed.ok, fixed.summary()
        lossy = run_uac(
            "127.0.0.1", uas.port, "1000", calls=4, rate=20, lost_percent=10, timeout=20
        )
        assert lossy.successful + lossy.failed == 4, lossy.summary()
        played = run_pcap_call("127.0.0.1", uas.port, "1000", pcap, pause_ms=2200, timeout=15)
        assert played.ok, played.summary()
        heard = uas.write_received_audio(tmp_path / "stub_heard.wav")
    assert_contains_tone(heard, 700, skip_seconds=0.2)
    assert not has_silence_gaps(heard, 700, skip_seconds=0.2, tail_seconds=0.2)


def test_managed_process_is_killed_after_its_lifetime_and_on_exit() -> None:
    t0 = time.monotonic()
    with ManagedProcess(["sleep", "30"], lifetime=0.5) as p:
        with pytest.raises(subprocess.TimeoutExpired):
            p.wait(0.1)
        p.wait(5.0)
    assert p.killed_by_lifetime and time.monotonic() - t0 < 5
    with pytest.raises(RuntimeError), ManagedProcess(["sleep", "30"], lifetime=60) as q:
        raise RuntimeError("test failed inside")
    assert not q.running()


def test_free_ports_are_distinct_and_rtp_even() -> None:
    ports = {free_port("udp") for _ in range(20)} | {free_port("tcp") for _ in range(20)}
    assert len(ports) == 40
    p = free_rtp_port_pair()
    assert p % 2 == 0
    q = free_port_range(4, ("udp",), even=True)
    assert q % 2 == 0 and not {q, q + 1, q + 2, q + 3} & ports
