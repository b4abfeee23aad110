"""Make test tones and find them in recordings.

Tone detection compares the power in a narrow band around the tone (Welch-averaged FFT,
robust to small frequency offsets from resampling) with

* the total power of the recording (``ratio``: the share of the signal that is the tone), and
* the median power of equally wide bands across the speech band (``prominence``: how far
  the tone stands out of codec noise; other tones in a mix do not move a median).

Pick test tones that are not harmonics of each other and lie well apart, e.g. 440, 700 and
1100 Hz; all of them survive G.711 (8 kHz) and G.722 (16 kHz).
"""

from __future__ import annotations

import math
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

#: Tones that are pairwise far apart and not harmonics of each other.
TONES: tuple[float, ...] = (440.0, 700.0, 1100.0, 1500.0)

DEFAULT_MIN_RATIO = 0.08
DEFAULT_MIN_PROMINENCE = 30.0
#: below this RMS (about -60 dBFS) a recording counts as silence
MIN_TONE_RMS = 1e-3


# -- files ---------------------------------------------------------------------------
def make_tone(
    path: str | Path,
    freq_hz: float | Sequence[float],
    seconds: float,
    rate: int = 16000,
    amplitude: float = 0.5,
) -> Path:
    """Write a mono 16-bit PCM WAV of one sine (or the sum of several) to ``path``.

    ``amplitude`` is the peak of the sum (full scale = 1.0); the ends fade in/out over 10 ms.
    """
    freqs = [float(freq_hz)] if isinstance(freq_hz, int | float) else [float(f) for f in freq_hz]
    if not freqs:
        raise ValueError("need at least one frequency")
    n = int(round(seconds * rate))
    t = np.arange(n, dtype=np.float64) / rate
    sig = np.zeros(n, dtype=np.float64)
    for f in freqs:
        sig += np.sin(2.0 * np.pi * f * t)
    sig *= amplitude / len(freqs)
    fade = min(n // 2, int(0.01 * rate))
    if fade:
        ramp = np.linspace(0.0, 1.0, fade)
        sig[:fade] *= ramp
        sig[n - fade :] *= ramp[::-1]
    write_wav(path, rate, sig)
    return Path(path)


def make_silence(path: str | Path, seconds: float, rate: int = 16000) -> Path:
    write_wav(path, rate, np.zeros(int(round(seconds * rate))))
    return Path(path)


def write_wav(path: str | Path, rate: int, samples: npt.ArrayLike) -> None:
    """Write float samples in [-1, 1] as mono 16-bit PCM."""
    data = np.clip(np.asarray(samples, dtype=np.float64), -1.0, 1.0)
    pcm = np.round(data * 32767.0).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(rate))
        w.writeframes(pcm.tobytes())


def read_wav(path: str | Path) -> tuple[int, FloatArray]:
    """Read a PCM WAV (8/16/24/32 bit, any channel count) as mono float64 in [-1, 1].

    Several channels are averaged. A header whose data length was never finalised (a
    recorder that was killed) is tolerated as far as the ``wave`` module allows.
    """
    with wave.open(str(path), "rb") as w:
        rate = w.getframerate()
        channels = w.getnchannels()
        width = w.getsampwidth()
        raw = w.readframes(w.getnframes())
    if width == 1:
        data = (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0) / 128.0
    elif width == 2:
        data = np.frombuffer(raw, dtype="<i2").astype(np.float64) / 32768.0
    elif width == 3:
        b = np.frombuffer(raw[: len(raw) - len(raw) % 3], dtype=np.uint8).reshape(-1, 3)
        ints = (
            b[:, 0].astype(np.int32)
            | (b[:, 1].astype(np.int32) << 8)
            | (b[:, 2].astype(np.int32) << 16)
        )
        ints = np.where(ints >= 1 << 23, ints - (1 << 24), ints)
        data = ints.astype(np.float64) / float(1 << 23)
    elif width == 4:
        data = np.frombuffer(raw, dtype="<i4").astype(np.float64) / float(1 << 31)
    else:  # pragma: no cover
        raise ValueError(f"unsupported sample width {width}")
    if channels > 1:
        usable = len(data) - len(data) % channels
        data = data[:usable].reshape(-1, channels).mean(axis=1)
    return rate, data


def wav_duration(path: str | Path) -> float:
    with wave.open(str(path), "rb") as w:
        return w.getnframes() / float(w.getframerate())


# -- spectra -------------------------------------------------------------------------
def goertzel(samples: npt.ArrayLike, rate: int, freq: float) -> float:
    """Goertzel power of ``freq`` in a (Hann-windowed) block, normalised to mean square.

    A sine of amplitude A at exactly ``freq`` gives about A**2 / 2.
    """
    x = np.asarray(samples, dtype=np.float64)
    n = len(x)
    if n == 0:
        return 0.0
    w = np.hanning(n) if n > 2 else np.ones(n)
    xw = x * w
    coeff = 2.0 * math.cos(2.0 * math.pi * freq / rate)
    s1 = s2 = 0.0
    for v in xw.tolist():
        s0 = v + coeff * s1 - s2
        s2, s1 = s1, s0
    power = s1 * s1 + s2 * s2 - coeff * s1 * s2
    return float(2.0 * power / (w.sum() ** 2))


