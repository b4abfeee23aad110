from __future__ import annotations

import numpy as np
import pytest
from test_media_signals import amplitude_at, band_power, peak_frequency, tone

from media.codecs import (
    ALAW_DECODE,
    ALAW_ENCODE,
    CODECS,
    ULAW_DECODE,
    ULAW_ENCODE,
    UnsupportedCodec,
    get_codec,
)


def test_table_by_sdp_name() -> None:
    assert set(CODECS) == {"PCMU", "PCMA", "G722"}
    assert get_codec("pcmu").static_payload_type == 0
    assert get_codec("PCMA").static_payload_type == 8
    g722 = get_codec("g722")
    assert (g722.sample_rate, g722.clock_rate, g722.static_payload_type) == (16000, 8000, 9)
    assert g722.samples_per_frame() == 320
    assert g722.timestamp_step() == 160  # RFC 3551: 8000 Hz RTP clock for G.722
    assert get_codec("PCMU").samples_per_frame() == 160
    assert get_codec("PCMU").timestamp_step() == 160
    with pytest.raises(UnsupportedCodec):
        get_codec("opus")


@pytest.mark.parametrize(
    ("name", "encode", "decode"),
    [("pcm_mulaw", ULAW_ENCODE, ULAW_DECODE), ("pcm_alaw", ALAW_ENCODE, ALAW_DECODE)],
)
def test_g711_tables_are_bit_exact_with_ffmpeg(
    name: str, encode: np.ndarray, decode: np.ndarray
) -> None:
    av = pytest.importorskip("av")
    every = np.arange(65536, dtype=np.uint16).view(np.int16).copy()
    enc = av.CodecContext.create(name, "w")
    enc.format, enc.layout, enc.sample_rate = "s16", "mono", 8000
    frame = av.AudioFrame.from_ndarray(every.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = 8000
    ref = b"".join(bytes(p) for p in enc.encode(frame)) + b"".join(
        bytes(p) for p in enc.encode(None)
    )
    assert encode[every.view(np.uint16)].tobytes() == ref

    dec = av.CodecContext.create(name, "r")
    dec.format, dec.layout, dec.sample_rate = "s16", "mono", 8000
    frames = dec.decode(av.packet.Packet(bytes(range(256))))
    ref_pcm = np.concatenate([f.to_ndarray().ravel() for f in frames])
    assert np.array_equal(decode, ref_pcm)


@pytest.mark.parametrize("name", ["PCMU", "PCMA", "G722"])
@pytest.mark.parametrize("freq", [440.0, 1000.0, 3000.0])
def test_round_trip_keeps_the_tone(name: str, freq: float) -> None:
    codec = get_codec(name)
    rate = codec.sample_rate
    frame = codec.samples_per_frame()
    x = tone(freq, rate // 2, rate, amp=10000)
    enc, dec = codec.new_encoder(), codec.new_decoder()
    out = []
    for i in range(0, len(x), frame):
        payload = enc.encode(x[i : i + frame])
        assert len(payload) == 160  # 64 kbit/s, 20 ms
        pcm = dec.decode(payload)
        assert pcm.dtype == np.int16 and len(pcm) == frame
        out.append(pcm)
    y = np.concatenate(out)[rate // 20 :]  # skip the codec's start-up
    assert peak_frequency(y, rate) == pytest.approx(freq, abs=3)
    assert band_power(y, freq, rate) > 0.9
    assert amplitude_at(y, freq, rate) == pytest.approx(10000, rel=0.1)


def test_g711_silence_and_extremes() -> None:
    for name in ("PCMU", "PCMA"):
        codec = get_codec(name)
        pcm = np.array([0, 32767, -32768, 1, -1], dtype=np.int16)
        back = codec.new_decoder().decode(codec.new_encoder().encode(pcm))
        assert abs(int(back[0])) <= 8
        assert back[1] > 30000 and back[2] < -30000
