"""Thin asyncio transports for SIP: UDP and TCP on the same port (RFC 3261 section 18).

All protocol logic stays in the pure modules; this file only moves bytes:

* incoming datagrams and TCP stream frames are parsed with :func:`sip.message.parse`
  (TCP framed by Content-Length via :func:`sip.message.frame_length`);
* the top Via of every request gets ``received``/``rport`` as RFC 3261 18.2.1 and RFC 3581 say;
* responses are sent back by the Via rules (18.2.2): over the TCP connection the request came on
  while it is open; else, for UDP, to ``received``:``rport``; for TCP, a new connection to
  ``received`` and the sent-by port (5060 by default), never ``rport``;
* malformed requests are answered 400 when a response can be built, otherwise dropped; nothing
  raised by bad input escapes.

TCP is guarded by :class:`TcpLimits`: caps on connections (in all and per remote address),
deadlines for the first message, for a message once begun and for idleness, and a size cap per
message. Connections over a cap are closed at once; refusals and accept() failures at the file
descriptor limit are logged once per episode (then at most every 10 s with a count). A
connection that a live call uses is :meth:`SipTransport.retain`-ed: never closed for idleness.
RFC 5626 CRLFCRLF pings get a CRLF pong.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import math
import socket
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

__all__ = ["Source", "SipTransport", "TcpLimits", "add_received", "response_destination"]

logger = logging.getLogger(__name__)

#: Default for :attr:`TcpLimits.idle` (seconds without traffic before a connection is closed).
TCP_IDLE_TIMEOUT = 300.0
#: Overload and accept-error warnings: the first at once, then at most one line this often.
OVERLOAD_LOG_INTERVAL = 10.0
#: How long accepting pauses when accept() fails for lack of file descriptors or memory.
ACCEPT_RETRY_DELAY = 0.5
#: A peer that does not read what we write: close when this much is waiting to be sent.
MAX_WRITE_BUFFER = 1 << 20
#: Sources whose local interface address (wildcard bind, UDP) is remembered.
LOCAL_HOST_CACHE_SIZE = 4096
#: Timeout for opening a TCP connection to send a message.
TCP_CONNECT_TIMEOUT = 10.0

WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]"})
_TRANSIENT_ACCEPT_ERRNOS = frozenset(
    {errno.ECONNABORTED, errno.EAGAIN, errno.EINTR, errno.EPROTO, errno.EPERM}
)


@dataclass(frozen=True)
class TcpLimits:
    """Limits that keep TCP peers from exhausting the gateway."""

    #: Inbound connections open at once; more are closed at once.
    max_connections: int = 1000
    #: Inbound connections open at once from one remote address.
    max_per_address: int = 64
    #: A connection that has not completed its first SIP message within this is closed (s).
    first_message: float = 10.0
    #: Once a message has begun (any buffered bytes), it must complete within this (s).
    message_deadline: float = 20.0
    #: No traffic at all for this long closes a connection that no call retains (s).
    idle: float = TCP_IDLE_TIMEOUT
    #: A message (head and body) larger than this closes the connection (bytes); the parser's
    #: own cap, :data:`~sip.message.MAX_MESSAGE_SIZE`, applies above it anyway.
    max_message_size: int = MAX_MESSAGE_SIZE


@dataclass(frozen=True)
class Source:
    """Where a message came from: transport name, remote address, the TCP connection, and
    ``local_host``, the address of our interface it arrived on (None when unknown)."""

    transport: str
    host: str
    port: int
    connection: _TcpConnection | None = field(default=None, compare=False, repr=False)
    local_host: str | None = field(default=None, compare=False)

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


def response_destination(
    response: Response, reliable: bool | None = None
) -> tuple[str, int] | None:
    """Where a response goes by its top Via when no connection is at hand (18.2.2, RFC 3581).

    Unreliable (UDP): ``received`` (or the sent-by host) and ``rport`` when it has a value,
    else the sent-by port. Reliable (TCP; the request's connection is gone): a new connection to
    ``received`` (or the sent-by host) and the sent-by port, 5060 (5061 for TLS) by default; the
    ``rport`` is the old connection's ephemeral port and is not used. ``reliable`` defaults to
    what the Via's transport says.
    """
    vias = response.vias
    if not vias:
        return None
    top = vias[0]
    host = top.param("received") or top.host.strip("[]")
    via_transport = top.transport.upper()
    if reliable is None:
        reliable = via_transport != "UDP"
    default_port = 5061 if via_transport == "TLS" else 5060
    if not reliable:
        rport = top.param("rport")
        if rport and rport.isdigit():
            return (host, int(rport))
    return (host, top.port or default_port)


#: What the SIP UDP socket asks the kernel to hold. The default (about 200 KiB on Linux)
#: is some 100 datagrams of kernel accounting: a burst of INVITEs (a busy hour's start, a
#: peer's retransmissions while we are busy) overflows it and the kernel drops what comes
#: next, ACKs and BYEs included (calls then wait 32 s for an ACK that was thrown away).
#: The kernel caps the request at net.core.rmem_max.
UDP_RECEIVE_BUFFER = 8 * 1024 * 1024
UDP_RECEIVE_BUFFER_LOW = 1024 * 1024


def _grow_receive_buffer(protocol: _UdpProtocol) -> int:
    """Ask for :data:`UDP_RECEIVE_BUFFER`; returns what the kernel gave (0 if unknown)."""
    transport = protocol.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None:
        return 0
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UDP_RECEIVE_BUFFER)
        size = int(sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))
    except OSError:
        return 0
    if size < UDP_RECEIVE_BUFFER_LOW:
        logger.warning(
            "SIP UDP receive buffer is only %d KiB (raise net.core.rmem_max to %d): a burst of"
            " requests may be dropped by the kernel",
            size // 1024,
            UDP_RECEIVE_BUFFER,
        )
    return size


class _Throttled:
    """A WARNING for something that can happen thousands of times a second: the first
    occurrence is logged at once, then at most one line every ``interval`` seconds with the
    count since the last line."""

    def __init__(self, what: str, interval: float = OVERLOAD_LOG_INTERVAL) -> None:
        self.what = what
        self.interval = interval
        self.count = 0
        self.last = -math.inf

    def hit(self, now: float, detail: str) -> None:
        self.count += 1
        if now - self.last >= self.interval:
            logger.warning(
                "%s: %d time(s) since the last report (%s); next report in %.0f s at most",
                self.what,
                self.count,
                detail,
                self.interval,
            )
            self.count = 0
            self.last = now


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
        local = self.owner._udp_local_host(host, port)
        self.owner._incoming(data, Source("UDP", host, port, local_host=local))

    def error_received(self, exc: Exception) -> None:
        logger.debug("UDP error: %s", exc)


class _TcpConnection(asyncio.Protocol):
    """One TCP connection: framing, keep-alives and the deadlines of :class:`TcpLimits`."""

    def __init__(self, owner: SipTransport, *, inbound: bool) -> None:
        self.owner = owner
        self.inbound = inbound
        self.buffer = b""
        self.transport: asyncio.Transport | None = None
        self.peer: tuple[str, int] = ("", 0)
        self.local_host: str | None = None
        #: Keys of this connection in the owner's address map.
        self.keys: set[tuple[str, int]] = set()
        #: Reference count of live calls using this connection (no idle close while > 0).
        self.retained = 0
        # Our own connections start with a message of ours: no first-message deadline.
        self.first_done = not inbound
        self.opened_at = 0.0
        self.last_activity = 0.0
        self.message_started: float | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    # -- life --------------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self.loop = asyncio.get_running_loop()
        peer = transport.get_extra_info("peername")
        self.peer = (str(peer[0]), int(peer[1]))
        sockname = transport.get_extra_info("sockname")
        self.local_host = str(sockname[0]) if sockname else None
        self.opened_at = self.last_activity = self.loop.time()
        self.owner._connection_opened(self)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner._connection_closed(self)
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.transport = None

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    @property
    def open(self) -> bool:
        return self.transport is not None and not self.transport.is_closing()

    # -- deadlines ---------------------------------------------------------------------------
    def _deadline(self) -> tuple[float, str] | None:
        limits = self.owner.limits
        deadlines: list[tuple[float, str]] = []
        if not self.first_done:
            deadlines.append((self.opened_at + limits.first_message, "no first message in time"))
        if self.message_started is not None:
            deadlines.append(
                (self.message_started + limits.message_deadline, "message not completed in time")
            )
        if self.retained == 0:
            deadlines.append((self.last_activity + limits.idle, "idle"))
        return min(deadlines) if deadlines else None

    def _arm(self) -> None:
        """(Re)schedule the check of the nearest deadline. Traffic only moves deadlines later:
        a timer that fires too early re-arms itself, so most packets cost no timer at all."""
        if self.transport is None or self.loop is None:
            return
        deadline = self._deadline()
        if deadline is None:
            if self.timer is not None:
                self.timer.cancel()
                self.timer = None
            return
        when = deadline[0]
        if self.timer is not None and not self.timer.cancelled() and self.timer.when() <= when:
            return
        if self.timer is not None:
            self.timer.cancel()
        self.timer = self.loop.call_at(when, self._expire)

    def _expire(self) -> None:
        self.timer = None
        deadline = self._deadline()
        if deadline is None or self.loop is None:
            return
        if self.loop.time() + 0.001 >= deadline[0]:
            logger.info("closing TCP %s:%d: %s", self.peer[0], self.peer[1], deadline[1])
            self.close()
            return
        self._arm()

    def retain(self) -> None:
        self.retained += 1
        self._arm()

    def release(self) -> None:
        if self.retained <= 0:
            return
        self.retained -= 1
        if self.retained == 0 and self.loop is not None:
            self.last_activity = max(self.last_activity, self.loop.time())  # idle starts now
            self._arm()

    # -- bytes -------------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(data)
        if self.loop is not None:
            self.last_activity = self.loop.time()
        if self.transport.get_write_buffer_size() > MAX_WRITE_BUFFER:
            logger.info("closing TCP %s:%d: peer does not read", *self.peer)
            self.transport.abort()

    def data_received(self, data: bytes) -> None:
        assert self.loop is not None
        now = self.loop.time()
        self.last_activity = now
        self.buffer += data
        limit = self.owner.limits.max_message_size
        while self.open:
            stripped = self.buffer.lstrip(b"\r\n")
            lead = self.buffer[: len(self.buffer) - len(stripped)]
            if b"\r\n\r\n" in lead:
                self.write(b"\r\n")  # RFC 5626 3.5.1: a keep-alive ping gets a pong
                lead = b""
            if not stripped:
                # Only CRLFs: keep a possible half ping (CRLFCRLF split across reads).
                self.buffer = lead[-3:]
                self.message_started = None
                break
            self.buffer = stripped  # keep-alive CRLFs between messages are dropped
            if self.message_started is None:
                self.message_started = now
            try:
                length = frame_length(self.buffer)
            except SipParseError as exc:
                logger.info("closing TCP %s:%d: %s", self.peer[0], self.peer[1], exc)
                self.close()
                return
            if length is not None and length > limit:
                logger.info("closing TCP %s:%d: message of %d bytes", *self.peer, length)
                self.close()
                return
            if length is None:
                if len(self.buffer) > limit:
                    logger.info("closing TCP %s:%d: message too large", *self.peer)
                    self.close()
                    return
                break
            frame, self.buffer = self.buffer[:length], self.buffer[length:]
            self.first_done = True
            self.message_started = None
            source = Source("TCP", self.peer[0], self.peer[1], self, local_host=self.local_host)
            self.owner._incoming(frame, source)
        self._arm()


class SipTransport:
    """SIP over UDP and TCP on one host and port.

    ``on_message(message, source)`` is called for every well-formed message; requests carry
    ``received``/``rport`` in their top Via already. ``limits`` guard TCP (:class:`TcpLimits`).
    """

    def __init__(
        self,
        host: str,
        port: int,
        on_message: MessageHandler,
        *,
        limits: TcpLimits = TcpLimits(),
    ) -> None:
        self.host = host
        self.port = port
        self.on_message = on_message
        self.limits = limits
        self._udp: _UdpProtocol | None = None
        self._listener: socket.socket | None = None
        self._accept_task: asyncio.Task[None] | None = None
        #: Open connections by remote address (and by the address we dialled).
        self._connections: dict[tuple[str, int], _TcpConnection] = {}
        self._inbound: set[_TcpConnection] = set()
        self._per_host: dict[str, int] = {}
        self._connecting: dict[tuple[str, int], list[bytes]] = {}
        self._local_hosts: dict[str, str] = {}
        self._refusals = _Throttled("TCP overload, connections refused")
        self._accept_errors = _Throttled("TCP accept() failing, accepting paused")

    @property
    def wildcard(self) -> bool:
        return self.host in WILDCARD_HOSTS

    def bound(self) -> list[tuple[str, str, int]]:
        """The transports listening now, as ``("udp" | "tcp", host, port)``."""
        found: list[tuple[str, str, int]] = []
        udp = self._udp.transport if self._udp is not None else None
        if udp is not None and not udp.is_closing():
            name = udp.get_extra_info("sockname")
            if name:
                found.append(("udp", str(name[0]), int(name[1])))
        if self._listener is not None and self._listener.fileno() >= 0:
            name = self._listener.getsockname()
            found.append(("tcp", str(name[0]), int(name[1])))
        return found

    #: bytes the kernel holds for the UDP socket (set by :meth:`start`)
    udp_receive_buffer = 0

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        # TCP first: with port 0 it picks the port, and UDP then binds the same number
        # (with port 0, a few tries in case that number is taken for UDP).
        for attempt in range(20 if self.port == 0 else 1):
            listener = self._listen(self.port)
            port = int(listener.getsockname()[1])
            try:
                _, protocol = await loop.create_datagram_endpoint(
                    lambda: _UdpProtocol(self), local_addr=(self.host, port)
                )
            except OSError:
                listener.close()
                if attempt == 19 or self.port != 0:
                    raise
                continue
            self._listener, self._udp, self.port = listener, protocol, port
            break
        assert self._listener is not None and self._udp is not None
        self.udp_receive_buffer = _grow_receive_buffer(self._udp)
        self._accept_task = loop.create_task(self._accept_loop(self._listener))
        logger.info(
            "SIP listening on %s:%d (UDP and TCP; UDP receive buffer %d KiB)",
            self.host,
            self.port,
            self.udp_receive_buffer // 1024,
        )

    def _listen(self, port: int) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.create_server((self.host.strip("[]"), port), family=family, backlog=128)
        sock.setblocking(False)
        return sock

    async def stop(self) -> None:
        if self._accept_task is not None:
            self._accept_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._accept_task
            self._accept_task = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self._udp and self._udp.transport:
            self._udp.transport.close()
        for conn in list(self._connections.values()) + list(self._inbound):
            conn.close()

    # -- TCP connections ---------------------------------------------------------------------
    async def _accept_loop(self, listener: socket.socket) -> None:
        """Accept with the limits applied; out of file descriptors, pause (and log once per
        episode) instead of asyncio's traceback per failed accept()."""
        loop = asyncio.get_running_loop()
        while True:
            try:
                sock, addr = await loop.sock_accept(listener)
            except OSError as exc:
                if listener.fileno() < 0:
                    return
                if exc.errno in _TRANSIENT_ACCEPT_ERRNOS:
                    continue
                self._accept_errors.hit(loop.time(), f"{exc.strerror or exc}")
                await asyncio.sleep(ACCEPT_RETRY_DELAY)
                continue
            host = str(addr[0])
            reason = None
            if len(self._inbound) >= self.limits.max_connections:
                reason = f"max_connections={self.limits.max_connections}, last from {host}"
            elif self._per_host.get(host, 0) >= self.limits.max_per_address:
                reason = f"max_per_address={self.limits.max_per_address} for {host}"
            if reason is not None:
                sock.close()
                self._refusals.hit(loop.time(), reason)
                continue
            try:
                await loop.connect_accepted_socket(lambda: _TcpConnection(self, inbound=True), sock)
            except OSError as exc:
                logger.debug("TCP connection from %s failed at once: %s", host, exc)
                sock.close()

    def _connection_opened(self, conn: _TcpConnection) -> None:
        self._register(conn, conn.peer)
        if conn.inbound:
            self._inbound.add(conn)
            host = conn.peer[0]
            self._per_host[host] = self._per_host.get(host, 0) + 1

    def _register(self, conn: _TcpConnection, key: tuple[str, int]) -> None:
        self._connections[key] = conn
        conn.keys.add(key)

    def _connection_closed(self, conn: _TcpConnection) -> None:
        for key in conn.keys:
            if self._connections.get(key) is conn:
                del self._connections[key]
        conn.keys.clear()
        if conn in self._inbound:
            self._inbound.discard(conn)
            host = conn.peer[0]
            left = self._per_host.get(host, 0) - 1
            if left > 0:
                self._per_host[host] = left
            else:
                self._per_host.pop(host, None)

    def retain(self, source: Source) -> None:
        """A live call uses the connection of ``source`` (TCP): never close it for idleness
        until as many :meth:`release` calls. Nothing for UDP sources."""
        if source.connection is not None:
            source.connection.retain()

    def release(self, source: Source) -> None:
        """Undo one :meth:`retain`; at zero the idle limit applies again, counted from now."""
        if source.connection is not None:
            source.connection.release()

    def _udp_local_host(self, host: str, port: int) -> str | None:
        """Our address as seen by ``host``: the bound host, or on a wildcard bind the source
        address the routing table picks for ``host`` (cached)."""
        if not self.wildcard:
            return self.host
        cached = self._local_hosts.get(host)
        if cached is not None:
            return cached
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            with socket.socket(family, socket.SOCK_DGRAM) as probe:
                probe.connect((host, port or 9))  # no packet: only a route lookup
                local = str(probe.getsockname()[0])
        except OSError as exc:
            logger.debug("no route to %s: %s", host, exc)
            return None
        if len(self._local_hosts) >= LOCAL_HOST_CACHE_SIZE:
            self._local_hosts.pop(next(iter(self._local_hosts)))
        self._local_hosts[host] = local
        return local

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
        """Send a response by the Via rules, over the request's connection when it is open;
        a TCP response whose connection is gone goes on a new connection to ``received`` and
        the sent-by port (RFC 3261 18.2.2)."""
        data = serialise(response)
        if source is not None and source.connection is not None and source.connection.open:
            source.connection.write(data)
            return
        try:
            dest = response_destination(response, source.reliable if source else None)
            via_transport = response.vias[0].transport.upper() if dest is not None else "UDP"
        except SipParseError:
            dest, via_transport = None, "UDP"
        if dest is None:
            if source is not None:
                self._reply(data, source)
            return
        if source is not None:
            transport = source.transport
        else:
            transport = "TCP" if via_transport == "TCP" else "UDP"
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
        pending = self._connecting.get(dest)
        if pending is not None:  # a connection to dest is being opened: send on it
            pending.append(data)
            return
        self._connecting[dest] = [data]
        asyncio.get_running_loop().create_task(self._connect_and_send(dest))

    async def _connect_and_send(self, dest: tuple[str, int]) -> None:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(lambda: _TcpConnection(self, inbound=False), *dest),
                TCP_CONNECT_TIMEOUT,
            )
        except OSError as exc:  # TimeoutError included
            self._connecting.pop(dest, None)
            logger.info("TCP connect to %s:%d failed: %s", dest[0], dest[1], exc)
            return
        if conn.open:
            self._register(conn, dest)
        for data in self._connecting.pop(dest, []):
            conn.write(data)
