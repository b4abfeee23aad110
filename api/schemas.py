"""Request and response models: the handlers validate with them and the OpenAPI document is
generated from them (:mod:`api.openapi`), so the two cannot drift apart.

Requests are validated strictly from the JSON text (no ``"true"`` for a bool, no number for a
date), with unknown fields refused.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal, TypeVar

from aiohttp import web
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    WithJsonSchema,
)

from api.errors import ApiError
from api.live import Participant
from config import Settings
from rooms.calls import CallRecordData
from rooms.pins import PIN_PATTERN
from rooms.roles import Role
from rooms.store import RoomData

__all__ = [
    "CallPageOut",
    "CallRecordOut",
    "DialIn",
    "ErrorBody",
    "ErrorResponse",
    "Health",
    "HealthDatabase",
    "HealthMixer",
    "HealthTransport",
    "Links",
    "MuteRequest",
    "ParticipantOut",
    "RoomCreate",
    "RoomOut",
    "RoomUpdate",
    "parse_body",
]

Model = TypeVar("Model", bound=BaseModel)

Name = Annotated[
    str,
    Field(
        min_length=1,
        max_length=200,
        pattern=r"^[^\x00]*[^\x00\s][^\x00]*$",
        description="1 to 200 characters, not only spaces",
    ),
]
Pin = Annotated[str, Field(pattern=PIN_PATTERN, description="4 to 10 digits")]
IsoDateTime = Annotated[
    datetime,
    PlainSerializer(lambda value: value.isoformat(), return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


def _no_default(schema: dict[str, Any]) -> None:
    """PATCH fields that may be left out but not set to null: no ``default: null`` shown."""
    schema.pop("default", None)


class _Request(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class _Response(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorBody(_Response):
    code: str = Field(description="stable snake_case code", examples=["room_not_found"])
    message: str = Field(description="human-readable explanation")


class ErrorResponse(_Response):
    """Every error answer."""

    error: ErrorBody


class HealthDatabase(_Response):
    """Whether the database answered ``SELECT 1`` in time."""

    reachable: bool
    latency_ms: float | None = Field(default=None, description="time of the SELECT 1")
    error: str | None = Field(default=None, description="why not, when not reachable")


class HealthTransport(_Response):
    """A SIP transport this process listens on."""

    transport: Literal["udp", "tcp"]
    address: str = Field(description="host:port bound")


class HealthMixer(_Response):
    """Lateness of the mixer clock's 20 ms ticks over the last minute."""

    late_p99_ms: float | None = Field(description="99th percentile; null before any tick")
    ticks: int = Field(description="ticks the percentile is over")
    window_seconds: float


class Health(_Response):
    """``{"status": "ok"}`` (``"draining"`` during a SIGTERM drain); with ``?detail=1`` (admin
    token) also the draining flag, the database, SIP transports and mixer lateness."""

    status: Literal["ok", "draining"]
    draining: bool | None = None
    database: HealthDatabase | None = None
    sip: list[HealthTransport] | None = None
    mixer: HealthMixer | None = None


class RoomCreate(_Request):
    """Body of ``POST /api/rooms``."""

    name: Name
    permanent: bool = Field(
        default=True, description="false: active only between starts_at and ends_at"
    )
    starts_at: AwareDatetime | None = Field(
        default=None, description="ISO 8601 with offset; required when permanent is false"
    )
    ends_at: AwareDatetime | None = Field(
        default=None,
        description="ISO 8601 with offset, after starts_at; default: midnight of the start day",
    )
    pin: Pin | None = None
    host_pin: Pin | None = Field(
        default=None, description="must differ from pin; makes the caller organiser"
    )
    waiting_room: bool = False
    wait_for_host: bool = False
    locked: bool = Field(default=False, description="new arrivals but organisers wait")
    active: bool = Field(default=True, description="admin switch; false refuses every call")


class RoomUpdate(_Request):
    """Body of ``PATCH /api/rooms/{id}``: any writable field; the merged room is checked."""

    name: Name = Field(default=None, json_schema_extra=_no_default)  # type: ignore[assignment]
    permanent: bool = Field(default=None, json_schema_extra=_no_default)  # type: ignore[assignment]
    starts_at: AwareDatetime | None = None
    ends_at: AwareDatetime | None = Field(
        default=None, description="null on a scheduled room: midnight of the start day"
    )
    pin: Pin | None = None
    host_pin: Pin | None = None
    waiting_room: bool = Field(default=None, json_schema_extra=_no_default)  # type: ignore[assignment]
    wait_for_host: bool = Field(default=None, json_schema_extra=_no_default)  # type: ignore[assignment]
    locked: bool = Field(default=None, json_schema_extra=_no_default)  # type: ignore[assignment]
    active: bool = Field(default=None, json_schema_extra=_no_default)  # type: ignore[assignment]

    def changes(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.model_fields_set}


