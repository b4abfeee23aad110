"""Live rooms: one mixer per room with calls in it, and the registry the REST API reads.

:class:`Conference` is mechanism apart from policy: a call leg (SIP today, phone menu and browser
later) joins with a :class:`Member` (who it is) and a frame source/sink (what it says and hears);
the conference keeps the room's :class:`~gateway.mixer.RoomMixer` on the process's one
:class:`~gateway.media.transport.MixerClock`. It also answers the API's live-call protocol
(participants, mute, admit, remove, end a room).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from api.live import Participant
from gateway import logs, prompts
from gateway.media.transport import MixerClock
from gateway.mixer import FrameSink, FrameSource, GateConfig, Pcm, RoomMixer
from gateway.prompts import PromptPlayer

__all__ = ["Conference", "Member"]

logger = logging.getLogger(__name__)

LATE_AFTER = 300.0  # 5 minutes


@dataclass
class Member:
    """One participant of a live room, on any kind of leg."""

    room_id: str
    display_name: str
    kind: str  # "sip", "phone", "browser"
    role: str = "guest"  # "organiser", "guest", "spectator"
    state: str = "joined"  # "waiting", "joined"
    muted: bool = False
    id: str = field(default_factory=lambda: secrets.token_hex(8))
    joined_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    caller_number: str | None = None  # E.164, from the phone network
    on_hold: bool = False  # the caller holds the call (sendonly): not heard in the room
    #: How to end this member's leg, told why: "removed" (by an organiser or admin) or "ended"
    #: (the room was deleted); called once the member has left the room's mixer. A call hears
    #: a prompt saying so, then is hung up.
    remove: Callable[[str], None] = lambda reason: None
    #: Told the member's new state after a change made from outside ("joined" once admitted).
    on_state: Callable[[str], None] = lambda state: None
    #: Told what a moderator did to it ("muted", "unmuted"): a call hears it, a browser reads it.
    on_moderated: Callable[[str], None] = lambda action: None
    talking: bool = False  # the mixer's talker detection
    #: Waiting because the room waits for its host (an organiser) to be in; an organiser's
    #: arrival lets it in, unless it also waits to be admitted from the waiting room.
    waiting_for_host: bool = False
    #: Waiting in the room's waiting room: only an admission lets it in.
    needs_admission: bool = False
    source: FrameSource | None = field(default=None, repr=False)
    sink: FrameSink | None = field(default=None, repr=False)

    def view(self) -> Participant:
        return Participant(
            id=self.id,
            display_name=self.display_name,
            kind=self.kind,
            role=self.role,
            state=self.state,
            muted=self.muted,
            joined_at=self.joined_at,
            caller_number=self.caller_number,
            talking=self.talking,
        )


@dataclass
class _Room:
    mixer: RoomMixer
    #: When the meeting began: the first member's arrival (for the late-joiner notice).
    began: datetime = field(default_factory=lambda: datetime.now(UTC))
    members: dict[str, Member] = field(default_factory=dict)
    #: What each waiting member hears until admitted (a repeated spoken message).
    waiting: dict[str, PromptPlayer] = field(default_factory=dict)


class Conference:
    """Every live room of this process."""

    def __init__(
        self,
        clock: MixerClock,
        *,
        language: str = "fr",
        is_open: Callable[[str], Awaitable[bool]] | None = None,
    ) -> None:
        self.clock = clock
        self.language = language
        #: Whether a room may hold calls now (it exists, is active and within its window).
        self.is_open = is_open
        #: Told every event of every room: (type, room id, the participant as it is now).
        self.on_event: Callable[[str, str, Participant], None] | None = None
        #: Who arrives this long (seconds) after the meeting began is announced late.
        self.late_after = LATE_AFTER
        self.rooms: dict[str, _Room] = {}

    # -- legs --------------------------------------------------------------------------------
    def join(
        self,
        member: Member,
        source: FrameSource,
        sink: FrameSink,
        *,
        wait_for_host: bool = False,
    ) -> None:
        """Put a member in its room; a waiting member is heard by nobody and hears a message
        asking it to wait, until admitted. With ``wait_for_host`` (the room's setting),
        anyone but an organiser waits until an organiser is in; the first organiser in lets
        them all in (but those who also wait to be admitted)."""
        room = self.rooms.get(member.room_id)
        if room is None:
            mixer = RoomMixer(
                member.room_id, on_talking=self._talking(member.room_id), gate=GateConfig()
            )
            room = _Room(mixer)
            self.rooms[member.room_id] = room
            self.clock.add(room.mixer)
        member.source, member.sink = source, sink
        member.needs_admission = member.state == "waiting"
        host_in = any(m.role == "organiser" and m.state == "joined" for m in room.members.values())
        member.waiting_for_host = wait_for_host and member.role != "organiser" and not host_in
        if member.waiting_for_host:
            member.state = "waiting"
        room.members[member.id] = member
        if member.state == "joined":
            self._mix(room, member)
        else:
            player = PromptPlayer(prompts.frames("waiting", self.language), sink, repeat=True)
            room.waiting[member.id] = player
            self.clock.add(player)
        logger.debug(
            "%s %s %s in room %s",
            member.kind,
            member.id,
            member.state,
            member.room_id,
            extra=logs.ids(member),
        )
        self._emit("joined" if member.state == "joined" else "waiting", member)
        if (member.joined_at - room.began).total_seconds() >= self.late_after:
            self._emit("late_joiner", member)
        if member.role == "organiser" and member.state == "joined":
            for other in list(room.members.values()):
                if other.waiting_for_host:
                    other.waiting_for_host = False
                    if not other.needs_admission:
                        self._let_in(room, other)

    def _emit(self, kind: str, member: Member) -> None:
        if self.on_event is not None:
            try:
                self.on_event(kind, member.room_id, member.view())
            except Exception:  # an observer must never break a call
                logger.exception("room event %s", kind, extra=logs.ids(member))

    def _talking(self, room_id: str) -> Callable[[Hashable, bool], None]:
        def changed(member_id: Hashable, talking: bool) -> None:
            member = self.member(room_id, str(member_id))
            if member is not None:
                member.talking = talking
                self._emit("talking_started" if talking else "talking_stopped", member)

        return changed

    def _mix(self, room: _Room, member: Member) -> None:
        assert member.source is not None and member.sink is not None
        room.mixer.add_leg(
            member.id,
            member.source,
            member.sink,
            muted=member.muted,
            can_speak=member.role != "spectator" and not member.on_hold,
        )

    def leave(self, member: Member) -> None:
        room = self.rooms.get(member.room_id)
        if room is None or room.members.pop(member.id, None) is None:
            return
        self._stop_waiting(room, member)
        if member.id in room.mixer:
            room.mixer.remove_leg(member.id)
        if not room.members:
            self.clock.remove(room.mixer)
            del self.rooms[member.room_id]
        logger.debug(
            "%s %s left room %s", member.kind, member.id, member.room_id, extra=logs.ids(member)
        )
        member.talking = False
        self._emit("left", member)

    def _stop_waiting(self, room: _Room, member: Member) -> None:
        player = room.waiting.pop(member.id, None)
        if player is not None:
            self.clock.remove(player)

    def shared_frame_test(self, room_id: str) -> Callable[[Pcm], bool]:
        """A test of whether a frame a sink was given is its room's common mix (the one frame
        every leg that adds nothing hears this tick; see ``RoomMixer.shared_frame``)."""
        mixer = self.rooms[room_id].mixer
        return lambda pcm: pcm is mixer.shared_frame

    def member(self, room_id: str, member_id: str) -> Member | None:
        room = self.rooms.get(room_id)
        return room.members.get(member_id) if room else None

    def members(self, room_id: str) -> list[Member]:
        room = self.rooms.get(room_id)
        return list(room.members.values()) if room else []

    def all_members(self) -> list[Member]:
        return [m for room in self.rooms.values() for m in room.members.values()]

    # -- the API's live-call protocol --------------------------------------------------------
    async def participants(self, room_id: str) -> list[Participant]:
        members = sorted(self.members(room_id), key=lambda m: m.joined_at)
        return [m.view() for m in members]

    async def mute(self, room_id: str, participant_id: str, muted: bool) -> Participant | None:
        member = self.member(room_id, participant_id)
        if member is None:
            return None
        changed = member.muted != muted
        self.set_muted(member, muted)
        if changed:
            try:
                member.on_moderated("muted" if muted else "unmuted")
            except Exception:  # telling must never fail the moderation
                logger.exception(
                    "telling %s it was %s",
                    member.id,
                    "muted" if muted else "unmuted",
                    extra=logs.ids(member),
                )
        return member.view()

    def set_on_hold(self, member: Member, held: bool) -> None:
        """A caller that holds the call plays music on hold, or nothing: out of the mix until
        it resumes (it still hears nothing: we do not send while held)."""
        member.on_hold = held
        room = self.rooms.get(member.room_id)
        if room is not None and member.id in room.mixer:
            room.mixer.set_can_speak(member.id, member.role != "spectator" and not held)

    def set_muted(self, member: Member, muted: bool) -> None:
        """Mute or unmute a member (from the API, or the caller itself with ``*6``)."""
        changed = member.muted != muted
        member.muted = muted
        room = self.rooms.get(member.room_id)
        if room is not None and member.id in room.mixer:
            room.mixer.set_muted(member.id, muted)
        if changed and room is not None and member.id in room.members:
            self._emit("muted" if muted else "unmuted", member)

    async def admit(self, room_id: str, participant_id: str) -> Participant | None:
        member = self.member(room_id, participant_id)
        if member is None:
            return None
        if member.state == "waiting":
            member.waiting_for_host = member.needs_admission = False
            self._let_in(self.rooms[room_id], member)
        return member.view()

    def _let_in(self, room: _Room, member: Member) -> None:
        member.state = "joined"
        self._stop_waiting(room, member)
        self._mix(room, member)
        member.on_state("joined")
        self._emit("admitted", member)

    async def remove(self, room_id: str, participant_id: str) -> bool:
        member = self.member(room_id, participant_id)
        if member is None:
            return False
        self.leave(member)
        member.remove("removed")
        return True

    async def admit_all(self, room_id: str) -> list[Participant]:
        waiting = [m for m in self.members(room_id) if m.state == "waiting"]
        return [view for m in waiting if (view := await self.admit(room_id, m.id)) is not None]

    async def mute_all(self, room_id: str, muted: bool) -> list[Participant]:
        changed = [m for m in self.members(room_id) if m.role != "organiser" and m.muted != muted]
        return [
            view for m in changed if (view := await self.mute(room_id, m.id, muted)) is not None
        ]

    async def ask_unmute(self, room_id: str, participant_id: str) -> bool | None:
        member = self.member(room_id, participant_id)
        if member is None:
            return None
        if not member.muted or member.role == "spectator":
            return False
        try:
            member.on_moderated("ask_unmute")
        except Exception:
            logger.exception("asking %s to unmute", member.id, extra=logs.ids(member))
        return True

    async def refuse(self, room_id: str, participant_id: str) -> bool | None:
        """A waiting member turned away: it hears (or reads) why, then its leg ends."""
        member = self.member(room_id, participant_id)
        if member is None:
            return None
        if member.state != "waiting":
            return False
        self._emit("refused", member)
        self.leave(member)
        member.remove("refused")
        return True

    async def end_room(self, room_id: str) -> None:
        for member in self.members(room_id):
            self.leave(member)
            member.remove("ended")

    async def room_changed(self, room_id: str) -> None:
        """The room was edited. Deactivated, or its window moved so that now is outside it:
        every call hears that the conference has ended and is hung up, as on DELETE. Any
        other change (a new PIN, a new name) leaves everyone in."""
        if room_id not in self.rooms or self.is_open is None:
            return
        if not await self.is_open(room_id):
            logger.info(
                "room %s closed by an edit: ending its calls", room_id, extra={"room_id": room_id}
            )
            await self.end_room(room_id)
