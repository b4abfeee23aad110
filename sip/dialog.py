"""SIP dialogs (RFC 3261 section 12) and the UAS/UAC call objects - pure, no I/O.

:class:`Dialog` holds the dialog state (id, CSeq numbers, remote target, route set) and builds
in-dialog requests with the loose/strict routing rules of 12.2.1.1.

:class:`UasCall` (incoming INVITE) and :class:`UacCall` (our INVITE) are driven by methods that
take ``now`` and return a list of :data:`CallOutput`:

* :class:`SendRequest` - start a client transaction (not for ACK);
* :class:`SendResponse` - answer a request through its server transaction;
* :class:`~sip.transaction.Send` - put a message on the wire directly (ACK for a 2xx);
* :class:`~sip.transaction.StartTimer` / :class:`~sip.transaction.CancelTimer` - owner is the
  call's :class:`CallKey`; call :meth:`Call.timer_fired` with the name;
* :class:`CallEvent` subclasses for the TU (:class:`IncomingCall`, :class:`CallEstablished`,
  :class:`ReinviteOffer`, :class:`AckAnswer`, :class:`InfoReceived`, :class:`CallEnded`, ...).

In-dialog requests never need DNS: when the next hop (first route, else the remote target) is
a host name, they go where the dialog's INVITE came from (UAS) or went to (UAC).

Session descriptions are carried as text; negotiating them is the TU's job (``sip.sdp``).
:class:`sip.useragent.UserAgent` wires calls to a :class:`~sip.transaction.TransactionLayer`.
"""

from __future__ import annotations

import ipaddress
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Literal

from sip.auth import (
    Credentials,
    DigestError,
    authorization_header,
    build_authorization,
    parse_challenge,
)
from sip.errors import SipParseError
from sip.message import (
    Headers,
    NameAddr,
    Request,
    Response,
    SipUri,
    Via,
    make_request,
    make_response,
    new_branch,
    new_call_id,
    new_tag,
)
from sip.session_timer import (
    EXPIRE_TIMER,
    REFRESH_TIMER,
    Negotiated,
    SessionTimer,
    SessionTimerConfig,
    TooSmall,
    min_se_of,
    negotiate_from_response,
    negotiate_uas,
    request_headers,
)
from sip.transaction import CancelTimer, Destination, Peer, Send, StartTimer, TimerConfig

__all__ = [
    "ALLOW",
    "SUPPORTED",
    "AckAnswer",
    "Call",
    "CallConfig",
    "CallEnded",
    "CallEstablished",
    "CallEvent",
    "CallKey",
    "CallOutput",
    "CallProgress",
    "CallStateError",
    "Dialog",
    "DialogId",
    "IncomingCall",
    "InfoReceived",
    "ReinviteAnswered",
    "ReinviteFailed",
    "ReinviteOffer",
    "SendRequest",
    "SendResponse",
    "UacCall",
    "UasCall",
    "build_cancel",
    "destination_for",
    "is_ip_literal",
    "is_unspecified",
]

logger = logging.getLogger(__name__)

