"""Long run: about 200 legs joining, holding, refreshing and leaving for half an hour, with
what the gateway process holds (descriptors, memory, asyncio tasks) at the start and the end.

Not part of ``make test``. sipp places the calls (``bench/scenarios/soak_call.xml``: talk for a
random time, hold with a re-INVITE, resume, talk, BYE) into several rooms at once, each sipp
echoing the RTP it gets (``-rtp_echo``) so every leg sends and receives audio all along. The
gateway is ``python -m gateway`` on SQLite. Descriptors and memory are read from ``/proc``;
tasks from the gateway's own ``stats:`` log line (one a minute). A leak shows as an end figure
above the start one once every call has ended.

Run: ``python bench/soak.py [--minutes 30] [--legs 200] [--rooms 10]`` (needs sip-tester).
"""

from __future__ import annotations

import argparse
import math
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from benchlib import api, free_port

ROOT = Path(__file__).resolve().parent.parent
SCENARIO = ROOT / "bench" / "scenarios" / "soak_call.xml"
TOKEN = "soak-admin-token-0123456789"
TALK = (10_000, 60_000)  # ms, each of the two talk spells
HOLD = (2_000, 10_000)  # ms on hold


def process_figures(pid: int, log: Path) -> dict[str, object]:
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    with open(f"/proc/{pid}/statm") as statm:
        rss_kib = int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
    lines = re.findall(r"stats: calls=(\d+) rooms=(\d+) .*?tasks=(\d+)", log.read_text())
    last = lines[-1] if lines else ("?", "?", "?")
    return {"fds": fds, "rss_kib": rss_kib, "calls": last[0], "tasks": last[2]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--legs", type=int, default=200)
    parser.add_argument("--rooms", type=int, default=10)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="soak-"))
    http, sip = free_port(socket.SOCK_STREAM), free_port()
    log = work / "gateway.log"
    env = {
        **os.environ,
        "GATEWAY_HTTP_PORT": str(http),
        "GATEWAY_SIP_PORT": str(sip),
        "GATEWAY_RTP_PORTS": "30000-31999",
        "GATEWAY_DATABASE_URL": f"sqlite:///{work / 'gateway.db'}",
        "GATEWAY_ADMIN_TOKEN": TOKEN,
        "GATEWAY_MAX_CALLS_PER_SOURCE": str(args.legs * 2),
        "GATEWAY_MAX_PENDING_PER_SOURCE": str(args.legs),
    }
    with open(log, "wb") as out:
        gateway = subprocess.Popen(
            [sys.executable, "-m", "gateway"],
            cwd=work,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{http}"
    sipps: list[subprocess.Popen[bytes]] = []
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base + "/api/health", timeout=1)
                break
            except OSError:
                time.sleep(0.2)
        start = process_figures(gateway.pid, log)
        per_room = max(1, args.legs // args.rooms)
        mean_call = (sum(TALK) + sum(HOLD) / 2) / 1000  # two talk spells and one hold, on average
        per_100s = max(1, round(per_room / mean_call * 100))
        seconds = args.minutes * 60
        calls = max(per_room, math.ceil(per_room / mean_call * seconds))
        scenario = SCENARIO.read_text()
        for key, value in (
            ("talk_min", TALK[0]),
            ("talk_max", TALK[1]),
            ("hold_min", HOLD[0]),
            ("hold_max", HOLD[1]),
        ):
            scenario = scenario.replace(f"[{key}]", str(value))
        (work / "soak_call.xml").write_text(scenario)
        for i in range(args.rooms):
            room = api(base, TOKEN, "POST", "/api/rooms", {"name": f"soak {i}"})
            assert isinstance(room, dict)
            sipps.append(
                subprocess.Popen(
                    [
                        "sipp",
                        f"127.0.0.1:{sip}",
                        "-sf",
                        "soak_call.xml",
                        "-s",
                        str(room["number"]),
                        "-i",
                        "127.0.0.1",
                        "-p",
                        str(free_port()),
                        "-mp",
                        str(32000 + 4 * i),
                        "-rtp_echo",
                        "-l",
                        str(per_room),
                        "-r",
                        str(per_100s),
                        "-rp",
                        "100000",
                        "-m",
                        str(calls),
                        "-nostdin",
                        "-trace_stat",
                        "-stf",
                        f"stat{i}.csv",
                        "-timeout",
                        str(int(seconds + 300)),
                        "-timeout_error",
                    ],
                    cwd=work,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        print(
            f"{args.rooms} rooms x {per_room} legs, {calls} calls each, "
            f"about {args.minutes:g} min; work files in {work}",
            flush=True,
        )
        peak: dict[str, object] = {}
        samples: list[tuple[float, int]] = []  # (seconds since the calls began, RSS KiB)
        began = time.monotonic()
        deadline = began + seconds + 300
        while any(p.poll() is None for p in sipps) and time.monotonic() < deadline:
            time.sleep(30)
            now = process_figures(gateway.pid, log)
            samples.append((time.monotonic() - began, int(now["rss_kib"])))  # type: ignore[call-overload]
            print(f"  {time.strftime('%H:%M:%S')} {now}", flush=True)
            if not peak or int(now["fds"]) > int(peak["fds"]):  # type: ignore[call-overload]
                peak = now
        for p in sipps:
            if p.poll() is None:
                p.terminate()
        time.sleep(65)  # every call over; one more stats line
        end = process_figures(gateway.pid, log)
        ok = failed = 0
        for i in range(args.rooms):
            rows = [r.split(";") for r in (work / f"stat{i}.csv").read_text().splitlines() if r]
            stats = dict(zip(rows[0], rows[-1], strict=False))
            ok += int(stats.get("SuccessfulCall(C)", 0) or 0)
            failed += int(stats.get("FailedCall(C)", 0) or 0)
        print(f"calls: {ok} successful, {failed} failed")
        # growth while the calls were up: from the first sample after the ramp (60 s) to the
        # last one before the rooms emptied
        steady = [(t, rss) for t, rss in samples if 60 <= t <= seconds]
        if len(steady) >= 2:
            (t0, r0), (t1, r1) = steady[0], steady[-1]
            print(
                f"RSS while calls were up: {r0} KiB at {t0 / 60:.1f} min, {r1} KiB at "
                f"{t1 / 60:.1f} min: growth {r1 - r0:+d} KiB over {(t1 - t0) / 60:.1f} min"
            )
            # the allocator's warm-up levels off: the second half tells a leak from it
            tm, rm = next((t, rss) for t, rss in steady if t >= (t0 + t1) / 2)
            print(
                f"RSS over the second half: {rm} KiB at {tm / 60:.1f} min -> {r1} KiB: "
                f"growth {r1 - rm:+d} KiB over {(t1 - tm) / 60:.1f} min"
            )
        print(f"start: {start}")
        print(f"peak:  {peak}")
        print(f"end:   {end}")
        print(f"tracebacks in the gateway log: {log.read_text().count('Traceback')}")
    finally:
        for p in sipps:
            if p.poll() is None:
                p.kill()
        gateway.terminate()
        gateway.wait(timeout=20)


if __name__ == "__main__":
    main()
