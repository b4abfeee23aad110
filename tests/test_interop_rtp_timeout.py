"""A leg that sends no RTP is hung up after GATEWAY_RTP_TIMEOUT, unless it is on hold."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.gateway_proc import GatewayProcess, start_gateway
from tests.peers import sipp

pytestmark = pytest.mark.interop

HOST = "127.0.0.1"


@pytest.fixture(scope="module")
def quick_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    yield from start_gateway(tmp_path_factory.mktemp("quick"), GATEWAY_RTP_TIMEOUT="2")


def test_silent_leg_is_hung_up(quick_gateway: GatewayProcess) -> None:
    room = quick_gateway.create_room(name="silent")
    result = sipp.run_uac(
        HOST,
        quick_gateway.sip_port,
        str(room["number"]),
        scenario_file=sipp.scenario("uac_silent_expect_bye"),
        keys={"bye_ms": 6000},
        timeout=20,
    )
    assert result.ok, result.summary()
    assert quick_gateway.participants(str(room["id"])) == []


def test_silent_leg_on_hold_is_kept(quick_gateway: GatewayProcess) -> None:
    room = quick_gateway.create_room(name="on hold")
    # 4 s on hold without RTP, twice the timeout; the caller then hangs up itself.
    result = sipp.run_uac(
        HOST,
        quick_gateway.sip_port,
        str(room["number"]),
        scenario_file=sipp.scenario("uac_hold_silent"),
        keys={"pause_ms": 4000},
        timeout=20,
    )
    assert result.ok, result.summary()
