"""Packet loss concealment for decoded audio (pitch-period repetition with fade-out).

In the spirit of ITU-T G.711 Appendix I, simplified:

* every good frame is remembered (the last two, by reference: no copy on the hot path);
* on a loss, the pitch period of the recent history is estimated by normalised
  autocorrelation and the last period is repeated, phase-continuous, for as long as the
  loss lasts; the first ``hold_ms`` play at full level, then the level ramps linearly to
  silence over ``fade_ms`` (per sample, so there is no step);
* when audio resumes (or the jitter buffer reports a discontinuity) the first
  ``xfade_ms`` of the new frame are cross-faded with the continued concealment signal,
  so neither the start nor the end of a gap clicks.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

Pcm = npt.NDArray[np.int16]
Floats = npt.NDArray[np.float32]


class Concealer:
    def __init__(
        self,
        sample_rate: int,
        hold_ms: float = 10.0,
        fade_ms: float = 50.0,
        xfade_ms: float = 4.0,
        min_pitch_hz: float = 70.0,
        max_pitch_hz: float = 400.0,
    ) -> None:
        self.sample_rate = sample_rate
        self._hold = int(sample_rate * hold_ms / 1000)
        self._fade = max(1, int(sample_rate * fade_ms / 1000))
        self._xfade = max(1, int(sample_rate * xfade_ms / 1000))
        self._pmin = max(2, int(sample_rate / max_pitch_hz))
        self._pmax = int(sample_rate / min_pitch_hz)
        self._prev2: Pcm | None = None
        self._prev1: Pcm | None = None
        # concealment state
        self._concealing = False
        self._period: Floats = np.zeros(0, dtype=np.float32)
        self._phase = 0
        self._elapsed = 0  # samples concealed in this gap
        self.concealed_frames = 0

    @property
    def concealing(self) -> bool:
        return self._concealing

    def good(self, frame: Pcm, discontinuity: bool = False) -> Pcm:
        """Pass a decoded frame through; cross-fades it in after a gap or discontinuity."""
        if discontinuity and not self._concealing and self._prev1 is not None:
            self._start()
        if self._concealing:
            n = min(self._xfade, len(frame))
            tail = self._generate(n)
            ramp = (np.arange(1, n + 1, dtype=np.float32)) / (n + 1)
            out = frame.copy()
            mixed = tail * (1.0 - ramp) + frame[:n] * ramp
            out[:n] = np.clip(mixed, -32768, 32767).astype(np.int16)
            self._concealing = False
            frame = out
        self._prev2 = self._prev1
        self._prev1 = frame
        return frame

    def conceal(self, n: int) -> Pcm:
        """``n`` samples standing in for a lost packet."""
        if self._prev1 is None:  # nothing heard yet: plain silence
            return np.zeros(n, dtype=np.int16)
        self.concealed_frames += 1
        if not self._concealing:
            self._start()
        if self._elapsed >= self._hold + self._fade:
            self._elapsed += n
            return np.zeros(n, dtype=np.int16)
        return np.clip(self._generate(n), -32768, 32767).astype(np.int16)

    # -- internals -------------------------------------------------------------------------

    def _history(self) -> Floats:
        assert self._prev1 is not None
        if self._prev2 is None:
            return self._prev1.astype(np.float32)
        return np.concatenate((self._prev2, self._prev1)).astype(np.float32)

    def _start(self) -> None:
        hist = self._history()
        period = self._pitch(hist)
        self._period = hist[len(hist) - period :].copy()
        self._phase = 0
        self._elapsed = 0
        self._concealing = True

    def _pitch(self, hist: Floats) -> int:
        """Pitch period in samples (best normalised autocorrelation), or a fallback."""
        pmax = min(self._pmax, len(hist) // 2)
        pmin = min(self._pmin, pmax)
        win = min(len(hist) - pmax, max(pmax, self.sample_rate // 100))
        if win <= 0 or pmax <= pmin:
            return max(1, min(len(hist), pmax if pmax > 0 else len(hist)))
        ref = hist[len(hist) - win :]
        if not np.any(ref):
            return pmax
        lags = np.arange(pmin, pmax + 1)
        # candidate windows hist[-win-lag : -lag] for every lag, as rows
        starts = len(hist) - win - lags
        idx = starts[:, None] + np.arange(win)[None, :]
        cand = hist[idx]
        corr = cand @ ref
        energy = np.einsum("ij,ij->i", cand, cand) + 1e-3
        score = corr / np.sqrt(energy)
        return int(lags[int(np.argmax(score))])

    def _generate(self, n: int) -> Floats:
        period = self._period
        plen = len(period)
        idx = (self._phase + np.arange(n)) % plen
        out = period[idx]
        k = self._elapsed + np.arange(n, dtype=np.float32)
        gain = np.clip(1.0 - (k - self._hold) / self._fade, 0.0, 1.0).astype(np.float32)
        self._phase = int((self._phase + n) % plen)
        self._elapsed += n
        return (out * gain).astype(np.float32)
