"""The gateway against sipp, a real and independent SIP stack: routing, load, loss, re-INVITEs."""

from __future__ import annotations

import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.gateway_proc import GatewayProcess, gateway  # noqa: F401  (fixture)
from tests.peers import sipp

pytestmark = pytest.mark.interop

HOST = "127.0.0.1"


@pytest.fixture(scope="module")
def room(gateway: GatewayProcess) -> dict[str, object]:  # noqa: F811
    return gateway.create_room(name="sipp room")


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_builtin_uac_calls_a_room(
    gateway: GatewayProcess,  # noqa: F811
    room: dict[str, object],
    transport: str,  # noqa: F811
) -> None:
    result = sipp.run_uac(
        HOST,
        gateway.sip_port,
        str(room["number"]),
        transport=transport,  # type: ignore[arg-type]
        calls=20,
        rate=20,
        timeout=60,
    )
    assert result.ok, result.summary()
    assert result.successful == 20


def test_thousand_calls_at_fifty_per_second(
    gateway: GatewayProcess,  # noqa: F811
    room: dict[str, object],  # noqa: F811
) -> None:
    result = sipp.run_uac(
        HOST,
        gateway.sip_port,
        str(room["number"]),
        calls=1000,
        rate=50,
        max_concurrent=200,
        timeout=120,
    )
    assert result.ok, result.summary()
    assert (result.successful, result.failed) == (1000, 0)


def test_calls_survive_lost_packets(
    gateway: GatewayProcess,  # noqa: F811
    room: dict[str, object],  # noqa: F811
) -> None:
    # sipp drops 10 % of what it sends and receives; our retransmissions must recover.
    result = sipp.run_uac(
        HOST,
        gateway.sip_port,
        str(room["number"]),
        calls=30,
        rate=10,
        lost_percent=10,
        timeout=120,
        extra_args=["-recv_timeout", "40000"],
    )
    assert result.failed == 0, result.summary()
    assert result.successful == 30


def test_unknown_number_gets_404(gateway: GatewayProcess) -> None:  # noqa: F811
    result = sipp.run_expect_status(HOST, gateway.sip_port, "1000000001", 404)
    assert result.ok, result.summary()


def test_inactive_room_gets_480(gateway: GatewayProcess) -> None:  # noqa: F811
    closed = gateway.create_room(name="closed")
    status, _ = gateway.api("PATCH", f"/api/rooms/{closed['id']}", {"active": False})
    assert status == 200
    result = sipp.run_expect_status(HOST, gateway.sip_port, str(closed["number"]), 480)
    assert result.ok, result.summary()


def test_room_outside_its_window_gets_480(gateway: GatewayProcess) -> None:  # noqa: F811
    start = datetime.now(UTC) + timedelta(days=1)
    later = gateway.create_room(
        name="tomorrow",
        permanent=False,
        starts_at=start.isoformat(),
        ends_at=(start + timedelta(hours=1)).isoformat(),
    )
    result = sipp.run_expect_status(HOST, gateway.sip_port, str(later["number"]), 480)
    assert result.ok, result.summary()


def test_options_is_answered_200(gateway: GatewayProcess) -> None:  # noqa: F811
    for transport in ("udp", "tcp"):
        result = sipp.run_options(HOST, gateway.sip_port, transport=transport)  # type: ignore[arg-type]
        assert result.ok, result.summary()


def test_hold_and_unhold_reinvites_keep_the_call(
    gateway: GatewayProcess,  # noqa: F811
    room: dict[str, object],  # noqa: F811
) -> None:
    result = sipp.run_hold_unhold(HOST, gateway.sip_port, str(room["number"]), hold_ms=500)
    assert result.ok, result.summary()


def test_delayed_offer(gateway: GatewayProcess, room: dict[str, object]) -> None:  # noqa: F811
    result = sipp.run_delayed_offer(HOST, gateway.sip_port, str(room["number"]))
    assert result.ok, result.summary()


def test_refused_caller_hears_why_then_gets_bye(
    gateway: GatewayProcess,  # noqa: F811
    tmp_path: Path,
) -> None:
    """A room system waiting in a waiting room, turned away by the organiser's link token:
    the gateway tells it (a spoken prompt) and hangs up."""
    from urllib.parse import urlsplit

    from tests.peers.pcap import silence_packets, write_pcap

    room = gateway.create_room(name="refuse", waiting_room=True)
    pcap = write_pcap(tmp_path / "silence.pcap", silence_packets(8))
    future = sipp.in_background(
        sipp.run_dialin_expect_bye,
        HOST,
        gateway.sip_port,
        str(room["number"]),
        pcap,
        bye_ms=20000,
    )
    [member] = gateway.wait_participants(str(room["id"]), 1)
    assert member["state"] == "waiting"
    organiser = urlsplit(room["links"]["organiser"]).query.removeprefix("token=")
    request = urllib.request.Request(
        f"{gateway.base_url}/api/rooms/{room['id']}/participants/{member['id']}/refuse",
        method="POST",
        headers={"Authorization": f"Bearer {organiser}"},
    )
    began = time.monotonic()
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 204
    result = future.result(60)
    assert result.ok, result.summary()
    assert time.monotonic() - began > 2.0  # the prompt played before the BYE
    assert gateway.participants(str(room["id"])) == []
