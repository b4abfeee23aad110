"""Cheap streaming resampling between 8, 16 and 48 kHz (integer ratios).

A polyphase windowed-sinc FIR done as one small matrix product per call: the input buffer
(history + new samples) is seen through a fixed sliding-window view, so upsampling by ``L``
is ``windows(n, K) @ taps(K, L)`` (all phases at once, interleaved by the reshape) and
downsampling by ``M`` is ``windows(n / M, T) @ taps(T)`` with a window stride of ``M``.  Filter state (the last input samples) is carried across calls,
so a stream of 20 ms frames comes out continuous.  All the work is numpy; no Python per
sample.
"""

from __future__ import annotations

from functools import cache
from math import gcd

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import as_strided

Pcm = npt.NDArray[np.int16]
Floats = npt.NDArray[np.float32]

TAPS_PER_PHASE = 24


def lowpass(num_taps: int, cutoff: float, beta: float = 7.0) -> Floats:
    """Kaiser-windowed sinc low-pass; ``cutoff`` in cycles per sample (0..0.5), unit DC gain."""
    n = np.arange(num_taps) - (num_taps - 1) / 2
    h = 2 * cutoff * np.sinc(2 * cutoff * n) * np.kaiser(num_taps, beta)
    h /= h.sum()
    return h.astype(np.float32)


@cache
def _taps(up: int, down: int, taps_per_phase: int) -> Floats:
    """The filter of an ``up``/``down`` resampler, designed once per ratio and shared by every
    resampler of that ratio (read-only): two per call leg, so not redone at each call setup."""
    factor = max(up, down)
    num_taps = taps_per_phase * factor
    # cut a little below the lower Nyquist so the transition band does not alias much
    h = lowpass(num_taps, 0.5 / factor * 0.96)
    if up > 1:
        # phase p of the output is the input correlated with the reversed phase-p taps;
        # all phases at once: (n, taps_per_phase) sliding windows @ (taps_per_phase, up)
        phases = [h[p::up][::-1] * up for p in range(up)]
        taps = np.ascontiguousarray(np.stack(phases, axis=1))
    else:
        taps = np.ascontiguousarray(h[::-1])  # (num_taps,)
    taps.flags.writeable = False
    return taps


def _ratio(in_rate: int, out_rate: int, taps_per_phase: int) -> tuple[int, int, int]:
    """(up, down, history length) of an integer-ratio resampler; ValueError otherwise."""
    g = gcd(in_rate, out_rate)
    up, down = out_rate // g, in_rate // g
    if up != 1 and down != 1:
        raise ValueError(f"unsupported ratio {in_rate} -> {out_rate}")
    history = taps_per_phase - 1 if up > 1 else taps_per_phase * max(up, down) - 1
    return up, down, history


class Resampler:
    """Streaming int16 resampler for ``in_rate -> out_rate`` where one divides the other.

    ``process(x)`` accepts any length (a multiple of ``M`` when downsampling by ``M``) and
    returns ``len(x) * out_rate // in_rate`` samples.  Delay: about ``TAPS_PER_PHASE / 2``
    samples at the lower rate (1.5 ms at 8 kHz); about -0.5 dB at 3.4 kHz
    when the lower rate is 8 kHz, better than -70 dB stop band.
    """

    def __init__(self, in_rate: int, out_rate: int, taps_per_phase: int = TAPS_PER_PHASE) -> None:
        self.in_rate = in_rate
        self.out_rate = out_rate
        self.up, self.down, self._hist_len = _ratio(in_rate, out_rate, taps_per_phase)
        self._identity = self.up == self.down == 1
        self._taps = _taps(self.up, self.down, taps_per_phase)
        self._buf: Floats = np.zeros(self._hist_len, dtype=np.float32)
        self._windows: Floats = self._buf[:0]
        self._n = -1

    def reset(self) -> None:
        """Forget the filter history (the window view stays valid: same buffer)."""
        self._buf[:] = 0.0

    def _prepare(self, n: int) -> None:
        """(Re)build the input buffer and its sliding-window view for ``n``-sample inputs."""
        h = self._hist_len
        buf = np.zeros(h + n, dtype=np.float32)
        buf[:h] = self._buf[len(self._buf) - h :]
        self._buf = buf
        item = buf.itemsize
        if self.up > 1:
            shape, strides = (n, h + 1), (item, item)
        else:
            shape, strides = (n // self.down, h + 1), (item * self.down, item)
        # a view into buf: refilling buf refreshes the windows with no Python-level work
        self._windows = as_strided(buf, shape=shape, strides=strides, writeable=False)
        self._n = n

    def process(self, x: Pcm) -> Pcm:
        if self._identity:
            return x
        n = len(x)
        if n != self._n:
            if n % self.down:
                raise ValueError(f"input length {n} is not a multiple of {self.down}")
            self._prepare(n)
        buf = self._buf
        h = self._hist_len
        buf[:h] = buf[n:]
        buf[h:] = x
        y = self._windows.dot(self._taps)
        np.maximum(y, -32768.0, out=y)
        np.minimum(y, 32767.0, out=y)
        return y.astype(np.int16).ravel()


class RowResampler:
    """Many streams of one ratio at once, one fixed-size frame per stream per call.

    Row ``i`` of :meth:`process` is stream ``i``'s next frame, filtered with its own history,
    exactly as a :class:`Resampler` of that stream would (same taps); all rows are one
    strided matrix product, so a room resamples its legs with a few numpy calls per tick
    instead of a few per leg. Output is float32 and not clipped (the caller mixes or clips).
    :meth:`reset` forgets one row's history (a new stream in that row); :meth:`grow` adds
    rows.
    """

    def __init__(
        self,
        in_rate: int,
        out_rate: int,
        frame: int,
        rows: int = 8,
        taps_per_phase: int = TAPS_PER_PHASE,
    ) -> None:
        self.up, self.down, self._hist_len = _ratio(in_rate, out_rate, taps_per_phase)
        if self.up == self.down:
            raise ValueError(f"unsupported ratio {in_rate} -> {out_rate}")
        if frame % self.down:
            raise ValueError(f"frame {frame} is not a multiple of {self.down}")
        self.frame = frame
        self.out_frame = frame * self.up // self.down
        self._taps = _taps(self.up, self.down, taps_per_phase)
        self._buf: Floats = np.zeros((0, self._hist_len + frame), dtype=np.float32)
        self.grow(rows)

    @property
    def rows(self) -> int:
        return len(self._buf)

    def grow(self, rows: int) -> None:
        if rows <= len(self._buf):
            return
        buf = np.zeros((rows, self._hist_len + self.frame), dtype=np.float32)
        buf[: len(self._buf)] = self._buf
        self._buf = buf

    def reset(self, row: int) -> None:
        self._buf[row] = 0.0

    def process(self, x: npt.NDArray[np.float32] | Pcm) -> Floats:
        """``x``: (n, frame) with n <= rows (rows 0..n-1); returns (n, out_frame)."""
        n = len(x)
        buf = self._buf
        h = self._hist_len
        if h:
            buf[:n, :h] = buf[:n, self.frame :]
        buf[:n, h:] = x
        item = buf.itemsize
        row = buf.strides[0]
        if self.up > 1:
            windows = as_strided(
                buf, shape=(n, self.frame, h + 1), strides=(row, item, item), writeable=False
            )
            return np.matmul(windows, self._taps).reshape(n, self.out_frame)
        windows = as_strided(
            buf,
            shape=(n, self.out_frame, h + 1),
            strides=(row, item * self.down, item),
            writeable=False,
        )
        return np.matmul(windows, self._taps)
