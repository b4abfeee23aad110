"""Thin asyncio transports for SIP: UDP and TCP on the same port (RFC 3261 section 18).

All protocol logic stays in the pure modules; this file only moves bytes:

* incoming datagrams and TCP stream frames are parsed with :func:`sip.message.parse`
  (TCP framed by Content-Length via :func:`sip.message.frame_length`);
* the top Via of every request gets ``received``/``rport`` as RFC 3261 18.2.1 and RFC 3581 say;
* responses are sent back by the Via rules (18.2.2): over the TCP connection the request came on
  while it is open, else to ``received``:``rport`` (or the sent-by port);
* malformed requests are answered 400 when a response can be built, otherwise dropped; nothing
  raised by bad input escapes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import cast

from sip.errors import SipParseError
from sip.message import (
    MAX_MESSAGE_SIZE,
    Message,
    Request,
    Response,
    frame_length,
    parse,
    parse_error_response,
    serialise,
)

__all__ = ["Source", "SipTransport", "add_received"]

logger = logging.getLogger(__name__)

#: Keep TCP connections this long without traffic before closing them (seconds).
TCP_IDLE_TIMEOUT = 300.0


@dataclass(frozen=True)
class Source:
    """Where a message came from: transport name, remote address, and the TCP connection."""

    transport: str
    host: str
    port: int
    connection: _TcpConnection | None = field(default=None, compare=False, repr=False)

    @property
    def address(self) -> tuple[str, int]:
        return (self.host, self.port)

    @property
    def reliable(self) -> bool:
        return self.transport != "UDP"


MessageHandler = Callable[[Message, Source], None]


def add_received(request: Request, source: Source) -> Request:
    """Stamp the top Via with ``received`` and ``rport`` (RFC 3261 18.2.1, RFC 3581 4)."""
    vias = request.vias
    if not vias:
        return request
    top = vias[0]
    params: dict[str, str] = {}
    if top.host.strip("[]") != source.host:
        params["received"] = source.host
    if any(name.lower() == "rport" for name, _ in top.params):
        params["rport"] = str(source.port)
        params.setdefault("received", source.host)
    if not params:
        return request
    new_top = top.with_params(**params)
    headers = request.headers.copy()
    values = headers.get_all("Via")
    headers.remove("Via")
    headers.add("Via", str(new_top))
    for value in values[1:]:
        headers.add("Via", value)
    return Request(request.method, request.uri, headers, request.body, request.version)


def response_destination(response: Response) -> tuple[str, int] | None:
    """Where a response goes by its top Via when no connection is at hand (18.2.2, RFC 3581)."""
    vias = response.vias
    if not vias:
        return None
    top = vias[0]
    host = top.param("received") or top.host.strip("[]")
    rport = top.param("rport")
    if rport and rport.isdigit():
        return (host, int(rport))
    return (host, top.port or 5060)


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, owner: SipTransport) -> None:
        self.owner = owner
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Python 3.11's selector loop gives a _SelectorDatagramTransport that is not an
        # asyncio.DatagramTransport subclass: no isinstance check here.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        host, port = str(addr[0]), int(addr[1])
        if not data.strip(b"\r\n"):
            return  # CRLF keep-alive (RFC 5626 3.5.1)
        self.owner._incoming(data, Source("UDP", host, port))

    def error_received(self, exc: Exception) -> None:
        logger.debug("UDP error: %s", exc)


class _TcpConnection(asyncio.Protocol):
    def __init__(self, owner: SipTransport) -> None:
        self.owner = owner
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.peer: tuple[str, int] = ("", 0)
        self.idle: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        peer = transport.get_extra_info("peername")
        self.peer = (str(peer[0]), int(peer[1]))
        self.owner._connections[self.peer] = self
        self._touch()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.owner._connections.get(self.peer) is self:
            del self.owner._connections[self.peer]
        if self.idle:
            self.idle.cancel()
        self.transport = None

    def _touch(self) -> None:
        if self.idle:
            self.idle.cancel()
        loop = asyncio.get_running_loop()
        self.idle = loop.call_later(TCP_IDLE_TIMEOUT, self.close)

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    @property
    def open(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    def write(self, data: bytes) -> None:
        if self.transport is not None:
            self.transport.write(data)
            self._touch()

    def data_received(self, data: bytes) -> None:
        self._touch()
        self.buffer += data
        while True:
            if self.buffer.startswith(b"\r\n\r\n"):
                self.write(b"\r\n")  # RFC 5626 3.5.1 keep-alive ping gets a pong
            self.buffer = self.buffer.lstrip(b"\r\n")  # keep-alive CRLFs between messages
            if not self.buffer:
                return
            try:
                length = frame_length(self.buffer)
            except SipParseError as exc:
                logger.info("closing TCP %s:%d: %s", *self.peer, exc)
                self.close()
                return
            if length is None:
                if len(self.buffer) > MAX_MESSAGE_SIZE:
                    self.close()
                return
            frame, self.buffer = self.buffer[:length], self.buffer[length:]
            self.owner._incoming(frame, Source("TCP", self.peer[0], self.peer[1], self))


class SipTransport:
    """SIP over UDP and TCP on one host and port.

    ``on_message(message, source)`` is called for every well-formed message; requests carry
    ``received``/``rport`` in their top Via already.
    """

    def __init__(self, host: str, port: int, on_message: MessageHandler) -> None:
        self.host = host
        self.port = port
        self.on_message = on_message
        self._udp: _UdpProtocol | None = None
        self._tcp_server: asyncio.Server | None = None
        self._connections: dict[tuple[str, int], _TcpConnection] = {}

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        # TCP first: with port 0 it picks the port, and UDP then binds the same number
        # (with port 0, a few tries in case that number is taken for UDP).
        for attempt in range(20 if self.port == 0 else 1):
            server = await loop.create_server(
                lambda: _TcpConnection(self), self.host, self.port, reuse_address=True
            )
            port = int(server.sockets[0].getsockname()[1])
            try:
                _, protocol = await loop.create_datagram_endpoint(
                    lambda: _UdpProtocol(self), local_addr=(self.host, port)
                )
            except OSError:
                server.close()
                await server.wait_closed()
                if attempt == 19 or self.port != 0:
                    raise
                continue
            self._tcp_server, self._udp, self.port = server, protocol, port
            break
        logger.info("SIP listening on %s:%d (UDP and TCP)", self.host, self.port)

    async def stop(self) -> None:
        if self._udp and self._udp.transport:
            self._udp.transport.close()
        for conn in list(self._connections.values()):
            conn.close()
        if self._tcp_server is not None:
            self._tcp_server.close()
            await self._tcp_server.wait_closed()

    # -- receiving -------------------------------------------------------------------------
    def _incoming(self, data: bytes, source: Source) -> None:
        try:
            message = parse(data)
        except SipParseError as exc:
            logger.info("malformed SIP from %s:%d: %s", source.host, source.port, exc.reason)
            response = parse_error_response(data, exc)
            if response is not None:
                # The request's Via was not checked (nor stamped with received/rport): the
                # answer goes back to where the bytes came from, never to the Via's host.
                self._reply(serialise(response), source)
            return
        if isinstance(message, Request):
            message = add_received(message, source)
        try:
            self.on_message(message, source)
        except Exception:  # a bug above must not take the transport down
            logger.exception("error handling SIP message from %s:%d", source.host, source.port)

    # -- sending ---------------------------------------------------------------------------
    def _reply(self, data: bytes, source: Source) -> None:
        if source.connection is not None:
            if source.connection.open:
                source.connection.write(data)
        else:
            self.send_bytes(data, source.address, source.transport)

    def send_response(self, response: Response, source: Source | None = None) -> None:
        """Send a response by the Via rules, over the request's connection when it is open."""
        data = serialise(response)
        if source is not None and source.connection is not None and source.connection.open:
            source.connection.write(data)
            return
        try:
            dest = response_destination(response)
        except SipParseError:
            dest = None
        if dest is None:
            if source is not None:
                self._reply(data, source)
            return
        transport = source.transport if source is not None else "UDP"
        self.send_bytes(data, dest, transport)

    def send_request(self, request: Request, dest: tuple[str, int], transport: str) -> None:
        self.send_bytes(serialise(request), dest, transport)

    def send_bytes(self, data: bytes, dest: tuple[str, int], transport: str) -> None:
        if transport == "UDP":
            if self._udp and self._udp.transport:
                try:
                    self._udp.transport.sendto(data, dest)
                except (OSError, ValueError) as exc:  # e.g. a host name that does not resolve
                    logger.info("UDP send to %s:%s failed: %s", dest[0], dest[1], exc)
            return
        conn = self._connections.get(dest)
        if conn is not None and conn.open:
            conn.write(data)
            return
        asyncio.get_running_loop().create_task(self._connect_and_send(data, dest))

    async def _connect_and_send(self, data: bytes, dest: tuple[str, int]) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await loop.create_connection(lambda: _TcpConnection(self), *dest)
        except OSError as exc:
            logger.info("TCP connect to %s:%d failed: %s", dest[0], dest[1], exc)
            return
        conn.write(data)
