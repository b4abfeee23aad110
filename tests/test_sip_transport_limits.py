"""The TCP/UDP transport under abuse and over time, on real sockets on 127.0.0.1.

Connection caps and deadlines (first message, message in progress, idle), retained
connections for live calls, RFC 5626 keep-alives, RFC 3261 18.2.2 response routing when the
request's connection is gone, ``Source.local_host`` on a wildcard bind, and accept() at the
file descriptor limit.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from sip.dialog import CallEnded, CallEvent, IncomingCall
from sip.endpoint import SipEndpoint
from sip.message import Message, Request, Response, make_response, parse, serialise
from sip.transport import SipTransport, Source, TcpLimits, response_destination

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent


def options(via_host: str = HOST, via_port: int = 5060, transport: str = "TCP") -> bytes:
    return (
        f"OPTIONS sip:gw@{HOST} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} {via_host}:{via_port};branch=z9hG4bK-{os.urandom(4).hex()};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:a@{HOST}>;tag=1\r\n"
        f"To: <sip:gw@{HOST}>\r\n"
        f"Call-ID: {os.urandom(6).hex()}\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


class Sink:
    def __init__(self) -> None:
        self.messages: list[tuple[Message, Source]] = []
        self.arrived = asyncio.Event()

    def __call__(self, message: Message, source: Source) -> None:
        self.messages.append((message, source))
        self.arrived.set()

    async def next(self, wait: float = 3.0) -> tuple[Message, Source]:
        while not self.messages:
            self.arrived.clear()
            await asyncio.wait_for(self.arrived.wait(), wait)
        return self.messages.pop(0)


async def started(limits: TcpLimits | None = None, host: str = HOST) -> tuple[SipTransport, Sink]:
    sink = Sink()
    transport = (
        SipTransport(host, 0, sink)
        if limits is None
        else SipTransport(host, 0, sink, limits=limits)
    )
    await transport.start()
    return transport, sink


@pytest.fixture
async def stack() -> AsyncIterator[list[SipTransport]]:
    transports: list[SipTransport] = []
    yield transports
    for t in transports:
        await t.stop()


async def is_closed(reader: asyncio.StreamReader, within: float) -> bool:
    """True when the peer closes (EOF or reset) within ``within`` seconds."""
    try:
        while True:
            data = await asyncio.wait_for(reader.read(4096), within)
            if not data:
                return True
    except TimeoutError:  # before OSError: TimeoutError is one
        return False
    except (ConnectionError, OSError):
        return True


async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(HOST, port)


# -- caps -------------------------------------------------------------------------------------


async def test_connections_over_the_cap_are_closed_at_once_with_one_warning(
    stack: list[SipTransport], caplog: pytest.LogCaptureFixture
) -> None:
    transport, sink = await started(TcpLimits(max_connections=3, max_per_address=100))
    stack.append(transport)
    kept = [await connect(transport.port) for _ in range(3)]
    await asyncio.sleep(0.1)
    caplog.set_level(logging.INFO, logger="sip.transport")
    refused = [await connect(transport.port) for _ in range(20)]
    for reader, _ in refused:
        assert await is_closed(reader, 2.0)
    for reader, _ in kept:
        assert not await is_closed(reader, 0.05)
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in warnings]
    # A kept connection still works.
    kept[0][1].write(options())
    message, _ = await sink.next()
    assert isinstance(message, Request)
    for _, writer in kept + refused:
        writer.close()


async def test_per_address_cap(stack: list[SipTransport]) -> None:
    transport, _ = await started(TcpLimits(max_connections=100, max_per_address=2))
    stack.append(transport)
    kept = [await connect(transport.port) for _ in range(2)]
    await asyncio.sleep(0.1)
    reader, writer = await connect(transport.port)
    assert await is_closed(reader, 2.0)
    for r, _ in kept:
        assert not await is_closed(r, 0.05)
    # Once one goes, another is allowed.
    kept[0][1].close()
    await asyncio.sleep(0.2)
    r3, w3 = await connect(transport.port)
    assert not await is_closed(r3, 0.3)
    for _, w in [*kept, (reader, writer), (r3, w3)]:
        w.close()


# -- deadlines --------------------------------------------------------------------------------


async def test_silent_connection_is_closed_after_first_message_deadline(
    stack: list[SipTransport],
) -> None:
    transport, _ = await started(TcpLimits(first_message=0.5))
    stack.append(transport)
    reader, writer = await connect(transport.port)
    assert not await is_closed(reader, 0.2)
    assert await is_closed(reader, 2.0)
    writer.close()


async def test_pings_alone_do_not_count_as_a_first_message(stack: list[SipTransport]) -> None:
    transport, _ = await started(TcpLimits(first_message=0.6))
    stack.append(transport)
    reader, writer = await connect(transport.port)
    for _ in range(8):
        writer.write(b"\r\n\r\n")
        await asyncio.sleep(0.15)
        if writer.is_closing() or reader.at_eof():
            break
    assert await is_closed(reader, 1.5)
    writer.close()


async def test_slow_trickle_is_closed_after_message_deadline(stack: list[SipTransport]) -> None:
    transport, sink = await started(TcpLimits(first_message=30, message_deadline=0.6, idle=30))
    stack.append(transport)
    reader, writer = await connect(transport.port)
    writer.write(options())
    await sink.next()
    data = options()
    closed = False
    loop = asyncio.get_running_loop()
    start = loop.time()
    for i in range(len(data) - 1):  # one byte per 50 ms: never completes in time
        writer.write(data[i : i + 1])
        if await is_closed(reader, 0.05):
            closed = True
            break
    assert closed
    assert loop.time() - start < 2.0
    writer.close()


async def test_idle_connection_is_closed(stack: list[SipTransport]) -> None:
    transport, sink = await started(TcpLimits(idle=0.5))
    stack.append(transport)
    reader, writer = await connect(transport.port)
    writer.write(options())
    await sink.next()
    assert await is_closed(reader, 2.0)
    writer.close()


async def test_oversized_message_closes_the_connection(stack: list[SipTransport]) -> None:
    transport, sink = await started()
    stack.append(transport)
    reader, writer = await connect(transport.port)
    head = options().replace(b"Content-Length: 0", b"Content-Length: 100000")
    writer.write(head)
    assert await is_closed(reader, 2.0)
    writer.close()
    reader, writer = await connect(transport.port)
    writer.write(b"OPTIONS sip:x SIP/2.0\r\nX: " + b"a" * 70000)
    assert await is_closed(reader, 2.0)
    writer.close()
    assert not sink.messages


# -- keep-alives and retained connections -----------------------------------------------------


async def test_crlf_ping_gets_a_pong_even_when_split(stack: list[SipTransport]) -> None:
    transport, sink = await started()
    stack.append(transport)
    reader, writer = await connect(transport.port)
    writer.write(b"\r\n\r\n")
    assert await asyncio.wait_for(reader.readexactly(2), 2.0) == b"\r\n"
    writer.write(b"\r\n")
    await writer.drain()
    await asyncio.sleep(0.1)
    writer.write(b"\r\n")
    assert await asyncio.wait_for(reader.readexactly(2), 2.0) == b"\r\n"
    writer.write(options())
    message, _ = await sink.next()
    assert isinstance(message, Request) and message.method == "OPTIONS"
    writer.close()


async def test_retained_connection_outlives_idle_limit(stack: list[SipTransport]) -> None:
    transport, sink = await started(TcpLimits(idle=0.6))
    stack.append(transport)
    r1, w1 = await connect(transport.port)
    r2, w2 = await connect(transport.port)
    w1.write(options())
    _, kept_source = await sink.next()
    w2.write(options())
    await sink.next()
    transport.retain(kept_source)
    transport.retain(kept_source)
    assert await is_closed(r2, 2.0)
    assert not await is_closed(r1, 0.3)
    transport.release(kept_source)
    assert not await is_closed(r1, 0.8)  # one reference left
    transport.release(kept_source)
    assert await is_closed(r1, 2.0)  # idle timer runs again
    w1.close()
    w2.close()


# -- response routing -------------------------------------------------------------------------


def test_response_destination_udp_uses_rport() -> None:
    raw = options(via_port=5070, transport="UDP").replace(
        b";rport", b";rport=40000;received=10.0.0.9"
    )
    request = parse(raw)
    assert isinstance(request, Request)
    response = make_response(request, 200)
    assert response_destination(response) == ("10.0.0.9", 40000)


def test_response_destination_tcp_uses_sent_by_port() -> None:
    raw = options(via_port=5070).replace(b";rport", b";rport=40000;received=10.0.0.9")
    request = parse(raw)
    assert isinstance(request, Request)
    response = make_response(request, 200)
    assert response_destination(response) == ("10.0.0.9", 5070)
    raw = (
        options(via_port=5070)
        .replace(b":5070", b"")
        .replace(b";rport", b";rport=40000;received=10.0.0.9")
    )
    request = parse(raw)
    assert isinstance(request, Request)
    assert response_destination(make_response(request, 200)) == ("10.0.0.9", 5060)


async def test_response_over_closed_tcp_goes_to_sent_by_port(stack: list[SipTransport]) -> None:
    transport, sink = await started()
    stack.append(transport)
    got: asyncio.Queue[bytes] = asyncio.Queue()

    async def client_listener(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        got.put_nowait(await reader.read(65536))
        writer.close()

    listener = await asyncio.start_server(client_listener, HOST, 0)
    listen_port = listener.sockets[0].getsockname()[1]
    try:
        reader, writer = await connect(transport.port)
        writer.write(options(via_port=listen_port))
        request, source = await sink.next()
        assert isinstance(request, Request)
        assert request.top_via.param("rport") == str(writer.get_extra_info("sockname")[1])
        writer.close()
        await writer.wait_closed()
        await asyncio.sleep(0.2)
        assert source.connection is not None and not source.connection.open
        transport.send_response(make_response(request, 200), source)
        data = await asyncio.wait_for(got.get(), 3.0)
        assert data.startswith(b"SIP/2.0 200")
    finally:
        listener.close()
        await listener.wait_closed()


# -- local_host on a wildcard bind ------------------------------------------------------------


async def test_wildcard_bind_reports_interface_address(stack: list[SipTransport]) -> None:
    transport, sink = await started(host="0.0.0.0")
    stack.append(transport)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        udp.sendto(options(transport="UDP"), (HOST, transport.port))
        message, source = await sink.next()
        assert source.transport == "UDP"
        assert source.local_host == HOST
    finally:
        udp.close()
    reader, writer = await connect(transport.port)
    writer.write(options())
    message, source = await sink.next()
    assert source.transport == "TCP"
    assert source.local_host == HOST
    writer.close()


async def test_specific_bind_reports_bound_host_and_local_host_not_in_equality(
    stack: list[SipTransport],
) -> None:
    transport, sink = await started()
    stack.append(transport)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        udp.sendto(options(transport="UDP"), (HOST, transport.port))
        _, source = await sink.next()
    finally:
        udp.close()
    assert source.local_host == HOST
    assert source == Source("UDP", source.host, source.port)


# -- accept() at the file descriptor limit ----------------------------------------------------


SERVER_SCRIPT = textwrap.dedent(
    """
    import asyncio, logging, resource, sys
    from sip.transport import SipTransport

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s %(message)s")

    async def main():
        resource.setrlimit(resource.RLIMIT_NOFILE, (40, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
        t = SipTransport("127.0.0.1", 0, lambda m, s: None)
        await t.start()
        print(t.port, flush=True)
        await asyncio.sleep(3.0)
        await t.stop()
        print("stopped", flush=True)

    asyncio.run(main())
    """
)


def test_accept_at_fd_limit_does_not_flood_the_log() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVER_SCRIPT],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    clients: list[socket.socket] = []
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        for _ in range(80):
            s = socket.create_connection((HOST, port), timeout=2)
            clients.append(s)
        out, err = proc.communicate(timeout=15)
    finally:
        for s in clients:
            s.close()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert "stopped" in out, err
    assert "Traceback" not in err, err
    assert "out of system resource" not in err, err
    accept_lines = [line for line in err.splitlines() if "accept" in line.lower()]
    assert 1 <= len(accept_lines) <= 2, err


# -- the endpoint retains the connection of a live call ---------------------------------------


def invite(local_port: int, listen_port: int) -> bytes:
    sdp = (
        b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
        b"m=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
    )
    head = (
        f"INVITE sip:room@{HOST}:{local_port} SIP/2.0\r\n"
        f"Via: SIP/2.0/TCP {HOST}:{listen_port};branch=z9hG4bK-{os.urandom(4).hex()};rport\r\n"
        "Max-Forwards: 70\r\n"
        f"From: <sip:caller@{HOST}>;tag=caller1\r\n"
        f"To: <sip:room@{HOST}>\r\n"
        f"Call-ID: {os.urandom(6).hex()}\r\n"
        "CSeq: 1 INVITE\r\n"
        f"Contact: <sip:caller@{HOST}:{listen_port};transport=tcp>\r\n"
        "Content-Type: application/sdp\r\n"
        f"Content-Length: {len(sdp)}\r\n\r\n"
    ).encode()
    return head + sdp


async def read_message(reader: asyncio.StreamReader, wait: float = 3.0) -> Message:
    while True:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), wait)
        if head.strip(b"\r\n"):
            break
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    body = await reader.readexactly(length) if length else b""
    return parse(head + body)


async def test_endpoint_keeps_the_tcp_connection_of_a_live_call() -> None:
    events: list[CallEvent] = []
    endpoint: SipEndpoint

    def on_event(event: CallEvent) -> None:
        events.append(event)
        if isinstance(event, IncomingCall):
            endpoint.answer(event.call, event.offer or "")  # type: ignore[arg-type]

    endpoint = SipEndpoint(HOST, 0, on_event, tcp_limits=TcpLimits(idle=0.6, first_message=0.6))
    await endpoint.start()
    try:
        reader, writer = await connect(endpoint.port)
        writer.write(invite(endpoint.port, 5999))
        while True:
            resp = await read_message(reader)
            assert isinstance(resp, Response)
            if resp.status >= 200:
                break
        assert resp.status == 200
        ack = (
            f"ACK sip:room@{HOST}:{endpoint.port} SIP/2.0\r\n"
            f"Via: SIP/2.0/TCP {HOST}:5999;branch=z9hG4bK-ack{os.urandom(3).hex()};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: {resp.headers.get('From')}\r\n"
            f"To: {resp.headers.get('To')}\r\n"
            f"Call-ID: {resp.call_id}\r\n"
            "CSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"
        ).encode()
        writer.write(ack)
        await asyncio.sleep(1.5)  # well past the idle limit
        call = next(e.call for e in events if isinstance(e, IncomingCall))
        endpoint.hangup(call)
        bye = await read_message(reader)
        assert isinstance(bye, Request) and bye.method == "BYE"
        ok = make_response(bye, 200)
        writer.write(serialise(ok))
        await asyncio.sleep(0.2)
        assert any(isinstance(e, CallEnded) for e in events) or call.ended
        # Released: the idle limit applies again.
        assert await is_closed(reader, 3.0)
        writer.close()
    finally:
        await endpoint.stop()
