"""SIP session timers (RFC 4028) - pure, no I/O.

Negotiation is a set of functions over messages (:func:`negotiate_uas`,
:func:`negotiate_from_response`, :func:`request_headers`); :class:`SessionTimer` turns the
negotiated interval into timer actions:

* we are the refresher: timer ``session_refresh`` fires at half the interval; the call then sends
  a refresh (re-INVITE or UPDATE);
* the peer is the refresher: timer ``session_expire`` fires at the interval minus
  min(32, interval / 3) (RFC 4028 section 10) without a refresh; the call then sends BYE.

Every refresh (a 2xx to a re-INVITE or UPDATE, either direction) restarts the timer.

When our refresh is refused (:meth:`SessionTimer.refresh_failed`), the refresh timer is started
again (491: after the glare back-off; otherwise at the next refresh point, no later than halfway
to the expiry) and the expiry timer is armed at the time the peer would give up on the session
(the last successful refresh + interval - min(32, interval / 3)): if no refresh succeeds by
then, the call sends BYE.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Literal

from sip.message import Request, Response
from sip.transaction import CancelTimer, StartTimer

__all__ = [
    "REFRESH_TIMER",
    "EXPIRE_TIMER",
    "Negotiated",
    "SessionExpires",
    "SessionTimer",
    "SessionTimerConfig",
    "TooSmall",
    "negotiate_from_response",
    "negotiate_uas",
    "parse_session_expires",
    "request_headers",
]

Refresher = Literal["uac", "uas"]
REFRESH_TIMER = "session_refresh"
EXPIRE_TIMER = "session_expire"


@dataclass(frozen=True)
class SessionTimerConfig:
    """``session_expires``: the interval we ask for or grant; ``min_se``: the smallest we accept
    (RFC 4028 says at least 90); ``refresher``: who refreshes when the UAC leaves it to us."""

    enabled: bool = True
    session_expires: int = 1800
    min_se: int = 90
    refresher: Refresher = "uas"


@dataclass(frozen=True)
class SessionExpires:
    interval: int
    refresher: Refresher | None = None

    def __str__(self) -> str:
        return (
            f"{self.interval};refresher={self.refresher}" if self.refresher else str(self.interval)
        )


@dataclass(frozen=True)
class Negotiated:
    """The outcome: ``refresher`` names the role in the transaction that negotiated it."""

    interval: int
    refresher: Refresher
    require_timer: bool = False  # put "Require: timer" in the 2xx (the UAC supports timer)

    def response_headers(self) -> list[tuple[str, str]]:
        out = [("Session-Expires", f"{self.interval};refresher={self.refresher}")]
        if self.require_timer:
            out.append(("Require", "timer"))
        return out

    def we_refresh(self, we_are_uac: bool) -> bool:
        return (self.refresher == "uac") == we_are_uac


@dataclass(frozen=True)
class TooSmall:
    """Reject with ``422 Session Interval Too Small`` and ``Min-SE: min_se``."""

    min_se: int

    def response_headers(self) -> list[tuple[str, str]]:
        return [("Min-SE", str(self.min_se))]


def parse_session_expires(value: str) -> SessionExpires:
    """Parse ``1800;refresher=uac`` (ValueError if malformed)."""
    head, *params = value.split(";")
    interval = int(head.strip())
    if interval <= 0:
        raise ValueError("Session-Expires must be positive")
    refresher: Refresher | None = None
    for param in params:
        name, _, val = param.partition("=")
        if name.strip().lower() == "refresher":
            v = val.strip().lower()
            if v == "uac":
                refresher = "uac"
            elif v == "uas":
                refresher = "uas"
    return SessionExpires(interval, refresher)


def _min_se(msg: Request | Response) -> int:
    value = msg.headers.get("Min-SE")
    if value is None:
        return 0
    try:
        return int(value.split(";")[0].strip())
    except ValueError:
        return 0


def _session_expires(msg: Request | Response) -> SessionExpires | None:
    value = msg.headers.get("Session-Expires")
    if value is None:
        return None
    try:
        return parse_session_expires(value)
    except ValueError:
        return None


def negotiate_uas(request: Request, config: SessionTimerConfig) -> Negotiated | TooSmall | None:
    """What a UAS does with an INVITE or UPDATE (RFC 4028 section 9). None: no session timer."""
    se = _session_expires(request)
    uac_supports = "timer" in request.supported or "timer" in request.require
    floor = max(_min_se(request), config.min_se)
    if se is None:
        if not config.enabled:
            return None
        # The UAC asked for nothing: we may still time the session, refreshing ourselves unless
        # the UAC says it supports timers.
        interval = max(config.session_expires, floor)
        refresher: Refresher = config.refresher if uac_supports else "uas"
        return Negotiated(interval, refresher, require_timer=uac_supports and refresher == "uac")
    if se.interval < config.min_se:
        if uac_supports:
            return TooSmall(config.min_se)
        se = SessionExpires(config.min_se, se.refresher)  # a proxy added it: raise it
    interval = max(min(se.interval, config.session_expires), floor)
    if not uac_supports:
        return Negotiated(interval, "uas", require_timer=False)
    refresher = se.refresher or config.refresher
    return Negotiated(interval, refresher, require_timer=True)


def negotiate_from_response(response: Response, config: SessionTimerConfig) -> Negotiated | None:
    """What a UAC learns from the 2xx to its INVITE/UPDATE (RFC 4028 section 7.2)."""
    se = _session_expires(response)
    if se is None:
        return None
    return Negotiated(se.interval, se.refresher or "uac")


def request_headers(
    config: SessionTimerConfig, *, interval: int | None = None, refresher: Refresher | None = None
) -> list[tuple[str, str]]:
    """Supported/Session-Expires/Min-SE for an INVITE or UPDATE we send."""
    if not config.enabled:
        return [("Supported", "timer")]
    se = SessionExpires(max(interval or config.session_expires, config.min_se), refresher)
    return [
        ("Supported", "timer"),
        ("Session-Expires", str(se)),
        ("Min-SE", str(config.min_se)),
    ]


def min_se_of(response: Response) -> int:
    """The Min-SE of a 422 response (0 if absent)."""
    return _min_se(response)


class SessionTimer:
    """Runs the refresh or expiry timer of one session; timers are owned by ``owner``."""

    def __init__(self, owner: Hashable) -> None:
        self.owner = owner
        self.interval: int | None = None
        self.we_refresh = False
        self.last_refresh: float | None = None
        self._expiry_armed = False  # we refresh, a refresh failed: EXPIRE_TIMER runs too

    @property
    def active(self) -> bool:
        return self.interval is not None

    @property
    def expires_at(self) -> float | None:
        """When the session ends without a refresh (the non-refresher's BYE time)."""
        if self.interval is None or self.last_refresh is None:
            return None
        return self.last_refresh + _expiry_delay(self.interval)

    def start(self, interval: int, we_refresh: bool, now: float) -> list[StartTimer | CancelTimer]:
        """(Re)start after a successful refresh or the initial negotiation."""
        out: list[StartTimer | CancelTimer] = list(self.stop())
        self.interval = interval
        self.we_refresh = we_refresh
        self.last_refresh = now
        if we_refresh:
            out.append(StartTimer(self.owner, REFRESH_TIMER, interval / 2))
        else:
            out.append(StartTimer(self.owner, EXPIRE_TIMER, _expiry_delay(interval)))
        return out

    def refresh_failed(self, now: float, *, delay: float | None = None) -> list[StartTimer]:
        """Our refresh got a final non-2xx that does not end the dialog: try again after
        ``delay`` (the 491 back-off, a Retry-After) when it comes before the expiry, else at the
        next refresh point - half an interval later, but no later than halfway to the expiry -
        and keep the expiry timer running from the last successful refresh."""
        expires_at = self.expires_at
        if not self.we_refresh or self.interval is None or expires_at is None:
            return []
        left = max(0.0, expires_at - now)
        if delay is None or delay >= left:
            delay = max(1.0, min(self.interval / 2, left / 2))
        out = [StartTimer(self.owner, REFRESH_TIMER, delay)]
        if not self._expiry_armed:
            self._expiry_armed = True
            out.append(StartTimer(self.owner, EXPIRE_TIMER, left))
        return out

    def stop(self) -> list[StartTimer | CancelTimer]:
        if self.interval is None:
            return []
        self.interval = None
        if not self.we_refresh:
            return [CancelTimer(self.owner, EXPIRE_TIMER)]
        out: list[StartTimer | CancelTimer] = [CancelTimer(self.owner, REFRESH_TIMER)]
        if self._expiry_armed:
            self._expiry_armed = False
            out.append(CancelTimer(self.owner, EXPIRE_TIMER))
        return out


def _expiry_delay(interval: int) -> float:
    """RFC 4028 section 10: the BYE goes min(32, interval / 3) before the session expires."""
    return interval - min(32, interval / 3)
