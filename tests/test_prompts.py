"""gateway.prompts: the shipped French and English prompts, and the script that makes them."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from gateway import prompts

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "make-prompts.py"
PROMPT_DIR = ROOT / "gateway" / "prompts"
ALL = [(name, lang) for name in prompts.PROMPTS for lang in prompts.LANGUAGES]


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_prompts", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def pcm(name: str, language: str) -> np.ndarray:
    return np.concatenate(prompts.frames(name, language))


@pytest.mark.parametrize(("name", "language"), ALL)
def test_every_prompt_loads_with_sensible_length_and_level(name: str, language: str) -> None:
    frames = prompts.frames(name, language)
    assert frames
    assert all(f.shape == (prompts.FRAME,) and f.dtype == np.int16 for f in frames)
    seconds = len(frames) * 0.02
    assert 0.3 <= seconds <= 15, seconds
    samples = pcm(name, language).astype(np.float64) / 32768
    rms = float(np.sqrt((samples**2).mean()))
    assert rms > 0.02, rms  # speech, not silence
    assert np.abs(samples).max() < 0.99  # normalised below full scale, not clipped


@pytest.mark.parametrize(("name", "language"), ALL)
def test_every_prompt_loads_at_8_khz_for_narrowband_rooms(name: str, language: str) -> None:
    """A leg of a room mixed at 8 kHz hears prompts at 8 kHz: as many 20 ms frames as at
    16 kHz (whatever the file's length), 160 samples each, the same speech level."""
    wide = prompts.frames(name, language)
    narrow = prompts.frames(name, language, 8000)
    assert len(narrow) == len(wide)
    assert all(f.shape == (prompts.FRAME // 2,) and f.dtype == np.int16 for f in narrow)
    rms_wide = float(np.sqrt((np.concatenate(wide).astype(np.float64) ** 2).mean()))
    rms_narrow = float(np.sqrt((np.concatenate(narrow).astype(np.float64) ** 2).mean()))
    assert rms_narrow == pytest.approx(rms_wide, rel=0.2)
    with pytest.raises(ValueError):
        prompts.frames(name, language, 44100)


def test_frames_are_cached() -> None:
    assert prompts.frames("goodbye", "en") is prompts.frames("goodbye", "en")


def test_one_argument_means_the_default_language() -> None:
    assert prompts.LANGUAGES[0] == "fr"
    assert prompts.frames("waiting") is prompts.frames("waiting", "fr")


@pytest.mark.parametrize("name", prompts.PROMPTS)
def test_french_and_english_differ(name: str) -> None:
    fr, en = pcm(name, "fr"), pcm(name, "en")
    assert len(fr) != len(en) or not np.array_equal(fr, en)


@pytest.mark.parametrize(
    ("name", "language"), [("nope", "fr"), ("waiting", "de"), ("waiting", ""), ("", "en")]
)
def test_unknown_name_or_language_raises_key_error(name: str, language: str) -> None:
    with pytest.raises(KeyError):
        prompts.frames(name, language)


def test_unknown_name_with_default_language_raises_key_error() -> None:
    with pytest.raises(KeyError):
        prompts.frames("removed.wav")


def test_script_texts_match_the_shipped_files() -> None:
    script = load_script()
    assert set(script.TEXTS) == set(prompts.PROMPTS)
    assert set(script.VOICES) == set(prompts.LANGUAGES)
    for name, texts in script.TEXTS.items():
        assert set(texts) == set(prompts.LANGUAGES), name
        for language, text in texts.items():
            assert text.strip() and text == text.strip(), (name, language)
            assert (PROMPT_DIR / language / f"{name}.wav").is_file(), (name, language)
    shipped = {(p.parent.name, p.stem) for p in PROMPT_DIR.glob("*/*.wav")}
    assert shipped == {(lang, name) for name in script.TEXTS for lang in prompts.LANGUAGES}
    assert not list(PROMPT_DIR.glob("*.wav"))  # the old top-level English files are gone


def test_script_speaks_pin_as_a_word() -> None:
    script = load_script()
    assert script.spoken("Too many wrong PINs. PIN entry", "en") == "Too many wrong pins. pin entry"
    assert script.spoken("code confidentiel", "fr") == "code confidentiel"
