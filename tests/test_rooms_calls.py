"""The call-record store (rooms/calls.py) and the gateway's recorder (gateway/records.py) on a
real database: rows written in batches, paged newest first, closed after a crash, pruned."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine

from gateway.lifecycle import LegInfo, LegTotals
from gateway.records import CallRecorder
from rooms.calls import CallStore, InvalidCursor, decode_cursor, encode_cursor

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def engine(upgraded_engine: Engine) -> Engine:
    return upgraded_engine


@pytest.fixture
def store(engine: Engine) -> CallStore:
    return CallStore(engine)


def row(record_id: str, started: datetime, **values: Any) -> dict[str, Any]:
    return {
        "id": record_id,
        "kind": "sip",
        "display_name": f"caller {record_id}",
        "node": "host:5060",
        "started_at": started,
        **values,
    }


def test_insert_then_update_reads_back(store: CallStore) -> None:
    store.save([row("a", T0, room_id="r1", caller_number="+33612345678", codec="PCMU")])
    first = store.get("a")
    assert first is not None
    assert (first.room_id, first.caller_number, first.codec) == ("r1", "+33612345678", "PCMU")
    assert first.ended_at is None and first.end_reason is None and first.packets_received == 0
    assert first.started_at == T0 and first.started_at.tzinfo is not None
    store.save(
        [],
        [
            (
                "a",
                {
                    "answered_at": T0 + timedelta(seconds=1),
                    "ended_at": T0 + timedelta(seconds=11),
                    "duration_seconds": 10.0,
                    "end_reason": "hangup",
                    "packets_received": 500,
                    "packets_sent": 498,
                    "packets_lost": 2,
                },
            )
        ],
    )
    done = store.get("a")
    assert done is not None
    assert done.ended_at == T0 + timedelta(seconds=11) and done.duration_seconds == 10.0
    assert (done.end_reason, done.packets_received, done.packets_sent, done.packets_lost) == (
        "hangup",
        500,
        498,
        2,
    )


def test_unknown_column_is_refused(store: CallStore) -> None:
    with pytest.raises(ValueError, match="unknown call record columns"):
        store.save([row("a", T0, pin="1234")])


def test_pages_newest_first_with_a_cursor_and_filters(store: CallStore) -> None:
    store.save(
        [
            row(f"c{i:02d}", T0 + timedelta(minutes=i), room_id="r1" if i % 2 else "r2")
            for i in range(25)
        ]
        + [row("same-b", T0 + timedelta(minutes=30)), row("same-a", T0 + timedelta(minutes=30))]
    )
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        page = store.page(limit=10, cursor=cursor)
        seen += [r.id for r in page.records]
        pages += 1
        if page.next is None:
            break
        cursor = page.next
    assert pages == 3
    assert seen[:2] == ["same-b", "same-a"]  # same start: by id, descending
    assert seen[2:] == [f"c{i:02d}" for i in reversed(range(25))]
    odd = store.page(room_id="r1", limit=100).records
    assert [r.id for r in odd] == [f"c{i:02d}" for i in reversed(range(1, 25, 2))]
    window = store.page(since=T0 + timedelta(minutes=5), until=T0 + timedelta(minutes=8))
    assert [r.id for r in window.records] == ["c07", "c06", "c05"]  # since in, until out
    assert window.next is None
    with pytest.raises(ValueError):
        store.page(limit=0)


def test_cursors_are_checked() -> None:
    when = T0 + timedelta(microseconds=5)
    assert decode_cursor(encode_cursor(when, "abc")) == (when, "abc")
    for bad in ("", "!!!", "bm9wZQ", encode_cursor(T0, "x")[:-3] + "zzz"):
        with pytest.raises(InvalidCursor):
            decode_cursor(bad)


def test_close_open_rows_of_one_node_only(store: CallStore) -> None:
    store.save(
        [
            row("mine-open", T0),
            row("mine-done", T0, ended_at=T0, end_reason="hangup"),
            row("other-open", T0, node="other:5060"),
        ]
    )
    assert store.close_open("host:5060") == 1
    mine, done, other = (store.get(i) for i in ("mine-open", "mine-done", "other-open"))
    assert mine is not None and mine.end_reason == "shutdown" and mine.ended_at is None
    assert done is not None and done.end_reason == "hangup"
    assert other is not None and other.end_reason is None


def test_prune_deletes_only_older_records(store: CallStore) -> None:
    store.save([row("old", T0 - timedelta(days=91)), row("new", T0 - timedelta(days=89))])
    assert store.prune(T0 - timedelta(days=90)) == 1
    assert store.get("old") is None and store.get("new") is not None


# -- the recorder ----------------------------------------------------------------------------


def leg(leg_id: str, **values: Any) -> LegInfo:
    return LegInfo(
        id=leg_id, kind=values.pop("kind", "phone"), display_name="06 •• •• 78", **values
    )


async def test_recorder_writes_a_leg_start_then_answer_and_end(store: CallStore) -> None:
    with ThreadPoolExecutor(1) as writes:
        recorder = CallRecorder(
            store, writes, node="host:5060", keep_days=90, flush_interval=3600, clock=lambda: T0
        )
        await recorder.start()
        info = leg("p1", call_id="abc@host", caller_number="+33612345678")
        recorder.leg_started(info, T0)
        assert store.get("p1") is None  # nothing written from the hook itself
        await recorder.flush()
        started = store.get("p1")
        assert started is not None and started.room_id is None and started.ended_at is None
        recorder.leg_answered(info, T0 + timedelta(seconds=1))
        info = info.with_room("room1")
        recorder.leg_updated(info)
        await recorder.flush()
        answered = store.get("p1")
        assert answered is not None and answered.room_id == "room1"
        assert answered.answered_at == T0 + timedelta(seconds=1)
        recorder.leg_ended(info, T0 + timedelta(seconds=13.5), "wrong_pin", LegTotals(600, 610, -1))
        recorder.leg_updated(info)  # after the end: ignored
        recorder.leg_ended(info, T0 + timedelta(seconds=20), "hangup")  # once only
        await recorder.stop()
    done = store.get("p1")
    assert done is not None
    assert (done.end_reason, done.duration_seconds) == ("wrong_pin", 12.5)
    assert (done.packets_received, done.packets_sent, done.packets_lost) == (600, 610, 0)
    assert done.caller_number == "+33612345678" and done.call_id == "abc@host"


async def test_recorder_keeps_notes_while_the_database_fails(store: CallStore) -> None:
    calls = {"n": 0}
    real_save = store.save

    def flaky(*args: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("database down")
        real_save(*args)

    store.save = flaky  # type: ignore[method-assign,assignment]
    with ThreadPoolExecutor(1) as writes:
        recorder = CallRecorder(store, writes, node="n", keep_days=90, flush_interval=3600)
        recorder.leg_started(leg("p2", kind="browser"), T0)
        await recorder.flush()  # fails: kept
        recorder.leg_ended(leg("p2", kind="browser"), T0 + timedelta(seconds=2), "failed")
        await recorder.flush()
    record = store.get("p2")
    assert record is not None and record.kind == "browser" and record.end_reason == "failed"
    assert record.duration_seconds == 0.0  # never answered
    assert calls["n"] == 2


async def test_recorder_start_closes_the_previous_run_and_prunes(store: CallStore) -> None:
    store.save([row("crashed", T0 - timedelta(hours=1)), row("ancient", T0 - timedelta(days=10))])
    with ThreadPoolExecutor(1) as writes:
        recorder = CallRecorder(
            store, writes, node="host:5060", keep_days=7, flush_interval=0.05, clock=lambda: T0
        )
        await recorder.start()
        recorder.leg_started(leg("live"), T0)
        await asyncio.sleep(0.3)  # the background flush writes it
        assert store.get("live") is not None
        await recorder.stop()
    crashed = store.get("crashed")
    assert crashed is not None and crashed.end_reason == "shutdown"
    assert store.get("ancient") is None
