"""The room store against a real database (SQLite file, or PostgreSQL when configured)."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine
from sqlmodel import Session, select

from rooms import numbers
from rooms.db import create_engine_for, upgrade
from rooms.errors import InvalidRoom, NumbersExhausted
from rooms.models import AllocatedNumber
from rooms.roles import Role
from rooms.store import RoomSpec, RoomStore

INDIA = timezone(timedelta(hours=5, minutes=30))


@pytest.fixture
def engine(upgraded_engine: Engine) -> Engine:
    return upgraded_engine


@pytest.fixture
def store(engine: Engine) -> RoomStore:
    return RoomStore(engine)


def test_create_and_read_back(store: RoomStore) -> None:
    room = store.create(RoomSpec(name="Weekly", pin="1234", host_pin="987654"))
    assert numbers.is_room_number(room.number)
    assert room.permanent and room.active and room.starts_at is None and room.ends_at is None
    assert room.created_at.tzinfo is not None
    assert store.get(room.id) == room
    assert store.find_by_number(room.number) == room
    assert store.list() == [room]
    assert store.get("nope") is None
    assert store.find_by_number("1234567890") is None
    assert store.find_by_number("not-a-number") is None


def test_link_tokens_one_per_role_random_and_unique(store: RoomStore) -> None:
    rooms = [store.create(RoomSpec(name=f"r{i}")) for i in range(5)]
    tokens = [t for room in rooms for t in room.tokens.values()]
    assert all(set(room.tokens) == set(Role) for room in rooms)
    assert len(set(tokens)) == len(tokens)
    # token_urlsafe(24): 32 characters of 6 bits = 192 random bits (>= 128).
    assert all(len(t) >= 22 for t in tokens)
    room = rooms[0]
    for role, token in room.tokens.items():
        found = store.find_link(room.number, token)
        assert found is not None and found[0].id == room.id and found[1] is role
    assert store.find_link(room.number, rooms[1].tokens[Role.GUEST]) is None
    assert store.find_link(rooms[1].number, room.tokens[Role.GUEST]) is None
    assert store.find_link(room.number, "") is None


def test_datetimes_come_back_aware_in_the_given_offset(store: RoomStore) -> None:
    start = datetime(2026, 6, 1, 22, 30, tzinfo=INDIA)
    room = store.create(RoomSpec(name="Late", permanent=False, starts_at=start))
    again = store.get(room.id)
    assert again is not None
    assert again.starts_at == start and again.starts_at.utcoffset() == timedelta(
        hours=5, minutes=30
    )
    assert again.ends_at == datetime(2026, 6, 2, tzinfo=INDIA)
    assert again.ends_at_auto
    assert again.is_active_at(datetime(2026, 6, 1, 17, 0, tzinfo=UTC))
    assert not again.is_active_at(datetime(2026, 6, 1, 18, 30, tzinfo=UTC))


def test_rules_are_checked(store: RoomStore) -> None:
    start = datetime(2026, 1, 1, 10, tzinfo=UTC)
    bad = [
        (RoomSpec(name=""), "invalid_name"),
        (RoomSpec(name="x" * 201), "invalid_name"),
        (RoomSpec(name="a\x00b"), "invalid_name"),
        (RoomSpec(name="x", pin="12"), "invalid_pin"),
        (RoomSpec(name="x", pin="1234", host_pin="1234"), "host_pin_equals_pin"),
        (RoomSpec(name="x", permanent=False), "starts_at_required"),
        (RoomSpec(name="x", permanent=False, starts_at=start, ends_at=start), "ends_before_start"),
        (RoomSpec(name="x", starts_at=start), "schedule_on_permanent_room"),
    ]
    for spec, code in bad:
        with pytest.raises(InvalidRoom) as caught:
            store.create(spec)
        assert caught.value.code == code, spec
    assert store.list() == []


def test_update_merges_and_checks_the_result(store: RoomStore) -> None:
    room = store.create(RoomSpec(name="A", pin="1234"))
    changed = store.update(room.id, {"name": "B", "host_pin": "5678", "waiting_room": True})
    assert changed is not None
    assert (changed.name, changed.pin, changed.host_pin, changed.waiting_room) == (
        "B",
        "1234",
        "5678",
        True,
    )
    assert changed.number == room.number and changed.tokens == room.tokens
    with pytest.raises(InvalidRoom) as caught:
        store.update(room.id, {"pin": "5678"})
    assert caught.value.code == "host_pin_equals_pin"
    with pytest.raises(InvalidRoom):
        store.update(room.id, {"number": "1234567890"})
    assert store.update("missing", {"name": "x"}) is None
    assert store.get(room.id) == changed


def test_update_schedule(store: RoomStore) -> None:
    room = store.create(RoomSpec(name="A"))
    start = datetime(2026, 6, 1, 9, tzinfo=INDIA)
    with pytest.raises(InvalidRoom) as caught:
        store.update(room.id, {"permanent": False})
    assert caught.value.code == "starts_at_required"
    scheduled = store.update(room.id, {"permanent": False, "starts_at": start})
    assert scheduled is not None and scheduled.ends_at == datetime(2026, 6, 2, tzinfo=INDIA)
    # A derived end follows a new start; an unrelated change keeps it derived.
    moved = store.update(room.id, {"starts_at": start + timedelta(days=3)})
    assert moved is not None and moved.ends_at == datetime(2026, 6, 5, tzinfo=INDIA)
    renamed = store.update(room.id, {"name": "B"})
    assert renamed is not None and renamed.ends_at_auto
    # An explicit end stays put; moving the start past it is refused.
    fixed = store.update(room.id, {"ends_at": start + timedelta(days=3, hours=2)})
    assert fixed is not None and not fixed.ends_at_auto
    with pytest.raises(InvalidRoom) as caught:
        store.update(room.id, {"starts_at": start + timedelta(days=10)})
    assert caught.value.code == "ends_before_start"
    # ends_at: None asks for the midnight rule again.
    again = store.update(room.id, {"ends_at": None})
    assert again is not None and again.ends_at == datetime(2026, 6, 5, tzinfo=INDIA)
    # Back to permanent drops the schedule.
    permanent = store.update(room.id, {"permanent": True})
    assert permanent is not None and permanent.starts_at is None and permanent.ends_at is None
    with pytest.raises(InvalidRoom) as caught:
        store.update(room.id, {"permanent": True, "starts_at": start})
    assert caught.value.code == "schedule_on_permanent_room"


def test_delete_keeps_the_number_allocated(store: RoomStore, engine: Engine) -> None:
    room = store.create(RoomSpec(name="A"))
    assert store.delete(room.id)
    assert not store.delete(room.id)
    assert store.get(room.id) is None and store.find_by_number(room.number) is None
    assert store.find_link(room.number, room.tokens[Role.GUEST]) is None
    with Session(engine) as session:
        assert session.get(AllocatedNumber, room.number) is not None


def test_deleted_number_is_never_handed_out_again(engine: Engine) -> None:
    draws = iter(["5000000001", "5000000001", "5000000002"])
    store = RoomStore(engine, number_source=lambda: next(draws))
    first = store.create(RoomSpec(name="A"))
    assert first.number == "5000000001"
    store.delete(first.id)
    second = store.create(RoomSpec(name="B"))
    assert second.number == "5000000002"


def test_numbers_exhausted(engine: Engine) -> None:
    store = RoomStore(engine, number_source=lambda: "5000000001")
    store.create(RoomSpec(name="A"))
    with pytest.raises(NumbersExhausted):
        store.create(RoomSpec(name="B"))


def test_random_number_shape() -> None:
    assert numbers.random_number(lambda n: 0) == "1000000000"
    assert numbers.random_number(lambda n: n - 1) == "9999999999"
    drawn = {numbers.random_number() for _ in range(2000)}
    assert len(drawn) == 2000
    assert all(numbers.is_room_number(n) for n in drawn)
    # Not sequential: consecutive draws are far apart on average.
    ordered = [int(numbers.random_number()) for _ in range(200)]
    gaps = [abs(a - b) for a, b in zip(ordered, ordered[1:], strict=False)]
    assert sum(gaps) / len(gaps) > 10**8
    assert {n[0] for n in drawn} == set("123456789")


def test_allocator_refuses_bad_sources(engine: Engine) -> None:
    with Session(engine) as session, pytest.raises(ValueError):
        numbers.allocate_number(session, lambda: "0123456789")


def test_ten_thousand_allocations_are_unique(engine: Engine) -> None:
    began = time.monotonic()
    with Session(engine) as session:
        allocated = [numbers.allocate_number(session) for _ in range(10_000)]
        session.commit()
    assert len(set(allocated)) == 10_000
    assert all(numbers.is_room_number(n) for n in allocated)
    with Session(engine) as session:
        stored = set(session.exec(select(AllocatedNumber.number)))
    assert stored == set(allocated)
    assert time.monotonic() - began < 30


def test_concurrent_writes_from_threads(store: RoomStore) -> None:
    with ThreadPoolExecutor(8) as pool:
        rooms = list(pool.map(lambda i: store.create(RoomSpec(name=f"r{i}")), range(40)))
        assert len({r.number for r in rooms}) == 40
        updated = list(pool.map(lambda r: store.update(r.id, {"pin": "1234"}), rooms))
        assert all(r is not None and r.pin == "1234" for r in updated)
        assert all(pool.map(lambda r: store.delete(r.id), rooms[:20]))
    assert len(store.list()) == 20


def test_a_room_survives_a_new_engine(database_url: str) -> None:
    engine = create_engine_for(database_url)
    upgrade(engine)
    room = RoomStore(engine).create(RoomSpec(name="Kept", pin="4321"))
    engine.dispose()
    engine = create_engine_for(database_url)
    upgrade(engine)  # a second upgrade is a no-op
    assert RoomStore(engine).get(room.id) == room
    engine.dispose()
