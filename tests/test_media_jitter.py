from __future__ import annotations

from media.jitter import JitterBuffer


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


# -- bounded memory --------------------------------------------------------------------------


def test_buffer_is_bounded_when_nobody_pulls() -> None:
    # a waiting-room member: packets arrive, nobody pops
    jb = JitterBuffer(depth=3)
    for seq in range(100_000):
        jb.put(seq & 0xFFFF, _payload(seq & 0xFFFF))
        assert len(jb) <= jb.capacity
    assert jb.capacity <= 32  # a few hundred ms of 20 ms packets
    assert jb.stats.overflow > 0
    # when playout starts it starts near the newest packets, at the nominal delay
    played = _drain(jb, 3)
    assert played == [(100_000 - 3 + i) & 0xFFFF for i in range(3)]


def test_buffer_is_bounded_under_hostile_sequence_numbers() -> None:
    import random

    rng = random.Random(1)
    jb = JitterBuffer(depth=3)
    base = 0
    for i in range(50_000):
        base = (base + rng.randrange(-900, 900)) & 0xFFFF
        jb.put(base, b"x" * 160)
        if i % 7 == 0:
            jb.pop()
        assert len(jb) <= jb.capacity


# -- clock drift ------------------------------------------------------------------------------


def _simulate_drift(
    packet_interval: float, seconds: float = 120.0, depth: int = 3, jitter: float = 0.0
) -> tuple[JitterBuffer, int, int, list[int], int]:
    """Packets every ``packet_interval`` s, one pop every 20 ms (simulated clock).

    Returns the buffer, packets sent, pops, the pop indices of irregular frames (a pop
    that gave nothing while playing) and the largest buffer size seen."""
    import random

    rng = random.Random(7)
    jb = JitterBuffer(depth=depth)
    n_packets = int(seconds / packet_interval)
    arrivals = sorted(
        (k * packet_interval + (rng.uniform(0, jitter) if jitter else 0.0), k)
        for k in range(n_packets)
    )
    n_pops = int(seconds / 0.020)
    irregular: list[int] = []
    biggest = 0
    a = 0
    expect = 0  # next sequence number in order
    for j in range(n_pops):
        now = j * 0.020 + 0.0101
        while a < len(arrivals) and arrivals[a][0] <= now:
            seq = arrivals[a][1]
            jb.put(seq & 0xFFFF, _payload(seq & 0xFFFF))
            a += 1
        biggest = max(biggest, len(jb))
        was_playing = jb.playing
        p = jb.pop()
        if p is None:
            if was_playing or jb.playing:
                irregular.append(j)
        else:
            got = int.from_bytes(p, "big")
            if got != expect & 0xFFFF:
                irregular.append(j)  # something was dropped before this one
            expect = got + 1
    return jb, n_packets, n_pops, irregular, biggest


def test_slow_sender_clock_gets_single_frame_insertions_only() -> None:
    jb, n_packets, n_pops, irregular, biggest = _simulate_drift(0.0201)
    deficit = n_pops - n_packets  # frames that have to be invented: about 30 in 2 min
    assert len(irregular) <= deficit + 5, (len(irregular), deficit, jb.stats)
    assert jb.stats.late == 0
    assert min(b - a for a, b in zip(irregular, irregular[1:], strict=False)) > 50  # no bursts
    assert biggest <= jb.depth + 3


def test_fast_sender_clock_gets_single_packet_drops_only() -> None:
    jb, n_packets, n_pops, irregular, biggest = _simulate_drift(0.0199)
    surplus = n_packets - n_pops  # packets that have to go: about 30 in 2 min
    dropped = jb.stats.dropped + jb.stats.skipped + jb.stats.late
    assert dropped <= surplus + 5, (dropped, surplus, jb.stats)
    assert jb.stats.missing <= 5
    assert biggest <= jb.depth + 3
    assert jb.stats.skipped == 0  # no burst trims, one packet at a time


def test_drift_with_network_jitter_stays_bounded() -> None:
    for interval in (0.0201, 0.0199):
        jb, n_packets, n_pops, irregular, biggest = _simulate_drift(interval, jitter=0.015)
        assert len(irregular) <= abs(n_pops - n_packets) + 60, (interval, jb.stats)
        assert biggest <= jb.max_depth + 1


def test_quiet_packets_are_preferred_for_drops() -> None:
    # payload b"q" marks a quiet packet; a fast sender has its surplus taken from those
    jb = JitterBuffer(depth=3, quiet=lambda p: p == b"q")
    dropped_loud = 0
    n = 0
    for j in range(6000):
        now = j * 0.020 + 0.0101
        while n * 0.0199 <= now:
            jb.put(n & 0xFFFF, b"q" if (n // 50) % 2 else b"L")
            n += 1
        before = jb.stats.dropped
        jb.pop()
        if jb.stats.dropped > before and jb.last_dropped != b"q":
            dropped_loud += 1
    assert jb.stats.dropped >= 20
    assert dropped_loud == 0


# -- telephone events -------------------------------------------------------------------------


def test_no_audio_slots_keep_their_place_and_play_as_empty() -> None:
    jb = JitterBuffer(depth=2)
    jb.put(1, _payload(1))
    jb.put(2, b"")  # an RFC 4733 packet: the slot exists but holds no audio
    jb.put(3, _payload(3))
    assert jb.pop() == _payload(1)
    assert jb.pop() == b""  # one frame of no audio, not skipped at once
    assert jb.pop() == _payload(3)
    assert jb.stats.missing == 0
