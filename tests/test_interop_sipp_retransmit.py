"""A retransmitted INVITE against sipp: the server transaction absorbs it (RFC 3261 17.2.1,
RFC 6026 7.1), the call gets exactly one dialog, and its ACK and BYE end it.

The scenario (``tests/scenarios/invite_retransmit.xml``) sends the same INVITE twice, byte for
byte (fixed Via branch, same Call-ID, From tag and CSeq): at once, 300 ms later, or after the
200. Treating the copy as a new call shows up as a 482 or a second 200 (sipp fails the call), as
a second leg in the room during the call, or as a leg left after the BYE waiting for its ACK.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.gateway_proc import GatewayProcess, gateway  # noqa: F401  (fixture)
from tests.peers import sipp

pytestmark = pytest.mark.interop

HOST = "127.0.0.1"
SCENARIO = Path(__file__).resolve().parent / "scenarios" / "invite_retransmit.xml"
CALLS = 20
SERIAL_CALLS = 5

#: [flow] of the scenario -> extra sipp arguments. "paused" drops what arrives during its
#: 300 ms pause (the 100/200 to the original; the gateway retransmits the 200 until the ACK).
FLOWS: dict[str, list[str]] = {
    "immediate": [],
    "paused": ["-pause_msg_ign"],
    "late": [],
}


@pytest.fixture
def room(gateway: GatewayProcess) -> dict[str, object]:  # noqa: F811
    # a room per test: each one checks that its room is empty at the end
    return gateway.create_room(name="sipp retransmit room")


def run_calls(
    gateway: GatewayProcess,  # noqa: F811
    room: dict[str, object],
    flow: str,
    *,
    calls: int,
    max_concurrent: int,
    rate: float,
) -> sipp.SippResult:
    return sipp.run_uac(
        HOST,
        gateway.sip_port,
        str(room["number"]),
        scenario_file=SCENARIO,
        keys={"flow": flow},
        calls=calls,
        rate=rate,
        max_concurrent=max_concurrent,
        timeout=90,
        extra_args=FLOWS[flow],
    )


def assert_all_calls_ended(gateway: GatewayProcess, room: dict[str, object]) -> None:  # noqa: F811
    # the BYE ends every call: no leg waits in the room for an ACK (64*T1 = 32 s)
    left: list[Any] = gateway.wait_participants(str(room["id"]), 0, timeout=3.0)
    assert left == [], left


@pytest.mark.parametrize("flow", list(FLOWS))
def test_retransmitted_invite_is_absorbed(
    gateway: GatewayProcess,  # noqa: F811
    room: dict[str, object],
    flow: str,
) -> None:
    result = run_calls(gateway, room, flow, calls=CALLS, max_concurrent=10, rate=10)
    assert result.returncode == 0, result.summary()
    assert (result.successful, result.failed) == (CALLS, 0), result.summary()
    assert not result.timed_out, result.summary()
    assert_all_calls_ended(gateway, room)


@pytest.mark.parametrize("flow", list(FLOWS))
def test_one_leg_per_call_despite_the_copy(
    gateway: GatewayProcess,  # noqa: F811
    room: dict[str, object],
    flow: str,
) -> None:
    """One call at a time (-l 1): the room never holds more than one leg, so the copy made no
    second one, not even for a moment."""
    future = sipp.in_background(
        run_calls, gateway, room, flow, calls=SERIAL_CALLS, max_concurrent=1, rate=5
    )
    most = 0
    samples = 0
    while not future.done():
        count = len(gateway.participants(str(room["id"])))
        most = max(most, count)
        samples += count > 0
        time.sleep(0.05)
    result = future.result(1)
    assert result.returncode == 0, result.summary()
    assert (result.successful, result.failed) == (SERIAL_CALLS, 0), result.summary()
    assert samples > 0, "never saw a call in the room: the poll proves nothing"
    assert most == 1, f"{most} legs in the room at once with one call at a time"
    assert_all_calls_ended(gateway, room)


def test_invites_retransmitted_by_sipp_while_the_gateway_is_frozen(
    gateway: GatewayProcess,  # noqa: F811
    room: dict[str, object],
) -> None:
    """The issue's busy machine: the gateway answers nothing for 1.2 s (SIGSTOP), sipp's own
    UDP retransmissions (T1 = 500 ms: copies at +0.5 s and +1 s) queue up behind each INVITE,
    then the gateway wakes and reads them all at once. Each call still gets one dialog, its
    ACK and BYE work (no "no ACK" leg left 32 s later) and sipp counts every call."""
    calls = 10
    future = sipp.in_background(
        sipp.run_uac,
        HOST,
        gateway.sip_port,
        str(room["number"]),
        calls=calls,
        rate=50,
        max_concurrent=calls,
        call_duration_ms=1000,
        timeout=60,
    )
    gateway.process.send_signal(signal.SIGSTOP)
    try:
        time.sleep(1.2)
    finally:
        gateway.process.send_signal(signal.SIGCONT)
    result = future.result(70)
    assert result.returncode == 0, result.summary()
    assert (result.successful, result.failed) == (calls, 0), result.summary()
    retransmissions = int(result.stats.get("Retransmissions(C)", "0") or 0)
    assert retransmissions >= calls, f"sipp retransmitted {retransmissions}: nothing was tested"
    assert_all_calls_ended(gateway, room)
