"""The call-record store: one row per call leg, written by the gateway, read by the REST API.

Synchronous, like :mod:`rooms.store`: async callers run the methods in a thread. The gateway's
recorder (:mod:`gateway.records`) hands :meth:`CallStore.save` batches of new rows and of
changes to rows it wrote before; the API pages through them newest first with
:meth:`CallStore.page` and an opaque cursor (keyset paging on start time and id, so a page
stays right while rows are added). Results are frozen :class:`CallRecordData` values.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, and_, delete, insert, or_, update
from sqlmodel import Session, col, select

from rooms.models import CallRecord

__all__ = ["MAX_PAGE", "CallPage", "CallRecordData", "CallStore", "InvalidCursor"]

logger = logging.getLogger(__name__)

#: The largest page :meth:`CallStore.page` returns.
MAX_PAGE = 1000


class InvalidCursor(ValueError):
    """A paging cursor this store did not hand out."""


@dataclass(frozen=True)
class CallRecordData:
    """One call leg's record, as read back."""

    id: str
    room_id: str | None
    kind: str
    display_name: str
    caller_number: str | None
    codec: str | None
    call_id: str | None
    started_at: datetime
    answered_at: datetime | None
    ended_at: datetime | None
    duration_seconds: float | None
    end_reason: str | None
    packets_received: int
    packets_sent: int
    packets_lost: int

    @classmethod
    def of(cls, row: CallRecord) -> CallRecordData:
        return cls(
            id=row.id,
            room_id=row.room_id,
            kind=row.kind,
            display_name=row.display_name,
            caller_number=row.caller_number,
            codec=row.codec,
            call_id=row.call_id,
            started_at=row.started_at,
            answered_at=row.answered_at,
            ended_at=row.ended_at,
            duration_seconds=row.duration_seconds,
            end_reason=row.end_reason,
            packets_received=row.packets_received,
            packets_sent=row.packets_sent,
            packets_lost=row.packets_lost,
        )


@dataclass(frozen=True)
class CallPage:
    """A page of records, newest first; ``next`` is the cursor of the following page."""

    records: list[CallRecordData]
    next: str | None


def encode_cursor(started_at: datetime, record_id: str) -> str:
    raw = f"{started_at.astimezone(UTC).isoformat()}|{record_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """The (start time, id) a cursor points after; raises :class:`InvalidCursor`."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, sep, record_id = raw.partition("|")
        started_at = datetime.fromisoformat(when)
        if not sep or not record_id or started_at.utcoffset() is None:
            raise ValueError("incomplete")
        return started_at.astimezone(UTC), record_id
    except (ValueError, OverflowError, binascii.Error, UnicodeDecodeError):
        raise InvalidCursor("not a cursor of this listing") from None


#: The columns a caller of :meth:`CallStore.save` may write.
COLUMNS = frozenset(CallRecord.model_fields)


class CallStore:
    """Call records in the database of ``engine``."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- writing (the gateway's recorder, from one thread) -----------------------------------
    def save(
        self,
        new: Sequence[Mapping[str, Any]],
        changed: Sequence[tuple[str, Mapping[str, Any]]] = (),
    ) -> None:
        """Insert the rows ``new`` and apply ``changed`` (record id, columns to set), in one
        transaction."""
        for values in (*new, *(values for _, values in changed)):
            unknown = set(values) - COLUMNS
            if unknown:
                raise ValueError(f"unknown call record columns: {sorted(unknown)}")
        table = CallRecord.__table__  # type: ignore[attr-defined]
        with self.engine.begin() as connection:
            if new:  # one executemany: every row gives every column
                blank: dict[str, Any] = dict.fromkeys(COLUMNS)
                blank.update(packets_received=0, packets_sent=0, packets_lost=0)
                connection.execute(insert(table), [{**blank, **values} for values in new])
            for record_id, values in changed:
                if values:
                    connection.execute(
                        update(table).where(table.c.id == record_id).values(**values)
                    )

    def close_open(self, node: str, reason: str = "shutdown") -> int:
        """Rows of ``node`` that never got an end (the process stopped without writing it)
        get ``reason``; their end time stays unknown (None). Returns how many."""
        table = CallRecord.__table__  # type: ignore[attr-defined]
        with self.engine.begin() as connection:
            result = connection.execute(
                update(table)
                .where(table.c.node == node, table.c.end_reason.is_(None))
                .values(end_reason=reason)
            )
        return int(result.rowcount or 0)

    def prune(self, before: datetime) -> int:
        """Delete the records of legs that started before ``before``; returns how many."""
        with Session(self.engine) as session:
            result = session.exec(  # type: ignore[call-overload]
                delete(CallRecord).where(col(CallRecord.started_at) < before)
            )
            session.commit()
        return int(result.rowcount or 0)

    # -- reading (the API) -------------------------------------------------------------------
    def get(self, record_id: str) -> CallRecordData | None:
        with Session(self.engine) as session:
            row = session.get(CallRecord, record_id)
            return CallRecordData.of(row) if row is not None else None

    def page(
        self,
        *,
        room_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        cursor: str | None = None,
    ) -> CallPage:
        """Records of legs that started in ``[since, until)`` (in ``room_id``), newest first,
        at most ``limit`` (1 to :data:`MAX_PAGE`), after ``cursor``."""
        if not 1 <= limit <= MAX_PAGE:
            raise ValueError(f"limit must be 1 to {MAX_PAGE}")
        started = col(CallRecord.started_at)
        ident = col(CallRecord.id)
        query = select(CallRecord)
        if room_id is not None:
            query = query.where(col(CallRecord.room_id) == room_id)
        if since is not None:
            query = query.where(started >= since)
        if until is not None:
            query = query.where(started < until)
        if cursor is not None:
            after, after_id = decode_cursor(cursor)
            query = query.where(or_(started < after, and_(started == after, ident < after_id)))
        query = query.order_by(started.desc(), ident.desc()).limit(limit + 1)
        with Session(self.engine) as session:
            rows = [CallRecordData.of(row) for row in session.exec(query)]
        more = len(rows) > limit
        rows = rows[:limit]
        following = encode_cursor(rows[-1].started_at, rows[-1].id) if more else None
        return CallPage(rows, following)
