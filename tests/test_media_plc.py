from __future__ import annotations

import numpy as np
import pytest
from test_media_signals import max_jump, tone

from gateway.media import AudioLeg, LegConfig
from media.plc import Concealer

AMP = 8000.0


def _lossy_call(codec: str, pt: int, freq: float, loss: float, seed: int) -> tuple[np.ndarray, int]:
    """A tone sent by one leg and received by another over a link that drops packets."""
    rng = np.random.default_rng(seed)
    sender = AudioLeg(LegConfig(codec=codec, payload_type=pt, remote_addr=("192.0.2.1", 4000)))
    receiver = AudioLeg(LegConfig(codec=codec, payload_type=pt))
    frames = 400
    x = tone(freq, 320 * frames, 16000, amp=AMP)
    out, lost = [], 0
    for i in range(frames):
        now = i * 0.02
        for data, _ in sender.push_frame(x[i * 320 : (i + 1) * 320], now):
            if rng.random() < loss:
                lost += 1
            else:
                receiver.on_rtp(data, ("192.0.2.1", 4000), now)
        out.append(receiver.pull_frame(now))
    assert receiver.stats().concealed_frames == lost
    return np.concatenate(out)[320 * 5 :], lost  # skip the playout delay


@pytest.mark.parametrize(("codec", "pt", "jump_factor"), [("PCMU", 0, 1.5), ("G722", 9, 2.0)])
@pytest.mark.parametrize("seed", [0, 1])
def test_five_percent_loss_keeps_the_tone_without_gaps_or_clicks(
    codec: str, pt: int, jump_factor: float, seed: int
) -> None:
    y, lost = _lossy_call(codec, pt, 1000.0, 0.05, seed)
    assert lost >= 10
    tone_power = AMP**2 / 2
    window_power = (y.reshape(-1, 320).astype(np.float64) ** 2).mean(axis=1)
    assert window_power.min() > 0.25 * tone_power  # no silent 20 ms anywhere
    natural = AMP * 2 * np.pi * 1000 / 16000  # steepest step of the clean tone
    assert max_jump(y) < jump_factor * natural


def test_long_loss_fades_to_silence_and_resume_fades_in() -> None:
    rate = 8000
    plc = Concealer(rate)
    x = tone(500, 160 * 20, rate, amp=AMP)
    for i in range(5):
        plc.good(x[i * 160 : (i + 1) * 160])
    concealed = np.concatenate([plc.conceal(160) for _ in range(5)])  # 100 ms gap
    assert np.abs(concealed[:80]).max() > 0.9 * AMP  # full level at first
    assert not concealed[-160:].any()  # silent by the end (60 ms budget)
    env = np.abs(concealed[: 60 * 8]).reshape(-1, 16).max(axis=1)
    assert np.all(np.diff(env[10:]) <= 60)  # monotonic fade, no step up
    resumed = plc.good(x[5 * 160 : 6 * 160])
    assert abs(int(resumed[0])) < 0.1 * AMP  # faded in from silence, not a step
    assert max_jump(np.concatenate((concealed, resumed))) < 1.2 * AMP * 2 * np.pi * 500 / rate


def test_nothing_received_yet_is_plain_silence() -> None:
    plc = Concealer(16000)
    assert not plc.conceal(320).any()
    assert plc.concealed_frames == 0