def _block_tone_power(x: FloatArray, rate: int, freq: float) -> float:
    """Vectorised single-bin DFT (same value as :func:`goertzel`)."""
    n = len(x)
    if n == 0:
        return 0.0
    w = np.hanning(n) if n > 2 else np.ones(n)
    ph = np.exp(-2j * np.pi * freq * np.arange(n) / rate)
    return float(2.0 * abs(np.dot(x * w, ph)) ** 2 / (w.sum() ** 2))


def power_spectrum(
    samples: npt.ArrayLike, rate: int, resolution_hz: float = 10.0
) -> tuple[FloatArray, FloatArray]:
    """Welch-averaged one-sided power spectrum ``(freqs, power)``; ``power.sum()`` ~ mean square."""
    x = np.asarray(samples, dtype=np.float64)
    x = x - x.mean() if len(x) else x
    nper = max(16, int(rate / resolution_hz))
    if len(x) < nper:
        x = np.pad(x, (0, nper - len(x)))
    step = nper // 2
    w = np.hanning(nper)
    starts = range(0, len(x) - nper + 1, step)
    segs = np.stack([x[s : s + nper] for s in starts])
    spec = np.abs(np.fft.rfft(segs * w, axis=1)) ** 2
    psd = spec.mean(axis=0) / (nper * np.sum(w * w))
    psd[1:-1] *= 2.0
    freqs = np.fft.rfftfreq(nper, 1.0 / rate).astype(np.float64)
    return freqs, psd.astype(np.float64)


def _band(freqs: FloatArray, psd: FloatArray, centre: float, half_width: float) -> float:
    sel = np.abs(freqs - centre) <= half_width
    return float(psd[sel].sum())


def tone_power(samples: npt.ArrayLike, rate: int, freq: float, half_width: float = 25.0) -> float:
    """Power (mean square) within ``freq +- half_width`` Hz. A sine of amplitude A gives A**2/2."""
    freqs, psd = power_spectrum(samples, rate)
    return _band(freqs, psd, freq, half_width)


def total_power(samples: npt.ArrayLike) -> float:
    x = np.asarray(samples, dtype=np.float64)
    if len(x) == 0:
        return 0.0
    return float(np.mean((x - x.mean()) ** 2))


@dataclass(frozen=True)
class ToneStats:
    freq: float
    tone_power: float
    total_power: float
    noise_floor: float
    duration: float

    @property
    def ratio(self) -> float:
        """Share of the (DC-free) signal power that is the tone."""
        return self.tone_power / self.total_power if self.total_power > 0 else 0.0

    @property
    def prominence(self) -> float:
        """Tone band power over the median power of equally wide bands (>= 1e9 if no noise)."""
        return (
            self.tone_power / self.noise_floor
            if self.noise_floor > 0
            else (1e9 if self.tone_power > 0 else 0.0)
        )

    @property
    def tone_rms(self) -> float:
        return math.sqrt(max(self.tone_power, 0.0))

    def __str__(self) -> str:
        return (
            f"{self.freq:g} Hz: ratio={self.ratio:.3f} prominence={self.prominence:.1f} "
            f"tone_rms={self.tone_rms:.4f} total_rms={math.sqrt(self.total_power):.4f} "
            f"duration={self.duration:.2f}s"
        )


def tone_stats(
    samples: npt.ArrayLike, rate: int, freq: float, half_width: float = 25.0
) -> ToneStats:
    x = np.asarray(samples, dtype=np.float64)
    freqs, psd = power_spectrum(x, rate)
    tp = _band(freqs, psd, freq, half_width)
    top = min(3400.0, rate / 2.0 - 2 * half_width)
    centres = np.arange(150.0, top, 2 * half_width + 1)
    bands = [_band(freqs, psd, c, half_width) for c in centres]
    floor = float(np.median(bands)) if bands else 0.0
    return ToneStats(freq, tp, total_power(x), floor, len(x) / float(rate))


def dominant_frequencies(
    samples: npt.ArrayLike,
    rate: int,
    count: int = 3,
    min_separation: float = 60.0,
    fmin: float = 60.0,
) -> list[tuple[float, float]]:
    """The ``count`` strongest spectral peaks as ``(frequency_hz, share_of_total_power)``."""
    x = np.asarray(samples, dtype=np.float64)
    tot = total_power(x)
    if tot <= 0:
        return []
    freqs, psd = power_spectrum(x, rate, resolution_hz=5.0)
    # integrate +-15 Hz so a peak's power is not split between bins
    k = max(1, int(round(15.0 / (freqs[1] - freqs[0]))))
    smooth = np.convolve(psd, np.ones(2 * k + 1), mode="same")
    smooth[freqs < fmin] = 0.0
    out: list[tuple[float, float]] = []
    order = np.argsort(smooth)[::-1]
    for i in order:
        f = float(freqs[i])
        if smooth[i] <= 0:
            break
        if any(abs(f - g) < min_separation for g, _ in out):
            continue
        near = np.abs(freqs - f) <= 15.0
        f = float(freqs[near][np.argmax(psd[near])])
        out.append((f, float(smooth[i] / tot)))
        if len(out) >= count:
            break
    return out


