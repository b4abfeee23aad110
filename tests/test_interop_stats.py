"""The gateway's ``stats:`` log line (GATEWAY_STATS_SECONDS): calls, rooms and the mixer clock
of the last interval, as an operator (and ``bench/media_capacity.py``) reads them."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from tests.gateway_proc import start_gateway
from tests.peers import sipp

pytestmark = pytest.mark.interop

LINE = re.compile(
    r"stats: calls=(?P<calls>\d+) rooms=(?P<rooms>\d+) ticks=(?P<ticks>\d+)"
    r" skipped=(?P<skipped>\d+) late_p50_ms=(?P<p50>[\d.]+) late_p99_ms=(?P<p99>[\d.]+)"
    r" late_max_ms=(?P<max>[\d.]+) work_p99_ms=(?P<work>[\d.]+) tasks=\d+ fds=\d+ rss_kib=\d+"
)


def test_stats_line_counts_a_live_call_and_the_mixer_ticks(tmp_path: Path) -> None:
    for gw in start_gateway(tmp_path, GATEWAY_STATS_SECONDS="0.5"):
        room = gw.create_room(name="stats room")
        future = sipp.in_background(
            sipp.run_uac, "127.0.0.1", gw.sip_port, str(room["number"]), call_duration_ms=3000
        )
        assert len(gw.wait_participants(str(room["id"]), 1)) == 1
        time.sleep(1.2)  # two full intervals with the call up
        assert future.result(30).ok
        time.sleep(0.6)  # one more line after the call ended
        lines = [m.groupdict() for m in LINE.finditer(gw.log())]
        busy = [line for line in lines if line["calls"] == "1"]
        assert busy, gw.log()
        assert all(line["rooms"] == "1" for line in busy), busy
        # the clock ran 50 times a second over each half-second line (a few ticks of slack
        # for the interval's own timer); lateness is a number of ms, p50 <= p99 <= max
        for line in busy:
            assert 10 <= int(line["ticks"]) <= 40, line
            assert float(line["p50"]) <= float(line["p99"]) <= float(line["max"]), line
        assert lines[-1]["calls"] == "0", lines[-1]
