"""PIN comparison and guessing limits, on a fake clock (plain floats)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dtmf.pin import CallTries, PinGuard, pin_matches


def test_pin_matches() -> None:
    assert pin_matches("1234", "1234")
    assert not pin_matches("1235", "1234")
    assert not pin_matches("123", "1234")
    assert not pin_matches("12345", "1234")
    assert not pin_matches("", "1234")
    assert pin_matches("", "")
    assert not pin_matches("1234#", "1234")
    assert pin_matches("\udcff", "\udcff")  # never raises, even on odd strings


@given(st.text(max_size=20), st.text(max_size=20))
def test_pin_matches_is_equality(a: str, b: str) -> None:
    assert pin_matches(a, b) == (a == b)
    assert pin_matches(a, a)


def test_lockout_at_20th_failure_not_19th() -> None:
    g = PinGuard()
    for i in range(19):
        assert not g.failure("room1", i * 30.0)  # 19 failures in 9.5 minutes
    assert not g.locked("room1", 570.0)
    assert g.failures("room1", 570.0) == 19
    assert g.failure("room1", 599.0)  # the 20th within 10 minutes
    assert g.locked("room1", 599.0)
    assert g.locked_until("room1", 599.0) == 1199.0


def test_failures_older_than_window_do_not_count() -> None:
    g = PinGuard()
    for i in range(19):
        g.failure("r", float(i))
    # The first of them (t=0) is exactly 600 s old: it no longer counts.
    assert not g.failure("r", 600.0)
    assert not g.locked("r", 600.0)
    assert g.failures("r", 600.0) == 19
    assert g.failure("r", 600.5)  # 19 within the window (t=1..18, 600) + this one
    assert g.locked("r", 600.5)


def test_slow_guessing_never_locks() -> None:
    g = PinGuard()
    for i in range(1000):
        assert not g.failure("r", i * 32.0)  # never 20 within any 600 s
    assert not g.locked("r", 32000.0)


def test_lockout_lifts_after_600s_and_count_restarts() -> None:
    g = PinGuard()
    for _ in range(20):
        engaged = g.failure("r", 100.0)
    assert engaged
    assert g.locked("r", 699.9)
    assert g.locked_until("r", 699.9) == 700.0
    assert not g.failure("r", 650.0)  # during the lockout: not counted, no new lockout
    assert not g.locked("r", 700.0)
    assert g.locked_until("r", 700.0) is None
    assert g.failures("r", 700.0) == 0
    for _ in range(19):
        assert not g.failure("r", 701.0)
    assert g.failure("r", 701.0)
    assert g.locked_until("r", 701.0) == 1301.0


def test_keys_independent() -> None:
    g = PinGuard(max_failures=3)
    for _ in range(3):
        g.failure("a", 0.0)
    g.failure("b", 0.0)
    assert g.locked("a", 1.0)
    assert not g.locked("b", 1.0)
    assert g.failures("b", 1.0) == 1
    assert g.locked_until("never-seen", 1.0) is None


def test_custom_parameters() -> None:
    g = PinGuard(max_failures=2, window=10.0, lockout=30.0)
    assert not g.failure("k", 0.0)
    assert g.failure("k", 9.0)
    assert g.locked("k", 38.9) and not g.locked("k", 39.0)


def test_memory_bound_max_keys() -> None:
    g = PinGuard(max_keys=100)
    for i in range(10_000):
        g.failure(f"room{i}", float(i))
    assert len(g) <= 100
    assert g.failures("room9999", 9999.0) == 1
    assert g.failures("room0", 9999.0) == 0


def test_memory_pruned_by_window() -> None:
    g = PinGuard(max_failures=1000)
    for i in range(5000):
        g.failure("r", float(i))
    assert g.failures("r", 5000.0) == 599  # only the last 10 minutes are kept
    assert len(g._keys["r"].failures) <= 600
    assert g.failures("r", 1e6) == 0 and len(g) == 0  # fully expired keys are forgotten


def test_key_flood_does_not_lift_a_lockout() -> None:
    g = PinGuard(max_failures=2, max_keys=10)
    g.failure("target", 0.0)
    g.failure("target", 0.0)
    assert g.locked("target", 0.0)
    for i in range(100):
        g.failure(f"flood{i}", 1.0)
    assert len(g) <= 10
    assert g.locked("target", 1.0)


def test_bad_parameters() -> None:
    with pytest.raises(ValueError):
        PinGuard(max_failures=0)
    with pytest.raises(ValueError):
        PinGuard(window=0)
    with pytest.raises(ValueError):
        CallTries(0)


def test_call_tries() -> None:
    t = CallTries()
    assert t.remaining == 3
    assert not t.fail()
    assert not t.fail()
    assert t.remaining == 1
    assert t.fail()
    assert t.remaining == 0
    assert t.fail()  # stays exhausted
    assert t.remaining == 0
    t.reset()
    assert t.remaining == 3
    one = CallTries(max_tries=1)
    assert one.fail()
