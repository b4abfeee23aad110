"""SIP transactions (RFC 3261 section 17, with the RFC 6026 "Accepted" states) - pure, no I/O.

Every transition of the four machines is in one table per machine (``INVITE_CLIENT_TABLE``,
``NON_INVITE_CLIENT_TABLE``, ``INVITE_SERVER_TABLE``, ``NON_INVITE_SERVER_TABLE``), mapping
``(state, event) -> (next state, handler)``. An event not in the table is absorbed (ignored):
that is how retransmissions that need no answer disappear.

Inputs are messages, TU responses and fired timers, each with ``now`` (seconds, any monotonic
clock: the machines never read the time). Outputs are lists of actions (frozen dataclasses):

* :class:`Send` - put a message on the wire towards ``dest``;
* :class:`StartTimer` / :class:`CancelTimer` - timers are named by ``(owner, name)``, the owner
  being the :class:`TransactionKey`; starting a running timer replaces it;
* :class:`PassUp` - deliver a message to the transaction user;
* :class:`Timeout` (timer B, F or H fired), :class:`TransportError`, :class:`InviteCancelled`;
* :class:`Terminated` - the transaction is gone.

:class:`TransactionLayer` matches messages to transactions (RFC 3261 17.1.3 and 17.2.3),
creates server transactions, answers CANCEL (200, then 487 to the INVITE) and merged requests
(482, RFC 3261 8.2.2.2).
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import ClassVar, Protocol

from sip.errors import SipParseError
from sip.message import (
    BRANCH_MAGIC_COOKIE,
    Headers,
    Message,
    Request,
    Response,
    make_response,
    new_tag,
)

__all__ = [
    "Action",
    "CancelTimer",
    "ClientTransaction",
    "Destination",
    "InviteCancelled",
    "InviteClientTransaction",
    "InviteServerTransaction",
    "NonInviteClientTransaction",
    "NonInviteServerTransaction",
    "PassUp",
    "Peer",
    "Send",
    "ServerTransaction",
    "StartTimer",
    "State",
    "Terminated",
    "Timeout",
    "TimerConfig",
    "Transaction",
    "TransactionKey",
    "TransactionLayer",
    "TransportError",
    "build_ack_for_non2xx",
    "client_key",
    "server_key",
]

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# Addresses, configuration, keys


class Peer(Protocol):
    """Where a message came from or goes to. The driver's own source type fits (any object with
    these read-only attributes); :class:`Destination` is the one the pure layers build."""

    @property
    def transport(self) -> str: ...

    @property
    def host(self) -> str: ...

    @property
    def port(self) -> int: ...

    @property
    def reliable(self) -> bool: ...


@dataclass(frozen=True)
class Destination:
    """A next hop computed from a URI (no DNS done here: ``host`` may be a name)."""

    transport: str
    host: str
    port: int

    @property
    def reliable(self) -> bool:
        return self.transport.upper() != "UDP"


@dataclass(frozen=True)
class TimerConfig:
    """RFC 3261 timer values (seconds). ``trying_delay``: an INVITE server transaction sends
    ``100 Trying`` by itself when the TU has sent nothing that long (None: never)."""

    t1: float = 0.5
    t2: float = 4.0
    t4: float = 5.0
    trying_delay: float | None = 0.2


@dataclass(frozen=True)
class TransactionKey:
    """Identity of a transaction. Server: branch + sent-by + method (ACK -> INVITE), RFC 3261
    17.2.3 (a composite "branch" for RFC 2543 peers without the magic cookie). Client: branch +
    CSeq method, RFC 3261 17.1.3 (``sent_by`` empty)."""

    server: bool
    branch: str
    sent_by: str
    method: str


def _sent_by(msg: Message) -> str:
    via = msg.top_via
    return f"{via.host.lower()}:{via.port or ''}"


def server_key(msg: Message, method: str | None = None) -> TransactionKey:
    """Server-transaction key of a request (or of a response the TU sends for one). ``method``
    overrides the CSeq method (ACK and CANCEL look up their INVITE with ``"INVITE"``)."""
    meth = method or msg.cseq[1]
    if meth == "ACK":
        meth = "INVITE"
    branch = msg.top_via.branch or ""
    if branch.startswith(BRANCH_MAGIC_COOKIE):
        return TransactionKey(True, branch, _sent_by(msg), meth)
    # RFC 2543 peer: Call-ID, From tag, CSeq number and top Via identify the transaction.
    composite = f"2543|{msg.call_id}|{msg.from_tag or ''}|{msg.cseq[0]}|{msg.top_via}"
    return TransactionKey(True, composite, "", meth)


def client_key(msg: Message) -> TransactionKey:
    return TransactionKey(False, msg.top_via.branch or "", "", msg.cseq[1])


# --------------------------------------------------------------------------------------------
# Actions


@dataclass(frozen=True)
class Send:
    """Transmit ``message``. For responses ``dest`` is the source the request came from (the
    driver's own object, passed back unchanged); for requests it is a :class:`Destination` or
    whatever the TU gave to :meth:`TransactionLayer.send_request`."""

    message: Message
    dest: Peer


@dataclass(frozen=True)
class StartTimer:
    """Call ``timer_fired(owner, name, now)`` after ``delay`` seconds (replaces a running one)."""

    owner: Hashable
    name: str
    delay: float


@dataclass(frozen=True)
class CancelTimer:
    owner: Hashable
    name: str


@dataclass(frozen=True)
class PassUp:
    """Deliver ``message`` to the TU. ``key`` is the transaction it belongs to (None for stray
    ACKs and responses); ``source`` is where it came from."""

    message: Message
    key: TransactionKey | None
    source: Peer | None


@dataclass(frozen=True)
class Timeout:
    """Timer B, F or H fired: the TU is told (for INVITE client B this means 408)."""

    key: TransactionKey
    timer: str
    request: Request


@dataclass(frozen=True)
class TransportError:
    key: TransactionKey
    request: Request


@dataclass(frozen=True)
class InviteCancelled:
    """A CANCEL matched INVITE server transaction ``key`` while it was proceeding: the layer
    answered the CANCEL 200 and the INVITE 487 already; the TU must drop the call."""

    key: TransactionKey
    invite: Request
    cancel: Request


@dataclass(frozen=True)
class Terminated:
    key: TransactionKey


Action = (
    Send
    | StartTimer
    | CancelTimer
    | PassUp
    | Timeout
    | TransportError
    | InviteCancelled
    | Terminated
)


class State(enum.Enum):
    CALLING = "Calling"
    TRYING = "Trying"
    PROCEEDING = "Proceeding"
    COMPLETED = "Completed"
    CONFIRMED = "Confirmed"
    ACCEPTED = "Accepted"
    TERMINATED = "Terminated"


# --------------------------------------------------------------------------------------------
# Machines

Table = Mapping[tuple[State, str], tuple[State, str]]

CALLING, TRYING, PROCEEDING = State.CALLING, State.TRYING, State.PROCEEDING
COMPLETED, CONFIRMED, ACCEPTED, TERMINATED = (
    State.COMPLETED,
    State.CONFIRMED,
    State.ACCEPTED,
    State.TERMINATED,
)

#: INVITE client transaction (RFC 3261 17.1.1, RFC 6026 7.2).
#: Events: start, 1xx, 2xx, final (300-699), timer_A/B/D/M, transport_error.
INVITE_CLIENT_TABLE: Table = {
    (CALLING, "start"): (CALLING, "_send_initial"),
    (CALLING, "timer_A"): (CALLING, "_retransmit_a"),
    (CALLING, "timer_B"): (TERMINATED, "_timeout"),
    (CALLING, "1xx"): (PROCEEDING, "_first_provisional"),
    (PROCEEDING, "1xx"): (PROCEEDING, "_pass_up"),
    (CALLING, "2xx"): (ACCEPTED, "_accepted"),
    (PROCEEDING, "2xx"): (ACCEPTED, "_accepted"),
    (ACCEPTED, "2xx"): (ACCEPTED, "_pass_up"),
    (ACCEPTED, "timer_M"): (TERMINATED, "_nothing"),
    (CALLING, "final"): (COMPLETED, "_completed_invite"),
    (PROCEEDING, "final"): (COMPLETED, "_completed_invite"),
    (COMPLETED, "final"): (COMPLETED, "_resend_ack"),
    (COMPLETED, "timer_D"): (TERMINATED, "_nothing"),
    (CALLING, "transport_error"): (TERMINATED, "_transport_error"),
    (PROCEEDING, "transport_error"): (TERMINATED, "_transport_error"),
    (COMPLETED, "transport_error"): (TERMINATED, "_transport_error"),
}

#: Non-INVITE client transaction (RFC 3261 17.1.2).
#: Events: start, 1xx, final (200-699), timer_E/F/K, transport_error.
NON_INVITE_CLIENT_TABLE: Table = {
    (TRYING, "start"): (TRYING, "_send_initial"),
    (TRYING, "timer_E"): (TRYING, "_retransmit_e"),
    (PROCEEDING, "timer_E"): (PROCEEDING, "_retransmit_e"),
    (TRYING, "timer_F"): (TERMINATED, "_timeout"),
    (PROCEEDING, "timer_F"): (TERMINATED, "_timeout"),
    (TRYING, "1xx"): (PROCEEDING, "_pass_up"),
    (PROCEEDING, "1xx"): (PROCEEDING, "_pass_up"),
    (TRYING, "final"): (COMPLETED, "_completed_non_invite"),
    (PROCEEDING, "final"): (COMPLETED, "_completed_non_invite"),
    (COMPLETED, "timer_K"): (TERMINATED, "_nothing"),
    (TRYING, "transport_error"): (TERMINATED, "_transport_error"),
    (PROCEEDING, "transport_error"): (TERMINATED, "_transport_error"),
}

#: INVITE server transaction (RFC 3261 17.2.1, RFC 6026 7.1).
#: Events: start, request (retransmitted INVITE), ack, send_1xx, send_2xx, send_final,
#: timer_Trying/G/H/I/L, transport_error.
INVITE_SERVER_TABLE: Table = {
    (PROCEEDING, "start"): (PROCEEDING, "_received_initial"),
    (PROCEEDING, "request"): (PROCEEDING, "_resend_provisional"),
    (PROCEEDING, "timer_Trying"): (PROCEEDING, "_auto_trying"),
    (PROCEEDING, "send_1xx"): (PROCEEDING, "_send_provisional"),
    (PROCEEDING, "send_2xx"): (ACCEPTED, "_send_2xx"),
    (PROCEEDING, "send_final"): (COMPLETED, "_send_final_invite"),
    (PROCEEDING, "transport_error"): (TERMINATED, "_transport_error"),
    (COMPLETED, "request"): (COMPLETED, "_resend_final"),
    (COMPLETED, "timer_G"): (COMPLETED, "_retransmit_g"),
    (COMPLETED, "timer_H"): (TERMINATED, "_timeout"),
    (COMPLETED, "ack"): (CONFIRMED, "_confirmed"),
    (COMPLETED, "transport_error"): (TERMINATED, "_transport_error"),
    (CONFIRMED, "timer_I"): (TERMINATED, "_nothing"),
    (ACCEPTED, "ack"): (ACCEPTED, "_pass_up"),
    (ACCEPTED, "send_2xx"): (ACCEPTED, "_send_response"),
    (ACCEPTED, "timer_L"): (TERMINATED, "_nothing"),
}

#: Non-INVITE server transaction (RFC 3261 17.2.2).
#: Events: start, request (retransmission), send_1xx, send_final, timer_J, transport_error.
NON_INVITE_SERVER_TABLE: Table = {
    (TRYING, "start"): (TRYING, "_received_initial"),
    (TRYING, "send_1xx"): (PROCEEDING, "_send_provisional"),
    (TRYING, "send_final"): (COMPLETED, "_send_final_non_invite"),
    (PROCEEDING, "request"): (PROCEEDING, "_resend_provisional"),
    (PROCEEDING, "send_1xx"): (PROCEEDING, "_send_provisional"),
    (PROCEEDING, "send_final"): (COMPLETED, "_send_final_non_invite"),
    (COMPLETED, "request"): (COMPLETED, "_resend_final"),
    (COMPLETED, "timer_J"): (TERMINATED, "_nothing"),
    (TRYING, "transport_error"): (TERMINATED, "_transport_error"),
    (PROCEEDING, "transport_error"): (TERMINATED, "_transport_error"),
    (COMPLETED, "transport_error"): (TERMINATED, "_transport_error"),
}

Handler = Callable[[Message | None], list[Action]]


class Transaction:
    """Common machinery: table dispatch, timers (zero delays fire at once), termination."""

    TABLE: ClassVar[Table]
    INITIAL: ClassVar[State]

    def __init__(
        self,
        key: TransactionKey,
        request: Request,
        peer: Peer,
        timers: TimerConfig,
    ) -> None:
        self.key = key
        self.request = request
        self.peer = peer
        self.reliable = peer.reliable
        self.timers = timers
        self.state = self.INITIAL
        self._running: set[str] = set()
        self._immediate: list[str] = []

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.key.method} {self.key.branch} {self.state.value})"

    @property
    def terminated(self) -> bool:
        return self.state is TERMINATED

    # -- dispatch ----------------------------------------------------------------------------

    def _dispatch(self, event: str, msg: Message | None = None) -> list[Action]:
        entry = self.TABLE.get((self.state, event))
        if entry is None:
            logger.debug("%r: %s absorbed", self, event)
            return []
        next_state, handler_name = entry
        handler: Handler = getattr(self, handler_name)
        actions = handler(msg)
        self.state = next_state
        if next_state is TERMINATED:
            actions.extend(CancelTimer(self.key, name) for name in sorted(self._running))
            self._running.clear()
            self._immediate.clear()
            actions.append(Terminated(self.key))
            return actions
        while self._immediate and not self.terminated:
            actions.extend(self._dispatch("timer_" + self._immediate.pop(0)))
        return actions

    def timer_fired(self, name: str, now: float) -> list[Action]:
        self._running.discard(name)
        return self._dispatch("timer_" + name)

    def transport_error(self, now: float) -> list[Action]:
        return self._dispatch("transport_error")

    # -- helpers -----------------------------------------------------------------------------

    def _start(self, name: str, delay: float) -> list[Action]:
        if delay <= 0:
            self._immediate.append(name)
            return []
        self._running.add(name)
        return [StartTimer(self.key, name, delay)]

    def _cancel(self, *names: str) -> list[Action]:
        out: list[Action] = []
        for name in names:
            if name in self._running:
                self._running.discard(name)
                out.append(CancelTimer(self.key, name))
        return out

    # -- shared handlers ---------------------------------------------------------------------

    def _nothing(self, msg: Message | None) -> list[Action]:
        return []

    def _pass_up(self, msg: Message | None) -> list[Action]:
        assert msg is not None
        return [PassUp(msg, self.key, self.peer)]

    def _timeout(self, msg: Message | None) -> list[Action]:
        timer = {"Calling": "B", "Trying": "F", "Proceeding": "F", "Completed": "H"}
        return [Timeout(self.key, timer[self.state.value], self.request)]

    def _transport_error(self, msg: Message | None) -> list[Action]:
        return [TransportError(self.key, self.request)]


class ClientTransaction(Transaction):
    """Base of the client machines: ``start`` sends the request; responses come in."""

    def __init__(
        self,
        key: TransactionKey,
        request: Request,
        peer: Peer,
        timers: TimerConfig,
    ) -> None:
        super().__init__(key, request, peer, timers)
        self._interval = timers.t1

    def start(self, now: float) -> list[Action]:
        return self._dispatch("start")

    def receive(self, response: Response, now: float) -> list[Action]:
        return self._dispatch(self._classify(response), response)

    def _classify(self, response: Response) -> str:
        return "1xx" if response.status < 200 else "final"


class InviteClientTransaction(ClientTransaction):
    TABLE = INVITE_CLIENT_TABLE
    INITIAL = CALLING

    def __init__(
        self,
        key: TransactionKey,
        request: Request,
        peer: Peer,
        timers: TimerConfig,
    ) -> None:
        super().__init__(key, request, peer, timers)
        self.ack: Request | None = None

    def _classify(self, response: Response) -> str:
        if response.status < 200:
            return "1xx"
        return "2xx" if response.status < 300 else "final"

    def _send_initial(self, msg: Message | None) -> list[Action]:
        out: list[Action] = [Send(self.request, self.peer)]
        if not self.reliable:
            out += self._start("A", self.timers.t1)
        out += self._start("B", 64 * self.timers.t1)
        return out

    def _retransmit_a(self, msg: Message | None) -> list[Action]:
        self._interval *= 2
        return [Send(self.request, self.peer), *self._start("A", self._interval)]

    def _first_provisional(self, msg: Message | None) -> list[Action]:
        return [*self._cancel("A", "B"), *self._pass_up(msg)]

    def _accepted(self, msg: Message | None) -> list[Action]:
        return [
            *self._cancel("A", "B"),
            *self._pass_up(msg),
            *self._start("M", 64 * self.timers.t1),
        ]

    def _completed_invite(self, msg: Message | None) -> list[Action]:
        assert isinstance(msg, Response)
        self.ack = build_ack_for_non2xx(self.request, msg)
        return [
            *self._cancel("A", "B"),
            Send(self.ack, self.peer),
            *self._pass_up(msg),
            *self._start("D", 0 if self.reliable else 32.0),
        ]

    def _resend_ack(self, msg: Message | None) -> list[Action]:
        return [Send(self.ack, self.peer)] if self.ack is not None else []


class NonInviteClientTransaction(ClientTransaction):
    TABLE = NON_INVITE_CLIENT_TABLE
    INITIAL = TRYING

    def _send_initial(self, msg: Message | None) -> list[Action]:
        out: list[Action] = [Send(self.request, self.peer)]
        if not self.reliable:
            out += self._start("E", self.timers.t1)
        out += self._start("F", 64 * self.timers.t1)
        return out

    def _retransmit_e(self, msg: Message | None) -> list[Action]:
        if self.state is PROCEEDING:
            self._interval = self.timers.t2
        else:
            self._interval = min(2 * self._interval, self.timers.t2)
        return [Send(self.request, self.peer), *self._start("E", self._interval)]

    def _completed_non_invite(self, msg: Message | None) -> list[Action]:
        return [
            *self._cancel("E", "F"),
            *self._pass_up(msg),
            *self._start("K", 0 if self.reliable else self.timers.t4),
        ]


class ServerTransaction(Transaction):
    """Base of the server machines: created on a request; the TU sends responses."""

    def __init__(
        self,
        key: TransactionKey,
        request: Request,
        peer: Peer,
        timers: TimerConfig,
        *,
        pass_up: bool = True,
    ) -> None:
        super().__init__(key, request, peer, timers)
        self.pass_up_request = pass_up
        self.last_provisional: Response | None = None
        self.final: Response | None = None
        self._interval = timers.t1

    def start(self, now: float) -> list[Action]:
        return self._dispatch("start", self.request)

    def receive(self, request: Request, now: float) -> list[Action]:
        return self._dispatch("ack" if request.method == "ACK" else "request", request)

    def send_response(self, response: Response, now: float) -> list[Action]:
        return self._dispatch(self._classify(response), response)

    def _classify(self, response: Response) -> str:
        return "send_1xx" if response.status < 200 else "send_final"

    @property
    def to_tag(self) -> str | None:
        """The To tag of the responses sent so far (None before any with a tag)."""
        for resp in (self.final, self.last_provisional):
            if resp is not None and resp.to_tag:
                return resp.to_tag
        return None

    def _received_initial(self, msg: Message | None) -> list[Action]:
        return self._pass_up(msg) if self.pass_up_request else []

    def _send_response(self, msg: Message | None) -> list[Action]:
        assert msg is not None
        return [Send(msg, self.peer)]

    def _send_provisional(self, msg: Message | None) -> list[Action]:
        assert isinstance(msg, Response)
        self.last_provisional = msg
        return [*self._cancel("Trying"), Send(msg, self.peer)]

    def _resend_provisional(self, msg: Message | None) -> list[Action]:
        if self.last_provisional is None:
            return []
        return [Send(self.last_provisional, self.peer)]

    def _resend_final(self, msg: Message | None) -> list[Action]:
        return [Send(self.final, self.peer)] if self.final is not None else []


class InviteServerTransaction(ServerTransaction):
    TABLE = INVITE_SERVER_TABLE
    INITIAL = PROCEEDING

    def _classify(self, response: Response) -> str:
        if response.status < 200:
            return "send_1xx"
        return "send_2xx" if response.status < 300 else "send_final"

    def _received_initial(self, msg: Message | None) -> list[Action]:
        out = super()._received_initial(msg)
        if self.timers.trying_delay is not None:
            out += self._start("Trying", self.timers.trying_delay)
        return out

    def _auto_trying(self, msg: Message | None) -> list[Action]:
        if self.last_provisional is not None:
            return []
        return self._send_provisional(make_response(self.request, 100))

    def _send_2xx(self, msg: Message | None) -> list[Action]:
        assert isinstance(msg, Response)
        self.final = msg
        return [
            *self._cancel("Trying"),
            Send(msg, self.peer),
            *self._start("L", 64 * self.timers.t1),
        ]

    def _send_final_invite(self, msg: Message | None) -> list[Action]:
        assert isinstance(msg, Response)
        self.final = msg
        out: list[Action] = [*self._cancel("Trying"), Send(msg, self.peer)]
        if not self.reliable:
            out += self._start("G", self.timers.t1)
        out += self._start("H", 64 * self.timers.t1)
        return out

    def _retransmit_g(self, msg: Message | None) -> list[Action]:
        self._interval = min(2 * self._interval, self.timers.t2)
        return [*self._resend_final(None), *self._start("G", self._interval)]

    def _confirmed(self, msg: Message | None) -> list[Action]:
        return [*self._cancel("G", "H"), *self._start("I", 0 if self.reliable else self.timers.t4)]


class NonInviteServerTransaction(ServerTransaction):
    TABLE = NON_INVITE_SERVER_TABLE
    INITIAL = TRYING

    def _send_final_non_invite(self, msg: Message | None) -> list[Action]:
        assert isinstance(msg, Response)
        self.final = msg
        return [
            Send(msg, self.peer),
            *self._start("J", 0 if self.reliable else 64 * self.timers.t1),
        ]


def build_ack_for_non2xx(request: Request, response: Response) -> Request:
    """The ACK a client transaction sends for a 300-699 to ``request`` (RFC 3261 17.1.1.3):
    same Request-URI, Call-ID, From, CSeq number, top Via and Route; To from the response."""
    headers = Headers()
    headers.add("Via", str(request.top_via))
    headers.add("Max-Forwards", "70")
    for name in ("From",):
        value = request.headers.get(name)
        if value is not None:
            headers.add(name, value)
    headers.add("To", response.headers.get("To") or request.headers.get("To") or "")
    headers.add("Call-ID", request.call_id)
    headers.add("CSeq", f"{request.cseq[0]} ACK")
    for value in request.headers.get_lines("Route"):
        headers.add("Route", value)
    headers.add("Content-Length", "0")
    return Request("ACK", request.uri, headers)


# --------------------------------------------------------------------------------------------
# The layer


@dataclass
class _Merged:
    from_tag: str
    call_id: str
    cseq: int
    method: str


class TransactionLayer:
    """All transactions of one endpoint. Feed it every message, TU response, new client request
    and fired timer; execute the actions it returns. Timers of transactions have the
    :class:`TransactionKey` as owner: call :meth:`timer_fired` with it."""

    def __init__(self, timers: TimerConfig | None = None) -> None:
        self.timers = timers or TimerConfig()
        self.transactions: dict[TransactionKey, Transaction] = {}
        self._merged: dict[tuple[str, str, int, str], TransactionKey] = {}

    def __len__(self) -> int:
        return len(self.transactions)

    def get(self, key: TransactionKey) -> Transaction | None:
        return self.transactions.get(key)

    # -- inputs ------------------------------------------------------------------------------

    def receive(self, msg: Message, source: Peer, now: float) -> list[Action]:
        """A message from the transport (already parsed and stamped with received/rport)."""
        try:
            if isinstance(msg, Response):
                return self._receive_response(msg, source, now)
            return self._receive_request(msg, source, now)
        except SipParseError as exc:  # a header the matching needs is malformed
            logger.info("dropping message that cannot be matched: %s", exc)
            return []

    def send_request(
        self, request: Request, dest: Peer, now: float
    ) -> tuple[TransactionKey, list[Action]]:
        """Start a client transaction for ``request`` (not ACK: send an ACK for a 2xx with a
        plain :class:`Send`). The request's top Via must carry a fresh RFC 3261 branch."""
        if request.method == "ACK":
            raise ValueError("ACK is not sent in a client transaction")
        key = client_key(request)
        if not key.branch.startswith(BRANCH_MAGIC_COOKIE):
            raise ValueError("request needs a top Via with an RFC 3261 branch")
        if key in self.transactions:
            raise ValueError(f"transaction {key} already exists")
        cls = InviteClientTransaction if request.method == "INVITE" else NonInviteClientTransaction
        txn = cls(key, request, dest, self.timers)
        self.transactions[key] = txn
        return key, self._after(txn.start(now))

    def send_response(self, response: Response, now: float) -> list[Action]:
        """The TU answers a request; the server transaction is found from the response's Via and
        CSeq. A response for no (or a finished) transaction is dropped and logged."""
        key = server_key(response)
        txn = self.transactions.get(key)
        if not isinstance(txn, ServerTransaction):
            logger.info("no server transaction for %s %s", response.status, key)
            return []
        return self._after(txn.send_response(response, now))

    def timer_fired(self, key: TransactionKey, name: str, now: float) -> list[Action]:
        txn = self.transactions.get(key)
        if txn is None:
            return []
        return self._after(txn.timer_fired(name, now))

    def transport_error(self, key: TransactionKey, now: float) -> list[Action]:
        """Sending a message of transaction ``key`` failed (RFC 3261 17.1.4, 17.2.4)."""
        txn = self.transactions.get(key)
        if txn is None:
            return []
        return self._after(txn.transport_error(now))

    # -- internals ---------------------------------------------------------------------------

    def _after(self, actions: list[Action]) -> list[Action]:
        for action in actions:
            if isinstance(action, Terminated):
                self.transactions.pop(action.key, None)
                for mkey, tkey in list(self._merged.items()):
                    if tkey == action.key:
                        del self._merged[mkey]
        return actions

    def _receive_response(self, resp: Response, source: Peer, now: float) -> list[Action]:
        txn = self.transactions.get(client_key(resp))
        if not isinstance(txn, ClientTransaction):
            return [PassUp(resp, None, source)]
        return self._after(txn.receive(resp, now))

    def _receive_request(self, req: Request, source: Peer, now: float) -> list[Action]:
        if req.method != req.cseq[1]:
            logger.info("CSeq method %s differs from %s", req.cseq[1], req.method)
        key = server_key(req)
        txn = self.transactions.get(key)
        if req.method == "ACK":
            if isinstance(txn, InviteServerTransaction):
                return self._after(txn.receive(req, now))
            return [PassUp(req, None, source)]
        if isinstance(txn, ServerTransaction):
            return self._after(txn.receive(req, now))
        if req.method == "CANCEL":
            return self._receive_cancel(req, key, source, now)
        merged = self._merged_with(req, key)
        cls = InviteServerTransaction if req.method == "INVITE" else NonInviteServerTransaction
        new = cls(key, req, source, self.timers, pass_up=not merged)
        self.transactions[key] = new
        actions = new.start(now)
        if merged:
            actions += new.send_response(make_response(req, 482, to_tag=new_tag()), now)
        elif req.to_tag is None and req.from_tag:
            self._merged[(req.from_tag, req.call_id, req.cseq[0], req.cseq[1])] = key
        return self._after(actions)

    def _merged_with(self, req: Request, key: TransactionKey) -> bool:
        """RFC 3261 8.2.2.2: no To tag, same From tag, Call-ID and CSeq as a live server
        transaction that arrived by another path (another branch)."""
        if req.to_tag is not None or not req.from_tag:
            return False
        other = self._merged.get((req.from_tag, req.call_id, req.cseq[0], req.cseq[1]))
        return other is not None and other != key and other in self.transactions

    def _receive_cancel(
        self, cancel: Request, key: TransactionKey, source: Peer, now: float
    ) -> list[Action]:
        txn = NonInviteServerTransaction(key, cancel, source, self.timers, pass_up=False)
        self.transactions[key] = txn
        actions = txn.start(now)
        invite = self.transactions.get(server_key(cancel, "INVITE"))
        if not isinstance(invite, InviteServerTransaction):
            actions += txn.send_response(make_response(cancel, 481, to_tag=new_tag()), now)
            return self._after(actions)
        to_tag = invite.to_tag or new_tag()
        actions += txn.send_response(make_response(cancel, 200, to_tag=to_tag), now)
        if invite.state is PROCEEDING:
            actions += invite.send_response(make_response(invite.request, 487, to_tag=to_tag), now)
            actions.append(InviteCancelled(invite.key, invite.request, cancel))
        return self._after(actions)
