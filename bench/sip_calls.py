"""Call setups per second: the gateway against sipp, beside sipp against sipp in the same run.

sipp's built-in ``uac`` scenario (INVITE, 100/180/200, ACK, BYE, 200) places a fixed number of
calls as fast as it is allowed (``-r`` high, a cap on simultaneous calls); the achieved rate is
calls divided by the wall time sipp took. The same load is first run against sipp's own
built-in ``uas`` (the reference: the fastest a C++ SIP stack answers on this machine right now),
then against the gateway (`python -m gateway`, a room number, SQLite), and the ratio printed.
Every call answered by the gateway also opens an RTP port pair and joins the room's mixer.

Run: ``python bench/sip_calls.py [--calls 2000] [--rate 400]`` (needs Debian's sip-tester).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from benchlib import free_port

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-admin-token-0123456789"


def run_sipp(port: int, service: str, calls: int, rate: int, limit: int) -> tuple[float, int, int]:
    """Place ``calls`` calls; returns (seconds, successful, failed)."""
    with tempfile.TemporaryDirectory() as wd:
        argv = [
            "sipp",
            f"127.0.0.1:{port}",
            "-sn",
            "uac",
            "-s",
            service,
            "-i",
            "127.0.0.1",
            "-p",
            str(free_port()),
            "-m",
            str(calls),
            "-r",
            str(rate),
            "-l",
            str(limit),
            "-nostdin",
            "-trace_stat",
            "-stf",
            f"{wd}/stat.csv",
            "-timeout",
            "300",
            "-timeout_error",
        ]
        start = time.perf_counter()
        subprocess.run(
            argv,
            cwd=wd,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=320,
            check=False,
        )
        elapsed = time.perf_counter() - start
        rows = [r.split(";") for r in Path(f"{wd}/stat.csv").read_text().splitlines() if r]
    stats = dict(zip(rows[0], rows[-1], strict=False))
    return elapsed, int(stats.get("SuccessfulCall(C)", 0)), int(stats.get("FailedCall(C)", 0))


def reference(calls: int, rate: int, limit: int) -> tuple[float, int, int]:
    port = free_port()
    uas = subprocess.Popen(
        ["sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(port), "-nostdin"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)
    try:
        return run_sipp(port, "service", calls, rate, limit)
    finally:
        uas.terminate()
        uas.wait(timeout=10)


def gateway(calls: int, rate: int, limit: int) -> tuple[float, int, int]:
    sip_port, http_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as wd:
        env = {
            **os.environ,
            "GATEWAY_SIP_PORT": str(sip_port),
            "GATEWAY_HTTP_PORT": str(http_port),
            "GATEWAY_RTP_PORTS": "40000-49999",
            "GATEWAY_ADMIN_TOKEN": TOKEN,
            "GATEWAY_DATABASE_URL": f"sqlite:///{wd}/bench.db",
            # sipp is one source address: its concurrency must fit the per-source caps
            "GATEWAY_MAX_CALLS_PER_SOURCE": str(2 * limit),
            "GATEWAY_MAX_PENDING_PER_SOURCE": str(2 * limit),
            "PYTHONPATH": str(ROOT),
        }
        log = open(f"{wd}/gateway.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway"], cwd=wd, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            base = f"http://127.0.0.1:{http_port}"
            for _ in range(100):
                try:
                    urllib.request.urlopen(base + "/api/health", timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.1)
            request = urllib.request.Request(
                base + "/api/rooms",
                data=json.dumps({"name": "bench"}).encode(),
                method="POST",
                headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
            )
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    number = json.load(response)["number"]
            except OSError:
                sys.exit("gateway did not start:\n" + Path(f"{wd}/gateway.log").read_text())
            return run_sipp(sip_port, number, calls, rate, limit)
        finally:
            proc.terminate()
            proc.wait(timeout=15)
            log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rate", type=int, default=1000, help="offered calls per second")
    parser.add_argument("--limit", type=int, default=100, help="simultaneous calls at most")
    args = parser.parse_args()
    ref_s, ref_ok, ref_failed = reference(args.calls, args.rate, args.limit)
    gw_s, gw_ok, gw_failed = gateway(args.calls, args.rate, args.limit)
    ref_cps, gw_cps = ref_ok / ref_s, gw_ok / gw_s
    print(
        f"reference (sipp uas): {ref_ok} calls ({ref_failed} failed) in {ref_s:.1f} s "
        f"= {ref_cps:.0f} call setups/s"
    )
    print(
        f"gateway:              {gw_ok} calls ({gw_failed} failed) in {gw_s:.1f} s "
        f"= {gw_cps:.0f} call setups/s"
    )
    print(f"gateway / reference: {gw_cps / ref_cps:.2f}")


if __name__ == "__main__":
    main()
