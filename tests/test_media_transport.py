from __future__ import annotations

import asyncio
import socket

import numpy as np
import pytest
from test_media_signals import peak_frequency, tone

from gateway.media import AudioLeg, LegConfig
from gateway.media.transport import (
    MAX_PER_TICK,
    RTCP_POLL_TICKS,
    MixerClock,
    NoFreePorts,
    PortAllocator,
)
from gateway.mixer import RoomMixer


def _free_even_port_pair() -> int:
    """An even port whose pair looks free right now (best effort)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        port -= port % 2
        if 1024 < port < 65000:
            return port
    raise RuntimeError("no port")


def test_allocator_hands_out_every_even_port_once() -> None:
    alloc = PortAllocator("20001-20010")
    assert alloc.low == 20002 and alloc.capacity == 4
    ports = []
    for _ in range(4):
        port = next(alloc.candidates())
        alloc.take(port)
        ports.append(port)
    assert sorted(ports) == [20002, 20004, 20006, 20008]
    assert list(alloc.candidates()) == []
    alloc.release(20004)
    assert list(alloc.candidates()) == [20004]
    with pytest.raises(ValueError):
        PortAllocator("30000-20000")


def test_allocator_picks_ports_at_random_not_in_order() -> None:
    import random

    alloc = PortAllocator("20000-29999", rng=random.Random(4))
    ports = []
    for _ in range(50):
        port = next(alloc.candidates())
        alloc.take(port)
        ports.append(port)
    assert all(p % 2 == 0 and 20000 <= p <= 29998 for p in ports)
    assert len(set(ports)) == 50
    steps = {b - a for a, b in zip(ports, ports[1:], strict=False)}
    assert 2 not in steps or len(steps) > 40  # not handed out one after the other
    assert ports != sorted(ports)
    # the next port cannot be guessed from the last one
    again = PortAllocator("20000-29999", rng=random.Random(5))
    assert next(again.candidates()) != ports[0]


def test_allocator_finds_the_last_free_pair_in_a_full_range() -> None:
    alloc = PortAllocator("20000-21999")
    for port in range(20000, 22000, 2):
        if port != 21234:
            alloc.take(port)
    assert list(alloc.candidates()) == [21234]


async def test_open_binds_pairs_skips_busy_ports_and_releases() -> None:
    base = _free_even_port_pair()
    blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    blocker.bind(("127.0.0.1", base + 1))  # someone else holds the first RTCP port
    try:
        alloc = PortAllocator(f"{base}-{base + 7}", host="127.0.0.1")
        legs = [AudioLeg(LegConfig()) for _ in range(3)]
        eps = [await alloc.open(leg) for leg in legs]
        assert sorted(ep.port for ep in eps) == [base + 2, base + 4, base + 6]
        assert alloc.in_use == {base + 2, base + 4, base + 6}
        with pytest.raises(NoFreePorts):
            await alloc.open(AudioLeg(LegConfig()))
        eps.sort(key=lambda ep: ep.port)
        eps[1].close()
        assert eps[1].closed and base + 4 not in alloc.in_use
        await asyncio.sleep(0.01)  # transports close on the next loop iteration
        again = await alloc.open(AudioLeg(LegConfig()))
        assert again.port == base + 4
        for ep in (eps[0], eps[2], again):
            ep.close()
        assert alloc.in_use == frozenset()
    finally:
        blocker.close()


async def test_two_endpoints_exchange_audio_over_loopback() -> None:
    alloc = PortAllocator(f"{_free_even_port_pair()}-65000", host="127.0.0.1")
    a_leg = AudioLeg(LegConfig(codec="PCMA", payload_type=8))
    b_leg = AudioLeg(LegConfig(codec="PCMA", payload_type=8))
    a = await alloc.open(a_leg)
    b = await alloc.open(b_leg)
    a_leg.start_sending()
    b_leg.start_sending()
    a_leg.set_remote_addr(("127.0.0.1", b.port))
    b_leg.set_remote_addr(("127.0.0.1", a.port))
    loop = asyncio.get_running_loop()
    x = tone(800, 320 * 40, 16000)
    heard = []
    try:
        for i in range(40):
            a.push_frame(x[i * 320 : (i + 1) * 320])
            await asyncio.sleep(0.005)
            alloc.tick(loop.time())  # what the mixer clock does first on each tick
            heard.append(b.pull_frame(loop.time()))
        assert b_leg.rtp_peer == ("127.0.0.1", a.port)  # latched
        assert b_leg.packets_received == 40
        assert peak_frequency(np.concatenate(heard[5:]), 16000) == pytest.approx(800, abs=5)
    finally:
        a.close()
        b.close()


async def test_a_flood_is_read_at_most_max_per_tick_and_rtcp_every_few_ticks() -> None:
    alloc = PortAllocator(f"{_free_even_port_pair()}-65000", host="127.0.0.1")
    leg = AudioLeg(LegConfig())
    ep = await alloc.open(leg)
    flood = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for _ in range(100):
            flood.sendto(b"junk", ("127.0.0.1", ep.port))  # too short to be RTP
        for _ in range(3):
            flood.sendto(b"junk", ("127.0.0.1", ep.port + 1))
        await asyncio.sleep(0.05)
        loop = asyncio.get_running_loop()
        alloc.tick(loop.time())
        assert leg.bad_packets == MAX_PER_TICK  # the rest waits in the kernel
        for _ in range(RTCP_POLL_TICKS - 2):
            alloc.tick(loop.time())
        assert (leg.bad_packets, leg.strangers) == (100, 0)  # 100 RTP datagrams, 4 ticks
        alloc.tick(loop.time())  # the RTCP socket is read on the 5th tick only
        assert leg.bad_packets + leg.strangers == 100 + 3
        ep.close()
        alloc.tick(loop.time())  # a closed endpoint is no longer read
        assert alloc.endpoints == []
    finally:
        flood.close()


async def test_the_clock_ticks_what_is_added_first_before_the_rooms() -> None:
    clock = MixerClock(interval=0.01)
    order: list[str] = []

    class Named:
        def __init__(self, name: str) -> None:
            self.name = name

        def tick(self, now: float) -> None:
            order.append(self.name)

    clock.add(Named("room"))
    clock.add(Named("sockets"), first=True)
    clock.start()
    await asyncio.sleep(0.035)
    await clock.stop()
    assert order[:2] == ["sockets", "room"]


class CountingRoom:
    def __init__(self) -> None:
        self.times: list[float] = []

    def tick(self, now: float) -> None:
        self.times.append(now)


class BrokenRoom:
    def tick(self, now: float) -> None:
        raise RuntimeError("boom")


async def test_clock_ticks_all_rooms_from_one_task() -> None:
    clock = MixerClock(interval=0.01)
    rooms = [CountingRoom(), CountingRoom()]
    for room in rooms:
        clock.add(room)
    clock.add(BrokenRoom())
    tasks_before = len(asyncio.all_tasks())
    clock.start()
    assert len(asyncio.all_tasks()) == tasks_before + 1
    await asyncio.sleep(0.15)
    mixer = RoomMixer("late-comer")
    clock.add(mixer)
    clock.remove(rooms[1])
    await asyncio.sleep(0.05)
    await clock.stop()
    assert not clock.running
    n0, n1 = len(rooms[0].times), len(rooms[1].times)
    assert n0 > n1 > 3
    assert clock.errors == clock.ticks  # the broken room never stopped the others
    stats = clock.stats()
    assert stats.ticks == clock.ticks and stats.late_max_ms >= stats.late_p50_ms >= 0
    assert np.all(np.diff(rooms[0].times) > 0)
    await clock.stop()  # idempotent


async def test_clock_skips_ahead_when_far_behind() -> None:
    import time

    class Slow:
        def __init__(self) -> None:
            self.n = 0

        def tick(self, now: float) -> None:
            self.n += 1
            if self.n == 3:
                time.sleep(0.08)  # blocks the loop for 8 frames

    clock = MixerClock(interval=0.01, max_late_frames=3)
    clock.add(Slow())
    clock.start()
    await asyncio.sleep(0.2)
    await clock.stop()
    assert clock.skipped >= 4
