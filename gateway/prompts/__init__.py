"""Spoken prompts played to calls, as 20 ms frames of 16 kHz PCM, in French and English.

The WAV files beside this module (``fr/<name>.wav``, ``en/<name>.wav``) were spoken by espeak-ng
and converted with sox to 16 kHz mono 16-bit by ``scripts/make-prompts.py``, which holds the
texts; pydub loads them (any rate or width is converted on load).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np
import numpy.typing as npt

from media.resample import Resampler

with warnings.catch_warnings():
    # pydub warns at import when ffmpeg is absent; WAV files need no ffmpeg
    warnings.filterwarnings("ignore", message="Couldn't find ffmpeg", category=RuntimeWarning)
    from pydub import AudioSegment

__all__ = ["LANGUAGES", "PROMPTS", "PromptPlayer", "frames"]

FRAME = 320  # 20 ms at 16 kHz
HERE = Path(__file__).resolve().parent
LANGUAGES = ("fr", "en")  # the first is the default
PROMPTS = (
    "welcome",
    "enter_pin",
    "enter_host_pin",
    "wrong_code",
    "wrong_pin",
    "room_locked",
    "not_open",
    "joining",
    "goodbye",
    "muted",
    "unmuted",
    "removed",
    "ended",
    "refused",
    "ask_unmute",
    "waiting",
)

Pcm = npt.NDArray[np.int16]


def frames(name: str, language: str = LANGUAGES[0], rate: int = 16000) -> tuple[Pcm, ...]:
    """The prompt ``name`` in ``language`` as 20 ms frames at ``rate`` (16 kHz, or 8 kHz
    for a leg of a narrowband room), the last one padded with silence.

    Raises KeyError for an unknown name or language. Loaded once, then cached.
    """
    if name not in PROMPTS:
        raise KeyError(name)
    if language not in LANGUAGES:
        raise KeyError(language)
    if rate not in (8000, 16000):
        raise ValueError(f"prompts come at 8 or 16 kHz, not {rate}")
    return _load(name, language, rate)


@cache
def _load(name: str, language: str, rate: int) -> tuple[Pcm, ...]:
    pcm = _load_16k(name, language)
    pcm = np.concatenate([pcm, np.zeros(-len(pcm) % FRAME, dtype=np.int16)])
    if rate != 16000:  # as many frames as at 16 kHz
        pcm = Resampler(16000, rate).process(pcm)
    return tuple(pcm.reshape(-1, rate // 50))


@cache
def _load_16k(name: str, language: str) -> Pcm:
    audio = AudioSegment.from_wav(HERE / language / f"{name}.wav")
    audio = audio.set_channels(1).set_frame_rate(16000).set_sample_width(2)
    return np.frombuffer(audio.raw_data, dtype=np.int16)


class PromptPlayer:
    """Plays frames into a sink, one per mixer-clock tick, then calls ``on_done`` once (or
    starts again, with ``repeat``, until it is taken off the clock).

    It is a tickable of :class:`~gateway.media.transport.MixerClock`, like a room mixer, so a
    prompt keeps the same 20 ms pace as the room audio and needs no task of its own.
    """

    def __init__(
        self,
        prompt: tuple[Pcm, ...],
        sink: Callable[[Pcm], None],
        on_done: Callable[[], None] = lambda: None,
        *,
        repeat: bool = False,
    ) -> None:
        self._frames = prompt
        self._sink = sink
        self._on_done = on_done
        self._repeat = repeat
        self._next = 0
        self.done = False

    def tick(self, now: float) -> None:
        if self.done:
            return
        if self._next == len(self._frames) and self._repeat:
            self._next = 0
        if self._next < len(self._frames):
            self._sink(self._frames[self._next])
            self._next += 1
            return
        self.done = True
        self._on_done()
