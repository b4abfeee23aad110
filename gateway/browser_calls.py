"""Browser legs in rooms: the gateway's side of the join socket (:class:`api.browser.BrowserCalls`).

A browser that joins becomes a :class:`~gateway.conference.Member` of kind ``browser`` once
its media path is up (ICE and DTLS connected): from then on the room's mixer pulls its audio
and pushes it the mix minus itself, in the same tick as every SIP leg of the room. A spectator's
audio is never decoded; a guest of a room with a waiting room waits (hearing the waiting
message) until admitted. The member leaves when the socket closes, the browser says ``leave``,
the media path fails (ICE failure, consent expiry: the browser vanished), or an organiser
removes it.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from api.browser import BrowserJoin, Notify
from config import Settings
from gateway import logs
from gateway.conference import Conference, Member
from gateway.lifecycle import CallObserver, LegInfo, LegTotals, Observers
from media.opus import SharedEncoder
from webrtc.leg import BrowserLeg, WebRtcConfig
from webrtc.network import use_host

__all__ = ["BrowserCalls", "BrowserSession"]

logger = logging.getLogger(__name__)

#: The end reason (``gateway.lifecycle.END_REASONS``) of a browser the conference ended, by
#: what its socket is told (``Member.remove``).
REMOVE_REASONS = {"removed": "removed", "refused": "refused", "ended": "room_ended"}


class BrowserSession:
    """One browser: its member, its leg, and what to tell its socket."""

    def __init__(self, calls: BrowserCalls, join: BrowserJoin, notify: Notify) -> None:
        self.calls = calls
        self.notify = notify
        waiting = join.waiting_room and join.role != "organiser"
        self.member = Member(
            room_id=join.room_id,
            display_name=join.display_name,
            kind="browser",
            role=join.role,
            state="waiting" if waiting else "joined",
        )
        self.member.remove = self._removed
        self.member.on_state = self._state
        self.member.on_moderated = lambda action: self.notify("moderated", action)
        self.leg = BrowserLeg(calls.config, on_connected=self._connected, on_failed=self._failed)
        self.leg.heard = join.role != "spectator"
        self.wait_for_host = join.wait_for_host
        self.in_room = False
        self.closed = False
        #: Why the leg ends, when decided before the socket closes (else: the browser left).
        self.end_reason: str | None = None
        self.info = LegInfo(
            id=self.member.id,
            kind="browser",
            display_name=join.display_name,
            room_id=join.room_id,
            codec="opus",
        )

    @property
    def participant_id(self) -> str:
        return self.member.id

    async def offer(self, sdp: str) -> str:
        return await self.leg.accept(sdp)

    async def candidate(self, candidate: str, sdp_mid: str | None, index: int | None) -> None:
        await self.leg.add_candidate(candidate, sdp_mid, index)

    async def set_muted(self, muted: bool) -> None:
        self.calls.conference.set_muted(self.member, muted)

    def _connected(self) -> None:
        if self.closed or self.in_room:
            return
        self.in_room = True
        self.calls.observer.leg_answered(self.info, datetime.now(UTC))
        self.calls.conference.join(
            self.member, self.leg.source, self.leg.sink, wait_for_host=self.wait_for_host
        )
        room_id = self.member.room_id
        self.leg.shared = self.calls.shared_encoder(room_id)
        self.leg.is_shared = self.calls.conference.shared_frame_test(room_id)
        self.notify("state", self.member.state)

    def _state(self, state: str) -> None:
        self.notify("state", state)

    def _failed(self, reason: str) -> None:
        # "ice closed": the page closed its peer connection (DTLS close_notify), as it does
        # when its user leaves, sometimes before its socket closes: a hang-up, not a failure
        closed = reason == "ice closed"
        logger.info(
            "browser %s: media path %s (%s)",
            self.member.id,
            "closed by the browser" if closed else "lost",
            reason,
            extra=logs.ids(self.member),
        )
        self.end_reason = self.end_reason or ("hangup" if closed else "failed")
        self.notify("end", "failed")

    def _removed(self, reason: str) -> None:
        self.end_reason = self.end_reason or REMOVE_REASONS.get(reason, "failed")
        self.notify("end", reason)

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self.in_room:
            self.calls.conference.leave(self.member)
            self.leg.shared = None
            self.calls.release_shared(self.member.room_id)
        self.calls.sessions.pop(self.member.id, None)
        try:
            await self.leg.close()
        finally:
            stats = self.leg.stats
            self.calls.observer.leg_ended(
                self.info,
                datetime.now(UTC),
                self.end_reason or "hangup",
                LegTotals(packets_received=stats.packets_in, packets_sent=stats.packets_out),
            )
        logger.info(
            "browser %s closed: packets in %d, out %d (%d from the room's shared encoder), "
            "concealed %d, decode errors %d",
            self.member.id,
            stats.packets_in,
            stats.packets_out,
            stats.shared_frames,
            stats.concealed,
            stats.decode_errors,
            extra=logs.ids(self.member),
        )


class BrowserCalls:
    """Every browser leg of this process."""

    def __init__(
        self, settings: Settings, conference: Conference, *, observer: CallObserver | None = None
    ) -> None:
        self.settings = settings
        self.conference = conference
        #: Told every leg's life (call records, metrics).
        self.observer: CallObserver = observer if observer is not None else Observers()
        host = settings.webrtc_host or settings.sip_public_host or settings.sip_host
        self.config = WebRtcConfig(ice_servers=settings.ice_servers, announce=use_host(host))
        self.sessions: dict[str, BrowserSession] = {}
        #: Per room: the encoder of its common mix, and how many browser legs use it.
        self._shared: dict[str, tuple[SharedEncoder, int]] = {}
        #: Set when a SIGTERM drain begins: no new browser legs (the page says busy).
        self.draining = False

    def shared_encoder(self, room_id: str) -> SharedEncoder:
        encoder, users = self._shared.get(room_id) or (SharedEncoder(self.config.opus), 0)
        self._shared[room_id] = (encoder, users + 1)
        return encoder

    def release_shared(self, room_id: str) -> None:
        encoder, users = self._shared.get(room_id) or (None, 0)
        if encoder is None:
            return
        if users <= 1:
            del self._shared[room_id]
            encoder.close()
        else:
            self._shared[room_id] = (encoder, users - 1)

    def ice_servers(self) -> list[dict[str, object]]:
        return [server.as_browser() for server in self.settings.ice_servers]

    async def join(self, join: BrowserJoin, notify: Notify) -> BrowserSession | None:
        if self.draining:
            self.observer.call_refused("browser", 503)
            return None
        if len(self.sessions) >= self.settings.max_browser_legs:
            logger.warning("browser legs: at the limit of %d", self.settings.max_browser_legs)
            self.observer.call_refused("browser", 503)
            return None
        session = BrowserSession(self, join, notify)
        self.sessions[session.member.id] = session
        self.observer.leg_started(session.info, datetime.now(UTC))
        return session

    def start_draining(self, seconds: float) -> None:
        """A SIGTERM drain began: take no new legs, and tell every browser how long the
        meeting may go on here (its socket gets ``{"type": "draining", "seconds": ...}``)."""
        self.draining = True
        for session in list(self.sessions.values()):
            session.notify("draining", f"{seconds:g}")

    async def close_all(self) -> None:
        """The process stops: each page is told the gateway restarts (a close it retries,
        so it rejoins by itself once a gateway answers again), then its leg ends."""
        for session in list(self.sessions.values()):
            session.end_reason = session.end_reason or "shutdown"
            session.notify("end", "restarting")
            await session.close()
