"""gateway.callerid: the caller's number and name, and the dialled number, from SIP requests."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.callerid import (
    CallerId,
    caller_id,
    dialled_number,
    normalise_number,
    same_number,
)
from sip.headers import Headers
from sip.message import Request, parse
from sip.uri import SipUri

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def invite(
    from_: str = "<sip:alice@example.com>",
    *,
    pai: list[str] | None = None,
    ruri: str = "sip:room1@gw.example.com",
    extra: str = "",
) -> Request:
    lines = [
        f"INVITE {ruri} SIP/2.0",
        "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds",
        "Max-Forwards: 70",
        f"From: {from_};tag=1928301774",
        "To: <sip:room1@gw.example.com>",
        "Call-ID: a84b4c76e66710@pc33.example.com",
        "CSeq: 1 INVITE",
        *[f"P-Asserted-Identity: {p}" for p in pai or []],
        *([extra] if extra else []),
        "Content-Length: 0",
    ]
    msg = parse(("\r\n".join(lines) + "\r\n\r\n").encode())
    assert isinstance(msg, Request)
    return msg


# --- numbers in From -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "from_",
    [
        "<sip:+33612345678@trunk.example.com>",
        "<sip:+33612345678@trunk.example.com;user=phone>",
        "<sip:0612345678@trunk.example.com>",
        "<sip:0033612345678@trunk.example.com>",
        "<sip:33612345678@trunk.example.com;user=phone>",
        "<sip:33612345678@trunk.example.com>",
        "<sip:612345678@trunk.example.com>",
        "<sip:+33-6-12-34-56-78@trunk.example.com;user=phone>",
        "<sip:06.12.34.56.78@trunk.example.com>",
        "<sip:(06)12345678@trunk.example.com>",
        "<sips:+33612345678@trunk.example.com>",
        "<tel:+33612345678>",
        "<tel:+33-6-12-34-56-78>",
        "<tel:06.12.34.56.78>",
        "<tel:0612345678;phone-context=+33>",
        "<sip:0612345678;phone-context=+33@trunk.example.com;user=phone>",
        "sip:+33612345678@trunk.example.com",
    ],
)
def test_from_numbers_are_normalised_to_e164(from_: str) -> None:
    cid = caller_id(invite(from_), "FR")
    assert cid.number == "+33612345678"
    assert cid.display_name is None


def test_raw_user_is_kept_as_received() -> None:
    assert caller_id(invite("<sip:0612345678@t.example.com>"), "FR").raw_user == "0612345678"
    assert caller_id(invite("<tel:+33-6-12-34-56-78>"), "FR").raw_user == "+33-6-12-34-56-78"


def test_phone_context_overrides_the_region() -> None:
    # A UK local number with a +44 context, received by a French gateway.
    cid = caller_id(invite("<tel:02079460000;phone-context=+44>"), "FR")
    assert cid.number == "+442079460000"


def test_national_forms_follow_the_region() -> None:
    assert caller_id(invite("<sip:0612345678@t.example.com>"), "FR").number == "+33612345678"
    assert caller_id(invite("<sip:02079460000@t.example.com>"), "GB").number == "+442079460000"
    assert caller_id(invite("<sip:0612345678@t.example.com>"), "fr").number == "+33612345678"


@pytest.mark.parametrize(
    "from_",
    [
        '"Anonymous" <sip:anonymous@anonymous.invalid>',
        "<sip:anonymous@anonymous.invalid>",
        "<sip:unknown@trunk.example.com>",
        "<sip:alice@example.com>",
        "<sip:1234@pbx.example.com>",
        "<sip:12@pbx.example.com>",
        "<sip:trunk.example.com>",
        "<sip:+@trunk.example.com>",
        "<sip:*31*0612345678@trunk.example.com>",
        "<sip:0612345678%23@trunk.example.com>",
        "<sip:061234567812345678901234@trunk.example.com>",
        "<urn:service:sos>",
        "<tel:*123>",
    ],
)
def test_non_numbers_give_no_number(from_: str) -> None:
    assert caller_id(invite(from_), "FR").number is None


# --- P-Asserted-Identity -------------------------------------------------------------------


def test_p_asserted_identity_wins_over_from() -> None:
    req = invite(
        '"Claimed" <sip:0699999999@t.example.com>',
        pai=['"Carrier Name" <sip:+33612345678@t.example.com;user=phone>'],
    )
    assert caller_id(req, "FR") == CallerId("+33612345678", "Carrier Name", "+33612345678")


def test_anonymous_from_with_asserted_number() -> None:
    req = invite(
        '"Anonymous" <sip:anonymous@anonymous.invalid>',
        pai=["<tel:+33612345678>"],
        extra="Privacy: none",
    )
    cid = caller_id(req, "FR")
    assert cid.number == "+33612345678"
    assert cid.raw_user == "+33612345678"
    assert cid.display_name == "Anonymous"  # the only name given


def test_pai_with_sip_and_tel_values_takes_the_first_number() -> None:
    req = invite(pai=["<sip:bob@carrier.example.com>, <tel:+33612345678>"])
    cid = caller_id(req, "FR")
    assert cid.number == "+33612345678"
    assert cid.raw_user == "+33612345678"


def test_pai_name_without_number_keeps_the_from_number() -> None:
    req = invite("<sip:0612345678@t.example.com>", pai=['"Alice Martin" <sip:alice@example.com>'])
    assert caller_id(req, "FR") == CallerId("+33612345678", "Alice Martin", "0612345678")


def test_unparsable_pai_is_ignored() -> None:
    req = invite('"Bob" <sip:0612345678@t.example.com>', pai=['"unterminated <sip:x@y>'])
    assert caller_id(req, "FR") == CallerId("+33612345678", "Bob", "0612345678")


def test_from_display_name_when_pai_has_none() -> None:
    req = invite('"Bob" <sip:0612345678@t.example.com>', pai=["<tel:+33612345678>"])
    assert caller_id(req, "FR").display_name == "Bob"


# --- display names ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("from_", "name"),
    [
        ('"Alice Martin" <sip:alice@example.com>', "Alice Martin"),
        ("Alice <sip:alice@example.com>", "Alice"),
        ('"  Alice   Martin  " <sip:alice@example.com>', "Alice Martin"),
        ('"\\"Alice\\"" <sip:alice@example.com>', "Alice"),
        ('"Zoé Lefèvre" <sip:zoe@example.com>', "Zoé Lefèvre"),
        ('"" <sip:alice@example.com>', None),
        ('"   " <sip:alice@example.com>', None),
        ('"\\"\\"" <sip:alice@example.com>', None),
        ("<sip:alice@example.com>", None),
        # A number repeated as the name is not a name (it would defeat masking).
        ('"0612345678" <sip:0612345678@t.example.com>', None),
        ('"+33 6 12 34 56 78" <sip:0612345678@t.example.com>', None),
    ],
)
def test_display_name_is_cleaned(from_: str, name: str | None) -> None:
    assert caller_id(invite(from_), "FR").display_name == name


# --- what the participant list shows ----------------------------------------------------------


def test_shown_prefers_the_display_name() -> None:
    cid = CallerId("+33612345678", "Alice", "0612345678")
    assert cid.shown(full=False) == "Alice"
    assert cid.shown(full=True) == "Alice"


def test_shown_masks_the_last_two_digits_of_the_number() -> None:
    cid = caller_id(invite("<sip:0612345678@t.example.com>"), "FR")
    assert cid.shown(full=False) == "+336123456••"
    assert cid.shown(full=True) == "+33612345678"


def test_shown_falls_back_to_the_raw_user() -> None:
    assert CallerId(None, None, "1234").shown(full=False) == "12••"
    assert CallerId(None, None, "1234").shown(full=True) == "1234"
    assert CallerId(None, None, "12").shown(full=False) == "••"
    assert CallerId(None, None, "+999").shown(full=False) == "+9••"
    assert CallerId(None, None, "alice").shown(full=False) == "alice"


@pytest.mark.parametrize("raw", [None, "", "  ", "anonymous", "Anonymous", "unknown"])
def test_shown_phone_caller_when_nothing_is_known(raw: str | None) -> None:
    assert CallerId(None, None, raw).shown(full=False) == "Phone caller"
    assert CallerId(None, None, raw).shown(full=True) == "Phone caller"


def test_anonymous_call_shows_phone_caller() -> None:
    cid = caller_id(invite("<sip:anonymous@anonymous.invalid>"), "FR")
    assert cid == CallerId(None, None, "anonymous")
    assert cid.shown(full=True) == "Phone caller"


# --- dialled number --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ruri", "number"),
    [
        ("sip:+33123456789@gw.example.com", "+33123456789"),
        ("sip:0123456789@gw.example.com;user=phone", "+33123456789"),
        ("sip:0033123456789@gw.example.com", "+33123456789"),
        ("sip:33123456789@gw.example.com;user=phone", "+33123456789"),
        ("sip:01-23-45-67-89@gw.example.com", "+33123456789"),
        ("tel:+33-1-23-45-67-89", "+33123456789"),
        ("sip:room1@gw.example.com", None),
        ("sip:1234@gw.example.com", None),
        ("sip:gw.example.com", None),
    ],
)
def test_dialled_number(ruri: str, number: str | None) -> None:
    assert dialled_number(invite(ruri=ruri), "FR") == number


# --- comparing numbers -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("+33612345678", "0612345678", True),
        ("06 12 34 56 78", "0033612345678", True),
        ("+33 (0)6 12 34 56 78", "+33612345678", True),  # the written "(0)" trunk prefix
        ("06.12.34.56.78", "+33-6-12-34-56-78", True),
        ("+33612345678", "+33612345679", False),
        ("anonymous", "anonymous", False),
        ("", "", False),
        ("1234", "1234", False),
    ],
)
def test_same_number(a: str, b: str, same: bool) -> None:
    assert same_number(a, b, "FR") is same


def test_unknown_region_reads_only_international_numbers() -> None:
    assert normalise_number("+33612345678", "ZZ") == "+33612345678"
    assert normalise_number("0612345678", "ZZ") is None
    assert normalise_number("0612345678", "") is None
    assert normalise_number("0612345678", "not a region") is None


# --- odd input never raises ------------------------------------------------------------------

header_text = st.text(
    st.characters(blacklist_characters="\r\n", blacklist_categories=["Cs"]), max_size=60
)
user_text = st.text("0123456789+-.()*#;=pw@ abcx%", max_size=30)


@FAST
@given(from_=header_text, pai=st.lists(header_text, max_size=3), region=st.text(max_size=4))
def test_garbage_headers_never_raise(from_: str, pai: list[str], region: str) -> None:
    headers = Headers([("From", from_), *[("P-Asserted-Identity", p) for p in pai]])
    req = Request("INVITE", SipUri("sip", None, None, "gw.example.com"), headers)
    cid = caller_id(req, region)
    assert cid.number is None or cid.number.startswith("+")
    assert isinstance(cid.shown(full=False), str) and cid.shown(full=False)
    assert isinstance(cid.shown(full=True), str)


@FAST
@given(user=user_text, scheme=st.sampled_from(["sip", "sips", "tel"]), phone=st.booleans())
def test_garbage_users_never_raise(user: str, scheme: str, phone: bool) -> None:
    params = (("user", "phone"),) if phone else ()
    uri = SipUri(
        scheme, user or None, None, "" if scheme == "tel" else "t.example.com", None, params
    )
    headers = Headers([("From", '"x" <sip:a@b>'), ("P-Asserted-Identity", f"<{uri}>")])
    req = Request("INVITE", uri, headers)
    cid = caller_id(req, "FR")
    number = dialled_number(req, "FR")
    for found in (cid.number, number):
        assert found is None or (found.startswith("+") and found[1:].isdigit())
    assert cid.shown(full=False)


@FAST
@given(
    a=st.text(max_size=25), b=st.text(max_size=25), region=st.sampled_from(["FR", "GB", "", "xx"])
)
def test_same_number_never_raises(a: str, b: str, region: str) -> None:
    assert same_number(a, b, region) == same_number(b, a, region)
    result = same_number(a, a, region)
    assert result is (normalise_number(a, region) is not None)


def test_request_without_from_never_raises() -> None:
    req = Request("INVITE", SipUri("sip", None, None, "gw.example.com"), Headers())
    assert caller_id(req, "FR") == CallerId(None, None, None)
    assert caller_id(req, "FR").shown(full=False) == "Phone caller"
