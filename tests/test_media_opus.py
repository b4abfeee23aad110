"""Opus over libopus at the mixer's rate: a tone survives the round trip, losses are
concealed, and bad packets are refused with an error instead of a crash."""

from __future__ import annotations

import numpy as np
import pytest

from media.opus import FRAME, OpusDecoder, OpusEncoder, OpusError, OpusSettings


def tone(freq: float, frames: int, rate: int = 16000) -> np.ndarray:
    t = np.arange(FRAME * frames) / rate
    return (8000 * np.sin(2 * np.pi * freq * t)).astype(np.int16)


def peak_hz(x: np.ndarray, rate: int = 16000) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spectrum) * rate / len(x))


@pytest.mark.parametrize("freq", [300.0, 1000.0, 3000.0, 6500.0])
def test_tone_survives_encode_and_decode(freq: float) -> None:
    encoder, decoder = OpusEncoder(), OpusDecoder()
    pcm = tone(freq, 50)
    out = np.concatenate([decoder.decode(encoder.encode(f)) for f in pcm.reshape(-1, FRAME)])
    assert out.shape == pcm.shape and out.dtype == np.int16
    assert abs(peak_hz(out[FRAME * 10 :]) - freq) < 20
    # wideband: even 6.5 kHz (beyond G.711's 3.4 kHz) comes through at level
    assert np.sqrt(np.mean(out[FRAME * 10 :].astype(float) ** 2)) > 8000 / np.sqrt(2) * 0.5


def test_lost_frames_are_concealed_and_fec_recovers() -> None:
    encoder, decoder = OpusEncoder(OpusSettings(fec=True, expected_loss_percent=20)), OpusDecoder()
    packets = [encoder.encode(f) for f in tone(440, 30).reshape(-1, FRAME)]
    for p in packets[:20]:
        decoder.decode(p)
    concealed = decoder.conceal()
    recovered = decoder.recover(packets[21])
    assert concealed.shape == (FRAME,) and recovered.shape == (FRAME,)
    assert np.abs(recovered).max() > 1000  # not silence: rebuilt from the next packet's FEC
    assert decoder.decode(b"").shape == (FRAME,)  # an empty payload is a loss


def test_bad_input_is_an_error_not_a_crash() -> None:
    decoder = OpusDecoder()
    with pytest.raises(OpusError):
        decoder.decode(b"\xff\xff\xff")
    with pytest.raises(ValueError):
        OpusEncoder().encode(np.zeros(100, dtype=np.int16))
    decoder.close()
    with pytest.raises(OpusError):
        decoder.decode(b"\x08")
    decoder.close()  # twice is fine
