from __future__ import annotations

from gateway.media.jitter import JitterBuffer


def _payload(seq: int) -> bytes:
    return seq.to_bytes(2, "big")


def _drain(jb: JitterBuffer, n: int) -> list[int | None]:
    out: list[int | None] = []
    for _ in range(n):
        p = jb.pop()
        out.append(None if p is None else int.from_bytes(p, "big"))
    return out


def test_waits_for_playout_delay_then_plays_in_order() -> None:
    jb = JitterBuffer(depth=3)
    assert jb.pop() is None
    jb.put(10, _payload(10))
    jb.put(11, _payload(11))
    assert jb.pop() is None and not jb.playing
    jb.put(12, _payload(12))
    assert _drain(jb, 3) == [10, 11, 12]
    assert jb.stats.played == 3


def test_reordering_within_the_delay_is_repaired() -> None:
    jb = JitterBuffer(depth=3)
    for seq in (1, 3, 2, 4, 6, 5):
        assert jb.put(seq, _payload(seq))
    assert _drain(jb, 6) == [1, 2, 3, 4, 5, 6]


def test_duplicates_are_dropped() -> None:
    jb = JitterBuffer(depth=2)
    assert jb.put(1, _payload(1))
    assert not jb.put(1, _payload(1))
    jb.put(2, _payload(2))
    assert _drain(jb, 1) == [1]
    assert not jb.put(1, _payload(1))  # already played: late, not a duplicate slot
    assert jb.stats.duplicates == 1 and jb.stats.late == 1


def test_loss_yields_none_and_playout_continues() -> None:
    jb = JitterBuffer(depth=2)
    for seq in (1, 2, 4, 5):
        jb.put(seq, _payload(seq))
    assert _drain(jb, 5) == [1, 2, None, 4, 5]
    assert jb.stats.missing == 1


def test_late_packet_is_dropped() -> None:
    jb = JitterBuffer(depth=2)
    for seq in (1, 2, 4):
        jb.put(seq, _payload(seq))
    assert _drain(jb, 3) == [1, 2, None]
    assert not jb.put(3, _payload(3))
    assert jb.stats.late == 1
    assert _drain(jb, 1) == [4]


def test_sequence_wrap_around() -> None:
    jb = JitterBuffer(depth=3)
    seqs = [65533, 65534, 65535, 0, 1, 2, 3]
    order = [65534, 65533, 65535, 1, 0, 2, 3]
    for seq in order:
        assert jb.put(seq, _payload(seq))
    assert _drain(jb, 7) == seqs


def test_big_jump_resets_and_flags_discontinuity() -> None:
    jb = JitterBuffer(depth=2)
    for seq in (100, 101, 102):
        jb.put(seq, _payload(seq))
    assert _drain(jb, 2) == [100, 101]
    for seq in (30000, 30001):
        jb.put(seq, _payload(seq))
    assert jb.stats.resets == 1
    assert _drain(jb, 1) == [30000]
    assert jb.discontinuity
    assert _drain(jb, 1) == [30001]
    assert not jb.discontinuity


def test_underrun_rebuffers_before_playing_again() -> None:
    jb = JitterBuffer(depth=3, underrun_reset=5)
    for seq in range(3):
        jb.put(seq, _payload(seq))
    assert _drain(jb, 3) == [0, 1, 2]
    assert _drain(jb, 5) == [None] * 5  # the peer went quiet
    assert not jb.playing
    jb.put(3, _payload(3))  # resumes where it left off
    assert jb.pop() is None  # waits for the playout delay again
    jb.put(4, _payload(4))
    jb.put(5, _payload(5))
    assert _drain(jb, 3) == [3, 4, 5]


def test_growing_backlog_is_trimmed_to_depth() -> None:
    jb = JitterBuffer(depth=2, max_depth=4)
    for seq in range(2):
        jb.put(seq, _payload(seq))
    assert _drain(jb, 1) == [0]
    for seq in range(2, 10):  # a burst: far more than max_depth
        jb.put(seq, _payload(seq))
    assert jb.stats.skipped > 0
    played = _drain(jb, 2)
    assert played == [7, 8]  # 1..6 were skipped as the burst arrived
    assert jb.stats.skipped == 6
