"""SIP INFO DTMF bodies: application/dtmf-relay and application/dtmf."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dtmf.events import DIGITS, Digit
from dtmf.info import is_dtmf_info, parse_info, parse_signal

RELAY = "application/dtmf-relay"


def test_relay_basic() -> None:
    assert parse_info(RELAY, b"Signal=5\r\nDuration=160\r\n", 3.0) == Digit("5", "info", 3.0, 160)


@pytest.mark.parametrize(
    "body",
    [
        b"Signal=5\nDuration=160\n",
        b"signal = 5\r\nduration = 160",
        b"SIGNAL= 5\r\nDURATION =160\r\n",
        b"Duration=160\r\nSignal=5\r\n",
        b"\r\nSignal=5\r\nDuration=160\r\n\r\n",
        b"  Signal\t=\t5  \nDuration=160",
    ],
)
def test_relay_spacing_case_line_ends(body: bytes) -> None:
    assert parse_info(RELAY, body, 0.0) == Digit("5", "info", 0.0, 160)


@pytest.mark.parametrize(
    ("signal", "digit"),
    [
        ("*", "*"),
        ("#", "#"),
        ("a", "A"),
        ("B", "B"),
        ("c", "C"),
        ("D", "D"),
        ("0", "0"),
        ("9", "9"),
        ("10", "*"),
        ("11", "#"),
        ("12", "A"),
        ("13", "B"),
        ("14", "C"),
        ("15", "D"),
    ],
)
def test_relay_signals(signal: str, digit: str) -> None:
    d = parse_info(RELAY, f"Signal={signal}\r\nDuration=250\r\n".encode(), 1.0)
    assert d == Digit(digit, "info", 1.0, 250)


def test_relay_without_duration() -> None:
    assert parse_info(RELAY, b"Signal=7", 0.0) == Digit("7", "info", 0.0, None)


@pytest.mark.parametrize("duration", [b"abc", b"-5", b"", b"99999999999", b"1e3"])
def test_relay_bad_duration_keeps_digit(duration: bytes) -> None:
    d = parse_info(RELAY, b"Signal=7\r\nDuration=" + duration, 0.0)
    assert d == Digit("7", "info", 0.0, None)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"Duration=160",
        b"Signal=",
        b"Signal=16",
        b"Signal=E",
        b"Signal=55",
        b"Signal=-1",
        b"Signal=5 6",
        b"Signal",
        b"hello",
        b"Signal=\xff",
        b"Signal=\xd9\xa5",
    ],
)
def test_relay_no_digit(body: bytes) -> None:
    assert parse_info(RELAY, body, 0.0) is None


def test_relay_first_signal_counts() -> None:
    assert parse_info(RELAY, b"Signal=1\r\nSignal=2\r\n", 0.0) == Digit("1", "info", 0.0)


@pytest.mark.parametrize(
    ("body", "digit"),
    [
        (b"5", "5"),
        (b" 5\r\n", "5"),
        (b"#", "#"),
        (b"*\n", "*"),
        (b"a", "A"),
        (b"10", "*"),
        (b"11", "#"),
        (b"15", "D"),
    ],
)
def test_application_dtmf(body: bytes, digit: str) -> None:
    assert parse_info("application/dtmf", body, 2.0) == Digit(digit, "info", 2.0)


def test_application_dtmf_with_relay_body() -> None:
    d = parse_info("application/dtmf", b"Signal=3\r\nDuration=100\r\n", 0.0)
    assert d == Digit("3", "info", 0.0, 100)


@pytest.mark.parametrize("body", [b"", b"55", b"x", b"5 5", b"\x00"])
def test_application_dtmf_no_digit(body: bytes) -> None:
    assert parse_info("application/dtmf", body, 0.0) is None


@pytest.mark.parametrize(
    "ctype",
    [
        "application/dtmf-relay",
        "Application/DTMF-Relay",
        "application/dtmf-relay; charset=utf-8",
        " application/dtmf-relay ;x=y",
    ],
)
def test_content_type_case_and_params(ctype: str) -> None:
    assert is_dtmf_info(ctype)
    assert parse_info(ctype, b"Signal=1", 0.0) == Digit("1", "info", 0.0)


@pytest.mark.parametrize(
    "ctype", [None, "", "text/plain", "application/sdp", "application/dtmf-relayx", "dtmf"]
)
def test_other_content_types(ctype: str | None) -> None:
    assert not is_dtmf_info(ctype)
    assert parse_info(ctype, b"Signal=1\r\nDuration=100", 0.0) is None


def test_is_dtmf_info_both_types() -> None:
    assert is_dtmf_info("application/dtmf")
    assert is_dtmf_info("APPLICATION/DTMF;foo=bar")


def test_parse_signal_all_digits() -> None:
    for i, ch in enumerate(DIGITS):
        assert parse_signal(ch) == ch
        assert parse_signal(ch.lower()) == ch
        assert parse_signal(str(i)) == ch
    assert parse_signal("٥") is None  # a non-ASCII digit
    assert parse_signal("+5") is None


@given(st.one_of(st.none(), st.sampled_from([RELAY, "application/dtmf"]), st.text()), st.binary())
def test_random_bytes_never_raise(ctype: str | None, body: bytes) -> None:
    d = parse_info(ctype, body, 0.0)
    if d is not None:
        assert d.digit in DIGITS and d.method == "info"


@given(st.text())
def test_random_text_bodies_never_raise(text: str) -> None:
    for ctype in (RELAY, "application/dtmf"):
        body = text.encode("utf-8", errors="surrogatepass")
        d = parse_info(ctype, body, 0.0)
        assert d is None or d.digit in DIGITS
        d2 = parse_info(ctype, b"Signal=" + body, 0.0)
        assert d2 is None or d2.digit in DIGITS
