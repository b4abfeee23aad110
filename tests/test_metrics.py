"""``GET /metrics``: the collector over live legs (counters that never go down), the call
observer, the mixer clock's histogram, and who may read the page."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import numpy as np
from aiohttp.test_utils import TestClient
from aiortc.rtp import RtpPacket
from conftest import FakeSip, metric_value
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from api.metrics import METRICS
from config import Settings
from gateway.app import OBSERVERS, build_app
from gateway.lifecycle import LegInfo, LegTotals
from gateway.media import AudioLeg, LegConfig
from gateway.media.transport import MixerClock
from gateway.metrics import GatewayMetrics
from gateway.phone_menu import CallDtmf
from media.jitter import JitterBuffer
from webrtc.leg import LegStats as BrowserLegStats

Client = TestClient[Any, Any]
PEER = ("192.0.2.10", 40000)
STRANGER = ("203.0.113.9", 5004)
T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


sample = metric_value


def rtp(seq: int, pt: int = 0) -> bytes:
    return RtpPacket(
        payload_type=pt,
        sequence_number=seq,
        timestamp=seq * 160,
        ssrc=0x1234,
        payload=b"\xff" * 160,
    ).serialize()


def audio_leg(codec: str = "PCMU", pt: int = 0) -> AudioLeg:
    leg = AudioLeg(
        LegConfig(codec=codec, payload_type=pt, remote_addr=PEER),
        now=0.0,
        send_before_confirm=False,
    )
    leg.start_sending()
    return leg


def sip_leg(member_id: str, audio: AudioLeg, kind: str = "sip") -> Any:
    """What the collector reads of a ``SipLeg``."""
    return SimpleNamespace(
        member=SimpleNamespace(id=member_id, kind=kind),
        endpoint=SimpleNamespace(leg=audio),
        dtmf=CallDtmf(inband=False),
    )


class Setup:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.clock = MixerClock()
        self.sip: Any = FakeSip()
        self.conference: Any = SimpleNamespace(rooms={})
        self.metrics = GatewayMetrics(
            self.registry, clock=self.clock, conference=self.conference, sip=self.sip
        )

    def scrape(self) -> str:
        return generate_latest(self.registry).decode()

    def add(self, member_id: str, audio: AudioLeg, kind: str = "sip") -> Any:
        leg = sip_leg(member_id, audio, kind)
        self.sip.legs[member_id] = leg
        return leg


def info(member_id: str, kind: str = "sip") -> LegInfo:
    return LegInfo(id=member_id, kind=kind, display_name="x", codec="PCMU")


def test_rtp_counters_sum_live_legs_and_keep_what_ended_legs_counted() -> None:
    s = Setup()
    a, b = audio_leg(), audio_leg("G722", 9)
    s.add("a", a)
    s.add("b", b, kind="phone")
    for seq in range(5):
        assert a.on_rtp(rtp(seq), PEER, 0.02 * seq)
    assert not a.on_rtp(rtp(10), STRANGER, 0.2)  # after the latch: a stranger
    assert not a.on_rtp(b"\x80\x00", PEER, 0.2)  # too short: malformed
    assert not a.on_rtp(rtp(11, pt=8), PEER, 0.2)  # not negotiated
    sent = a.push_frame(np.zeros(320, dtype=np.int16), 0.2)
    assert len(sent) == 1
    assert b.on_rtp(rtp(1, pt=9), PEER, 0.0)

    text = s.scrape()
    assert sample(text, "gateway_rtp_packets_received_total", kind="sip") == 5
    assert sample(text, "gateway_rtp_packets_received_total", kind="phone") == 1
    assert sample(text, "gateway_rtp_packets_sent_total", kind="sip") == 1
    for reason in ("stranger", "malformed", "wrong_payload_type"):
        assert sample(text, "gateway_rtp_packets_dropped_total", kind="sip", reason=reason) == 1
    assert sample(text, "gateway_legs", kind="sip", codec="PCMU") == 1
    assert sample(text, "gateway_legs", kind="phone", codec="G722") == 1
    assert sample(text, "gateway_jitter_buffer_depth_packets", kind="sip") == 5  # none played
    assert sample(text, "gateway_jitter_buffer_depth_max_packets", kind="sip") == 5

    # a leg gone without any hook (seen at the last scrape): its counts stay
    del s.sip.legs["a"]
    text = s.scrape()
    assert sample(text, "gateway_rtp_packets_received_total", kind="sip") == 5
    assert sample(text, "gateway_rtp_packets_dropped_total", kind="sip") == 3
    assert sample(text, "gateway_legs", kind="sip") == 0

    # a leg that ends through the observer, after packets the last scrape did not see
    assert b.on_rtp(rtp(2, pt=9), PEER, 0.02)
    del s.sip.legs["b"]
    s.metrics.leg_ended(info("b", "phone"), T0, "hangup", LegTotals(packets_received=2))
    text = s.scrape()
    assert sample(text, "gateway_rtp_packets_received_total", kind="phone") == 2  # not 4
    assert sample(text, "gateway_legs") == 0


def test_a_leg_that_lived_between_two_scrapes_is_counted() -> None:
    s = Setup()
    before = s.scrape()
    leg = audio_leg()
    s.add("c", leg)
    s.metrics.leg_started(info("c"), T0)
    s.metrics.leg_answered(info("c"), T0 + timedelta(milliseconds=300))
    for seq in range(7):
        leg.on_rtp(rtp(seq), PEER, 0.02 * seq)
    leg.on_rtp(rtp(50), STRANGER, 0.2)
    del s.sip.legs["c"]
    s.metrics.leg_ended(info("c"), T0 + timedelta(seconds=2), "hangup", None)
    after = s.scrape()
    assert sample(before, "gateway_rtp_packets_received_total") == 0
    assert sample(after, "gateway_rtp_packets_received_total", kind="sip") == 7
    assert sample(after, "gateway_rtp_packets_dropped_total", reason="stranger") == 1


def test_a_leg_never_seen_counts_the_totals_of_its_end() -> None:
    s = Setup()
    totals = LegTotals(packets_received=40, packets_sent=50, packets_lost=3)
    s.metrics.leg_ended(info("d", "phone"), T0, "timeout", totals)
    text = s.scrape()
    assert sample(text, "gateway_rtp_packets_received_total", kind="phone") == 40
    assert sample(text, "gateway_rtp_packets_sent_total", kind="phone") == 50
    assert sample(text, "gateway_rtp_packets_lost_total", kind="phone") == 3


def test_a_codec_change_keeps_the_counts_of_the_replaced_audio_leg() -> None:
    s = Setup()
    first = audio_leg()
    leg = s.add("e", first)
    for seq in range(3):
        first.on_rtp(rtp(seq), PEER, 0.02 * seq)
    assert sample(s.scrape(), "gateway_rtp_packets_received_total") == 3
    second = audio_leg("G722", 9)
    leg.endpoint.leg = second  # what SipCalls does on a re-INVITE with another codec
    s.metrics.leg_updated(info("e"))
    second.on_rtp(rtp(100, pt=9), PEER, 0.5)
    text = s.scrape()
    assert sample(text, "gateway_rtp_packets_received_total") == 4
    assert sample(text, "gateway_legs", kind="sip", codec="G722") == 1
    assert sample(text, "gateway_legs", kind="sip", codec="PCMU") == 0


def test_lost_and_late_come_from_the_jitter_buffer() -> None:
    s = Setup()
    leg = audio_leg()
    s.add("f", leg)
    for seq in (0, 1, 2, 4, 5, 6):  # 3 never comes
        leg.on_rtp(rtp(seq), PEER, 0.02 * seq)
    for i in range(6):
        leg.pull_frame(0.2 + 0.02 * i)
    leg.on_rtp(rtp(3), PEER, 0.4)  # after its turn: late
    text = s.scrape()
    assert sample(text, "gateway_rtp_packets_lost_total", kind="sip") == 1
    assert sample(text, "gateway_rtp_packets_late_total", kind="sip") == 1


def test_call_observer_counts_set_up_refused_failed_and_setup_time() -> None:
    s = Setup()
    s.metrics.leg_started(info("g"), T0)
    s.metrics.leg_answered(info("g"), T0 + timedelta(milliseconds=200))
    s.metrics.leg_started(info("h", "browser"), T0)
    s.metrics.leg_ended(info("h", "browser"), T0 + timedelta(seconds=1), "failed")
    s.metrics.leg_ended(info("g"), T0 + timedelta(seconds=5), "hangup")
    s.metrics.call_refused("sip", 404)
    s.metrics.call_refused("sip", 404)
    s.metrics.call_refused("phone", 480)
    s.metrics.call_refused("martian", 9999)
    text = s.scrape()
    assert sample(text, "gateway_calls_set_up_total", kind="sip") == 1
    assert sample(text, "gateway_calls_set_up_total", kind="browser") == 0
    assert sample(text, "gateway_calls_failed_total", kind="browser") == 1
    assert sample(text, "gateway_calls_ended_total", kind="sip", reason="hangup") == 1
    assert sample(text, "gateway_calls_refused_total", kind="sip", status="404") == 2
    assert sample(text, "gateway_calls_refused_total", kind="phone", status="480") == 1
    assert sample(text, "gateway_calls_refused_total", kind="other", status="other") == 1
    assert sample(text, "gateway_call_setup_seconds_count", kind="sip") == 1
    assert abs(sample(text, "gateway_call_setup_seconds_sum", kind="sip") - 0.2) < 1e-9
    assert sample(text, "gateway_call_setup_seconds_bucket", kind="sip", le="0.25") == 1
    assert sample(text, "gateway_call_setup_seconds_bucket", kind="sip", le="0.1") == 0


def test_dtmf_digits_by_method_and_pin_failures_and_lockouts() -> None:
    s = Setup()
    leg = s.add("i", audio_leg(), kind="phone")
    leg.dtmf.received["rfc4733"] += 4
    leg.dtmf.received["info"] += 1
    s.metrics.leg_answered(info("i", "phone"), T0)
    guard = s.sip.pin_guard
    assert not guard.failure("room:x", 0.0)
    assert guard.failure("room:x", 1.0)  # the second of max_failures=2: locked
    text = s.scrape()
    assert sample(text, "gateway_dtmf_digits_total", method="rfc4733") == 4
    assert sample(text, "gateway_dtmf_digits_total", method="info") == 1
    assert sample(text, "gateway_dtmf_digits_total", method="inband") == 0
    assert sample(text, "gateway_pin_failures_total") == 2
    assert sample(text, "gateway_pin_lockouts_total") == 1
    leg.dtmf.received["inband"] += 2
    del s.sip.legs["i"]
    s.metrics.leg_ended(info("i", "phone"), T0, "wrong_pin")
    text = s.scrape()
    assert sample(text, "gateway_dtmf_digits_total") == 7


def test_no_label_carries_an_id_or_a_number() -> None:
    s = Setup()
    s.add("participant-1234", audio_leg())
    caller = LegInfo(
        id="participant-1234", kind="phone", display_name="x", caller_number="+33612345678"
    )
    s.metrics.leg_started(caller, T0)
    s.metrics.leg_answered(caller, T0)
    text = s.scrape()
    assert "participant-1234" not in text and "+33612345678" not in text
    for family in text_string_to_metric_families(text):
        assert family.name.startswith("gateway_")
        for sample_ in family.samples:
            assert set(sample_.labels) <= {"kind", "codec", "status", "reason", "method", "le"}


async def test_mixer_clock_feeds_the_lateness_histogram_and_counts_skipped_ticks() -> None:
    s = Setup()

    class Stall:
        def __init__(self) -> None:
            self.ticks = 0
            self.done = asyncio.Event()

        def tick(self, now: float) -> None:
            self.ticks += 1
            if self.ticks == 3:
                time.sleep(0.15)  # blocks the loop: the clock falls > 3 frames behind
            if self.ticks == 8:
                self.done.set()

    stall = Stall()
    s.clock.add(stall)
    s.clock.start()
    try:
        await asyncio.wait_for(stall.done.wait(), 30)
    finally:
        await s.clock.stop()
    s.clock.reset_stats()  # the stats line restarts its window; the metrics do not
    text = s.scrape()
    assert sample(text, "gateway_mixer_tick_lateness_seconds_count") >= 8
    assert sample(text, "gateway_mixer_ticks_skipped_total") >= 1
    # the stalled tick's successor ran over 60 ms late: in the top buckets, not below
    assert sample(text, "gateway_mixer_tick_lateness_seconds_bucket", le="0.06") < sample(
        text, "gateway_mixer_tick_lateness_seconds_count"
    )


def test_gateway_app_registers_its_collector_and_observer(settings: Settings) -> None:
    app = build_app(settings)
    app[OBSERVERS].call_refused("sip", 404)
    text = generate_latest(app[METRICS].registry).decode()
    assert sample(text, "gateway_calls_refused_total", status="404") == 1
    assert sample(text, "gateway_rooms") == 0
    assert "process_resident_memory_bytes" in text
    assert sample(text, "gateway_legs") == 0


# -- the route ---------------------------------------------------------------------------------
async def metrics_client(
    aiohttp_client: Callable[..., Any], make_settings: Callable[..., Settings]
) -> Client:
    client: Client = await aiohttp_client(
        create_app(make_settings(metrics_token="scrape-token-0123"))
    )
    return client


async def test_admin_token_reads_metrics_in_the_text_format(
    aiohttp_client: Callable[..., Any],
    make_settings: Callable[..., Settings],
    auth_headers: dict[str, str],
) -> None:
    client = await metrics_client(aiohttp_client, make_settings)
    response = await client.get("/metrics", headers=auth_headers)
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = await response.text()
    names = {family.name for family in text_string_to_metric_families(text)}
    assert {"process_cpu_seconds", "process_resident_memory_bytes", "process_open_fds"} <= names
    assert "gateway_asyncio_tasks" in names
    assert sample(text, "gateway_asyncio_tasks") >= 1
    assert sample(text, "gateway_websocket_connections", kind="events") == 0


async def test_metrics_token_reads_metrics_and_nothing_else(
    aiohttp_client: Callable[..., Any], make_settings: Callable[..., Settings]
) -> None:
    client = await metrics_client(aiohttp_client, make_settings)
    headers = {"Authorization": "Bearer scrape-token-0123"}
    response = await client.get("/metrics", headers=headers)
    assert response.status == 200
    list(text_string_to_metric_families(await response.text()))
    response = await client.get("/api/rooms", headers=headers)
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "invalid_token"


async def test_metrics_without_a_good_token_is_401(
    aiohttp_client: Callable[..., Any], make_settings: Callable[..., Settings]
) -> None:
    client = await metrics_client(aiohttp_client, make_settings)
    response = await client.get("/metrics")
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "missing_token"
    response = await client.get("/metrics", headers={"Authorization": "Bearer scrape-token-0124"})
    assert response.status == 401
    assert (await response.json())["error"]["code"] == "invalid_token"


async def test_no_metrics_token_configured_means_admin_only(
    client: Client, auth_headers: dict[str, str]
) -> None:
    response = await client.get("/metrics", headers={"Authorization": "Bearer "})
    assert response.status == 401
    response = await client.get("/metrics", headers=auth_headers)
    assert response.status == 200


async def test_websocket_connections_gauge(client: Client, auth_headers: dict[str, str]) -> None:
    response = await client.post("/api/rooms", json={"name": "watched"}, headers=auth_headers)
    room = await response.json()

    async def gauge() -> float:
        response = await client.get("/metrics", headers=auth_headers)
        return sample(await response.text(), "gateway_websocket_connections", kind="events")

    ws = await client.ws_connect(f"/api/rooms/{room['id']}/events", headers=auth_headers)
    assert await gauge() == 1
    await ws.close()
    for _ in range(200):  # the server's side of the socket closes soon after
        if await gauge() == 0:
            break
        await asyncio.sleep(0.01)
    assert await gauge() == 0


def test_browser_legs_count_their_packets_and_opus_codec() -> None:
    s = Setup()
    jitter = JitterBuffer()
    for seq in range(4):
        jitter.put(seq, b"\x01" * 40)
    leg = SimpleNamespace(stats=BrowserLegStats(packets_in=4, packets_out=9), jitter=jitter)
    session = SimpleNamespace(leg=leg, member=SimpleNamespace(id="web-1"))
    s.metrics.browsers = SimpleNamespace(sessions={"web-1": session})  # type: ignore[assignment]
    s.metrics.leg_answered(info("web-1", "browser"), T0)
    text = s.scrape()
    assert sample(text, "gateway_legs", kind="browser", codec="opus") == 1
    assert sample(text, "gateway_rtp_packets_received_total", kind="browser") == 4
    assert sample(text, "gateway_jitter_buffer_depth_packets", kind="browser") == 4
    leg.stats.packets_out += 1
    s.metrics.browsers.sessions.clear()  # type: ignore[union-attr]
    s.metrics.leg_ended(info("web-1", "browser"), T0, "hangup")
    text = s.scrape()
    assert sample(text, "gateway_legs", kind="browser") == 0
    assert sample(text, "gateway_rtp_packets_sent_total", kind="browser") == 10
