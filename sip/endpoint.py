"""The asyncio driver of the pure SIP user agent: sockets, timers and nothing else.

:class:`SipEndpoint` owns a :class:`~sip.transport.SipTransport` (UDP and TCP on one port) and a
:class:`~sip.useragent.UserAgent`. It feeds every parsed message and every fired timer to the user
agent and carries out what comes back: sends, timer starts and cancels, and call events, which go
to the application's ``on_event`` callback after the sends of the same step.

The application answers through the endpoint's commands (``answer``, ``reject``, ``hangup``,
``accept_offer``, ...), which run at once; it never touches the user agent's state.

The TCP connection a call runs on is retained while the call lives (from ``IncomingCall``, or
for our own calls from the first response that came on a connection) and released when it ends,
so that connection is not closed for idleness under a long call.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace

from sip.auth import Credentials
from sip.dialog import LINGER, Call, CallConfig, CallEvent, CallKey, IncomingCall, UacCall, UasCall
from sip.message import NameAddr, Request, Response, SipUri
from sip.transaction import CancelTimer, Send, StartTimer
from sip.transport import SipTransport, Source, TcpLimits
from sip.useragent import Output, UserAgent

__all__ = ["SipEndpoint"]

logger = logging.getLogger(__name__)

EventHandler = Callable[[CallEvent], None]


class SipEndpoint:
    def __init__(
        self,
        host: str,
        port: int,
        on_event: EventHandler,
        *,
        config: CallConfig | None = None,
        tcp_limits: TcpLimits | None = None,
    ) -> None:
        self.transport = SipTransport(
            host, port, self._on_message, limits=tcp_limits or TcpLimits()
        )
        self.on_event = on_event
        self._config = config
        self.ua: UserAgent | None = None
        self._timers: dict[tuple[object, str], asyncio.TimerHandle] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        #: The TCP source each live call retains (released when the call ends).
        self._retained: dict[CallKey, Source] = {}

    @property
    def port(self) -> int:
        return self.transport.port

    @property
    def host(self) -> str:
        return self.transport.host

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self.transport.start()
        # The address calls write in Via and Contact is where we are bound (port 0: the pick).
        self.ua = UserAgent(
            replace(
                self._config or CallConfig(),
                local_host=self.transport.host,
                local_port=self.transport.port,
            )
        )

    async def stop(self) -> None:
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        for source in self._retained.values():
            self.transport.release(source)
        self._retained.clear()
        await self.transport.stop()

    # -- time --------------------------------------------------------------------------------
    def _now(self) -> float:
        assert self._loop is not None
        return self._loop.time()

    def _agent(self) -> UserAgent:
        if self.ua is None:
            raise RuntimeError("SIP endpoint not started")
        return self.ua

    # -- input -------------------------------------------------------------------------------
    def _on_message(self, message: Request | Response, source: Source) -> None:
        outputs = self._agent().receive(message, source, self._now())
        self._execute(outputs, source if isinstance(message, Response) else None)

    def _fire(self, owner: object, name: str) -> None:
        self._timers.pop((owner, name), None)
        self._execute(self._agent().timer_fired(owner, name, self._now()))

    # -- output ------------------------------------------------------------------------------
    def _execute(self, outputs: list[Output], response_source: Source | None = None) -> None:
        events: list[CallEvent] = []
        for out in outputs:
            if isinstance(out, Send):
                self._send(out)
            elif isinstance(out, StartTimer):
                if out.name == LINGER and isinstance(out.owner, CallKey):
                    self._release(out.owner)  # the call has ended (with or without an event)
                key = (out.owner, out.name)
                old = self._timers.pop(key, None)
                if old is not None:
                    old.cancel()
                assert self._loop is not None
                self._timers[key] = self._loop.call_later(
                    max(out.delay, 0.0), self._fire, out.owner, out.name
                )
            elif isinstance(out, CancelTimer):
                handle = self._timers.pop((out.owner, out.name), None)
                if handle is not None:
                    handle.cancel()
            else:
                events.append(out)
                self._track(out, response_source)
        for event in events:
            try:
                self.on_event(event)
            except Exception:
                logger.exception("error handling %s", type(event).__name__)

    # -- connections of live calls -----------------------------------------------------------
    def _track(self, event: CallEvent, response_source: Source | None) -> None:
        """Retain the TCP connection of a call that has just shown up: an incoming call's
        INVITE connection, or the connection a response to our call came on."""
        call = event.call
        if call.ended or call.key in self._retained:
            return
        source: object = None
        if isinstance(event, IncomingCall) and isinstance(call, UasCall):
            source = call.source
        elif isinstance(call, UacCall):
            source = response_source
        if isinstance(source, Source) and source.connection is not None:
            self.transport.retain(source)
            self._retained[call.key] = source

    def _release(self, key: CallKey) -> None:
        source = self._retained.pop(key, None)
        if source is not None:
            self.transport.release(source)

    def _send(self, out: Send) -> None:
        message, dest = out.message, out.dest
        if isinstance(message, Response):
            self.transport.send_response(message, dest if isinstance(dest, Source) else None)
        else:
            self.transport.send_request(message, (dest.host, dest.port), dest.transport)

    # -- commands ----------------------------------------------------------------------------
    def ring(self, call: UasCall, *, sdp: str | None = None) -> None:
        self._execute(self._agent().ring(call, self._now(), sdp=sdp))

    def answer(self, call: UasCall, sdp: str) -> None:
        self._execute(self._agent().answer(call, sdp, self._now()))

    def reject(
        self,
        call: UasCall,
        status: int,
        *,
        reason: str | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        self._execute(
            self._agent().reject(call, status, self._now(), reason=reason, headers=headers)
        )

    def hangup(self, call: Call) -> None:
        if not call.ended:
            self._execute(self._agent().hangup(call, self._now()))

    def accept_offer(self, call: Call, sdp: str) -> None:
        self._execute(self._agent().accept_offer(call, sdp, self._now()))

    def reject_offer(self, call: Call, status: int = 488) -> None:
        self._execute(self._agent().reject_offer(call, self._now(), status))

    def reinvite(self, call: Call, sdp: str, *, method: str = "INVITE") -> None:
        self._execute(self._agent().reinvite(call, sdp, self._now(), method=method))

    def send_info(self, call: Call, content_type: str, body: bytes) -> None:
        self._execute(self._agent().send_info(call, content_type, body, self._now()))

    def dial(
        self,
        target: SipUri,
        *,
        from_: NameAddr,
        offer: str,
        credentials: Credentials | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> UacCall:
        call, outputs = self._agent().dial(
            target,
            from_=from_,
            offer=offer,
            now=self._now(),
            credentials=credentials,
            headers=headers,
        )
        self._execute(outputs)
        return call
