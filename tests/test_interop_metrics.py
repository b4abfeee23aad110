"""``GET /metrics`` of a real ``python -m gateway`` while real peers call it: a sipp call
playing RTP, a PJSIP call (G.722, one RFC 4733 digit) in the same room, and an INVITE to an
unknown number; the page parses with ``prometheus_client.parser`` and its counters move."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from conftest import metric_value
from prometheus_client.parser import text_string_to_metric_families

from tests.gateway_proc import GatewayProcess, start_gateway
from tests.peers import sipp
from tests.peers.fixtures import PeerFactory
from tests.peers.pcap import audio_packets, write_pcap

pytestmark = pytest.mark.interop

HOST = "127.0.0.1"
METRICS_TOKEN = "interop-metrics-token-0123456789"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    yield from start_gateway(
        tmp_path_factory.mktemp("metrics"), GATEWAY_METRICS_TOKEN=METRICS_TOKEN
    )


def scrape(gateway: GatewayProcess, token: str = METRICS_TOKEN) -> str:
    request = urllib.request.Request(
        gateway.base_url + "/metrics", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return response.read().decode()


value = metric_value


def wait_for(gateway: GatewayProcess, name: str, expected: float, **labels: str) -> str:
    """Scrape until ``name`` reads ``expected`` (or 10 s went by); the last page."""
    deadline = time.monotonic() + 10
    while True:
        text = scrape(gateway)
        if value(text, name, **labels) == expected or time.monotonic() > deadline:
            return text
        time.sleep(0.1)


def test_metrics_page_follows_a_sipp_call_a_pjsip_call_and_a_refused_call(
    gateway: GatewayProcess,
    peers: PeerFactory,
    tmp_path: Path,
) -> None:
    room = gateway.create_room(name="metrics")
    before = scrape(gateway)
    assert {f.name for f in text_string_to_metric_families(before)} >= {
        "gateway_legs",
        "gateway_calls_set_up",
        "gateway_rtp_packets_received",
        "gateway_mixer_tick_lateness_seconds",
        "process_resident_memory_bytes",
    }

    uri = f"sip:{room['number']}@{HOST}:{gateway.sip_port}"
    pjsip = peers.pjsua_call(
        uri,
        play=peers.tone(700),
        record=peers.path("heard.wav"),
        seconds=6,
        codecs=("G722",),
        dtmf="5",
        dtmf_at=1.0,
    )
    pjsip.wait_event("CONFIRMED", 10)
    during = wait_for(gateway, "gateway_legs", 1, kind="sip", codec="G722")
    assert value(during, "gateway_legs", kind="sip", codec="G722") == 1
    assert value(during, "gateway_rooms") >= 1

    t = np.arange(8000 * 2) / 8000
    pcap = write_pcap(
        tmp_path / "tone.pcap", audio_packets(0.5 * np.sin(2 * np.pi * 1000 * t), 8000, "PCMU")
    )
    result = sipp.run_pcap_call(HOST, gateway.sip_port, str(room["number"]), pcap, 2500, timeout=30)
    assert result.ok, result.summary()
    assert pjsip.wait_result(30).ok, pjsip.output()

    refused = sipp.run_expect_status(HOST, gateway.sip_port, "1000000001", 404)
    assert refused.ok, refused.summary()

    after = wait_for(gateway, "gateway_legs", 0)
    assert value(after, "gateway_legs") == 0

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("gateway_calls_set_up_total", kind="sip") == 2
    assert delta("gateway_calls_refused_total", status="404") == 1
    assert delta("gateway_calls_refused_total") == 1
    assert delta("gateway_calls_ended_total", kind="sip", reason="hangup") == 2
    assert delta("gateway_calls_failed_total") == 0
    assert delta("gateway_call_setup_seconds_count", kind="sip") == 2
    # sipp played 2 s (100 packets) and PJSIP 6 s: far more than 100 came in; both heard the room
    assert delta("gateway_rtp_packets_received_total", kind="sip") > 100
    assert delta("gateway_rtp_packets_sent_total", kind="sip") > 100
    assert delta("gateway_dtmf_digits_total", method="rfc4733") >= 1
    assert value(after, "gateway_mixer_tick_lateness_seconds_count") > 0

    # counters never go down between scrapes
    again = scrape(gateway)
    for name in ("gateway_rtp_packets_received_total", "gateway_rtp_packets_sent_total"):
        assert value(again, name) >= value(after, name)


def test_metrics_token_opens_metrics_only(gateway: GatewayProcess) -> None:
    scrape(gateway)  # the metrics token reads /metrics
    request = urllib.request.Request(
        gateway.base_url + "/api/rooms", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 401
    with pytest.raises(urllib.error.HTTPError) as missing:
        urllib.request.urlopen(gateway.base_url + "/metrics", timeout=10)
    assert missing.value.code == 401
