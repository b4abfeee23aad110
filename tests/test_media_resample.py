from __future__ import annotations

import numpy as np
import pytest
from test_media_signals import amplitude_at, max_jump, peak_frequency, tone

from media.resample import Resampler

RATIOS = [
    (8000, 16000),
    (16000, 8000),
    (16000, 48000),
    (48000, 16000),
    (8000, 48000),
    (48000, 8000),
]


def _stream(r: Resampler, x: np.ndarray, frame: int) -> np.ndarray:
    return np.concatenate([r.process(x[i : i + frame]) for i in range(0, len(x), frame)])


@pytest.mark.parametrize(("src", "dst"), RATIOS)
@pytest.mark.parametrize("freq", [300.0, 1000.0, 3000.0])
def test_keeps_frequency_and_level(src: int, dst: int, freq: float) -> None:
    r = Resampler(src, dst)
    x = tone(freq, src // 2, src, amp=8000)
    y = _stream(r, x, src // 50)
    assert len(y) == len(x) * dst // src
    y = y[dst // 50 :]
    assert peak_frequency(y, dst) == pytest.approx(freq, abs=3)
    assert amplitude_at(y, freq, dst) == pytest.approx(8000, rel=0.1)


@pytest.mark.parametrize(("src", "dst"), RATIOS)
def test_frames_join_without_clicks(src: int, dst: int) -> None:
    r = Resampler(src, dst)
    x = tone(1000, src // 2, src, amp=8000)
    y = _stream(r, x, src // 50)[dst // 50 :]
    # a 1 kHz sine moves at most A * 2 pi f / rate per sample
    assert max_jump(y) <= 8000 * 2 * np.pi * 1000 / dst * 1.1 + 2


def test_downsampling_rejects_what_cannot_be_represented() -> None:
    r = Resampler(16000, 8000)
    x = tone(6000, 8000, 16000, amp=8000)  # above the 4 kHz Nyquist of 8 kHz
    y = _stream(r, x, 320)[400:]
    assert np.abs(y).max() < 80  # > 40 dB down


def test_identity_and_bad_ratio() -> None:
    r = Resampler(16000, 16000)
    x = tone(1000, 320, 16000)
    assert r.process(x) is x
    with pytest.raises(ValueError):
        Resampler(16000, 44100)


def test_full_scale_input_stays_in_int16() -> None:
    r = Resampler(8000, 16000)
    square = np.where(np.arange(1600) % 40 < 20, 32767, -32768).astype(np.int16)
    y = _stream(r, square, 160)
    assert y.dtype == np.int16
    assert y.max() == 32767 and y.min() == -32768  # clipped, not wrapped around


@pytest.mark.parametrize(("src", "dst"), [(8000, 16000), (16000, 8000)])
def test_row_resampler_is_one_resampler_per_row(src: int, dst: int) -> None:
    """A room resamples its narrowband legs in one batch: row i is exactly what a
    Resampler of stream i gives (same taps, own history), and a reset row starts afresh."""
    from media.resample import RowResampler

    rng = np.random.default_rng(3)
    frame = src // 50
    rows = RowResampler(src, dst, frame, rows=2)
    rows.grow(5)
    singles = [Resampler(src, dst) for _ in range(5)]
    for step in range(6):
        if step == 3:
            rows.reset(1)
            singles[1] = Resampler(src, dst)
        x = (rng.standard_normal((5, frame)) * 4000).astype(np.int16)
        y = np.clip(rows.process(x), -32768, 32767).astype(np.int16)
        assert y.shape == (5, frame * dst // src)
        for i, single in enumerate(singles):
            assert np.abs(y[i].astype(int) - single.process(x[i]).astype(int)).max() <= 1
    with pytest.raises(ValueError):
        RowResampler(16000, 16000, 320)