class DialIn(_Response):
    numbers: list[str] = Field(description="E.164 numbers of the phone menu")
    code: str = Field(description="the conference code to type: the room number")


class Links(_Response):
    organiser: str
    guest: str
    spectator: str


class RoomOut(_Response):
    """A room."""

    id: str
    name: str
    number: str = Field(pattern=r"^[1-9][0-9]{9}$")
    sip_uri: str
    dial_in: DialIn
    pin: str | None
    host_pin: str | None
    permanent: bool
    starts_at: IsoDateTime | None
    ends_at: IsoDateTime | None
    active: bool = Field(description="the admin switch and, for scheduled rooms, the window")
    waiting_room: bool
    wait_for_host: bool
    locked: bool = Field(description="new arrivals (but organisers) wait to be admitted")
    links: Links
    created_at: IsoDateTime

    @classmethod
    def of(cls, room: RoomData, settings: Settings, now: datetime | None = None) -> RoomOut:
        return cls(
            id=room.id,
            name=room.name,
            number=room.number,
            sip_uri=settings.sip_uri(room.number),
            dial_in=DialIn(numbers=list(settings.dialin_numbers), code=room.number),
            pin=room.pin,
            host_pin=room.host_pin,
            permanent=room.permanent,
            starts_at=room.starts_at,
            ends_at=room.ends_at,
            active=room.is_active_at(now),
            waiting_room=room.waiting_room,
            wait_for_host=room.wait_for_host,
            locked=room.locked,
            links=Links(
                **{role.value: settings.join_url(room.number, room.tokens[role]) for role in Role}
            ),
            created_at=room.created_at,
        )


class ParticipantOut(_Response):
    id: str
    display_name: str
    kind: Literal["sip", "phone", "browser"]
    role: Literal["organiser", "guest", "spectator"]
    state: Literal["waiting", "joined"]
    muted: bool
    joined_at: IsoDateTime
    caller_number: str | None = Field(
        default=None,
        description="caller ID in E.164 when the phone network gave one (display_name masks it)",
        examples=["+33612345678"],
    )
    talking: bool = Field(default=False, description="heard talking now")

    @classmethod
    def of(cls, participant: Participant) -> ParticipantOut:
        return cls.model_validate(participant, from_attributes=True)


class CallRecordOut(_Response):
    """One call leg's record (CDR)."""

    id: str = Field(description="the participant id the leg had")
    room_id: str | None = Field(description="null: the phone menu never found a room")
    kind: Literal["sip", "phone", "browser"]
    display_name: str = Field(description="as participants show it (a phone's number masked)")
    caller_number: str | None = Field(
        description="caller ID in E.164 when the phone network gave one",
        examples=["+33612345678"],
    )
    codec: str | None = Field(examples=["PCMU", "G722", "opus"])
    call_id: str | None = Field(description="the SIP Call-ID (null for a browser)")
    started_at: IsoDateTime = Field(description="the INVITE (or the browser's join) taken in")
    answered_at: IsoDateTime | None = Field(description="connected (ACK, or media up)")
    ended_at: IsoDateTime | None = Field(
        description="null while it goes on, or when the gateway stopped without writing it"
    )
    duration_seconds: float | None = Field(description="answered to ended; 0 if never answered")
    end_reason: str | None = Field(
        description="hangup, removed, room_ended, timeout, refused, wrong_pin, shutdown or"
        " failed; null while it goes on",
        examples=["hangup"],
    )
    packets_received: int
    packets_sent: int
    packets_lost: int = Field(description="RTP packets lost on the way in (RTCP statistics)")

    @classmethod
    def of(cls, record: CallRecordData) -> CallRecordOut:
        return cls.model_validate(record, from_attributes=True)


class CallPageOut(_Response):
    """A page of call records, newest first."""

    calls: list[CallRecordOut]
    next: str | None = Field(description="pass as ?cursor= for the next page; null: the last")


class MuteRequest(_Request):
    muted: bool


class LockRequest(_Request):
    locked: bool


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(p) for p in error["loc"]) or "body"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


async def parse_body(request: web.Request, model: type[Model]) -> Model:
    """The request's JSON object validated by ``model``: 400 if not a JSON object, 422 if wrong."""
    raw = await request.read()
    try:
        text = raw.decode("utf-8")
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise ApiError(400, "malformed_json", "request body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ApiError(400, "body_not_object", "request body must be a JSON object")
    try:
        return model.model_validate_json(text)
    except ValidationError as exc:
        if any(error["type"] == "json_invalid" for error in exc.errors()):
            raise ApiError(400, "malformed_json", "request body is not valid JSON") from None
        raise ApiError(422, "validation_error", _describe(exc)) from None
