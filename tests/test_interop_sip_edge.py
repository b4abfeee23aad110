"""What a careless or hostile SIP peer sends, by raw sockets against a real gateway: SDP
addresses we must not use, an offerless re-INVITE (CUCM resuming from hold), and a gateway
bound to the wildcard address announcing where it can be reached."""

from __future__ import annotations

import re
import signal
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
    yield from start_gateway(tmp_path_factory.mktemp("edge"))


def sdp(connection: str, port: int, direction: str = "sendrecv", version: int = 1) -> str:
    return (
        f"v=0\r\no=- 1 {version} IN IP4 127.0.0.1\r\ns=-\r\nc={connection}\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na={direction}\r\n"
    )


class RawUac:
    """One UDP call by hand: enough SIP to send INVITE, ACK, re-INVITE and BYE."""

    def __init__(self, gw_port: int, number: str, call_id: str) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.sock.settimeout(5)
        self.port = self.sock.getsockname()[1]
        self.gw = (HOST, gw_port)
        self.number, self.call_id = number, call_id
        self.cseq = 0
        self.to_tag = ""

    def close(self) -> None:
        self.sock.close()

    def request(
        self, method: str, body: str = "", cseq: int | None = None, extra: str = ""
    ) -> None:
        if cseq is None:
            self.cseq += 1
            cseq = self.cseq
        to_tag = f";tag={self.to_tag}" if self.to_tag else ""
        head = (
            f"{method} sip:{self.number}@{HOST}:{self.gw[1]} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {HOST}:{self.port};branch=z9hG4bK{self.call_id}{method}{cseq}"
            f"{time.monotonic_ns()};rport\r\n"
            f"From: <sip:edge@{HOST}>;tag=from{self.call_id}\r\n"
            f"To: <sip:{self.number}@{HOST}>{to_tag}\r\n"
            f"Call-ID: {self.call_id}\r\nCSeq: {cseq} {'ACK' if method == 'ACK' else method}\r\n"
            f"Contact: <sip:edge@{HOST}:{self.port}>\r\nMax-Forwards: 70\r\n{extra}"
        )
        if body:
            head += f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n{body}"
        else:
            head += "Content-Length: 0\r\n\r\n"
        self.sock.sendto(head.encode(), self.gw)

    def final(self) -> tuple[int, bytes]:
        """The next final response to our current CSeq (provisionals skipped)."""
        while True:
            data = self.sock.recv(65535)
            if not data.startswith(b"SIP/2.0"):
                continue  # a request from the gateway (not expected in these tests)
            status = int(data.split(b" ", 2)[1])
            if status >= 200 and f"CSeq: {self.cseq} ".encode() in data:
                tag = re.search(rb"^To:.*;tag=([^;\r\n]+)", data, re.M | re.I)
                if tag:
                    self.to_tag = tag.group(1).decode()
                return status, data

    def incoming(self, timeout: float) -> bytes:
        """The next request the gateway sends us (responses skipped)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                data = self.sock.recv(65535)
                if not data.startswith(b"SIP/2.0"):
                    return data
        finally:
            self.sock.settimeout(5)

    def respond(self, request: bytes, status: int, reason: str, body: str = "") -> None:
        head, _, _ = request.partition(b"\r\n\r\n")
        keep = [
            line
            for line in head.split(b"\r\n")[1:]
            if line.split(b":", 1)[0].strip().lower()
            in (b"via", b"from", b"to", b"call-id", b"cseq")
        ]
        out = b"SIP/2.0 %d %s\r\n" % (status, reason.encode()) + b"\r\n".join(keep) + b"\r\n"
        out += f"Contact: <sip:edge@{HOST}:{self.port}>\r\n".encode()
        if body:
            out += f"Content-Type: application/sdp\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            out += body.encode()
        else:
            out += b"Content-Length: 0\r\n\r\n"
        self.sock.sendto(out, self.gw)


def body_of(message: bytes) -> str:
    return message.split(b"\r\n\r\n", 1)[1].decode()


def rtp_count(sock: socket.socket, seconds: float) -> int:
    sock.settimeout(0.1)
    got, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            sock.recv(2048)
            got += 1
        except TimeoutError:
            pass
    return got


@pytest.mark.parametrize(
    ("connection", "why"),
    [
        ("IN IP4 localhost", "a host name would be resolved on the event loop"),
        ("IN IP4 media.example.org", "a host name"),
        ("IN IP6 ::1", "an address family our IPv4 sockets do not serve"),
        ("IN IP4 ::1", "an IPv6 literal declared IP4"),
    ],
)
def test_unusable_connection_address_gets_488(
    gateway: GatewayProcess, connection: str, why: str
) -> None:
    room = gateway.create_room(name="c-line")
    uac = RawUac(gateway.sip_port, str(room["number"]), f"cline{abs(hash(connection))}")
    try:
        uac.request("INVITE", sdp(connection, 40000))
        status, _ = uac.final()
        assert status == 488, why
        uac.request("ACK", cseq=uac.cseq)
    finally:
        uac.close()


def test_offerless_reinvite_resumes_from_hold_with_the_answer_in_the_ack(
    gateway: GatewayProcess,
) -> None:
    room = gateway.create_room(name="cucm")
    media = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    media.bind((HOST, 0))
    port = media.getsockname()[1]
    uac = RawUac(gateway.sip_port, str(room["number"]), "cucm1")
    try:
        uac.request("INVITE", sdp("IN IP4 127.0.0.1", port))
        status, _ = uac.final()
        assert status == 200
        uac.request("ACK", cseq=uac.cseq)
        assert rtp_count(media, 1.0) > 20  # the room's (silent) audio flows
        # hold: we say sendonly, so the gateway stops sending
        uac.request("INVITE", sdp("IN IP4 127.0.0.1", port, "sendonly", version=2))
        status, _ = uac.final()
        assert status == 200
        uac.request("ACK", cseq=uac.cseq)
        rtp_count(media, 0.3)  # what was in flight
        assert rtp_count(media, 1.0) == 0
        # resume as CUCM does: a re-INVITE without SDP; the gateway offers in its 200 ...
        uac.request("INVITE")
        status, ok = uac.final()
        assert status == 200
        offer = body_of(ok)
        version = int(re.search(r"^o=\S+ \S+ (\d+) ", offer, re.M).group(1))  # type: ignore[union-attr]
        # ... a new version (RFC 3264 8), offering to send and receive
        assert version > 0 and "a=sendonly" not in offer and "a=inactive" not in offer
        # ... and our answer comes in the ACK: sendrecv again
        uac.request("ACK", sdp("IN IP4 127.0.0.1", port, "sendrecv", version=3), cseq=uac.cseq)
        assert rtp_count(media, 1.5) > 20, "still on hold: the ACK's answer was ignored"
        uac.request("BYE")
        assert uac.final()[0] == 200
    finally:
        uac.close()
        media.close()


def test_public_host_is_what_a_wildcard_bound_gateway_announces(tmp_path: Path) -> None:
    for gw in start_gateway(
        tmp_path, GATEWAY_SIP_HOST="0.0.0.0", GATEWAY_SIP_PUBLIC_HOST="127.0.0.1"
    ):
        room = gw.create_room(name="wild")
        uac = RawUac(gw.sip_port, str(room["number"]), "wild1")
        try:
            uac.request("INVITE", sdp("IN IP4 127.0.0.1", 40002))
            status, ok = uac.final()
            assert status == 200
            contact = re.search(rb"^Contact:\s*<sip:([^>;]+)", ok, re.M | re.I)
            assert contact is not None and contact.group(1).startswith(b"127.0.0.1:"), ok
            assert "c=IN IP4 127.0.0.1" in body_of(ok)
            assert b"0.0.0.0" not in ok
            uac.request("ACK", cseq=uac.cseq)
            uac.request("BYE")
            assert uac.final()[0] == 200
        finally:
            uac.close()


def test_wildcard_bound_gateway_announces_the_interface_a_call_came_in_on(
    tmp_path: Path,
) -> None:
    for gw in start_gateway(tmp_path, GATEWAY_SIP_HOST="0.0.0.0"):
        room = gw.create_room(name="wild2")
        uac = RawUac(gw.sip_port, str(room["number"]), "wild2")
        try:
            uac.request("INVITE", sdp("IN IP4 127.0.0.1", 40004))
            status, ok = uac.final()
            assert status == 200
            contact = re.search(rb"^Contact:\s*<sip:([^>;]+)", ok, re.M | re.I)
            assert contact is not None and contact.group(1).startswith(b"127.0.0.1:"), ok
            assert "c=IN IP4 127.0.0.1" in body_of(ok)
            uac.request("ACK", cseq=uac.cseq)
            uac.request("BYE")
            assert uac.final()[0] == 200
        finally:
            uac.close()


def test_tcp_call_idle_beyond_the_idle_limit_is_still_reached(tmp_path: Path) -> None:
    """A room system on TCP whose call carries no SIP for longer than the idle limit is
    still reachable: removed from the room, it gets its BYE on the same connection."""
    from tests.peers import sipp
    from tests.peers.pcap import silence_packets, write_pcap

    for gw in start_gateway(tmp_path, GATEWAY_TCP_IDLE_SECONDS="1"):
        room = gw.create_room(name="tcp-idle")
        pcap = write_pcap(tmp_path / "silence.pcap", silence_packets(8))
        future = sipp.in_background(
            sipp.run_dialin_expect_bye,
            HOST,
            gw.sip_port,
            str(room["number"]),
            pcap,
            bye_ms=15000,
            transport="tcp",
        )
        [member] = gw.wait_participants(str(room["id"]), 1)
        time.sleep(3)  # three idle limits without any SIP on the connection
        status, _ = gw.api("DELETE", f"/api/rooms/{room['id']}/participants/{member['id']}")
        assert status == 204
        result = future.result(60)
        assert result.ok, result.summary()


def test_refresh_answered_491_is_retried_and_the_call_survives(gateway: GatewayProcess) -> None:
    """The gateway refreshes the session (we make it the refresher, at the smallest interval
    RFC 4028 allows); we answer its first refresh 491 as a peer in glare would. It must try
    again after the back-off, not drop the call, and the call must outlive the interval."""
    room = gateway.create_room(name="refresh-491")
    uac = RawUac(gateway.sip_port, str(room["number"]), "refresh491")
    timer = "Supported: timer\r\nSession-Expires: 90;refresher=uas\r\nAllow: INVITE, ACK, BYE\r\n"
    try:
        uac.request("INVITE", sdp("IN IP4 127.0.0.1", 40006), extra=timer)
        status, ok = uac.final()
        assert status == 200
        assert re.search(rb"^(Session-Expires|x):\s*90;refresher=uas", ok, re.M | re.I), ok
        uac.request("ACK", cseq=uac.cseq)
        first = uac.incoming(60)  # due at half the interval: 45 s
        assert first.startswith(b"INVITE "), first
        uac.respond(first, 491, "Request Pending")
        assert uac.incoming(5).startswith(b"ACK "), "the 491 is not acknowledged"
        began = time.monotonic()
        again = uac.incoming(10)
        assert again.startswith(b"INVITE "), again
        assert time.monotonic() - began <= 4.5  # RFC 3261 14.1: 0-2 s for the non-owner
        uac.respond(again, 200, "OK", sdp("IN IP4 127.0.0.1", 40006, version=2))
        assert uac.incoming(5).startswith(b"ACK ")
        assert len(gateway.participants(str(room["id"]))) == 1
        uac.request("BYE")
        assert uac.final()[0] == 200
    finally:
        uac.close()


def test_a_burst_while_the_gateway_is_busy_is_not_dropped_by_the_kernel(
    gateway: GatewayProcess,
) -> None:
    """1,500 OPTIONS reach the SIP port while the gateway is frozen (SIGSTOP), as a busy
    hour's INVITEs, ACKs and BYEs queue up while it works: with the kernel's default UDP
    buffer (about 200 KiB, some 150 such datagrams) most would be thrown away, ACKs and
    BYEs among them; the gateway's larger buffer keeps them all, and each gets its 200."""
    count = 1500
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
    sock.bind((HOST, 0))
    port = sock.getsockname()[1]
    gateway.process.send_signal(signal.SIGSTOP)
    try:
        for i in range(count):
            sock.sendto(
                (
                    f"OPTIONS sip:{HOST}:{gateway.sip_port} SIP/2.0\r\n"
                    f"Via: SIP/2.0/UDP {HOST}:{port};branch=z9hG4bK-burst-{i}\r\n"
                    "Max-Forwards: 70\r\n"
                    f"From: <sip:burst@{HOST}>;tag=b{i}\r\n"
                    f"To: <sip:{HOST}:{gateway.sip_port}>\r\n"
                    f"Call-ID: burst-{i}@{HOST}\r\n"
                    "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"
                ).encode(),
                (HOST, gateway.sip_port),
            )
    finally:
        gateway.process.send_signal(signal.SIGCONT)
    answered: set[str] = set()
    sock.settimeout(5)
    try:
        while len(answered) < count:
            data = sock.recv(65536).decode(errors="replace")
            found = re.search(r"Call-ID: (burst-\d+)@", data)
            if data.startswith("SIP/2.0 200") and found:
                answered.add(found.group(1))
    except TimeoutError:
        pass
    finally:
        sock.close()
    assert len(answered) == count, f"{count - len(answered)} of {count} requests lost"
