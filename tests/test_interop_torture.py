"""Malformed and torture SIP over the wire: the running gateway answers what it can, drops the
rest, and keeps serving calls (no crash, no traceback in its log)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.gateway_proc import GatewayProcess, gateway  # noqa: F401  (fixture)
from tests.peers import sipp

pytestmark = pytest.mark.interop

DATA = Path(__file__).resolve().parents[2] / "shared" / "testdata" / "rfc4475"
MESSAGES = sorted(DATA.glob("*.dat"))


def exchange_udp(port: int, data: bytes, wait: float = 0.3) -> list[bytes]:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(wait)
        s.sendto(data, ("127.0.0.1", port))
        replies = []
        try:
            while True:
                replies.append(s.recv(70000))
        except TimeoutError:
            return replies


def test_torture_messages_are_all_there() -> None:
    assert len(MESSAGES) == 49


def test_garbage_gets_no_answer_and_breaks_nothing(gateway: GatewayProcess) -> None:  # noqa: F811
    for junk in (b"\x00" * 10, b"hello", b"INVITE\r\n\r\n", bytes(range(256)) * 4):
        assert exchange_udp(gateway.sip_port, junk) == []
    with socket.create_connection(("127.0.0.1", gateway.sip_port), timeout=2) as tcp:
        tcp.sendall(b"\x16\x03\x01 not sip at all\r\n\r\n" + b"x" * 70000)
        tcp.settimeout(2)
        try:
            while tcp.recv(65536):
                pass
        except (TimeoutError, ConnectionResetError):
            pass
    assert sipp.run_options("127.0.0.1", gateway.sip_port).ok


@pytest.mark.parametrize("path", MESSAGES, ids=lambda p: p.stem)
def test_torture_message_over_udp(gateway: GatewayProcess, path: Path) -> None:  # noqa: F811
    replies = exchange_udp(gateway.sip_port, path.read_bytes())
    # Only responses come back (a 400 copies the request's headers, bad ones included, so only
    # its status line is read here).
    statuses = [int(reply[8:11]) for reply in replies if reply.startswith(b"SIP/2.0 ")]
    assert len(statuses) == len(replies), replies
    if path.stem in {
        "badinv01",
        "clerr",
        "scalar02",
        "quotbal",
        "lwsstart",
        "baddate",
        "badaspec",
        "baddn",
        "mismatch01",
        "mismatch02",
        "regbadct",
        "ltgtruri",
        "lwsruri",
        "trws",
        "escruri",
        "badvers",
    }:
        # refused while parsing, with enough headers to answer: the 4xx/5xx comes straight
        # back to the sender (not to the unchecked Via host)
        assert statuses and all(400 <= status < 600 for status in statuses), path.stem


def test_still_serving_after_the_torture(gateway: GatewayProcess) -> None:  # noqa: F811
    for path in MESSAGES:
        exchange_udp(gateway.sip_port, path.read_bytes(), wait=0.05)
    room = gateway.create_room(name="after torture")
    result = sipp.run_uac("127.0.0.1", gateway.sip_port, str(room["number"]), calls=5, rate=10)
    assert result.ok, result.summary()
