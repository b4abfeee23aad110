"""RFC 4733 telephone-event receiver: one digit per event, whatever the network does."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dtmf.events import DIGITS, Digit
from dtmf.rfc4733 import TelephoneEventReceiver, parse_telephone_event


def pkt(event: int, duration: int, *, end: bool = False, volume: int = 10) -> bytes:
    return bytes([event, (0x80 if end else 0) | volume, duration >> 8, duration & 0xFF])


def press(
    rx: TelephoneEventReceiver, event: int, ts: int, now: float, *, step: int = 160, n: int = 5
) -> list[Digit]:
    """A whole event: start, n-1 continuations, three end packets."""
    out = [rx.feed(pkt(event, 0), ts, now, marker=True)]
    for i in range(1, n):
        out.append(rx.feed(pkt(event, i * step), ts, now + i * 0.02))
    for _ in range(3):
        out.append(rx.feed(pkt(event, n * step, end=True), ts, now + n * 0.02))
    return [d for d in out if d is not None]


def test_parse_payload_fields() -> None:
    ev = parse_telephone_event(bytes([11, 0x80 | 0x40 | 7, 0x03, 0x20, 0xFF]))
    assert ev is not None
    assert (ev.event, ev.end, ev.volume, ev.duration) == (11, True, 7, 800)
    assert parse_telephone_event(b"\x01\x02\x03") is None


@pytest.mark.parametrize("rate", [8000, 16000, 48000])
def test_clock_rates_duration(rate: int) -> None:
    rx = TelephoneEventReceiver(clock_rate=rate)
    # Only the end packet arrives: 100 ms at this clock rate.
    d = rx.feed(pkt(5, rate // 10, end=True), 1234, 1.0)
    assert d == Digit("5", "rfc4733", 1.0, 100)
    # A start packet with 20 ms so far.
    d2 = rx.feed(pkt(7, rate // 50), 99999, 2.0, marker=True)
    assert d2 == Digit("7", "rfc4733", 2.0, 20)


@pytest.mark.parametrize("rate", [8000, 16000, 48000])
def test_one_digit_per_full_event(rate: int) -> None:
    rx = TelephoneEventReceiver(clock_rate=rate)
    got = press(rx, 1, 1000, 0.0, step=rate // 50)
    assert [d.digit for d in got] == ["1"]
    assert got[0].duration_ms == 0 and got[0].method == "rfc4733" and got[0].at == 0.0


def test_three_end_packets_emit_nothing_more() -> None:
    rx = TelephoneEventReceiver()
    assert rx.feed(pkt(3, 0), 500, 0.0, marker=True) is not None
    for _ in range(3):
        assert rx.feed(pkt(3, 800, end=True), 500, 0.1) is None


def test_retransmitted_start_packet() -> None:
    rx = TelephoneEventReceiver()
    assert rx.feed(pkt(9, 0), 500, 0.0, marker=True) is not None
    assert rx.feed(pkt(9, 0), 500, 0.0, marker=True) is None
    assert rx.feed(pkt(9, 0), 500, 0.01, marker=True) is None


def test_lost_start_packet_still_yields_digit() -> None:
    rx = TelephoneEventReceiver()
    d = rx.feed(pkt(4, 320), 700, 0.04)  # a continuation is the first we see
    assert d is not None and d.digit == "4" and d.duration_ms == 40
    assert rx.feed(pkt(4, 480), 700, 0.06) is None
    assert rx.feed(pkt(4, 800, end=True), 700, 0.1) is None


def test_only_end_packets_yield_one_digit() -> None:
    rx = TelephoneEventReceiver()
    got = [rx.feed(pkt(2, 800, end=True), 700, 0.1) for _ in range(3)]
    assert [d.digit for d in got if d] == ["2"]


def test_same_digit_twice_is_two_digits() -> None:
    rx = TelephoneEventReceiver()
    first = press(rx, 5, 1000, 0.0)
    second = press(rx, 5, 2600, 0.3)
    assert [d.digit for d in first + second] == ["5", "5"]


def test_reordered_packets_of_old_event_not_reemitted() -> None:
    rx = TelephoneEventReceiver()
    assert rx.feed(pkt(1, 0), 1000, 0.0, marker=True) is not None
    assert rx.feed(pkt(2, 0), 2600, 0.3, marker=True) is not None
    # A late end packet of event 1 after event 2 began.
    assert rx.feed(pkt(1, 800, end=True), 1000, 0.31) is None
    assert rx.feed(pkt(2, 800, end=True), 2600, 0.4) is None


def test_event_seen_late_but_never_before_is_emitted() -> None:
    rx = TelephoneEventReceiver()
    assert rx.feed(pkt(2, 0), 2600, 0.3, marker=True) is not None
    d = rx.feed(pkt(1, 800, end=True), 1000, 0.31)  # all of event 1 came after event 2
    assert d is not None and d.digit == "1"


def test_very_late_packet_of_forgotten_event_ignored() -> None:
    rx = TelephoneEventReceiver(history=4)
    for i in range(10):
        assert rx.feed(pkt(i, 0), 1000 + i * 1600, i * 0.2) is not None
    # Events 0..5 are forgotten; a late packet of any of them is not re-emitted.
    for i in range(6):
        assert rx.feed(pkt(i, 800, end=True), 1000 + i * 1600, 2.0) is None
    # Recent ones are remembered.
    for i in range(6, 10):
        assert rx.feed(pkt(i, 800, end=True), 1000 + i * 1600, 2.0) is None
    assert rx.feed(pkt(0, 0), 1000 + 10 * 1600, 2.2) is not None


def test_history_of_16_by_default() -> None:
    rx = TelephoneEventReceiver()
    for i in range(16):
        assert rx.feed(pkt(i % 16, 0), i * 1000, float(i)) is not None
    for i in range(16):
        assert rx.feed(pkt(i % 16, 800, end=True), i * 1000, 20.0) is None


def test_timestamp_wrap() -> None:
    rx = TelephoneEventReceiver(history=2)
    base = 2**32 - 2000
    stamps = [base, base + 1600, (base + 3200) % 2**32, (base + 4800) % 2**32]
    for i, ts in enumerate(stamps):
        assert rx.feed(pkt(i, 0), ts, i * 0.2) is not None
    # base and base+1600 forgotten (behind the wrap); late packets still ignored.
    assert rx.feed(pkt(0, 800, end=True), stamps[0], 1.0) is None
    assert rx.feed(pkt(1, 800, end=True), stamps[1], 1.0) is None
    assert rx.feed(pkt(3, 800, end=True), stamps[3], 1.0) is None
    # Timestamps beyond 32 bits are taken modulo 2**32.
    assert rx.feed(pkt(3, 800, end=True), stamps[3] + 2**32, 1.0) is None
    assert rx.feed(pkt(4, 0), (base + 6400) % 2**32, 1.2) is not None


def test_sender_restarting_timestamps_far_back_is_new() -> None:
    rx = TelephoneEventReceiver(history=2)
    for i in range(4):
        assert rx.feed(pkt(1, 0), 10_000_000 + i * 1600, i * 0.2) is not None
    # Far (over 10 s of clock) behind the forgotten events: a restarted sender, not stale.
    assert rx.feed(pkt(7, 0), 5000, 1.0) is not None


def test_new_ssrc_resets_state() -> None:
    rx = TelephoneEventReceiver()
    assert rx.feed(pkt(8, 0), 1000, 0.0, ssrc=1) is not None
    assert rx.feed(pkt(8, 0), 1000, 0.1, ssrc=2) is not None  # same timestamp, new stream
    assert rx.feed(pkt(8, 0), 1000, 0.2, ssrc=2) is None


@pytest.mark.parametrize("code", range(16))
def test_all_digits(code: int) -> None:
    rx = TelephoneEventReceiver()
    d = rx.feed(pkt(code, 0), 42, 0.0, marker=True)
    assert d is not None and d.digit == DIGITS[code] == "0123456789*#ABCD"[code]


def test_digit_sequence() -> None:
    rx = TelephoneEventReceiver()
    got: list[Digit] = []
    for i, _ in enumerate(DIGITS):
        got += press(rx, i, 1000 + i * 2000, i * 0.3)
    assert "".join(d.digit for d in got) == "0123456789*#ABCD"


@pytest.mark.parametrize("payload", [b"", b"\x01", b"\x01\x02\x03"])
def test_short_payloads_ignored(payload: bytes) -> None:
    assert TelephoneEventReceiver().feed(payload, 1, 0.0) is None


@pytest.mark.parametrize("code", [16, 32, 255])
def test_non_dtmf_events_ignored(code: int) -> None:
    rx = TelephoneEventReceiver()
    assert rx.feed(pkt(code, 0), 1, 0.0) is None
    assert rx.feed(pkt(1, 0), 1, 0.0) is not None  # and they did not claim the timestamp


def test_longer_payload_uses_first_block() -> None:
    d = TelephoneEventReceiver().feed(pkt(6, 160) + b"\xff" * 8, 1, 0.0)
    assert d is not None and d.digit == "6" and d.duration_ms == 20


def test_bad_clock_rate() -> None:
    with pytest.raises(ValueError):
        TelephoneEventReceiver(clock_rate=0)


@given(
    st.lists(
        st.tuples(
            st.binary(max_size=12),
            st.integers(min_value=-(2**40), max_value=2**40),
            st.booleans(),
            st.integers(min_value=0, max_value=3),
        ),
        max_size=40,
    ),
    st.sampled_from([8000, 16000, 48000]),
)
def test_garbage_never_raises(packets: list[tuple[bytes, int, bool, int]], rate: int) -> None:
    rx = TelephoneEventReceiver(clock_rate=rate)
    for i, (payload, ts, marker, ssrc) in enumerate(packets):
        d = rx.feed(payload, ts, float(i), marker=marker, ssrc=ssrc)
        if d is not None:
            assert d.digit in DIGITS and d.method == "rfc4733"
            assert d.duration_ms is not None and d.duration_ms >= 0


@given(st.lists(st.integers(min_value=0, max_value=15), max_size=30))
def test_each_event_once_across_wrap(events: list[int]) -> None:
    """Full events (start, continuations, three ends) across the wrap: one digit each."""
    rx = TelephoneEventReceiver()
    got: list[str] = []
    for i, ev in enumerate(events):
        d = press(rx, ev, (2**32 - 5000 + i * 1600) % 2**32, i * 0.2)
        got += [x.digit for x in d]
    assert "".join(got) == "".join(DIGITS[e] for e in events)
