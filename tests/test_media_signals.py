"""Signal helpers shared by the media and mixer tests (imported as ``test_media_signals``)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def tone(
    freq: float, n: int, rate: int, amp: float = 8000.0, phase: float = 0.0
) -> npt.NDArray[np.int16]:
    t = np.arange(n) / rate
    return (amp * np.sin(2 * np.pi * freq * t + phase)).astype(np.int16)


def band_power(x: npt.NDArray[np.generic], freq: float, rate: int, width: float = 20.0) -> float:
    """Fraction of the signal's power within ``width`` Hz of ``freq``."""
    xf = np.asarray(x, dtype=np.float64)
    spec = np.abs(np.fft.rfft(xf * np.hanning(len(xf)))) ** 2
    freqs = np.fft.rfftfreq(len(xf), 1 / rate)
    total = spec.sum()
    if total == 0:
        return 0.0
    return float(spec[np.abs(freqs - freq) <= width].sum() / total)


def amplitude_at(x: npt.NDArray[np.generic], freq: float, rate: int) -> float:
    """Amplitude of the ``freq`` component (single-bin DFT over the whole signal)."""
    xf = np.asarray(x, dtype=np.float64)
    t = np.arange(len(xf)) / rate
    c = np.dot(xf, np.exp(-2j * np.pi * freq * t))
    return float(2 * abs(c) / len(xf))


def peak_frequency(x: npt.NDArray[np.generic], rate: int) -> float:
    xf = np.asarray(x, dtype=np.float64)
    spec = np.abs(np.fft.rfft(xf * np.hanning(len(xf))))
    return float(np.fft.rfftfreq(len(xf), 1 / rate)[int(np.argmax(spec))])


def max_jump(x: npt.NDArray[np.generic]) -> int:
    return int(np.abs(np.diff(np.asarray(x, dtype=np.int32))).max())


# -- the helpers themselves ------------------------------------------------------------------


def test_helpers_find_a_tone() -> None:
    x = tone(1000, 1600, 16000)
    assert peak_frequency(x, 16000) == 1000
    assert band_power(x, 1000, 16000) > 0.95
    assert abs(amplitude_at(x, 1000, 16000) - 8000) < 50
    assert amplitude_at(x, 1500, 16000) < 50
    assert max_jump(x) < 8000 * 2 * np.pi * 1000 / 16000 + 2