#: Methods we accept inside (and, for INVITE/OPTIONS, outside) a dialog.
ALLOW = ("INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "INFO", "UPDATE")
#: Option tags we implement (RFC 4028 session timers). 100rel is not implemented.
SUPPORTED = ("timer",)
SDP = "application/sdp"

RETRANSMIT_2XX = "2xx_retransmit"
TIMEOUT_2XX = "2xx_timeout"
GLARE_RETRY = "glare_retry"
LINGER = "linger"
#: How long an ended call stays to absorb late messages before the UA forgets it.
LINGER_DELAY = 32.0


class CallStateError(RuntimeError):
    """The TU asked for something the call cannot do now (our fault, not the peer's)."""


# --------------------------------------------------------------------------------------------
# Dialog


@dataclass(frozen=True)
class DialogId:
    call_id: str
    local_tag: str
    remote_tag: str


def is_ip_literal(host: str) -> bool:
    """``host`` is an IPv4 or IPv6 address (brackets allowed), not a name."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def is_unspecified(host: str) -> bool:
    """A wildcard bind address (``0.0.0.0``, ``::``) or none: not one to write in Contact."""
    host = host.strip("[]")
    if not host:
        return True
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def destination_for(
    uri: SipUri, default_transport: str = "UDP", *, fallback: Peer | None = None
) -> Destination:
    """Next hop for ``uri`` (RFC 3263 without DNS): transport param, host, port (5060/5061).

    With ``fallback``, a host name (which would need DNS) is not used: the next hop is then
    ``fallback`` (for in-dialog requests: where the dialog's INVITE came from)."""
    transport = (uri.transport or ("tls" if uri.scheme == "sips" else default_transport)).upper()
    maddr = uri.param("maddr")
    host = (maddr or uri.host).strip("[]")
    if fallback is not None and not is_ip_literal(host):
        return Destination(fallback.transport.upper(), fallback.host, fallback.port)
    port = uri.port or (5061 if transport == "TLS" else 5060)
    return Destination(transport, host, port)


@dataclass
class Dialog:
    """Dialog state (RFC 3261 12.1). ``local_seq`` is None until we send a request (UAS)."""

    call_id: str
    local_tag: str
    remote_tag: str
    local_uri: NameAddr
    remote_uri: NameAddr
    remote_target: SipUri
    route_set: list[NameAddr] = field(default_factory=list)
    local_seq: int | None = None
    remote_seq: int | None = None
    secure: bool = False
    confirmed: bool = False

    @property
    def id(self) -> DialogId:
        return DialogId(self.call_id, self.local_tag, self.remote_tag)

    @classmethod
    def from_uas(cls, request: Request, local_tag: str) -> Dialog:
        """The dialog a UAS creates when it answers ``request`` with a tagged 1xx/2xx (12.1.1)."""
        contact = request.contact
        return cls(
            call_id=request.call_id,
            local_tag=local_tag,
            remote_tag=request.from_tag or "",
            local_uri=_without_tag(request.to),
            remote_uri=_without_tag(request.from_),
            remote_target=contact[0].uri if contact else request.from_.uri,
            route_set=list(request.record_route),
            local_seq=None,
            remote_seq=request.cseq[0],
            secure=request.uri.scheme == "sips",
        )

    @classmethod
    def from_uac(cls, request: Request, response: Response) -> Dialog:
        """The dialog a UAC creates from a tagged 1xx/2xx to its ``request`` (12.1.2)."""
        contact = response.contact
        return cls(
            call_id=request.call_id,
            local_tag=request.from_tag or "",
            remote_tag=response.to_tag or "",
            local_uri=_without_tag(request.from_),
            remote_uri=_without_tag(response.to),
            remote_target=contact[0].uri if contact else request.uri,
            route_set=list(reversed(response.record_route)),
            local_seq=request.cseq[0],
            remote_seq=None,
            secure=request.uri.scheme == "sips",
            confirmed=200 <= response.status < 300,
        )

    def check_remote_cseq(self, request: Request) -> int | None:
        """RFC 3261 12.2.2: a request with a lower CSeq than the last one is answered 500
        (returned); otherwise the remote sequence number advances and None is returned."""
        if request.method in ("ACK", "CANCEL"):
            return None
        seq = request.cseq[0]
        if self.remote_seq is not None and seq < self.remote_seq:
            return 500
        self.remote_seq = seq
        return None

    def update_remote_target(self, msg: Request | Response) -> None:
        """Target refresh (re-INVITE, UPDATE and their 2xx): the Contact becomes the target."""
        contact = msg.contact
        if contact:
            self.remote_target = contact[0].uri

    def next_cseq(self) -> int:
        self.local_seq = (self.local_seq or 0) + 1
        return self.local_seq

    def next_hop(self) -> SipUri:
        """The URI to send in-dialog requests towards: the first route, else the target."""
        return self.route_set[0].uri if self.route_set else self.remote_target

    def create_request(
        self,
        method: str,
        via: Via,
        *,
        contact: NameAddr | None = None,
        cseq: int | None = None,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        content_type: str | None = None,
    ) -> Request:
        """An in-dialog request (12.2.1.1). ``cseq`` defaults to the next local number (give
        the INVITE's number for an ACK)."""
        if cseq is None:
            cseq = self.next_cseq()
        uri = self.remote_target
        routes = [str(r) for r in self.route_set]
        if self.route_set and not self.route_set[0].uri.has_param("lr"):
            # Strict routing: the first route becomes the Request-URI, the target goes last.
            uri = replace(self.route_set[0].uri, headers=())
            routes = [str(r) for r in self.route_set[1:]] + [f"<{self.remote_target}>"]
        extra = [("Route", r) for r in routes] + list(headers or [])
        return make_request(
            method,
            uri,
            via=via,
            from_=self.local_uri.with_tag(self.local_tag),
            to=self.remote_uri.with_tag(self.remote_tag) if self.remote_tag else self.remote_uri,
            call_id=self.call_id,
            cseq=cseq,
            contact=contact if method in ("INVITE", "UPDATE") else None,
            headers=extra,
            body=body,
            content_type=content_type,
        )


def _without_tag(addr: NameAddr) -> NameAddr:
    return replace(addr, params=tuple(p for p in addr.params if p[0].lower() != "tag"))


def build_cancel(invite: Request) -> Request:
    """CANCEL for ``invite`` (RFC 3261 9.1): same Request-URI, Call-ID, From, To, CSeq number,
    Route and top Via (hence the same branch)."""
    headers = Headers()
    headers.add("Via", str(invite.top_via))
    headers.add("Max-Forwards", "70")
    headers.add("From", invite.headers.get("From") or "")
    headers.add("To", invite.headers.get("To") or "")
    headers.add("Call-ID", invite.call_id)
    headers.add("CSeq", f"{invite.cseq[0]} CANCEL")
    for value in invite.headers.get_lines("Route"):
        headers.add("Route", value)
    headers.add("Content-Length", "0")
    return Request("CANCEL", invite.uri, headers)


# --------------------------------------------------------------------------------------------
# Outputs and events


@dataclass(frozen=True)
class CallKey:
    """Identifies a call inside the user agent (Call-ID and our tag); owner of its timers."""

    call_id: str
    local_tag: str


@dataclass(frozen=True)
class SendRequest:
    request: Request
    dest: Peer


@dataclass(frozen=True)
class SendResponse:
    """Answer through the server transaction; ``dest`` is where the request came from (used
    directly when the transaction is gone, e.g. late 2xx retransmissions)."""

    response: Response
    dest: Peer


@dataclass(frozen=True, eq=False)
class CallEvent:
    call: Call


@dataclass(frozen=True, eq=False)
class IncomingCall(CallEvent):
    """A new INVITE. ``offer`` is the SDP (None: delayed offer, put an offer in the answer).
    The TU calls ``ring``/``answer``/``reject``."""

    request: Request
    offer: str | None


@dataclass(frozen=True, eq=False)
class CallProgress(CallEvent):
    """UAC: a provisional response (``sdp`` for early media)."""

    status: int
    reason: str
    sdp: str | None


@dataclass(frozen=True, eq=False)
class CallEstablished(CallEvent):
    """The call is up. UAC: ``sdp`` is the answer in the 2xx. UAS: the ACK arrived; ``sdp`` is
    the answer it carried (delayed offer) or None."""

    sdp: str | None


@dataclass(frozen=True, eq=False)
class ReinviteOffer(CallEvent):
    """The peer sent a re-INVITE or UPDATE with an offer (``sdp``; None for an offerless
    re-INVITE: answer with an offer). The TU calls ``accept_offer`` or ``reject_offer``."""

    sdp: str | None
    method: str


@dataclass(frozen=True, eq=False)
class ReinviteAnswered(CallEvent):
    """The answer to an offer we made in a re-INVITE/UPDATE (in its 2xx). The answer to an
    offer we made in a 2xx to an offerless re-INVITE comes in the ACK: :class:`AckAnswer`."""

    sdp: str | None


@dataclass(frozen=True, eq=False)
class AckAnswer(CallEvent):
    """The peer sent a re-INVITE without SDP (e.g. resuming from hold), we offered in the 2xx
    (:meth:`Call.accept_offer`) and its ACK carried the answer, ``sdp``. (For the initial
    INVITE's delayed offer the ACK's answer is in :class:`CallEstablished`.)"""

    sdp: str


@dataclass(frozen=True, eq=False)
class ReinviteFailed(CallEvent):
    """Our re-INVITE/UPDATE was refused; the previous session stays."""

    status: int


@dataclass(frozen=True, eq=False)
class InfoReceived(CallEvent):
    content_type: str | None
    body: bytes


@dataclass(frozen=True, eq=False)
class CallEnded(CallEvent):
    """The call is over (``status``: the SIP status that ended it, when there is one)."""

    reason: str
    status: int | None = None


CallOutput = SendRequest | SendResponse | Send | StartTimer | CancelTimer | CallEvent


# --------------------------------------------------------------------------------------------
# Calls


@dataclass(frozen=True)
class CallConfig:
    """What a call needs to know about us.

    ``public_host``: when set, the host written in Contact and Via of every call (a NAT's
    public address, a name of ours). Otherwise ``local_host`` is; when that is a wildcard
    (``0.0.0.0``, ``::``) the user agent gives each incoming call the address of the interface
    its INVITE arrived on (the transport source's ``local_host``), when known."""

    local_host: str = "127.0.0.1"
    local_port: int = 5060
    transport: str = "UDP"
    contact_user: str | None = None
    user_agent: str = "conference-gateway"
    timers: TimerConfig = field(default_factory=TimerConfig)
    session_timer: SessionTimerConfig = field(default_factory=SessionTimerConfig)
    public_host: str | None = None

    @property
    def advertised_host(self) -> str:
        """The host for Contact and Via."""
        return self.public_host or self.local_host


def _retry_after(response: Response) -> float | None:
    """The seconds of a ``Retry-After: 5 (comment);duration=...`` (None if absent/bad)."""
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    text = value.split(";")[0].split("(")[0].strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 9:
        return None
    return float(text)


def _sdp_of(msg: Request | Response) -> str | None:
    if msg.body and msg.content_type == SDP:
        return msg.body.decode("utf-8", errors="replace")
    return None


CallState = Literal["incoming", "early", "answered", "confirmed", "ended"]


class Call:
    """What UAS and UAC calls share: the dialog, in-dialog requests both ways, 2xx
    retransmission (RFC 3261 13.3.1.4), session timers, BYE."""

    is_uac: bool = False

    def __init__(self, config: CallConfig, key: CallKey, transport: str) -> None:
        self.config = config
        self.key = key
        self.transport = transport.upper()
        self.state: CallState = "incoming"
        self.dialog: Dialog | None = None
        self.session_timer = SessionTimer(key)
        self.local_sdp: str | None = None
        self.remote_sdp: str | None = None
        self.peer_allow: list[str] = []
        self.end_reason: str | None = None
        self.rng: Callable[[float, float], float] = random.uniform
        # Our pending 2xx to an INVITE (initial or re-INVITE), retransmitted until ACK.
        self._pending_2xx: Response | None = None
        self._pending_2xx_dest: Peer | None = None
        self._2xx_interval = config.timers.t1
        self._ack_expects_answer = False
        # An incoming re-INVITE/UPDATE waiting for the TU.
        self._incoming_offer: tuple[Request, Peer] | None = None
        # Our own re-INVITE/UPDATE in progress.
        self._outgoing_offer: Request | None = None
        self._outgoing_is_refresh = False
        self._retry_422 = False
        self._glare_sdp: str | None = None
        self._last_ack: Request | None = None
        self._bye_after_ack = False

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.key.call_id} {self.state})"

    @property
    def ended(self) -> bool:
        return self.state == "ended"

    # -- helpers -----------------------------------------------------------------------------

    def _via(self, dest: Peer) -> Via:
        host = self.config.advertised_host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        return Via(
            dest.transport.upper(),
            host,
            self.config.local_port,
            (("branch", new_branch()), ("rport", None)),
        )

    def contact(self) -> NameAddr:
        host = self.config.advertised_host
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"
        params: tuple[tuple[str, str | None], ...] = ()
        if self.transport != "UDP":
            params = (("transport", self.transport.lower()),)
        uri = SipUri("sip", self.config.contact_user, None, host, self.config.local_port, params)
        return NameAddr(None, uri)

    def _common_headers(self) -> list[tuple[str, str]]:
        return [
            ("Allow", ", ".join(ALLOW)),
            ("Supported", ", ".join(SUPPORTED)),
            ("User-Agent", self.config.user_agent),
        ]

    def _dest(self) -> Destination:
        """Where in-dialog requests go: the next hop if it is an IP literal, else (no DNS
        here, nor on the event loop later) :meth:`_fallback_peer`."""
        assert self.dialog is not None
        return destination_for(
            self.dialog.next_hop(), self.transport, fallback=self._fallback_peer()
        )

    def _fallback_peer(self) -> Peer | None:
        """Where the dialog's initial INVITE came from (UAS) or went to (UAC)."""
        return None

    def _in_dialog(
        self,
        method: str,
        *,
        body: bytes = b"",
        content_type: str | None = None,
        headers: list[tuple[str, str]] | None = None,
        cseq: int | None = None,
    ) -> tuple[Request, Destination]:
        assert self.dialog is not None
        dest = self._dest()
        extra = list(headers or [])
        if method in ("INVITE", "UPDATE", "OPTIONS"):
            extra = self._common_headers() + extra
        elif method != "ACK":
            extra = [("User-Agent", self.config.user_agent), *extra]
        req = self.dialog.create_request(
            method,
            self._via(dest),
            contact=self.contact(),
            cseq=cseq,
            headers=extra,
            body=body,
            content_type=content_type,
        )
        return req, dest

    def _respond(
        self,
        request: Request,
        source: Peer,
        status: int,
        reason: str | None = None,
        *,
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
        content_type: str | None = None,
    ) -> SendResponse:
        extra = list(headers or [])
        if 200 <= status < 300 and request.method in ("INVITE", "UPDATE"):
            extra = [("Contact", str(self.contact())), *self._common_headers(), *extra]
        elif status in (405, 420) or request.method == "OPTIONS":
            extra = [*self._common_headers(), *extra]
        resp = make_response(
            request,
            status,
            reason,
            to_tag=self.key.local_tag,
            headers=extra,
            body=body,
            content_type=content_type,
        )
        return SendResponse(resp, source)

    def _end(
        self, reason: str, status: int | None = None, *, event: bool = True
    ) -> list[CallOutput]:
        if self.ended:
            return []
        self.state = "ended"
        self.end_reason = reason
        out: list[CallOutput] = [*self.session_timer.stop(), *self._stop_2xx()]
        out += [CancelTimer(self.key, GLARE_RETRY), StartTimer(self.key, LINGER, LINGER_DELAY)]
        if event and not self._bye_after_ack:  # after hangup() the TU was told already
            out.append(CallEnded(self, reason, status))
        return out

    def _send_bye(self) -> list[CallOutput]:
        if self.dialog is None:
            return []
        req, dest = self._in_dialog("BYE")
        return [SendRequest(req, dest)]

    # -- 2xx retransmission (RFC 3261 13.3.1.4) ----------------------------------------------

    def _send_2xx(self, resp: SendResponse) -> list[CallOutput]:
        self._pending_2xx = resp.response
        self._pending_2xx_dest = resp.dest
        self._2xx_interval = self.config.timers.t1
        out: list[CallOutput] = [resp]
        if not resp.dest.reliable:
            out.append(StartTimer(self.key, RETRANSMIT_2XX, self._2xx_interval))
        out.append(StartTimer(self.key, TIMEOUT_2XX, 64 * self.config.timers.t1))
        return out

    def _stop_2xx(self) -> list[CallOutput]:
        if self._pending_2xx is None:
            return []
        self._pending_2xx = None
        return [CancelTimer(self.key, RETRANSMIT_2XX), CancelTimer(self.key, TIMEOUT_2XX)]

    # -- TU commands -------------------------------------------------------------------------

    def hangup(self, now: float) -> list[CallOutput]:
        """End the call from our side: BYE (after the ACK if it is still awaited)."""
        if self.ended:
            return []
        if self.state == "answered" and not self.is_uac:
            if self._bye_after_ack:
                return []
            self._bye_after_ack = True
            return [CallEnded(self, "local hangup")]
        out = self._send_bye()
        return out + self._end("local hangup")

    def send_info(self, content_type: str, body: bytes, now: float) -> list[CallOutput]:
        self._require_confirmed()
        req, dest = self._in_dialog("INFO", body=body, content_type=content_type)
        return [SendRequest(req, dest)]

    def reinvite(self, sdp: str, now: float, *, method: str = "INVITE") -> list[CallOutput]:
        """Send a new offer (re-INVITE, or UPDATE) - hold/unhold, codec change."""
        self._require_confirmed()
        if self._outgoing_offer is not None or self._incoming_offer is not None:
            raise CallStateError("an offer/answer exchange is already in progress")
        return self._send_offer(method, sdp.encode(), refresh=False)

    def accept_offer(self, sdp: str, now: float) -> list[CallOutput]:
        """Answer the pending :class:`ReinviteOffer` with ``sdp`` (an offer if it had none)."""
        if self._incoming_offer is None:
            raise CallStateError("no re-INVITE/UPDATE waiting for an answer")
        request, source = self._incoming_offer
        self._incoming_offer = None
        self.local_sdp = sdp
        out: list[CallOutput] = []
        st_headers = self._restart_session_timer_uas(request, now, out)
        resp = self._respond(
            request, source, 200, headers=st_headers, body=sdp.encode(), content_type=SDP
        )
        if request.method == "INVITE":
            self._ack_expects_answer = not request.body
            return out + self._send_2xx(resp)
        return [*out, resp]

    def reject_offer(self, now: float, status: int = 488) -> list[CallOutput]:
        if self._incoming_offer is None:
            raise CallStateError("no re-INVITE/UPDATE waiting for an answer")
        request, source = self._incoming_offer
        self._incoming_offer = None
        return [self._respond(request, source, status)]

    def _require_confirmed(self) -> None:
        if self.dialog is None or self.state not in ("confirmed", "answered"):
            raise CallStateError(f"call is {self.state}")

    # -- session timers ----------------------------------------------------------------------

    def _restart_session_timer_uas(
        self, request: Request, now: float, out: list[CallOutput]
    ) -> list[tuple[str, str]]:
        """We answer an INVITE/UPDATE 2xx: (re)negotiate; headers for the 2xx."""
        result = negotiate_uas(request, self.config.session_timer)
        if isinstance(result, Negotiated):
            out += self.session_timer.start(result.interval, result.we_refresh(False), now)
            return result.response_headers()
        out += self.session_timer.stop()
        return []

    def _session_timer_from_response(
        self, resp: Response, now: float, *, keep: bool = False
    ) -> list[CallOutput]:
        result = negotiate_from_response(resp, self.config.session_timer)
        interval = self.session_timer.interval
        if result is None:
            if keep and interval is not None:
                # Our refresh was answered without Session-Expires: keep refreshing.
                return list(self.session_timer.start(interval, self.session_timer.we_refresh, now))
            return list(self.session_timer.stop())
        return list(self.session_timer.start(result.interval, result.we_refresh(True), now))

    def _send_offer(
        self, method: str, body: bytes, *, refresh: bool, interval: int | None = None
    ) -> list[CallOutput]:
        headers: list[tuple[str, str]] = []
        if self.session_timer.active or refresh:
            st = [
                h
                for h in request_headers(
                    self.config.session_timer,
                    interval=interval or self.session_timer.interval,
                    refresher="uac",
                )
                if h[0] != "Supported"
            ]
            headers += st
        req, dest = self._in_dialog(
            method, body=body, content_type=SDP if body else None, headers=headers
        )
        self._outgoing_offer = req
        self._outgoing_is_refresh = refresh
        return [SendRequest(req, dest)]

    def _refresh(self, now: float) -> list[CallOutput]:
        if self.state != "confirmed" or self._outgoing_offer is not None:
            # Busy: try again a little later.
            return [StartTimer(self.key, REFRESH_TIMER, 2.0)]
        self._retry_422 = False
        if "UPDATE" in self.peer_allow:
            return self._send_offer("UPDATE", b"", refresh=True)
        return self._send_offer("INVITE", (self.local_sdp or "").encode(), refresh=True)

    # -- inputs ------------------------------------------------------------------------------

    def timer_fired(self, name: str, now: float) -> list[CallOutput]:
        if name == RETRANSMIT_2XX and self._pending_2xx is not None:
            assert self._pending_2xx_dest is not None
            self._2xx_interval = min(2 * self._2xx_interval, self.config.timers.t2)
            return [
                SendResponse(self._pending_2xx, self._pending_2xx_dest),
                StartTimer(self.key, RETRANSMIT_2XX, self._2xx_interval),
            ]
        if name == TIMEOUT_2XX and self._pending_2xx is not None:
            # No ACK for 64*T1: the dialog is confirmed but the session is ended with BYE.
            out = self._stop_2xx()
            if self.ended:
                return out + self._send_bye()
            if self.state == "answered":
                self.state = "confirmed"
                if self.dialog is not None:
                    self.dialog.confirmed = True
            return out + self._send_bye() + self._end("no ACK", 408, event=not self._bye_after_ack)
        if name == REFRESH_TIMER and not self.ended:
            return self._refresh(now)
        if name == EXPIRE_TIMER and not self.ended:
            out = list(self.session_timer.stop())  # a refresh retry may be pending
            return out + self._send_bye() + self._end("session expired", 408)
        if name == GLARE_RETRY and not self.ended and self._glare_sdp is not None:
            sdp, self._glare_sdp = self._glare_sdp, None
            if self._outgoing_offer is not None or self._incoming_offer is not None:
                return [ReinviteFailed(self, 491)]
            return self._send_offer("INVITE", sdp.encode(), refresh=False)
        return []

    def receive_ack(self, ack: Request, now: float) -> list[CallOutput]:
        """An ACK for our 2xx (routed here by dialog id)."""
        if self._pending_2xx is None or ack.cseq[0] != self._pending_2xx.cseq[0]:
            return []
        out = self._stop_2xx()
        answer = _sdp_of(ack) if self._ack_expects_answer else None
        if answer is not None:
            self.remote_sdp = answer
        self._ack_expects_answer = False
        if self.state == "answered":
            self.state = "confirmed"
            if self.dialog is not None:
                self.dialog.confirmed = True
            if self._bye_after_ack:
                return out + self._send_bye() + self._end("local hangup", event=False)
            return [*out, CallEstablished(self, answer)]
        if self.ended:
            return out + self._send_bye() if self._bye_after_ack else out
        if answer is not None:
            out.append(AckAnswer(self, answer))  # to the offer in our 2xx to a re-INVITE
        return out

    def receive_request(self, request: Request, source: Peer, now: float) -> list[CallOutput]:
        """An in-dialog request (To tag is ours). ACKs go to :meth:`receive_ack`."""
        if request.method == "ACK":
            return self.receive_ack(request, now)
        if self.dialog is None or request.from_tag != self.dialog.remote_tag:
            return [self._respond(request, source, 481)]
        unsupported = [t for t in request.require if t not in SUPPORTED]
        if unsupported:
            return [
                self._respond(
                    request, source, 420, headers=[("Unsupported", ", ".join(unsupported))]
                )
            ]
        error = self.dialog.check_remote_cseq(request)
        if error is not None:
            return [self._respond(request, source, error)]
        if self.ended and request.method != "BYE":
            return [self._respond(request, source, 481)]
        handler = {
            "BYE": self._on_bye,
            "INVITE": self._on_offer,
            "UPDATE": self._on_offer,
            "INFO": self._on_info,
            "OPTIONS": self._on_options,
        }.get(request.method)
        if handler is None:
            return [self._respond(request, source, 405)]
        return handler(request, source, now)

    def _on_bye(self, request: Request, source: Peer, now: float) -> list[CallOutput]:
        out: list[CallOutput] = [self._respond(request, source, 200)]
        if self._incoming_offer is not None:
            pending, psource = self._incoming_offer
            self._incoming_offer = None
            out.append(self._respond(pending, psource, 487))
        return out + self._end("remote hangup")

    def _on_info(self, request: Request, source: Peer, now: float) -> list[CallOutput]:
        return [
            self._respond(request, source, 200),
            InfoReceived(self, request.content_type, request.body),
        ]

    def _on_options(self, request: Request, source: Peer, now: float) -> list[CallOutput]:
        return [self._respond(request, source, 200, headers=[("Accept", SDP)])]

    def _on_offer(self, request: Request, source: Peer, now: float) -> list[CallOutput]:
        """re-INVITE or UPDATE from the peer (RFC 3261 14.2, RFC 3311, RFC 4028)."""
        assert self.dialog is not None
        if request.body and request.content_type != SDP:
            return [self._respond(request, source, 415, headers=[("Accept", SDP)])]
        if self._outgoing_offer is not None and (request.body or request.method == "INVITE"):
            return [self._respond(request, source, 491)]  # glare
        if self._incoming_offer is not None or (
            request.method == "INVITE" and self._pending_2xx is not None
        ):
            return [self._respond(request, source, 500, headers=[("Retry-After", "1")])]
        st = negotiate_uas(request, self.config.session_timer)
        if isinstance(st, TooSmall):
            return [self._respond(request, source, 422, headers=st.response_headers())]
        self.dialog.update_remote_target(request)
        sdp = _sdp_of(request)
        if request.method == "UPDATE" and sdp is None:
            # A pure session refresh: answer at once.
            out: list[CallOutput] = []
            headers = self._restart_session_timer_uas(request, now, out)
            return [*out, self._respond(request, source, 200, headers=headers)]
        self._incoming_offer = (request, source)
        return [ReinviteOffer(self, sdp, request.method)]

    def receive_response(self, response: Response, now: float) -> list[CallOutput]:
        """A response to one of our in-dialog requests (or the UAC's INVITE, in UacCall)."""
        method = response.cseq[1]
        if response.status < 200:
            return []
        if method in ("INVITE", "UPDATE") and self._outgoing_offer is not None:
            if response.cseq[0] != self._outgoing_offer.cseq[0]:
                if method == "INVITE" and 200 <= response.status < 300:
                    return self._ack_2xx(response)  # a late 2xx retransmission
                return []
            return self._offer_response(response, now)
        if method == "INVITE" and 200 <= response.status < 300:
            return self._ack_2xx(response)
        if response.status in (408, 481) and method != "BYE" and not self.ended:
            return self._end(f"{response.status} to {method}", response.status)
        return []

    def _ack_2xx(self, response: Response) -> list[CallOutput]:
        """Acknowledge a 2xx to an INVITE (13.2.2.4); retransmissions get the same ACK."""
        assert self.dialog is not None
        if self._last_ack is not None and self._last_ack.cseq[0] == response.cseq[0]:
            return [Send(self._last_ack, self._dest())]
        ack, dest = self._in_dialog("ACK", cseq=response.cseq[0])
        self._last_ack = ack
        return [Send(ack, dest)]

    def _offer_response(self, response: Response, now: float) -> list[CallOutput]:
        assert self.dialog is not None and self._outgoing_offer is not None
        request = self._outgoing_offer
        refresh = self._outgoing_is_refresh
        out: list[CallOutput] = []
        if request.method == "INVITE" and 200 <= response.status < 300:
            out += self._ack_2xx(response)
        self._outgoing_offer = None
        if 200 <= response.status < 300:
            self.dialog.update_remote_target(response)
            out += self._session_timer_from_response(response, now, keep=refresh)
            if not refresh:
                self.local_sdp = request.body.decode("utf-8", errors="replace") or self.local_sdp
                answer = _sdp_of(response)
                if answer is not None:
                    self.remote_sdp = answer
                out.append(ReinviteAnswered(self, answer))
            return out
        if response.status == 422 and not self._retry_422:
            self._retry_422 = True
            interval = max(min_se_of(response), self.config.session_timer.min_se)
            return out + self._send_offer(
                request.method, request.body, refresh=refresh, interval=interval
            )
        if response.status == 491 and request.method == "INVITE" and not refresh:
            # Glare (RFC 3261 14.1): retry after a random wait.
            self._glare_sdp = request.body.decode("utf-8", errors="replace")
            return [*out, StartTimer(self.key, GLARE_RETRY, self._glare_delay())]
        if response.status == 481:  # the peer has no such dialog: nothing to BYE
            return out + self._end(f"{response.status} to {request.method}", response.status)
        if response.status == 408:  # RFC 4028 10, RFC 3261 12.2.1.2: end the dialog with BYE
            reason = f"{response.status} to {request.method}"
            return out + self._send_bye() + self._end(reason, response.status)
        if refresh:
            if response.status == 405 and request.method == "UPDATE":
                self.peer_allow = [m for m in self.peer_allow if m != "UPDATE"]
                return out + self._refresh(now)
            # Try again (491: after the RFC 3261 14.1 back-off; else at the next refresh point
            # or the Retry-After); if none succeeds, the expiry timer ends the call with BYE.
            delay: float | None = None
            if response.status == 491:
                delay = self._glare_delay()
            else:
                delay = _retry_after(response)
            return out + list(self.session_timer.refresh_failed(now, delay=delay))
        return [*out, ReinviteFailed(self, response.status)]

    def _glare_delay(self) -> float:
        """RFC 3261 14.1: 2.1-4 s for the owner of the Call-ID (the UAC of the initial INVITE),
        0-2 s for the other side."""
        return self.rng(2.1, 4.0) if self.is_uac else self.rng(0.0, 2.0)

    def timeout(self, request: Request, now: float) -> list[CallOutput]:
        """A client transaction of this call timed out (or failed in transport)."""
        if request.method == "BYE" or self.ended:
            return []
        if request.method in ("INVITE", "UPDATE") and self._outgoing_offer is request:
            self._outgoing_offer = None
        return self._send_bye() + self._end(f"{request.method} timed out", 408)


