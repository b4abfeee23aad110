"""Room lookups by number served from memory: kept right on every write of this process, and
seen within the TTL when another process (another store on the same database) writes."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from rooms.cache import MISS, TtlCache
from rooms.db import create_engine_for, upgrade
from rooms.store import RoomSpec, RoomStore


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_entries_expire_and_none_is_a_value() -> None:
    clock = Clock()
    cache: TtlCache[str | None] = TtlCache(2.0, clock=clock)
    cache.put("a", None, cache.generation)
    assert cache.get("a") is None and cache.get("b") is MISS
    clock.now = 2.0
    assert cache.get("a") is MISS


def test_a_read_racing_a_write_is_not_stored() -> None:
    cache: TtlCache[str] = TtlCache(10.0)
    generation = cache.generation  # a reader starts reading the old value
    cache.drop("a")  # meanwhile a writer changes it
    cache.put("a", "old", generation)
    assert cache.get("a") is MISS
    cache.put("a", "new", cache.generation)
    assert cache.get("a") == "new"


def test_size_is_bounded_and_zero_ttl_stores_nothing() -> None:
    cache: TtlCache[int] = TtlCache(10.0, max_entries=3)
    for i in range(10):
        cache.put(str(i), i, cache.generation)
    assert len(cache) <= 3
    off: TtlCache[int] = TtlCache(0.0)
    off.put("a", 1, off.generation)
    assert off.get("a") is MISS


@pytest.fixture
def engine(tmp_path: object) -> Iterator[Engine]:
    engine = create_engine_for(f"sqlite:///{tmp_path}/rooms.db")
    upgrade(engine)
    yield engine
    engine.dispose()


def test_own_writes_apply_at_once(engine: Engine) -> None:
    store = RoomStore(engine, cache_seconds=3600)
    room = store.create(RoomSpec(name="Cached", pin="1234"))
    assert store.cached_by_number(room.number) == (False, None)
    assert store.find_by_number(room.number) == room
    assert store.cached_by_number(room.number) == (True, room)
    changed = store.update(room.id, {"pin": "5678", "locked": True})
    assert changed is not None
    found = store.find_by_number(room.number)
    assert found is not None and found.pin == "5678" and found.locked
    assert store.delete(room.id)
    assert store.find_by_number(room.number) is None
    assert store.cached_by_number(room.number) == (True, None)


def test_a_number_dialled_before_its_room_existed(engine: Engine) -> None:
    numbers = iter(["5000000001"])
    store = RoomStore(engine, number_source=lambda: next(numbers), cache_seconds=3600)
    assert store.find_by_number("5000000001") is None  # remembered as "no room"
    room = store.create(RoomSpec(name="New"))
    assert store.find_by_number("5000000001") == room


def test_another_process_write_is_seen_within_the_ttl(engine: Engine) -> None:
    node_a = RoomStore(engine, cache_seconds=0.2)
    node_b = RoomStore(engine, cache_seconds=0.2)
    room = node_a.create(RoomSpec(name="Shared"))
    assert node_b.find_by_number(room.number) == room
    node_a.update(room.id, {"active": False})
    stale = node_b.find_by_number(room.number)
    assert stale is not None and stale.active  # node B has not heard of it yet
    time.sleep(0.3)
    found = node_b.find_by_number(room.number)
    assert found is not None and not found.active


def test_malformed_numbers_never_reach_the_cache(engine: Engine) -> None:
    store = RoomStore(engine)
    assert store.cached_by_number("not-a-number") == (True, None)
    assert store.find_by_number("x" * 1000) is None
    assert len(store._by_number) == 0  # noqa: SLF001
