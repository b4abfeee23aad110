"""In-band DTMF detector (dtmf.inband): synthetic tones, the Q.24-style limits, and no
false digits from real speech (espeak-ng) and music (sox) made at test time."""

from __future__ import annotations

import ast
import shutil
import subprocess
import time
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from dtmf.events import DIGITS
from dtmf.inband import COLUMNS, KEYPAD, ROWS, InbandDetector
from media.codecs import get_codec
from media.resample import Resampler

Pcm = npt.NDArray[np.int16]
RATES = (16000, 8000)
LEVEL = 0.25 * 32768  # per tone: about -12 dBFS


def freqs(digit: str) -> tuple[float, float]:
    for r, keys in enumerate(KEYPAD):
        if digit in keys:
            return ROWS[r], COLUMNS[keys.index(digit)]
    raise KeyError(digit)


def silence(ms: float, rate: int) -> npt.NDArray[np.float64]:
    return np.zeros(round(rate * ms / 1000))


def pair(
    fr: float | None,
    fc: float | None,
    ms: float,
    rate: int,
    *,
    row_db: float = 0.0,
    col_db: float = 0.0,
    level: float = LEVEL,
    phase: float = 0.0,
) -> npt.NDArray[np.float64]:
    t = np.arange(round(rate * ms / 1000)) / rate
    x = np.zeros(len(t))
    if fr is not None:
        x += level * 10 ** (row_db / 20) * np.sin(2 * np.pi * fr * t + 0.4 + phase)
    if fc is not None:
        x += level * 10 ** (col_db / 20) * np.sin(2 * np.pi * fc * t + 1.3 + 2 * phase)
    return x


def key(digit: str, ms: float, rate: int, **kw: float) -> npt.NDArray[np.float64]:
    fr, fc = freqs(digit)
    return pair(fr, fc, ms, rate, **kw)


def pcm(*parts: npt.NDArray[np.float64]) -> Pcm:
    return np.clip(np.round(np.concatenate(parts)), -32768, 32767).astype(np.int16)


def detect(x: Pcm, rate: int = 16000, chunk: int | None = None) -> str:
    return "".join(d.digit for d in run(x, rate, chunk))