# -- decisions on files --------------------------------------------------------------
def _load(
    path: str | Path, skip_seconds: float, tail_seconds: float = 0.0
) -> tuple[int, FloatArray]:
    rate, x = read_wav(path)
    a = int(skip_seconds * rate)
    b = len(x) - int(tail_seconds * rate)
    return rate, x[a:b] if b > a else x[:0]


def file_tone_stats(path: str | Path, freq: float, skip_seconds: float = 1.0) -> ToneStats:
    rate, x = _load(path, skip_seconds)
    return tone_stats(x, rate, freq)


def contains_tone(
    path: str | Path,
    freq: float,
    skip_seconds: float = 1.0,
    min_ratio: float = DEFAULT_MIN_RATIO,
    min_prominence: float = DEFAULT_MIN_PROMINENCE,
    min_rms: float = MIN_TONE_RMS,
) -> bool:
    """Whether the recording (after ``skip_seconds``) carries a tone at ``freq``."""
    st = file_tone_stats(path, freq, skip_seconds)
    return st.ratio >= min_ratio and st.prominence >= min_prominence and st.tone_rms >= min_rms


def describe(path: str | Path, skip_seconds: float = 1.0, freqs: Sequence[float] = TONES) -> str:
    rate, x = _load(path, skip_seconds)
    lines = [f"{path}: rate={rate} duration={len(x) / rate:.2f}s (after skipping {skip_seconds}s)"]
    lines += [f"  {tone_stats(x, rate, f)}" for f in freqs]
    peaks = ", ".join(f"{f:.0f} Hz ({r:.2f})" for f, r in dominant_frequencies(x, rate))
    lines.append(f"  dominant: {peaks or 'none (silence)'}")
    return "\n".join(lines)


def assert_contains_tone(
    path: str | Path,
    freq: float,
    skip_seconds: float = 1.0,
    min_ratio: float = DEFAULT_MIN_RATIO,
    min_prominence: float = DEFAULT_MIN_PROMINENCE,
) -> ToneStats:
    st = file_tone_stats(path, freq, skip_seconds)
    if not (
        st.ratio >= min_ratio and st.prominence >= min_prominence and st.tone_rms >= MIN_TONE_RMS
    ):
        raise AssertionError(
            f"no {freq:g} Hz tone in recording\n{describe(path, skip_seconds, [freq, *TONES])}"
        )
    return st


def assert_lacks_tone(
    path: str | Path,
    freq: float,
    skip_seconds: float = 1.0,
    max_ratio: float = 0.02,
) -> ToneStats:
    """The recording has at most ``max_ratio`` of its power at ``freq`` (e.g. no echo of self)."""
    st = file_tone_stats(path, freq, skip_seconds)
    if st.ratio > max_ratio and st.tone_rms >= MIN_TONE_RMS:
        raise AssertionError(
            f"unexpected {freq:g} Hz tone in recording\n{describe(path, skip_seconds, [freq, *TONES])}"
        )
    return st


def tone_presence(
    path: str | Path,
    freq: float,
    window: float = 0.02,
    skip_seconds: float = 1.0,
    tail_seconds: float = 0.5,
    rel_threshold: float = 0.1,
) -> float:
    """Fraction of ``window``-long blocks in which the tone is present.

    A block counts if its single-bin power at ``freq`` reaches ``rel_threshold`` (-10 dB)
    of the 90th-percentile block power (the "tone on" level), so a steady tone gives ~1.0
    and each dropout, silence gap, hold or PLC-muted frame lowers it. ``tail_seconds`` at the end are ignored (hang-up).
    """
    rate, x = _load(path, skip_seconds, tail_seconds)
    n = int(window * rate)
    if n <= 0 or len(x) < n:
        return 0.0
    blocks = x[: len(x) - len(x) % n].reshape(-1, n)
    w = np.hanning(n)
    ph = np.exp(-2j * np.pi * freq * np.arange(n) / rate)
    powers = 2.0 * np.abs((blocks * w) @ ph) ** 2 / (w.sum() ** 2)
    ref = float(np.percentile(powers, 90))
    if ref <= (MIN_TONE_RMS**2) / 4:
        return 0.0
    return float(np.mean(powers >= rel_threshold * ref))


def has_silence_gaps(
    path: str | Path,
    freq: float,
    window: float = 0.02,
    skip_seconds: float = 1.0,
    tail_seconds: float = 0.5,
    min_presence: float = 0.97,
) -> bool:
    """True if the tone is missing from more than ``1 - min_presence`` of the windows."""
    return tone_presence(path, freq, window, skip_seconds, tail_seconds) < min_presence