class UasCall(Call):
    """An incoming call (we are the UAS of the initial INVITE)."""

    is_uac = False

    def __init__(
        self,
        config: CallConfig,
        invite: Request,
        source: Peer,
        *,
        local_tag: str | None = None,
    ) -> None:
        tag = local_tag or new_tag()
        super().__init__(config, CallKey(invite.call_id, tag), source.transport)
        self.invite = invite
        self.source = source
        self.offer = _sdp_of(invite)
        self.peer_allow = [m.upper() for m in invite.headers.get_all("Allow")]
        self._session: Negotiated | None = None

    def _dest(self) -> Destination:
        """Where our in-dialog requests (BYE, re-INVITE, INFO) go.

        Without a proxy in the path (no Record-Route) and with a caller that is behind a NAT
        (its Via was stamped ``received``: it wrote an address it is not seen from) or on a
        connection (TCP), they go back where the INVITE came from, as the responses did
        (RFC 3581), instead of to a Contact that is likely unreachable from here; the TCP
        connection is reused (as RFC 5923 does). Otherwise: the next hop (first route, else
        the remote target, RFC 3261 12.2) - but never a host name, which would need DNS: then
        also back where the INVITE came from.
        """
        assert self.dialog is not None
        behind_nat = self.invite.top_via.param("received") is not None
        if not self.dialog.route_set and (behind_nat or self.source.reliable):
            return Destination(self.source.transport.upper(), self.source.host, self.source.port)
        return super()._dest()

    def _fallback_peer(self) -> Peer | None:
        return self.source

    def start(self, now: float) -> list[CallOutput]:
        """Check the INVITE; :class:`IncomingCall` for the TU, or an error response."""
        invite, source = self.invite, self.source
        unsupported = [t for t in invite.require if t not in SUPPORTED]
        if unsupported:
            resp = self._respond(
                invite, source, 420, headers=[("Unsupported", ", ".join(unsupported))]
            )
            return [resp, *self._end("unsupported extension", 420, event=False)]
        if invite.body and invite.content_type != SDP:
            resp = self._respond(invite, source, 415, headers=[("Accept", SDP)])
            return [resp, *self._end("unsupported body", 415, event=False)]
        st = negotiate_uas(invite, self.config.session_timer)
        if isinstance(st, TooSmall):
            resp = self._respond(invite, source, 422, headers=st.response_headers())
            return [resp, *self._end("session interval too small", 422, event=False)]
        self._session = st
        try:
            self.dialog = Dialog.from_uas(invite, self.key.local_tag)
        except SipParseError:
            resp = self._respond(invite, source, 400, "Bad Contact")
            return [resp, *self._end("bad request", 400, event=False)]
        return [IncomingCall(self, invite, self.offer)]

    def ring(self, now: float, *, status: int = 180, sdp: str | None = None) -> list[CallOutput]:
        """Send a provisional response (183 with ``sdp`` for early media)."""
        if self.state not in ("incoming", "early"):
            raise CallStateError(f"cannot ring a call that is {self.state}")
        self.state = "early"
        body = sdp.encode() if sdp is not None else b""
        headers = [("Contact", str(self.contact()))]
        return [
            self._respond(
                self.invite,
                self.source,
                status,
                headers=headers,
                body=body,
                content_type=SDP if sdp is not None else None,
            )
        ]

    def answer(self, sdp: str, now: float) -> list[CallOutput]:
        """200 OK with ``sdp`` (the answer; or our offer when the INVITE had none, the answer
        then comes in the ACK). Retransmitted until the ACK arrives."""
        if self.state not in ("incoming", "early"):
            raise CallStateError(f"cannot answer a call that is {self.state}")
        self.state = "answered"
        self.local_sdp = sdp
        out: list[CallOutput] = []
        headers: list[tuple[str, str]] = []
        if self._session is not None:
            headers = self._session.response_headers()
            out += self.session_timer.start(
                self._session.interval, self._session.we_refresh(False), now
            )
        self._ack_expects_answer = self.offer is None
        resp = self._respond(
            self.invite, self.source, 200, headers=headers, body=sdp.encode(), content_type=SDP
        )
        return out + self._send_2xx(resp)

    def reject(
        self,
        status: int,
        now: float,
        *,
        reason: str | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> list[CallOutput]:
        """Refuse the call with a final 300-699 response."""
        if self.state not in ("incoming", "early"):
            raise CallStateError(f"cannot reject a call that is {self.state}")
        if not 300 <= status <= 699:
            raise ValueError("reject needs a 300-699 status")
        resp = self._respond(self.invite, self.source, status, reason, headers=headers)
        return [resp, *self._end(f"rejected {status}", status, event=False)]

    def hangup(self, now: float) -> list[CallOutput]:
        if self.state in ("incoming", "early"):
            resp = self._respond(self.invite, self.source, 480)
            return [resp, *self._end("local hangup")]
        return super().hangup(now)

    def cancelled(self, invite: Request, now: float) -> list[CallOutput]:
        """The transaction layer answered a CANCEL (200) and the INVITE (487)."""
        if self.state in ("incoming", "early"):
            return self._end("cancelled", 487)
        if self._incoming_offer is not None and self._incoming_offer[0] == invite:
            self._incoming_offer = None  # a re-INVITE was cancelled: the old session stays
        return []


class UacCall(Call):
    """An outgoing call: INVITE with an SDP offer, digest retry, CANCEL, ACK, BYE."""

    is_uac = True

    def __init__(
        self,
        config: CallConfig,
        target: SipUri,
        *,
        from_: NameAddr,
        offer: str,
        to: NameAddr | None = None,
        credentials: Credentials | None = None,
        dest: Peer | None = None,
        call_id: str | None = None,
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        tag = from_.tag or new_tag()
        call_id = call_id or new_call_id(config.local_host)
        self.dest: Peer = dest or destination_for(target, config.transport)
        super().__init__(config, CallKey(call_id, tag), self.dest.transport)
        self.target = target
        self.from_ = from_.with_tag(tag)
        self.to = to or NameAddr(None, target)
        self.local_sdp = offer
        self.credentials = credentials
        self.extra_headers = list(headers or [])
        self.state = "incoming"  # "calling" in UAC terms: no final response yet
        self.invite: Request | None = None
        self._cseq = 0
        self._auth_tried = False
        self._se_interval: int | None = None
        self._got_provisional = False
        self._cancel_wanted = False
        self._cancelled = False
        self._auth: list[tuple[str, str]] = []

    def _fallback_peer(self) -> Peer | None:
        return self.dest

    def start(self, now: float) -> list[CallOutput]:
        return self._send_invite([])

    def _send_invite(self, auth: list[tuple[str, str]]) -> list[CallOutput]:
        self._cseq += 1
        headers = [
            *self._common_headers(),
            *[
                h
                for h in request_headers(self.config.session_timer, interval=self._se_interval)
                if h[0] != "Supported"
            ],
            *auth,
            *self.extra_headers,
        ]
        self.invite = make_request(
            "INVITE",
            self.target,
            via=self._via(self.dest),
            from_=self.from_,
            to=self.to,
            call_id=self.key.call_id,
            cseq=self._cseq,
            contact=self.contact(),
            headers=headers,
            body=(self.local_sdp or "").encode(),
            content_type=SDP,
        )
        self._got_provisional = False
        return [SendRequest(self.invite, self.dest)]

    def hangup(self, now: float) -> list[CallOutput]:
        """Before the final response: CANCEL (once a provisional came); afterwards BYE."""
        if self.state in ("incoming", "early"):
            out: list[CallOutput] = []
            self._cancel_wanted = True
            if self._got_provisional and self.invite is not None and not self._cancelled:
                self._cancelled = True
                out.append(SendRequest(build_cancel(self.invite), self.dest))
            return out + self._end("local hangup")
        return super().hangup(now)

    def receive_response(self, response: Response, now: float) -> list[CallOutput]:
        if (
            self.invite is None
            or response.cseq[1] != "INVITE"
            or response.cseq[0] != self.invite.cseq[0]
            or (self.state not in ("incoming", "early") and not self._cancel_wanted)
        ):
            return super().receive_response(response, now)
        invite = self.invite
        status = response.status
        if status < 200:
            return self._provisional(response)
        if status < 300:
            return self._success(invite, response, now)
        if self._cancel_wanted or self.ended:
            return []
        if status in (401, 407) and self.credentials is not None and not self._auth_tried:
            challenge_name, credentials_name = authorization_header(status)
            value = response.headers.get(challenge_name)
            if value is not None:
                try:
                    challenge = parse_challenge(value)
                    auth = build_authorization(
                        challenge, self.credentials, "INVITE", str(self.target)
                    )
                except DigestError as exc:
                    logger.info("cannot answer challenge: %s", exc)
                else:
                    self._auth_tried = True
                    self._auth = [(credentials_name, auth)]
                    return self._send_invite(self._auth)
        if status == 422 and self._se_interval is None:
            self._se_interval = max(min_se_of(response), self.config.session_timer.min_se)
            return self._send_invite(self._auth)
        return self._end(f"{status} {response.reason}", status)

    def _provisional(self, response: Response) -> list[CallOutput]:
        out: list[CallOutput] = []
        if not self._got_provisional:
            self._got_provisional = True
            if self._cancel_wanted and not self._cancelled and self.invite is not None:
                self._cancelled = True
                return [SendRequest(build_cancel(self.invite), self.dest)]
        if self.ended or response.status == 100:
            return out
        assert self.invite is not None
        if response.to_tag and self.dialog is None:
            try:
                self.dialog = Dialog.from_uac(self.invite, response)
            except SipParseError:
                self.dialog = None
        self.state = "early"
        return [*out, CallProgress(self, response.status, response.reason, _sdp_of(response))]

    def _success(self, invite: Request, response: Response, now: float) -> list[CallOutput]:
        if self._last_ack is not None and self._last_ack.cseq[0] == response.cseq[0]:
            return self._ack_2xx(response)  # a retransmission of the 2xx
        if (
            self.dialog is None
            or self.dialog.remote_tag != response.to_tag
            or not self.dialog.confirmed
        ):
            self.dialog = Dialog.from_uac(invite, response)
        self.dialog.confirmed = True
        self.peer_allow = [m.upper() for m in response.headers.get_all("Allow")]
        out = self._ack_2xx(response)
        if self._cancel_wanted or self.ended:
            # We hung up meanwhile: acknowledge, then end the session.
            self.state = "ended"
            return out + self._send_bye()
        self.state = "confirmed"
        answer = _sdp_of(response)
        self.remote_sdp = answer
        out += self._session_timer_from_response(response, now)
        return [*out, CallEstablished(self, answer)]

    def timeout(self, request: Request, now: float) -> list[CallOutput]:
        if request.method == "INVITE" and self.state in ("incoming", "early"):
            return self._end("no answer (timer B)", 408)
        if request.method == "CANCEL":
            return []
        return super().timeout(request, now)
