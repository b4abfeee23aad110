"""sip.uri.SipUri and the name-addr / Via value types of sip.headers."""

from __future__ import annotations

import pytest

from sip.errors import SipParseError
from sip.headers import NameAddr, Via
from sip.uri import SipUri


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sip:alice@example.com", SipUri("sip", "alice", None, "example.com")),
        ("SIP:alice@example.com", SipUri("sip", "alice", None, "example.com")),
        (
            "sips:alice:secret@example.com:5061",
            SipUri("sips", "alice", "secret", "example.com", 5061),
        ),
        ("sip:192.0.2.1", SipUri("sip", None, None, "192.0.2.1")),
        ("sip:[::1]:5070", SipUri("sip", None, None, "[::1]", 5070)),
        (
            "sip:u@[2001:db8::10];transport=tcp",
            SipUri("sip", "u", None, "[2001:db8::10]", None, (("transport", "tcp"),)),
        ),
        ("sip:p.example.com;lr", SipUri("sip", None, None, "p.example.com", None, (("lr", None),))),
        (
            "sip:bob@b.example.com?Subject=hi%20there&Priority=urgent",
            SipUri(
                "sip",
                "bob",
                None,
                "b.example.com",
                None,
                (),
                (("Subject", "hi there"), ("Priority", "urgent")),
            ),
        ),
        ("sip:%61lice@example.com", SipUri("sip", "alice", None, "example.com")),
        (
            "sip:+15551234567;phone-context=example.com@gw.example.com;user=phone",
            SipUri(
                "sip",
                "+15551234567;phone-context=example.com",
                None,
                "gw.example.com",
                None,
                (("user", "phone"),),
            ),
        ),
        (
            "tel:+1-201-555-0123;ext=42",
            SipUri("tel", "+1-201-555-0123", None, "", None, (("ext", "42"),)),
        ),
        ("urn:service:sos", SipUri("urn", None, None, "service:sos")),
    ],
)
def test_parse(text: str, expected: SipUri) -> None:
    uri = SipUri.parse(text)
    assert uri == expected
    assert SipUri.parse(str(uri)) == uri


def test_serialise_escapes() -> None:
    uri = SipUri("sip", "a b@c", "p:w", "example.com", None, (("x", "1;2"),), (("h", "<v>"),))
    text = str(uri)
    assert text == "sip:a%20b%40c:p%3Aw@example.com;x=1%3B2?h=%3Cv%3E"
    assert SipUri.parse(text) == uri
    assert str(SipUri.parse("sip:%C3%A9@x")) == "sip:%C3%A9@x"
    assert SipUri.parse("sip:%FF@x").user == "\udcff"
    assert str(SipUri.parse("sip:%FF@x")) == "sip:%FF@x"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "alice@example.com",
        "sip:",
        "sip:alice@",
        "sip:@example.com",
        "sip:alice@exa mple.com",
        "sip:alice@example.com:port",
        "sip:alice@example.com:70000",
        "sip:alice@[::1",
        "sip:alice@[zz]",
        "sip:a%zz@example.com",
        "sip:a@b;;lr",
        "sip:a@b?novalue",
        "<sip:a@b>",
        "tel:abc$",
    ],
)
def test_parse_rejects(text: str) -> None:
    with pytest.raises(SipParseError):
        SipUri.parse(text)


def test_params_helpers() -> None:
    uri = SipUri.parse("sip:a@b;Transport=TCP;lr")
    assert uri.param("transport") == "TCP" and uri.transport == "tcp"
    assert uri.has_param("LR") and uri.param("lr") is None
    assert uri.with_param("transport", "udp").params == (("transport", "udp"), ("lr", None))
    assert uri.without_param("lr").params == (("Transport", "TCP"),)
    assert uri.host_port == "b" and SipUri.parse("sip:b:5062").host_port == "b:5062"
    assert uri.is_sip and not SipUri.parse("tel:+1").is_sip


