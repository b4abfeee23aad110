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

from api.browser import BrowserJoin, Notify
from config import Settings
from gateway.conference import Conference, Member
from media.opus import SharedEncoder
from webrtc.leg import BrowserLeg, WebRtcConfig
from webrtc.network import use_host

__all__ = ["BrowserCalls", "BrowserSession"]

logger = logging.getLogger(__name__)


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
        logger.info("browser %s: media path lost (%s)", self.member.id, reason)
        self.notify("end", "failed")

    def _removed(self, reason: str) -> None:
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
        await self.leg.close()
        stats = self.leg.stats
        logger.info(
            "browser %s closed: packets in %d, out %d (%d from the room's shared encoder), "
            "concealed %d, decode errors %d",
            self.member.id,
            stats.packets_in,
            stats.packets_out,
            stats.shared_frames,
            stats.concealed,
            stats.decode_errors,
        )


class BrowserCalls:
    """Every browser leg of this process."""

    def __init__(self, settings: Settings, conference: Conference) -> None:
        self.settings = settings
        self.conference = conference
        host = settings.webrtc_host or settings.sip_public_host or settings.sip_host
        self.config = WebRtcConfig(ice_servers=settings.ice_servers, announce=use_host(host))
        self.sessions: dict[str, BrowserSession] = {}
        #: Per room: the encoder of its common mix, and how many browser legs use it.
        self._shared: dict[str, tuple[SharedEncoder, int]] = {}

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
        if len(self.sessions) >= self.settings.max_browser_legs:
            logger.warning("browser legs: at the limit of %d", self.settings.max_browser_legs)
            return None
        session = BrowserSession(self, join, notify)
        self.sessions[session.member.id] = session
        return session

    async def close_all(self) -> None:
        for session in list(self.sessions.values()):
            session.notify("end", "ended")
            await session.close()
