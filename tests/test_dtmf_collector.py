"""Merging digits from several transports, and cutting digits into entries."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dtmf.collector import MAX_PENDING, DigitCollector, DigitMerger, Entry
from dtmf.events import DIGITS, Digit, Method

# --- DigitMerger ------------------------------------------------------------------------


def test_merger_example_from_spec() -> None:
    m = DigitMerger(window=0.5)
    assert m.accept(Digit("5", "rfc4733", 0.0))
    assert not m.accept(Digit("5", "inband", 0.04))
    assert m.accept(Digit("5", "rfc4733", 0.25))  # same method: a second press
    assert not m.accept(Digit("5", "inband", 0.29))  # absorbed by the one at 0.25


def test_merger_other_order_and_info() -> None:
    m = DigitMerger()
    assert m.accept(Digit("1", "info", 0.0))
    assert not m.accept(Digit("1", "rfc4733", 0.1))
    assert m.accept(Digit("2", "rfc4733", 0.3))  # a different digit always counts


def test_merger_three_methods_one_press() -> None:
    m = DigitMerger()
    assert m.accept(Digit("7", "rfc4733", 0.0))
    assert not m.accept(Digit("7", "inband", 0.05))
    assert not m.accept(Digit("7", "info", 0.1))
    assert m.accept(Digit("7", "inband", 0.15))  # a second in-band 7: not absorbed twice


def test_merger_outside_window_counts() -> None:
    m = DigitMerger(window=0.5)
    assert m.accept(Digit("5", "rfc4733", 0.0))
    assert m.accept(Digit("5", "inband", 0.6))


def test_merger_same_method_never_merged() -> None:
    m = DigitMerger()
    assert all(m.accept(Digit("5", "rfc4733", i * 0.01)) for i in range(10))


def test_merger_fifo_pairing_with_lag() -> None:
    m = DigitMerger()
    assert m.accept(Digit("5", "rfc4733", 0.0))
    assert m.accept(Digit("5", "rfc4733", 0.2))
    assert not m.accept(Digit("5", "inband", 0.04))
    assert not m.accept(Digit("5", "inband", 0.24))
    assert m.accept(Digit("5", "inband", 0.3))  # a third in-band: nothing left to absorb it


def test_merger_memory_bounded() -> None:
    m = DigitMerger(window=0.5)
    for i in range(1000):
        m.accept(Digit(DIGITS[i % 16], "rfc4733", i * 0.1))
    assert len(m._accepted) <= 6
    huge = DigitMerger(window=1e9)
    for i in range(1000):
        huge.accept(Digit("1", "rfc4733", float(i)))
    assert len(huge._accepted) <= 64


@given(
    st.lists(st.sampled_from(DIGITS[:3]), max_size=40),
    st.sampled_from(["rfc4733", "inband", "info"]),
)
def test_merger_single_method_stream_is_untouched(digits: list[str], method: Method) -> None:
    """Whatever one method sends, all of it is accepted when it is the only method."""
    m = DigitMerger()
    for i, ch in enumerate(digits):
        assert m.accept(Digit(ch, method, i * 0.01))


@given(st.lists(st.sampled_from(DIGITS), max_size=30))
def test_merger_duplicated_stream_counts_once(digits: list[str]) -> None:
    """Each press reported by RFC 4733 and, 40 ms later, by in-band: the original sequence."""
    m = DigitMerger()
    out: list[str] = []
    for i, ch in enumerate(digits):
        t = i * 0.2
        for d in (Digit(ch, "rfc4733", t), Digit(ch, "inband", t + 0.04)):
            if m.accept(d):
                out.append(d.digit)
    assert out == digits


# --- DigitCollector ---------------------------------------------------------------------


def push_all(c: DigitCollector, digits: str, start: float, step: float = 0.5) -> float:
    t = start
    for ch in digits:
        c.push(ch, t)
        t += step
    return t - step


def test_terminator_ends_entry() -> None:
    c = DigitCollector(now=0.0)
    push_all(c, "1234", 1.0)
    assert c.take(3.0) is None
    c.push("#", 3.1)
    assert c.take(3.1) == Entry("1234", "terminator")
    assert c.pending() == "" and c.take(100.0) is None


def test_empty_entry_on_bare_terminator() -> None:
    c = DigitCollector(now=0.0)
    c.push("#", 1.0)
    assert c.take(1.0) == Entry("", "terminator")


def test_type_ahead_digits_stay_for_next_entry() -> None:
    c = DigitCollector(now=0.0)
    push_all(c, "12#345#67", 0.0, step=0.1)  # typed while the prompt played
    assert c.take(1.0) == Entry("12", "terminator")
    assert c.pending() == "345#67"
    assert c.take(1.0) == Entry("345", "terminator")
    assert c.take(1.0) is None  # "67" waits: last digit 0.8, timeout 5 s
    assert c.take(5.8) == Entry("67", "timeout")


def test_max_length() -> None:
    c = DigitCollector(now=0.0, max_length=4)
    push_all(c, "123456", 0.0, step=0.1)
    assert c.take(0.6) == Entry("1234", "max_length")
    assert c.pending() == "56"


def test_terminator_right_after_max_length_digits() -> None:
    c = DigitCollector(now=0.0, max_length=4)
    push_all(c, "1234#9", 0.0, step=0.1)
    assert c.take(0.6) == Entry("1234", "terminator")  # the # is consumed with them
    assert c.pending() == "9"


def test_terminator_after_long_run_does_not_exceed_max_length() -> None:
    c = DigitCollector(now=0.0, max_length=3)
    push_all(c, "123456#", 0.0, step=0.1)
    assert c.take(1.0) == Entry("123", "max_length")
    assert c.take(1.0) == Entry("456", "terminator")


def test_max_length_then_late_terminator_is_empty_entry() -> None:
    c = DigitCollector(now=0.0, max_length=2)
    push_all(c, "12", 0.0)
    assert c.take(0.5) == Entry("12", "max_length")
    c.push("#", 1.0)
    assert c.take(1.0) == Entry("", "terminator")


def test_inter_digit_timeout_boundary() -> None:
    c = DigitCollector(now=0.0, inter_digit_timeout=3.0)
    c.push("4", 1.0)
    c.push("2", 2.0)
    assert c.take(4.999) is None
    assert c.take(5.0) == Entry("42", "timeout")


def test_no_timeout_entry_when_empty() -> None:
    c = DigitCollector(now=0.0)
    assert c.take(1000.0) is None
    c.push("1", 1.0)
    c.clear()
    assert c.pending() == "" and c.take(1000.0) is None


def test_other_terminator_and_none() -> None:
    c = DigitCollector(now=0.0, terminator="*")
    push_all(c, "12#*", 0.0)
    assert c.take(2.0) == Entry("12#", "terminator")
    n = DigitCollector(now=0.0, terminator="", max_length=3)
    push_all(n, "1#2", 0.0)
    assert n.take(1.0) == Entry("1#2", "max_length")


def test_overall_timeout_and_restart() -> None:
    c = DigitCollector(now=10.0, overall_timeout=60.0)
    assert c.deadline == 70.0
    assert not c.expired(69.9)
    assert c.expired(70.0)
    c.push("5", 65.0)
    c.restart(80.0)
    assert c.deadline == 140.0 and not c.expired(100.0)
    assert c.pending() == "5"  # restart keeps type-ahead


def test_next_timeout() -> None:
    c = DigitCollector(now=0.0, inter_digit_timeout=5.0, overall_timeout=120.0, max_length=3)
    assert c.next_timeout() == 120.0
    c.push("1", 10.0)
    assert c.next_timeout() == 15.0
    c.push("2", 12.0)
    assert c.next_timeout() == 17.0
    c.push("#", 13.0)
    assert c.next_timeout() == 13.0  # an entry is ready now
    assert c.take(13.0) == Entry("12", "terminator")
    assert c.next_timeout() == 120.0
    push_all(c, "123", 20.0)
    assert c.next_timeout() == 21.0  # max_length reached: ready at the last digit
    c.push("4", 118.0)
    c.take(118.0)
    assert c.next_timeout() == 120.0  # "4" would time out at 123, after the deadline


def test_next_timeout_infinite() -> None:
    c = DigitCollector(now=0.0, inter_digit_timeout=math.inf, overall_timeout=math.inf)
    assert c.next_timeout() is None
    c.push("1", 1.0)
    assert c.next_timeout() is None and c.take(1e12) is None
    assert not c.expired(1e12)


def test_pending_bounded() -> None:
    c = DigitCollector(now=0.0, max_length=16)
    for i in range(200):
        c.push("1", i * 0.01)
    assert c.pending() == "1" * MAX_PENDING


def test_bad_arguments() -> None:
    with pytest.raises(ValueError):
        DigitCollector(now=0.0, terminator="x")
    with pytest.raises(ValueError):
        DigitCollector(now=0.0, max_length=0)
    with pytest.raises(ValueError):
        DigitCollector(now=0.0, inter_digit_timeout=0)
    c = DigitCollector(now=0.0)
    with pytest.raises(ValueError):
        c.push("x", 0.0)
    with pytest.raises(ValueError):
        c.push("12", 0.0)


@given(st.text(alphabet=DIGITS, max_size=60), st.integers(min_value=1, max_value=8))
def test_entries_reassemble_input(typed: str, max_length: int) -> None:
    """Taking entries until none is left, then the timeout, returns every digit in order."""
    c = DigitCollector(now=0.0, max_length=max_length)
    push_all(c, typed, 0.0, step=0.01)
    entries: list[Entry] = []
    while (e := c.take(1.0)) is not None:
        entries.append(e)
    if (e := c.take(1000.0)) is not None:
        entries.append(e)
    assert c.pending() == ""
    rebuilt = "".join(e.digits + ("#" if e.ended_by == "terminator" else "") for e in entries)
    assert rebuilt == typed
    for e in entries:
        assert len(e.digits) <= max_length and "#" not in e.digits
