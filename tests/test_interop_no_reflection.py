"""An INVITE that is never ACKed makes the gateway send no media: its SDP could name any
address (a reflection and amplification attack). Raw sockets against a real gateway."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gateway_proc import GatewayProcess, start_gateway

pytestmark = pytest.mark.interop

HOST = "127.0.0.1"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    yield from start_gateway(tmp_path_factory.mktemp("reflect"))


def invite(number: str, gw_port: int, sip_port: int, rtp_port: int, call_id: str) -> bytes:
    sdp = (
        "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        f"m=audio {rtp_port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n"
    )
    return (
        f"INVITE sip:{number}@{HOST}:{gw_port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {HOST}:{sip_port};branch=z9hG4bK{call_id};rport\r\n"
        f"From: <sip:attacker@{HOST}>;tag=t{call_id}\r\n"
        f"To: <sip:{number}@{HOST}>\r\n"
        f"Call-ID: {call_id}\r\nCSeq: 1 INVITE\r\n"
        f"Contact: <sip:attacker@{HOST}:{sip_port}>\r\nMax-Forwards: 70\r\n"
        f"Content-Type: application/sdp\r\nContent-Length: {len(sdp)}\r\n\r\n{sdp}"
    ).encode()


def test_unacked_invite_gets_no_rtp(gateway: GatewayProcess, tmp_path: Path) -> None:
    room = gateway.create_room(name="reflect")
    sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    victim = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sip.bind((HOST, 0))
        victim.bind((HOST, 0))
        victim.settimeout(0.2)
        sip.settimeout(5)
        sip.sendto(
            invite(
                str(room["number"]),
                gateway.sip_port,
                sip.getsockname()[1],
                victim.getsockname()[1],
                "reflect1",
            ),
            (HOST, gateway.sip_port),
        )
        status = 0
        while status < 200:  # the 200 comes (and is retransmitted: we never ACK)
            status = int(sip.recv(65535).split(b" ", 2)[1])
        assert status == 200
        got, deadline = 0, time.monotonic() + 3
        while time.monotonic() < deadline:
            try:
                victim.recv(2048)
                got += 1
            except TimeoutError:
                pass
        assert got == 0, f"{got} RTP packets sent to an address no ACK confirmed"
    finally:
        sip.close()
        victim.close()


def test_one_source_gets_503_over_its_unconfirmed_invite_cap(tmp_path: Path) -> None:
    for gw in start_gateway(tmp_path, GATEWAY_MAX_PENDING_PER_SOURCE="2"):
        room = gw.create_room(name="capped")
        sip = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sip.bind((HOST, 0))
            sip.settimeout(5)
            port = sip.getsockname()[1]
            finals: dict[str, bytes] = {}
            for i in range(3):
                sip.sendto(
                    invite(str(room["number"]), gw.sip_port, port, 40000, f"cap{i}"),
                    (HOST, gw.sip_port),
                )
            deadline = time.monotonic() + 5
            while len(finals) < 3 and time.monotonic() < deadline:
                data = sip.recv(65535)
                status = int(data.split(b" ", 2)[1])
                call_id = next(
                    line.split(b":", 1)[1].strip().decode()
                    for line in data.split(b"\r\n")
                    if line.lower().startswith(b"call-id:")
                )
                if status >= 200:
                    finals.setdefault(call_id, data)
            statuses = {cid: int(d.split(b" ", 2)[1]) for cid, d in finals.items()}
            assert sorted(statuses.values()) == [200, 200, 503], statuses
            refused = next(d for d in finals.values() if d.split(b" ", 2)[1] == b"503")
            assert b"\r\nRetry-After: 30" in refused
            assert "over its call caps" in gw.log()
        finally:
            sip.close()


def _final(sip: socket.socket) -> bytes:
    while True:
        data = sip.recv(65535)
        if data.startswith(b"SIP/2.0 ") and int(data.split(b" ", 2)[1]) >= 200:
            return data


def _ack(data: bytes, number: str, gw_port: int, sip_port: int, call_id: str) -> bytes:
    to = next(
        line.split(b":", 1)[1].strip().decode()
        for line in data.split(b"\r\n")
        if line.lower().startswith(b"to:")
    )
    return (
        f"ACK sip:{number}@{HOST}:{gw_port} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {HOST}:{sip_port};branch=z9hG4bKack{call_id};rport\r\n"
        f"From: <sip:attacker@{HOST}>;tag=t{call_id}\r\nTo: {to}\r\n"
        f"Call-ID: {call_id}\r\nCSeq: 1 ACK\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
    ).encode()


def test_a_gateway_at_its_call_cap_refuses_new_calls_and_keeps_those_up(
    tmp_path: Path,
) -> None:
    for gw in start_gateway(tmp_path, GATEWAY_MAX_CALLS="2"):
        room = gw.create_room(name="full")
        number = str(room["number"])
        socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(3)]
        try:
            for i, sip in enumerate(socks):  # three callers, each its own source port
                sip.bind((HOST, 0))
                sip.settimeout(5)
                port = sip.getsockname()[1]
                sip.sendto(
                    invite(number, gw.sip_port, port, 40000 + 2 * i, f"full{i}"),
                    (HOST, gw.sip_port),
                )
                final = _final(sip)
                status = int(final.split(b" ", 2)[1])
                if i < 2:
                    assert status == 200, final
                    sip.sendto(
                        _ack(final, number, gw.sip_port, port, f"full{i}"), (HOST, gw.sip_port)
                    )
                else:
                    assert status == 503, final
                    assert b"\r\nRetry-After: 5" in final
            assert "gateway at its call caps" in gw.log()
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                _, participants = gw.api("GET", f"/api/rooms/{room['id']}/participants")
                if len(participants) == 2:
                    break
                time.sleep(0.1)
            assert len(participants) == 2, participants  # the calls up are kept
        finally:
            for sip in socks:
                sip.close()
