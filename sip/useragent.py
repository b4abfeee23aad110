"""The user agent core: transactions + calls, one pure object to drive - no I/O.

A driver (the asyncio endpoint) does only this::

    ua = UserAgent(CallConfig(local_host=..., local_port=...))
    outputs = ua.receive(message, source, now)          # every parsed message
    outputs = ua.timer_fired(owner, name, now)          # every timer that fires
    outputs = ua.transport_error(key, now)              # a send of transaction ``key`` failed
    outputs = ua.answer(call, sdp, now)                 # TU commands (ring, reject, hangup, ...)
    call, outputs = ua.dial(target, from_=..., offer=..., now=now)

and executes ``outputs`` in order: :class:`~sip.transaction.Send` (a response goes back to
``dest``, the source it came from; a request to the :class:`~sip.transaction.Destination`),
:class:`~sip.transaction.StartTimer` / :class:`~sip.transaction.CancelTimer` (keyed by
``(owner, name)``; a start replaces a running timer), and :class:`~sip.dialog.CallEvent`
subclasses for the application.

Outside dialogs: INVITE makes a :class:`~sip.dialog.UasCall`, OPTIONS is answered 200, BYE/INFO/
UPDATE get 481, other methods 405/501. In dialogs, requests go to their call; requests for an
unknown dialog get 481.

Bound to a wildcard address (``local_host`` ``0.0.0.0`` or ``::``) and without a
``public_host``, an incoming call gets its own :class:`~sip.dialog.CallConfig` whose
``local_host`` is the interface its INVITE arrived on (the source's ``local_host``, when the
transport tells it), so that its Contact and Via are reachable.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from sip.auth import Credentials
from sip.dialog import (
    ALLOW,
    LINGER,
    SUPPORTED,
    Call,
    CallConfig,
    CallEvent,
    CallKey,
    CallOutput,
    SendRequest,
    SendResponse,
    UacCall,
    UasCall,
    is_unspecified,
)
from sip.message import NameAddr, Request, Response, SipUri, make_response, new_tag
from sip.transaction import (
    Action,
    CancelTimer,
    InviteCancelled,
    PassUp,
    Peer,
    Send,
    StartTimer,
    Terminated,
    Timeout,
    TransactionKey,
    TransactionLayer,
    TransportError,
)

__all__ = ["Output", "UserAgent"]

logger = logging.getLogger(__name__)

Output = Send | StartTimer | CancelTimer | CallEvent

#: Methods we know of but do not serve (405); anything else unknown gets 501.
KNOWN_METHODS = frozenset(
    ["REGISTER", "SUBSCRIBE", "NOTIFY", "MESSAGE", "REFER", "PUBLISH", "PRACK", *ALLOW]
)


class UserAgent:
    def __init__(self, config: CallConfig | None = None) -> None:
        self.config = config or CallConfig()
        self.layer = TransactionLayer(self.config.timers)
        self.calls: dict[CallKey, Call] = {}
        self._by_txn: dict[TransactionKey, Call] = {}

    # -- inputs ------------------------------------------------------------------------------

    def receive(self, msg: Request | Response, source: Peer, now: float) -> list[Output]:
        return self._process(self.layer.receive(msg, source, now), now)

    def timer_fired(self, owner: object, name: str, now: float) -> list[Output]:
        if isinstance(owner, TransactionKey):
            return self._process(self.layer.timer_fired(owner, name, now), now)
        if isinstance(owner, CallKey):
            call = self.calls.get(owner)
            if call is None:
                return []
            if name == LINGER:
                self._forget(call)
                return []
            return self._run(call, call.timer_fired(name, now), now)
        return []

    def transport_error(self, key: TransactionKey, now: float) -> list[Output]:
        return self._process(self.layer.transport_error(key, now), now)

    # -- TU commands -------------------------------------------------------------------------

    def dial(
        self,
        target: SipUri,
        *,
        from_: NameAddr,
        offer: str,
        now: float,
        to: NameAddr | None = None,
        credentials: Credentials | None = None,
        dest: Peer | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> tuple[UacCall, list[Output]]:
        call = UacCall(
            self.config,
            target,
            from_=from_,
            offer=offer,
            to=to,
            credentials=credentials,
            dest=dest,
            headers=headers,
        )
        self.calls[call.key] = call
        return call, self._run(call, call.start(now), now)

    def ring(self, call: UasCall, now: float, *, sdp: str | None = None) -> list[Output]:
        return self._run(call, call.ring(now, status=183 if sdp else 180, sdp=sdp), now)

    def answer(self, call: UasCall, sdp: str, now: float) -> list[Output]:
        return self._run(call, call.answer(sdp, now), now)

    def reject(
        self,
        call: UasCall,
        status: int,
        now: float,
        *,
        reason: str | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> list[Output]:
        return self._run(call, call.reject(status, now, reason=reason, headers=headers), now)

    def hangup(self, call: Call, now: float) -> list[Output]:
        return self._run(call, call.hangup(now), now)

    def accept_offer(self, call: Call, sdp: str, now: float) -> list[Output]:
        return self._run(call, call.accept_offer(sdp, now), now)

    def reject_offer(self, call: Call, now: float, status: int = 488) -> list[Output]:
        return self._run(call, call.reject_offer(now, status), now)

    def reinvite(self, call: Call, sdp: str, now: float, *, method: str = "INVITE") -> list[Output]:
        return self._run(call, call.reinvite(sdp, now, method=method), now)

    def send_info(self, call: Call, content_type: str, body: bytes, now: float) -> list[Output]:
        return self._run(call, call.send_info(content_type, body, now), now)

    # -- plumbing ----------------------------------------------------------------------------

    def _config_for(self, source: Peer) -> CallConfig:
        """The config of a call whose INVITE came from ``source``: ours, with the receiving
        interface as ``local_host`` when we are bound to a wildcard address."""
        config = self.config
        if config.public_host or not is_unspecified(config.local_host):
            return config
        local = getattr(source, "local_host", None)
        if not isinstance(local, str) or is_unspecified(local):
            return config
        return replace(config, local_host=local.strip("[]"))

    def _forget(self, call: Call) -> None:
        self.calls.pop(call.key, None)
        for key in [k for k, c in self._by_txn.items() if c is call]:
            del self._by_txn[key]

    def _run(self, call: Call, outputs: list[CallOutput], now: float) -> list[Output]:
        out: list[Output] = []
        for item in outputs:
            if isinstance(item, SendRequest):
                key, actions = self.layer.send_request(item.request, item.dest, now)
                self._by_txn[key] = call
                out += self._process(actions, now)
            elif isinstance(item, SendResponse):
                actions = self.layer.send_response(item.response, now)
                resp = item.response
                if not actions and 200 <= resp.status < 300 and resp.cseq[1] == "INVITE":
                    actions = [Send(resp, item.dest)]  # 2xx retransmission outliving L
                out += self._process(actions, now)
            else:
                out.append(item)
        return out

    def _process(self, actions: list[Action], now: float) -> list[Output]:
        out: list[Output] = []
        for action in actions:
            if isinstance(action, PassUp):
                out += self._pass_up(action, now)
            elif isinstance(action, Timeout | TransportError):
                call = self._by_txn.get(action.key)
                if call is not None and not action.key.server:
                    out += self._run(call, call.timeout(action.request, now), now)
            elif isinstance(action, InviteCancelled):
                call = self._by_txn.get(action.key)
                if isinstance(call, UasCall):
                    out += self._run(call, call.cancelled(action.invite, now), now)
            elif isinstance(action, Terminated):
                self._by_txn.pop(action.key, None)
            else:
                out.append(action)
        return out

    def _pass_up(self, action: PassUp, now: float) -> list[Output]:
        msg = action.message
        if isinstance(msg, Response):
            call = self._by_txn.get(action.key) if action.key is not None else None
            if call is None:
                call = self.calls.get(CallKey(msg.call_id, msg.from_tag or ""))
            if call is None:
                logger.debug("response matches no call: %s %s", msg.status, msg.call_id)
                return []
            return self._run(call, call.receive_response(msg, now), now)
        source = action.source
        assert source is not None
        to_tag = msg.to_tag
        if msg.method == "ACK":
            call = self.calls.get(CallKey(msg.call_id, to_tag or ""))
            return self._run(call, call.receive_ack(msg, now), now) if call else []
        if to_tag is not None:
            call = self.calls.get(CallKey(msg.call_id, to_tag))
            if call is None:
                return self._respond(msg, 481, now)
            if action.key is not None:
                self._by_txn[action.key] = call
            return self._run(call, call.receive_request(msg, source, now), now)
        if msg.method == "INVITE":
            uas = UasCall(self._config_for(source), msg, source)
            self.calls[uas.key] = uas
            if action.key is not None:
                self._by_txn[action.key] = uas
            return self._run(uas, uas.start(now), now)
        unsupported = [t for t in msg.require if t not in SUPPORTED]
        if unsupported and msg.method != "CANCEL":
            return self._respond(msg, 420, now, [("Unsupported", ", ".join(unsupported))])
        if msg.method == "OPTIONS":
            headers = [
                ("Allow", ", ".join(ALLOW)),
                ("Accept", "application/sdp"),
                ("Supported", ", ".join(SUPPORTED)),
                ("User-Agent", self.config.user_agent),
            ]
            return self._respond(msg, 200, now, headers)
        if msg.method in ("BYE", "INFO", "UPDATE", "PRACK"):
            return self._respond(msg, 481, now)
        if msg.method in KNOWN_METHODS:
            return self._respond(msg, 405, now, [("Allow", ", ".join(ALLOW))])
        return self._respond(msg, 501, now, [("Allow", ", ".join(ALLOW))])

    def _respond(
        self,
        request: Request,
        status: int,
        now: float,
        headers: list[tuple[str, str]] | None = None,
    ) -> list[Output]:
        resp = make_response(request, status, to_tag=new_tag(), headers=headers)
        return self._process(self.layer.send_response(resp, now), now)
