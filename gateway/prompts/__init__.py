"""Spoken prompts played to calls, as 20 ms frames of 16 kHz PCM.

The WAV files beside this module were spoken by espeak-ng (en-us) and converted with sox to
16 kHz mono 16-bit; pydub loads them (any rate or width is converted on load).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from pathlib import Path

import numpy as np
import numpy.typing as npt
from pydub import AudioSegment

__all__ = ["PromptPlayer", "frames", "PROMPTS"]

FRAME = 320  # 20 ms at 16 kHz
HERE = Path(__file__).resolve().parent
PROMPTS = ("removed", "ended", "waiting")

Pcm = npt.NDArray[np.int16]


@cache
def frames(name: str) -> tuple[Pcm, ...]:
    """The prompt ``name`` as 20 ms frames (the last one padded with silence)."""
    if name not in PROMPTS:
        raise KeyError(name)
    audio = AudioSegment.from_wav(HERE / f"{name}.wav")
    audio = audio.set_channels(1).set_frame_rate(16000).set_sample_width(2)
    pcm = np.frombuffer(audio.raw_data, dtype=np.int16)
    pcm = np.concatenate([pcm, np.zeros(-len(pcm) % FRAME, dtype=np.int16)])
    return tuple(pcm.reshape(-1, FRAME))


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
