"""In-band DTMF detection: key presses sent as tones inside the audio (Goertzel family).

Some phones and gateways do not send RFC 4733 events or SIP INFO but play the DTMF tones
into the call.  :class:`InbandDetector` finds them in the leg's decoded audio, the 20 ms
frames of 320 int16 samples at 16 kHz that the mixer pulls (8 kHz works as well), and
reports one :class:`~dtmf.events.Digit` (method ``"inband"``) per key press.  It is pure:
no clock (the caller passes ``now``, the time at the end of the samples fed), no I/O.

Analysis windows
    The tones are measured over **20 ms windows** (320 samples at 16 kHz, 160 at 8 kHz;
    the frequency resolution is 1 / 20 ms = 50 Hz whatever the rate, a little finer than
    the classic 8 kHz Goertzel block of N = 205, 25.6 ms) with a **10 ms hop**: one
    window is the fed frame itself, the other spans the last half of the previous frame
    and the first half of this one.  The window is rectangular: its main lobe (+-50 Hz)
    separates the closest DTMF pair (697 / 770 Hz, 73 Hz apart; the neighbour leaks in at
    about -13 dB), which a Hann window (+-100 Hz) would not.  The 10 ms hop gives the
    timing precision the duration rules need.

Per window, a tone pair is a *hit* for a digit when all the usual checks (ITU-T Q.24,
Asterisk ``dsp.c``, spandsp) pass:

* the strongest row tone (697, 770, 852, 941 Hz) and column tone (1209, 1336, 1477,
  1633 Hz) are each at least 8 dB above every other tone of their group;
* frequency: the peak, found on a fine grid of 9 DFT bins 1 % apart around the nominal
  frequency (+-4 %) and refined by parabolic interpolation of the log power, is within
  +-2.5 % of nominal (so +-1.5 % is accepted and +-3.5 % rejected);
* level: each tone at least -40 dBFS (a sine of peak amplitude 328; -30 dBm0 in G.711 is
  about -33 dBFS);
* twist: the column at most 8 dB weaker than the row (normal twist) and the row at most
  4 dB weaker than the column (reverse twist);
* energy ratio: the two tones carry at least 80 % of the window's energy, which is what
  keeps speech and music (many partials, harmonics, noise) from making digits.

Duration (10 ms steps): a digit is reported after **3 consecutive hits** of the same digit
(a hit needs the tone in >= 80 % of the 20 ms window, so tones shorter than 32 ms never make
three hits, 40 ms tones do for 80 % of the alignments against the frames, 45 ms and longer
always), at the end of the third hit window (``Digit.at``; ``duration_ms`` is None).  It
then stays pressed until **5 consecutive windows** without it (a silence of 40 ms or more
always ends it, a drop-out shorter than 28 ms never does) or until another digit makes 3
hits.  So a long tone is one digit, and the same key pressed twice with >= 40 ms of silence
between is two.

Cost (the detector runs on every leg every 20 ms): all spectral work is matrix-vector
products against precomputed cos/sin tables (built once per sample rate and shared by all
detectors), no Python loop over samples.  A 20 ms frame first costs one dot product, its
energy: quiet frames (less than a quarter of one minimum-level tone) stop there.  Then one
(16 x N) product against the 8 nominal frequencies and one dot of the result: frames where
those bins hold less than 25 % of the energy stop there too (speech, music, noise: nearly
every loud frame; a frame that takes part in a hit has >= 30 % even at +-1.5 %, with
full twist and 15 dB SNR).  Only frames that look like tone pairs get the full checks
(fine grids, the straddling window).  Measured by ``python bench/dtmf.py``: about 1.6 us
per frame on speech, 0.8 us on silence, against some 20 us for the leg itself in the mixer;
about 9 us per frame while a tone is held.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from dtmf.events import Digit

__all__ = ["COLUMNS", "KEYPAD", "ROWS", "InbandDetector"]

ROWS = (697.0, 770.0, 852.0, 941.0)
COLUMNS = (1209.0, 1336.0, 1477.0, 1633.0)
#: KEYPAD[row][column]
KEYPAD = ("123A", "456B", "789C", "*0#D")

WINDOW_S = 0.020  # analysis window (one 20 ms frame) ...
HOP_S = 0.010  # ... every 10 ms

MIN_LEVEL_DBFS = -40.0  # per tone: peak amplitude relative to full scale (32768)
RELATIVE_PEAK_DB = 8.0  # the chosen tone over every other tone of its group
NORMAL_TWIST_DB = 8.0  # column weaker than row by at most this
REVERSE_TWIST_DB = 4.0  # row weaker than column by at most this
ENERGY_RATIO = 0.8  # the two tones' share of the window's energy
FREQ_TOLERANCE = 0.025  # relative; accept +-1.5 %, reject +-3.5 %
PREFILTER_RATIO = 0.25  # nominal bins' share of the energy to look closer (needed: >= 0.3)
NOMINAL_RATIO = 0.35  # strongest row + column nominal bins' share (needed: >= 0.45)
GATE_FRACTION = 0.25  # frame energy, in minimum-level tones (a tone pair needs >= 0.6)
FINE_STEP = 0.01  # fine grid: relative spacing ...
FINE_HALF = 4  # ... and points on each side of nominal (+-4 %)
FINE_N = 2 * FINE_HALF + 1
HITS_TO_BEGIN = 3
MISSES_TO_END = 5

Samples = npt.NDArray[np.float32]
_FREQS = ROWS + COLUMNS


def _db(db: float) -> float:
    return float(10.0 ** (db / 10.0))


_TABLES: dict[int, tuple[Samples, list[Samples]]] = {}


def _tables(sample_rate: int) -> tuple[Samples, list[Samples]]:
    """The cos/sin tables for one sample rate, shared by all detectors (read-only).

    ``nominal``: (16, n), the cos rows of the 8 DTMF frequencies, then their sin rows;
    ``fine[i]``: (18, n), the same for 9 frequencies 1 % apart around frequency ``i``.
    Scaled by sqrt(2 / n), so that cos^2 + sin^2 of a bin is the energy (sum of squares)
    of a window-long sine at that frequency, directly comparable with the window's energy.
    """
    cached = _TABLES.get(sample_rate)
    if cached is not None:
        return cached
    n = round(sample_rate * WINDOW_S)
    k = np.arange(n, dtype=np.float64)
    scale = math.sqrt(2.0 / n)

    def table(freqs: list[float]) -> Samples:
        w = 2.0 * math.pi * np.asarray(freqs)[:, None] * k[None, :] / sample_rate
        t = (np.vstack((np.cos(w), np.sin(w))) * scale).astype(np.float32)
        t.flags.writeable = False
        return t

    offsets = [FINE_STEP * j for j in range(-FINE_HALF, FINE_HALF + 1)]
    nominal = table(list(_FREQS))
    fine = [table([f * (1.0 + o) for o in offsets]) for f in _FREQS]
    _TABLES[sample_rate] = (nominal, fine)
    return nominal, fine


class InbandDetector:
    """Finds DTMF key presses in a stream of PCM (any chunk sizes, 8 or 16 kHz typically)."""

    def __init__(self, sample_rate: int = 16000) -> None:
        if sample_rate < 4000 or sample_rate % 100:
            raise ValueError(f"unsupported sample rate {sample_rate}")
        self.sample_rate = sample_rate
        n = round(sample_rate * WINDOW_S)
        self._n = n
        self._half = n // 2
        self._half_s = self._half / sample_rate
        self._nominal, self._fine = _tables(sample_rate)
        amp = 32768.0 * 10.0 ** (MIN_LEVEL_DBFS / 20.0)
        self._min_power = amp * amp / 2.0 * n  # energy of a minimum-level tone in a window
        self._gate = GATE_FRACTION * self._min_power  # frame energy
        self._prefilter = PREFILTER_RATIO
        self._rel = _db(RELATIVE_PEAK_DB)
        self._normal_twist = _db(NORMAL_TWIST_DB)
        self._reverse_twist = _db(REVERSE_TWIST_DB)
        self.reset()

    def reset(self) -> None:
        """Forget everything: buffered samples, the previous frame, a digit being held."""
        self._rest: Samples | None = None  # fed samples not yet a whole frame
        self._prev: Samples = np.zeros(self._n, dtype=np.float32)
        self._prev_ok = False  # the previous frame passed the prefilter (then _prev is it)
        self._prev_hit: str | None = None  # ... and what its own window held
        self._active: str | None = None  # the digit being held (already reported)
        self._misses = 0  # windows in a row without the active digit
        self._cand: str | None = None  # the digit of the current run of hits ...
        self._hits = 0  # ... and its length

    # -- input -----------------------------------------------------------------------------

    def feed(
        self, pcm: npt.NDArray[np.integer] | npt.NDArray[np.floating], now: float
    ) -> list[Digit]:
        """Analyse ``pcm`` (int16 samples; ``now`` is the time at its end); new key presses."""
        n = self._n
        if self._rest is None and len(pcm) == n:  # the common case: one 20 ms frame
            x = pcm.astype(np.float32)
            e = x.dot(x)
            if e >= self._gate:  # else too quiet for any tone pair
                y = self._nominal.dot(x)
                if y.dot(y) >= self._prefilter * e:  # else the tone bins hold too little
                    return self._frame(x, y, float(e), now)
            # neither window ending in this frame holds a tone pair: two misses (and the
            # next frame's straddling window is a miss too: _prev is not needed)
            self._prev_ok = False
            if self._hits:
                self._cand = None
                self._hits = 0
            if self._active is not None:
                self._misses += 2
                if self._misses >= MISSES_TO_END:
                    self._active = None
            return []
        # any other length: whole frames through the path above, keep the rest
        x = np.ravel(pcm).astype(np.float32)
        if self._rest is not None:
            x = np.concatenate((self._rest, x))
            self._rest = None
        frames = len(x) // n
        left = len(x) - frames * n
        out: list[Digit] = []
        rate = self.sample_rate
        for j in range(frames):
            end = now - (left + (frames - 1 - j) * n) / rate
            out.extend(self.feed(x[j * n : (j + 1) * n], end))
        self._rest = x[frames * n :] if left else None
        return out

    # -- per frame -------------------------------------------------------------------------

    def _frame(self, x: Samples, y: Samples, e: float, end: float) -> list[Digit]:
        """A frame that may hold a tone pair (nominal bins ``y``, energy ``e``)."""
        # both windows ending in this frame: the frame itself and the one straddling
        hit = self._classify(x, y, e)
        if not self._prev_ok:
            early = None
        elif hit is not None and hit == self._prev_hit:
            early = hit  # the same clean pair on both sides: so in between
        elif hit is None and self._prev_hit is None and self._active is None:
            early = None  # a hit between two misses could neither start nor hold a digit
        else:
            h = self._half
            w = np.concatenate((self._prev[h:], x[:h]))
            early = self._classify(w, self._nominal.dot(w), float(w.dot(w)))
        self._prev = x
        self._prev_ok = True
        self._prev_hit = hit
        if hit is None and early is None and self._active is None:  # speech, music: 2 misses
            self._cand = None
            self._hits = 0
            return []
        out: list[Digit] = []
        self._window(early, end - self._half_s, out)
        self._window(hit, end, out)
        return out

    def _window(self, hit: str | None, at: float, out: list[Digit]) -> None:
        """Duration logic for one window's result (10 ms steps)."""
        if hit is None:
            self._cand = None
            self._hits = 0
        elif hit == self._cand:
            self._hits += 1
        else:
            self._cand = hit
            self._hits = 1
        if self._active is not None:
            if hit == self._active:
                self._misses = 0
            else:
                self._misses += 1
                if self._misses >= MISSES_TO_END:
                    self._active = None
        if hit is not None and hit != self._active and self._hits >= HITS_TO_BEGIN:
            self._active = hit
            self._misses = 0
            out.append(Digit(hit, "inband", at))

    # -- per window ------------------------------------------------------------------------

    def _classify(self, w: Samples, y: Samples, e: float) -> str | None:
        """The digit whose tone pair fills window ``w`` (nominal bins ``y``, energy ``e``)."""
        p = (y * y).tolist()
        rows = [p[0] + p[8], p[1] + p[9], p[2] + p[10], p[3] + p[11]]
        cols = [p[4] + p[12], p[5] + p[13], p[6] + p[14], p[7] + p[15]]
        top_row = max(rows)
        top_col = max(cols)
        if top_row + top_col < NOMINAL_RATIO * e:  # the nominal bins must hold much of it
            return None
        r = rows.index(top_row)
        c = cols.index(top_col)
        row = self._peak(r, w)
        if row is None:
            return None
        col = self._peak(4 + c, w)
        if col is None:
            return None
        pr, pc = row, col
        min_power = self._min_power
        if pr < min_power or pc < min_power:
            return None
        if pr > self._normal_twist * pc or pc > self._reverse_twist * pr:
            return None
        if pr + pc < ENERGY_RATIO * e:
            return None
        rel = self._rel
        for i in range(4):
            if (i != r and rel * rows[i] > pr) or (i != c and rel * cols[i] > pc):
                return None
        return KEYPAD[r][c]

    def _peak(self, index: int, w: Samples) -> float | None:
        """Peak power near tone ``index`` if its frequency is within tolerance, else None."""
        z = self._fine[index].dot(w)
        q = (z * z).tolist()
        pw = [a + b for a, b in zip(q[:FINE_N], q[FINE_N:], strict=True)]
        k = pw.index(max(pw))
        if k == 0 or k == FINE_N - 1:  # the peak is at or beyond the end of the grid
            return None
        tiny = 1e-12
        la = math.log(pw[k - 1] + tiny)
        lb = math.log(pw[k] + tiny)
        lc = math.log(pw[k + 1] + tiny)
        den = la - 2.0 * lb + lc
        d = 0.5 * (la - lc) / den if den < 0.0 else 0.0
        if abs((k - FINE_HALF + d) * FINE_STEP) > FREQ_TOLERANCE:
            return None
        return math.exp(lb - 0.25 * (la - lc) * d)
