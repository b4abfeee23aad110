"""Call records of real calls through a real gateway (`python -m gateway`): a sipp call, a PJSIP
call, a call refused from the waiting room and INVITEs refused before any leg (404, 480) leave
the right rows in `GET /api/calls`, with durations within a second of what the test measured;
the rows survive the gateway being killed, and the call it cut is closed at the next start."""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import fresh_database_url

from tests.gateway_proc import GatewayProcess, start_gateway
from tests.peers import chromium, sipp
from tests.peers.fixtures import PeerFactory
from tests.peers.join_page import join, link

# on SQLite, and on PostgreSQL in the `pytest -m db` run (GATEWAY_TEST_DATABASE_URL)
pytestmark = [pytest.mark.interop, pytest.mark.db]


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[GatewayProcess]:
    """A gateway of its own per test (a PostgreSQL database is emptied for each)."""
    yield from start_gateway(tmp_path, GATEWAY_DATABASE_URL=fresh_database_url(tmp_path))


HOST = "127.0.0.1"


def records(gw: GatewayProcess, room_id: str) -> list[dict[str, Any]]:
    status, body = gw.api("GET", f"/api/calls?room={room_id}")
    assert status == 200, body
    return list(body["calls"])


def wait_records(
    gw: GatewayProcess,
    room_id: str,
    done: Callable[[list[dict[str, Any]]], bool],
    timeout: float = 10.0,
) -> list[dict[str, Any]]:
    """The room's records once ``done`` holds (they are written about every second)."""
    deadline = time.monotonic() + timeout
    while True:
        found = records(gw, room_id)
        if done(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def ended(count: int) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda rows: len(rows) == count and all(r["end_reason"] for r in rows)


def test_sipp_call_record(gateway: GatewayProcess) -> None:
    room = gateway.create_room(name="cdr sipp")
    began = time.monotonic()
    result = sipp.run_uac(HOST, gateway.sip_port, str(room["number"]), call_duration_ms=3000)
    took = time.monotonic() - began
    assert result.ok and result.successful == 1, result.summary()
    [row] = wait_records(gateway, str(room["id"]), ended(1))
    assert (row["kind"], row["end_reason"], row["codec"]) == ("sip", "hangup", "PCMU"), row
    assert row["room_id"] == room["id"] and row["call_id"]
    assert row["answered_at"] and row["ended_at"]
    # sipp holds the call 3 s between its ACK and its BYE; the whole run took a little more
    assert abs(row["duration_seconds"] - 3.0) < 1.0, (row, took)
    assert row["duration_seconds"] <= took


def test_pjsip_call_record(gateway: GatewayProcess, peers: PeerFactory) -> None:
    room = gateway.create_room(name="cdr pjsip")
    sip = peers.pjsua_call(
        f"sip:{room['number']}@{HOST}:{gateway.sip_port}",
        play=peers.tone(440),
        seconds=4,
        codecs=("G722",),
    )
    sip.wait_event("CONFIRMED", 10)
    confirmed = time.monotonic()
    assert sip.wait_result(30).ok, sip.output()
    measured = time.monotonic() - confirmed
    [row] = wait_records(gateway, str(room["id"]), ended(1))
    assert (row["kind"], row["end_reason"], row["codec"]) == ("sip", "hangup", "G722"), row
    assert abs(row["duration_seconds"] - measured) < 1.0, (row, measured)
    # 4 s of 20 ms packets each way (PJSIP sends from the answer; we send from the ACK)
    assert row["packets_received"] > 150 and row["packets_sent"] > 150, row
    assert row["packets_lost"] == 0, row


def test_refused_calls(gateway: GatewayProcess, peers: PeerFactory) -> None:
    room = gateway.create_room(name="cdr refused", waiting_room=True)
    # refused before any leg: no record (an unknown number, an inactive room)
    assert sipp.run_expect_status(HOST, gateway.sip_port, "1000000001", 404).ok
    closed = gateway.create_room(name="cdr closed")
    assert gateway.api("PATCH", f"/api/rooms/{closed['id']}", {"active": False})[0] == 200
    assert sipp.run_expect_status(HOST, gateway.sip_port, str(closed["number"]), 480).ok
    # refused from the waiting room: a leg, ended "refused"
    sip = peers.pjsua_call(
        f"sip:{room['number']}@{HOST}:{gateway.sip_port}", play=peers.tone(440), codecs=("PCMU",)
    )
    sip.wait_event("CONFIRMED", 10)
    confirmed = time.monotonic()
    [waiting] = gateway.wait_participants(str(room["id"]), 1)
    assert waiting["state"] == "waiting"
    status, _ = gateway.api("POST", f"/api/rooms/{room['id']}/participants/{waiting['id']}/refuse")
    assert status == 204
    assert sip.wait_result(30).ok, sip.output()  # the gateway said why, then hung up
    measured = time.monotonic() - confirmed
    [row] = wait_records(gateway, str(room["id"]), ended(1))
    assert row["id"] == waiting["id"]
    assert (row["kind"], row["end_reason"]) == ("sip", "refused"), row
    assert abs(row["duration_seconds"] - measured) < 1.0, (row, measured)
    time.sleep(1.5)  # a record, had one been made, would be written by now
    assert records(gateway, str(closed["id"])) == []
    status, body = gateway.api("GET", "/api/calls?limit=1000")
    assert status == 200
    assert not [r for r in body["calls"] if r["room_id"] is None], body  # no 404 leg


def test_records_survive_a_killed_gateway(tmp_path: Path, peers: PeerFactory) -> None:
    url = fresh_database_url(tmp_path)
    first: Generator[GatewayProcess] = start_gateway(  # type: ignore[assignment]
        tmp_path, GATEWAY_DATABASE_URL=url
    )
    gw = next(first)
    try:
        room = gw.create_room(name="cdr restart")
        result = sipp.run_uac(HOST, gw.sip_port, str(room["number"]), call_duration_ms=1000)
        assert result.ok, result.summary()
        live = peers.pjsua_call(
            f"sip:{room['number']}@{HOST}:{gw.sip_port}", play=peers.tone(440), codecs=("PCMU",)
        )
        live.wait_event("CONFIRMED", 10)
        rows = wait_records(
            gw, str(room["id"]), lambda rows: len(rows) == 2 and all(r["answered_at"] for r in rows)
        )
        assert sorted(r["end_reason"] or "" for r in rows) == ["", "hangup"], rows
        gw.process.kill()  # no chance to write the live call's end
        gw.process.wait(10)
    finally:
        first.close()
    again: Generator[GatewayProcess] = start_gateway(  # type: ignore[assignment]
        tmp_path,
        GATEWAY_HTTP_PORT=str(gw.http_port),
        GATEWAY_SIP_PORT=str(gw.sip_port),
        GATEWAY_DATABASE_URL=url,  # the same database: no reset
    )
    gw2 = next(again)
    try:
        after = {r["end_reason"]: r for r in records(gw2, str(room["id"]))}
        assert set(after) == {"hangup", "shutdown"}, after
        assert abs(after["hangup"]["duration_seconds"] - 1.0) < 1.0
        assert after["shutdown"]["ended_at"] is None  # when the process died is not known
        assert after["shutdown"]["duration_seconds"] is None
    finally:
        again.close()


@pytest.mark.skipif(not chromium.available(), reason="chromium, chromedriver or selenium missing")
def test_browser_call_records(gateway: GatewayProcess, tmp_path: Path) -> None:
    """A browser that leaves and one a moderator removes: kind browser, Opus, the right end
    reasons and durations."""
    room = gateway.create_room(name="cdr browsers")
    tone = chromium.tone_wav(tmp_path / "tone.wav", 1000)
    with chromium.Browser(tone) as leaver, chromium.Browser(tone) as removed:
        join(leaver, link(gateway, room, "guest"), "Leaver")
        left_joined = time.monotonic()
        join(removed, link(gateway, room, "guest"), "Removed")
        removed_joined = time.monotonic()
        time.sleep(2)
        leaver.click("#leave")
        leaver.wait_for('return document.getElementById("status").textContent === "left"', 10)
        left_after = time.monotonic() - left_joined
        [member] = gateway.wait_participants(str(room["id"]), 1)
        status, _ = gateway.api("DELETE", f"/api/rooms/{room['id']}/participants/{member['id']}")
        assert status == 204
        removed.wait_for('return window.gatewayState.last_error === "removed"', 10)
        removed_after = time.monotonic() - removed_joined
    rows = {r["display_name"]: r for r in wait_records(gateway, str(room["id"]), ended(2))}
    assert set(rows) == {"Leaver", "Removed"}, rows
    for name, reason, measured in (
        ("Leaver", "hangup", left_after),
        ("Removed", "removed", removed_after),
    ):
        row = rows[name]
        assert (row["kind"], row["codec"], row["end_reason"]) == ("browser", "opus", reason), row
        assert abs(row["duration_seconds"] - measured) < 1.0, (row, measured)
        assert row["packets_received"] > 50 and row["packets_sent"] > 50, row
