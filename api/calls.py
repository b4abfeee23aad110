"""Call records (CDR) over the API: ``GET /api/calls`` and ``GET /api/rooms/{id}/calls``.

Both page through the records newest first (``limit``, then ``cursor`` = the previous page's
``next``), filtered by start time (``since`` inclusive, ``until`` exclusive, ISO 8601 with an
offset) and, on ``/api/calls``, by ``room``. ``format=csv`` answers every matching record as
one CSV file instead (``limit`` and ``cursor`` ignored), read from the database a page at a
time. The records are written by the gateway (:mod:`gateway.records`); this module only reads
them, through ``app[CALL_RECORDS]``, made with the room store at start-up.
"""

from __future__ import annotations

import asyncio
import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from api.errors import ApiError
from api.pages import STORE
from api.schemas import CallPageOut, CallRecordOut
from rooms.calls import MAX_PAGE, CallRecordData, CallStore, InvalidCursor

__all__ = [
    "CALL_QUERY",
    "CALL_QUERY_SCHEMAS",
    "CALL_RECORDS",
    "CSV_COLUMNS",
    "list_calls",
    "room_calls",
]

CALL_RECORDS = web.AppKey("call_records", CallStore)

#: Query parameters of both listings (name, required, description), for the OpenAPI document.
CALL_QUERY: tuple[tuple[str, bool, str], ...] = (
    ("since", False, "legs that started at or after this time (ISO 8601 with offset)"),
    ("until", False, "legs that started before this time (ISO 8601 with offset)"),
    ("limit", False, f"records per page, 1 to {MAX_PAGE} (default 100)"),
    ("cursor", False, "the `next` of the previous page"),
    ("format", False, "`json` (default) or `csv`: every matching record as one CSV file"),
)
DEFAULT_LIMIT = 100
#: Their JSON Schemas (the others are any string).
CALL_QUERY_SCHEMAS: dict[str, dict[str, Any]] = {
    "since": {"type": "string", "format": "date-time"},
    "until": {"type": "string", "format": "date-time"},
    "limit": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE, "default": DEFAULT_LIMIT},
    "format": {"type": "string", "enum": ["json", "csv"], "default": "json"},
}

#: Columns of the CSV export, in order (the JSON record's fields).
CSV_COLUMNS = tuple(CallRecordOut.model_fields)
#: A CSV cell of caller-given text starting with one of these is prefixed with ``'`` so
#: that a spreadsheet does not run it as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class CallQuery:
    since: datetime | None
    until: datetime | None
    limit: int
    cursor: str | None
    csv: bool


def _bad(message: str, code: str = "invalid_query") -> ApiError:
    return ApiError(422, code, message)


def _time(request: web.Request, name: str) -> datetime | None:
    text = request.query.get(name)
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text.strip().upper())  # RFC 3339 allows "t" and "z"
    except ValueError:
        raise _bad(f"{name}: not an ISO 8601 date and time") from None
    if value.utcoffset() is None:
        raise _bad(f"{name}: needs an offset (e.g. Z or +01:00)")
    try:
        return value.astimezone(UTC)
    except OverflowError:  # within a day of year 1 or 9999
        raise _bad(f"{name}: out of range", "datetime_out_of_range") from None


#: The query parameters of a room's listing; ``GET /api/calls`` also takes ``room``.
PARAMETERS = frozenset({"since", "until", "limit", "cursor", "format"})


def parse_query(request: web.Request, allowed: frozenset[str] = PARAMETERS) -> CallQuery:
    """The listing's query parameters, checked (422 ``invalid_query`` when wrong, an unknown
    parameter included: a misspelt ``since`` must not silently list everything)."""
    unknown = sorted(set(request.query) - allowed)
    if unknown:
        raise _bad(f"unknown query parameter {unknown[0][:40]!r}")
    since, until = _time(request, "since"), _time(request, "until")
    text = request.query.get("limit", str(DEFAULT_LIMIT)).strip()
    if not (text.isascii() and text.isdigit() and len(text) <= 4 and 1 <= int(text) <= MAX_PAGE):
        raise _bad(f"limit: an integer from 1 to {MAX_PAGE}")
    form = request.query.get("format", "json")
    if form not in ("json", "csv"):
        raise _bad("format: json or csv")
    cursor = request.query.get("cursor")
    return CallQuery(since, until, int(text), cursor or None, form == "csv")


async def _answer(
    request: web.Request, room_id: str | None, allowed: frozenset[str] = PARAMETERS
) -> web.StreamResponse:
    query = parse_query(request, allowed)
    store = request.app[CALL_RECORDS]
    if query.csv:
        return await _csv(request, store, room_id, query)
    try:
        page = await asyncio.to_thread(
            store.page,
            room_id=room_id,
            since=query.since,
            until=query.until,
            limit=query.limit,
            cursor=query.cursor,
        )
    except InvalidCursor as exc:
        raise _bad(f"cursor: {exc}", "invalid_cursor") from None
    body = CallPageOut(calls=[CallRecordOut.of(r) for r in page.records], next=page.next)
    return web.json_response(body.model_dump(mode="json"))


def _cell(name: str, value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat()
    text = str(value)
    if name in ("display_name", "call_id") and text.startswith(_FORMULA_START):
        return "'" + text
    return text


def csv_rows(records: list[CallRecordData]) -> str:
    """CSV lines (no header) of ``records``."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for record in records:
        writer.writerow([_cell(name, getattr(record, name)) for name in CSV_COLUMNS])
    return out.getvalue()


async def _csv(
    request: web.Request, store: CallStore, room_id: str | None, query: CallQuery
) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": 'attachment; filename="calls.csv"',
        }
    )
    await response.prepare(request)
    await response.write((",".join(CSV_COLUMNS) + "\r\n").encode())
    cursor: str | None = None
    while True:
        page = await asyncio.to_thread(
            store.page,
            room_id=room_id,
            since=query.since,
            until=query.until,
            limit=MAX_PAGE,
            cursor=cursor,
        )
        if page.records:
            await response.write(csv_rows(page.records).encode())
        if page.next is None:
            break
        cursor = page.next
    await response.write_eof()
    return response


# -- handlers --------------------------------------------------------------------------------
async def list_calls(request: web.Request) -> web.StreamResponse:
    """Every room's call records (admin), or one room's with ``room=``."""
    room_id = request.query.get("room")
    return await _answer(request, room_id or None, PARAMETERS | {"room"})


async def room_calls(request: web.Request) -> web.StreamResponse:
    """One room's call records (admin, or the room's organiser link token)."""
    room_id = request.match_info["id"]
    if await asyncio.to_thread(request.app[STORE].get, room_id) is None:
        raise ApiError(404, "room_not_found", f"no room with id {room_id!r}")
    return await _answer(request, room_id)