@pytest.mark.parametrize(
    ("text", "display", "uri", "params"),
    [
        ('"Alice" <sip:a@example.com>;tag=x', "Alice", "sip:a@example.com", (("tag", "x"),)),
        ("Bob Smith <sip:b@example.com>", "Bob Smith", "sip:b@example.com", ()),
        ("<sip:b@example.com;lr>", None, "sip:b@example.com;lr", ()),
        ("sip:b@example.com;tag=1 ; foo", None, "sip:b@example.com", (("tag", "1"), ("foo", None))),
        ('"" <sip:b@x>', "", "sip:b@x", ()),
        ('"quote \\" and \\\\" <sip:b@x>', 'quote " and \\', "sip:b@x", ()),
        (
            '<sip:b@x>;+sip.instance="<urn:uuid:1;2>";expires=60',
            None,
            "sip:b@x",
            (("+sip.instance", '"<urn:uuid:1;2>"'), ("expires", "60")),
        ),
        ("  tel:+123 ;tag=a", None, "tel:+123", (("tag", "a"),)),
    ],
)
def test_name_addr(
    text: str, display: str | None, uri: str, params: tuple[tuple[str, str | None], ...]
) -> None:
    na = NameAddr.parse(text)
    assert na.display_name == display
    assert str(na.uri) == uri
    assert na.params == params
    assert NameAddr.parse(str(na)) == na


@pytest.mark.parametrize(
    "text",
    [
        "",
        '"unterminated <sip:a@b>',
        "Bell, Alexander <sip:a@b>",
        "< sip:a@b >",
        "<sip:a@b",
        "<>",
        "sip:a@b?x=y",
        "<sip:a@b>;",
        "<sip:a@b>;;tag=1",
        "<sip:a@b>;tag=",
        "<sip:a@b> garbage",
        '"x" garbage <sip:a@b>',
    ],
)
def test_name_addr_rejects(text: str) -> None:
    with pytest.raises(SipParseError):
        NameAddr.parse(text)


def test_name_addr_tag() -> None:
    na = NameAddr.parse("<sip:a@b>")
    assert na.tag is None
    tagged = na.with_tag("123")
    assert tagged.tag == "123" and str(tagged) == "<sip:a@b>;tag=123"
    assert tagged.with_tag("456").params == (("tag", "456"),)
    assert str(NameAddr('A "B"', SipUri.parse("sip:x@y"))) == '"A \\"B\\"" <sip:x@y>'


def test_via() -> None:
    via = Via.parse("SIP/2.0/udp 192.0.2.1:5060;branch=z9hG4bK1;rport")
    assert (via.transport, via.host, via.port, via.branch) == ("UDP", "192.0.2.1", 5060, "z9hG4bK1")
    assert via.sent_by == ("192.0.2.1", 5060)
    updated = via.with_params(received="192.0.2.99", rport="4444")
    assert (
        str(updated) == "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1;rport=4444;received=192.0.2.99"
    )
    assert Via.parse(str(updated)) == updated
    v6 = Via.parse(
        "SIP / 2.0 / TLS [2001:db8::1] : 5061 ; branch = z9hG4bKx ; received=[2001:db8::2]"
    )
    assert (v6.host, v6.port, v6.param("received")) == ("[2001:db8::1]", 5061, "[2001:db8::2]")
    assert str(v6) == "SIP/2.0/TLS [2001:db8::1]:5061;branch=z9hG4bKx;received=[2001:db8::2]"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "SIP/2.0/UDP",
        "SIP/2.0 UDP host",
        "HTTP/1.1/TCP h",
        "SIP/2.0/UDP h;;",
        "SIP/2.0/UDP h:99999",
        "SIP/2.0/UDP a b",
    ],
)
def test_via_rejects(text: str) -> None:
    with pytest.raises(SipParseError):
        Via.parse(text)