def run(x: Pcm, rate: int = 16000, chunk: int | None = None) -> list:  # type: ignore[type-arg]
    """Feed ``x`` in 20 ms frames (or ``chunk`` samples), then 200 ms of silence."""
    det = InbandDetector(rate)
    n = chunk or rate // 50
    x = np.concatenate((x, np.zeros(rate // 5, dtype=np.int16)))
    out = []
    for i in range(0, len(x), n):
        part = x[i : i + n]
        out.extend(det.feed(part, (i + len(part)) / rate))
    for d in out:
        assert d.method == "inband" and d.digit in DIGITS
    return out


# -- clean tones ---------------------------------------------------------------------------


@pytest.mark.parametrize("rate", RATES)
def test_every_digit_clean(rate: int) -> None:
    for i, digit in enumerate(DIGITS):
        x = pcm(silence(30, rate), key(digit, 80, rate, phase=0.7 * i), silence(50, rate))
        assert detect(x, rate) == digit, digit


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("level_db", [-3.0, -20.0, -35.0])
def test_levels_accepted(rate: int, level_db: float) -> None:
    level = 32768 * 10 ** (level_db / 20)
    x = pcm(silence(20, rate), key("5", 80, rate, level=level))
    assert detect(x, rate) == "5"


@pytest.mark.parametrize("rate", RATES)
def test_too_quiet_rejected(rate: int) -> None:
    level = 32768 * 10 ** (-46 / 20)  # below the -40 dBFS per tone minimum
    x = pcm(silence(20, rate), key("5", 200, rate, level=level))
    assert detect(x, rate) == ""


def test_digit_time_is_when_recognised() -> None:
    rate = 16000
    x = pcm(silence(100, rate), key("7", 300, rate), silence(100, rate))
    (d,) = run(x, rate)
    assert d.digit == "7" and d.duration_ms is None
    assert 0.100 + 0.025 <= d.at <= 0.100 + 0.045  # three 10 ms hits into the tone


@pytest.mark.parametrize("rate", RATES)
def test_long_press_is_one_digit(rate: int) -> None:
    x = pcm(silence(10, rate), key("9", 1500, rate), silence(10, rate))
    assert detect(x, rate) == "9"


@pytest.mark.parametrize("chunk", [1, 97, 160, 333, 1000, 4410])
def test_any_chunk_size(chunk: int) -> None:
    rate = 16000
    x = pcm(*[p for d in "159#" for p in (key(d, 70, rate), silence(70, rate))])
    out = run(x, rate, chunk)
    assert "".join(d.digit for d in out) == "159#"
    assert [d.at for d in out] == sorted(d.at for d in out)
    # the times do not depend on how the stream was cut
    ref = run(x, rate)
    assert [round(d.at, 6) for d in out] == [round(d.at, 6) for d in ref]


@pytest.mark.parametrize("rate", RATES)
def test_same_digit_twice(rate: int) -> None:
    for gap, expected in ((40, "33"), (60, "33"), (10, "3"), (20, "3")):
        for lead in (0, 3, 7, 12, 16):
            x = pcm(silence(lead, rate), key("3", 80, rate), silence(gap, rate), key("3", 80, rate))
            assert detect(x, rate) == expected, (gap, lead)


@pytest.mark.parametrize("rate", RATES)
def test_minimum_duration(rate: int) -> None:
    for lead in np.arange(0, 20, 1.25):  # every alignment against the 20 ms frames
        short = pcm(silence(float(lead), rate), key("8", 30, rate), silence(60, rate))
        assert detect(short, rate) == "", lead
        ok = pcm(silence(float(lead), rate), key("8", 50, rate), silence(60, rate))
        assert detect(ok, rate) == "8", lead


@pytest.mark.parametrize("rate", RATES)
def test_sequence(rate: int) -> None:
    digits = "1234567890*#"
    for lead in (0, 5, 13):
        parts = [silence(lead, rate)]
        for i, d in enumerate(digits):
            parts += [key(d, 60, rate, phase=i), silence(60, rate)]
        assert detect(pcm(*parts), rate) == digits, lead


def test_all_sixteen_back_to_back_without_gaps() -> None:
    rate = 16000
    x = pcm(*[key(d, 60, rate) for d in "14*7AB2580#DC369"])
    assert detect(x, rate) == "14*7AB2580#DC369"


# -- the checks ----------------------------------------------------------------------------


@pytest.mark.parametrize("rate", RATES)
def test_twist(rate: int) -> None:
    for digit in "1D50":
        # normal twist: the column weaker than the row (at most 8 dB)
        assert detect(pcm(key(digit, 100, rate, col_db=-6)), rate) == digit
        assert detect(pcm(key(digit, 100, rate, col_db=-10)), rate) == ""
        # reverse twist: the row weaker than the column (at most 4 dB)
        assert detect(pcm(key(digit, 100, rate, row_db=-3)), rate) == digit
        assert detect(pcm(key(digit, 100, rate, row_db=-6)), rate) == ""


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("shift", [0.01, -0.01, 0.015, -0.015])
def test_frequency_within_tolerance(rate: int, shift: float) -> None:
    for digit in DIGITS:
        fr, fc = freqs(digit)
        both = pcm(pair(fr * (1 + shift), fc * (1 + shift), 100, rate))
        assert detect(both, rate) == digit, (digit, shift)
        opposite = pcm(pair(fr * (1 + shift), fc * (1 - shift), 100, rate))
        assert detect(opposite, rate) == digit, (digit, shift)


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("shift", [0.05, -0.05, 0.035, -0.035])
def test_frequency_out_of_tolerance(rate: int, shift: float) -> None:
    for digit in DIGITS:
        fr, fc = freqs(digit)
        for x in (
            pair(fr * (1 + shift), fc, 100, rate),
            pair(fr, fc * (1 + shift), 100, rate),
            pair(fr * (1 + shift), fc * (1 + shift), 100, rate),
        ):
            assert detect(pcm(x), rate) == "", (digit, shift)


@pytest.mark.parametrize("rate", RATES)
def test_single_tone_rejected(rate: int) -> None:
    for f in ROWS + COLUMNS:
        assert detect(pcm(pair(f, None, 200, rate)), rate) == ""
        assert detect(pcm(pair(None, f, 200, rate, level=2 * LEVEL)), rate) == ""


def test_two_rows_or_two_columns_rejected() -> None:
    rate = 16000
    assert detect(pcm(pair(697, 852, 200, rate)), rate) == ""
    assert detect(pcm(pair(1209, 1477, 200, rate)), rate) == ""
    # a third tone of the row group, as strong as the row tone
    x = key("5", 200, rate) + pair(941, None, 200, rate)
    assert detect(pcm(x), rate) == ""


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("snr_db", [20.0, 15.0])
def test_tones_in_white_noise(rate: int, snr_db: float) -> None:
    rng = np.random.default_rng(int(snr_db) + rate)
    digits = "1234567890*#ABCD"
    parts = []
    for i, d in enumerate(digits):
        parts += [key(d, 70, rate, phase=i), silence(70, rate)]
    x = np.concatenate(parts)
    signal_power = 2 * (LEVEL**2 / 2)  # two tones
    noise = rng.normal(0, np.sqrt(signal_power / 10 ** (snr_db / 10)), len(x))
    assert detect(pcm(x + noise), rate) == digits


def test_noise_alone_gives_nothing() -> None:
    rng = np.random.default_rng(3)
    for sigma in (30.0, 300.0, 3000.0):
        assert detect(pcm(rng.normal(0, sigma, 16000 * 5)), 16000) == ""


def test_through_g711_and_the_leg_resampler() -> None:
    """8 kHz tones -> PCMU encode/decode -> 8 -> 16 kHz (as AudioLeg does) -> detector."""
    digits = "1234567890*#ABCD"
    for level_db in (-6.0, -30.0):
        level = 32768 * 10 ** (level_db / 20)
        parts = []
        for i, d in enumerate(digits):
            parts += [key(d, 60, 8000, level=level, phase=i), silence(60, 8000)]
        x8 = pcm(*parts)
        codec = get_codec("PCMU")
        enc, dec = codec.new_encoder(), codec.new_decoder()
        up = Resampler(8000, 16000)
        frames = [dec.decode(enc.encode(x8[i : i + 160])) for i in range(0, len(x8) - 159, 160)]
        x16 = np.concatenate([up.process(f) for f in frames])
        assert detect(x16, 16000) == digits, level_db
        assert detect(np.concatenate(frames), 8000) == digits, level_db


def test_reset_forgets_a_held_digit() -> None:
    rate = 16000
    det = InbandDetector(rate)
    x = pcm(key("6", 200, rate))
    got = [d.digit for i in range(0, 1600, 320) for d in det.feed(x[i : i + 320], i / rate)]
    assert got == ["6"]
    det.reset()
    got = [d.digit for i in range(1600, 3200, 320) for d in det.feed(x[i : i + 320], i / rate)]
    assert got == ["6"]  # a fresh detector sees a fresh press


def test_package_stays_pure() -> None:
    source = Path(__file__).resolve().parent.parent / "dtmf" / "inband.py"
    imported: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Import):
            imported |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert imported <= {"__future__", "math", "numpy", "dtmf"}, imported


# -- no false digits from speech and music --------------------------------------------------

ENGLISH = [
    "Welcome to the conference. Please enter your meeting number followed by the pound key.",
    "One two three four five six seven eight nine zero. Star. Hash. Pound.",
    "My phone number is five five five, one two three four, and my PIN is nine eight seven six.",
    "The quick brown fox jumps over the lazy dog while the band plays on the hill.",
    "Good morning everybody, let us start with the quarterly figures for the third quarter.",
    "Could you please repeat that? The line is breaking up, I can barely hear you.",
    "Seven, eleven, twenty one, one hundred and three, four thousand and twelve.",
    "She sells sea shells by the sea shore, and the shells she sells are surely sea shells.",
]
FRENCH = [
    "Bonjour à tous, bienvenue dans la conférence téléphonique de ce matin.",
    "Un deux trois quatre cinq six sept huit neuf zéro. Étoile. Dièse.",
    "Veuillez saisir votre code confidentiel suivi de la touche dièse, s'il vous plaît.",
    "Le numéro est le zéro un, quarante deux, dix sept, quatre vingt dix neuf.",
    "Il fait très beau aujourd'hui, nous irons nous promener au bord de la mer.",
]
# sox synth: plucked chords, a piano-like chord sequence, a sawtooth melody, organ-ish pads.
# (Not a dyad of notes sitting on a DTMF pair, e.g. F5 + F#6 = 698 + 1480 Hz: two such clean
# notes ARE a digit to any tone detector, the classic "talk-off" limit.)
MUSIC = [
    "synth 2 pluck C4 pluck E4 pluck G4 : synth 2 pluck A3 pluck C4 pluck E4 : "
    "synth 2 pluck F3 pluck A3 pluck C4 : synth 2 pluck G3 pluck B3 pluck D4",
    "synth 1.5 pluck C5 pluck E5 pluck G5 pluck C6 : synth 1.5 pluck F5 pluck A5 pluck C6 : "
    "synth 1.5 pluck G5 pluck B5 pluck D6 pluck F6 : synth 1.5 pluck F#5 pluck A#5 pluck C#6",
    "synth 3 pluck C3 pluck G3 pluck C4 pluck E4 pluck G4 : "
    "synth 3 pluck D3 pluck A3 pluck D4 pluck F4 pluck A4 : "
    "synth 3 pluck G2 pluck D3 pluck G3 pluck B3 pluck F4 : "
    "synth 3 pluck C3 pluck E3 pluck G3 pluck C4 pluck E4",
    "synth 0.4 sawtooth C4 : synth 0.4 sawtooth D4 : synth 0.4 sawtooth E4 : "
    "synth 0.4 sawtooth F4 : synth 0.4 sawtooth G4 : synth 0.4 sawtooth A4 : "
    "synth 0.4 sawtooth B4 : synth 0.4 sawtooth C5 : synth 0.4 sawtooth G4 : "
    "synth 0.8 sawtooth E4 : synth 0.4 sawtooth F5 : synth 0.4 sawtooth F#5 : "
    "synth 0.4 sawtooth A5 : synth 0.8 sawtooth C6",
    "synth 2.5 sine C4 sine E4 sine G4 triangle C5 : synth 2.5 sine A3 sine E4 triangle A4 : "
    "synth 2.5 sine D4 sine F4 triangle A4 : synth 2.5 sine G3 sine D4 triangle B4",
    "synth 2 square A4 pluck C5 : synth 2 square G4 pluck B4 : synth 2 trapezium F4 pluck A4 : "
    "synth 2 square E4 pluck G#4 : synth 1 pluck F4 pluck A4 pluck C5",
]


def need(tool: str) -> str:
    """The tool's path; it may be being installed right now, so wait a little."""
    for _ in range(30):
        path = shutil.which(tool)
        if path:
            return path
        time.sleep(2)
    pytest.skip(f"{tool} is not installed")


def read_wav(path: Path) -> tuple[Pcm, int]:
    with wave.open(str(path), "rb") as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1
        rate = w.getframerate()
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)
    return data, rate


def to_rate(sox: str, src: Path, rate: int) -> Pcm:
    dst = src.with_name(f"{src.stem}-{rate}.wav")
    subprocess.run(
        [sox, str(src), "-r", str(rate), "-c", "1", "-b", "16", str(dst)],
        check=True,
        capture_output=True,
    )
    data, got = read_wav(dst)
    assert got == rate
    return data


@pytest.fixture(scope="module")
def speech(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Pcm]:
    espeak = need("espeak-ng")
    sox = need("sox")
    tmp = tmp_path_factory.mktemp("speech")
    parts: dict[int, list[Pcm]] = {16000: [], 8000: []}
    for voice, texts in (("en-us", ENGLISH), ("fr", FRENCH), ("en-gb", ENGLISH[:4])):
        for i, text in enumerate(texts):
            raw = tmp / f"{voice}-{i}.wav"
            subprocess.run(
                [espeak, "-v", voice, "-s", "150", "-w", str(raw), text],
                check=True,
                capture_output=True,
            )
            for rate in parts:
                parts[rate].append(to_rate(sox, raw, rate))
    return {rate: np.concatenate(p) for rate, p in parts.items()}


@pytest.fixture(scope="module")
def music(tmp_path_factory: pytest.TempPathFactory) -> dict[int, Pcm]:
    sox = need("sox")
    tmp = tmp_path_factory.mktemp("music")
    parts: dict[int, list[Pcm]] = {16000: [], 8000: []}
    for i, spec in enumerate(MUSIC):
        raw = tmp / f"music-{i}.wav"
        cmd = [sox, "-n", "-r", "16000", "-c", "1", "-b", "16", str(raw), *spec.split()]
        subprocess.run([*cmd, "norm", "-3"], check=True, capture_output=True)
        parts[16000].append(read_wav(raw)[0])
        parts[8000].append(to_rate(sox, raw, 8000))
    return {rate: np.concatenate(p) for rate, p in parts.items()}


def loudness_variants(x: Pcm) -> list[Pcm]:
    """As recorded, and 12 dB quieter."""
    return [x, (x.astype(np.int32) // 4).astype(np.int16)]


@pytest.mark.parametrize("rate", RATES)
def test_speech_gives_no_digit(speech: dict[int, Pcm], rate: int) -> None:
    x = speech[rate]
    assert len(x) >= 30 * rate  # at least 30 s of speech
    for v in loudness_variants(x):
        assert detect(v, rate) == ""


@pytest.mark.parametrize("rate", RATES)
def test_music_gives_no_digit(music: dict[int, Pcm], rate: int) -> None:
    x = music[rate]
    assert len(x) >= 30 * rate  # at least 30 s of music
    for v in loudness_variants(x):
        assert detect(v, rate) == ""


def test_speech_through_g711(speech: dict[int, Pcm]) -> None:
    codec = get_codec("PCMU")
    enc, dec = codec.new_encoder(), codec.new_decoder()
    x8 = speech[8000][: len(speech[8000]) // 160 * 160]
    up = Resampler(8000, 16000)
    x16 = np.concatenate(
        [up.process(dec.decode(enc.encode(x8[i : i + 160]))) for i in range(0, len(x8), 160)]
    )
    assert detect(x16, 16000) == ""


def test_digits_over_speech_pauses_still_found(speech: dict[int, Pcm]) -> None:
    """Speech, then a key press, then speech: exactly the one digit."""
    rate = 16000
    s = speech[rate]
    x = pcm(
        s[: 3 * rate].astype(float),
        silence(40, rate),
        key("4", 80, rate),
        s[3 * rate : 6 * rate].astype(float),
    )
    assert detect(x, rate) == "4"
