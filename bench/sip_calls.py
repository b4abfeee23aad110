"""Call setups per second: the gateway against sipp, beside two C/C++ references in the same run.

sipp's built-in ``uac`` scenario (INVITE, 100/180/200, ACK, BYE, 200) places ``--calls`` calls
offered at ``--rate`` calls/s with at most ``-l`` calls in progress at once; the achieved rate
is successful calls divided by the wall time sipp took. The load is offered at each
concurrency limit of ``--limits`` to three answerers, all started once and reused:

* sipp's own built-in ``uas`` (a C++ SIP stack keeping per-call state);
* Kamailio answering statelessly from its ``sl`` module with one UDP worker process
  (``bench/kamailio_stateless.cfg``): the cheapest a mature C SIP server can take a call;
* the gateway (``python -m gateway``, one room, SQLite), where every answered call also opens
  an RTP port pair and joins the room's mixer.

Between limits (and after the last) the room's participants are polled until no leg is left
(up to 40 s); a leg still there is a leak and is printed. Every limit expects 0 failed calls.
The rates cannot exceed ``--rate``: raise it to find the ceilings instead of the offered load.

Output: one ``LIMIT`` line per limit (``key=value`` fields), then one ``SUMMARY`` line: the
gateway's best limit, Kamailio's rate at that limit, their ratio, the failed calls summed over
every run (all three answerers, all limits) and the gateway legs left over.

Run: ``python bench/sip_calls.py [--calls 2000] [--rate 1000] [--limits 20,100,500]``
(needs Debian's sip-tester and kamailio).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from benchlib import api, free_port

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-admin-token-0123456789"
KAMAILIO_CFG = Path(__file__).resolve().parent / "kamailio_stateless.cfg"
#: How long the gateway may take to release every leg after sipp is done.
DRAIN_SECONDS = 40.0


@dataclass(frozen=True)
class Run:
    """One sipp uac run against one answerer."""

    seconds: float
    ok: int
    failed: int

    @property
    def cps(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class Gateway:
    """A running gateway with its bench room."""

    sip_port: int
    base: str
    room_id: str
    number: str
    log: Path


def run_sipp(port: int, service: str, calls: int, rate: int, limit: int) -> Run:
    """Place ``calls`` calls to 127.0.0.1:``port``."""
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
        stat = Path(f"{wd}/stat.csv")
        rows = [r.split(";") for r in stat.read_text().splitlines() if r] if stat.exists() else []
    if len(rows) < 2:
        return Run(elapsed, 0, calls)
    stats = dict(zip(rows[0], rows[-1], strict=False))
    return Run(elapsed, int(stats.get("SuccessfulCall(C)", 0)), int(stats.get("FailedCall(C)", 0)))


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


@contextlib.contextmanager
def sipp_uas() -> Iterator[int]:
    """sipp's built-in uas on a free port; yields the port."""
    port = free_port()
    uas = subprocess.Popen(
        ["sipp", "-sn", "uas", "-i", "127.0.0.1", "-p", str(port), "-nostdin"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)
    try:
        yield port
    finally:
        stop(uas)


@contextlib.contextmanager
def kamailio() -> Iterator[int]:
    """Kamailio answering statelessly (``kamailio_stateless.cfg``) on a free port."""
    port = free_port()
    with tempfile.TemporaryDirectory() as wd:
        log = open(f"{wd}/kamailio.log", "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [
                "kamailio",
                "-f",
                str(KAMAILIO_CFG),
                "-l",
                f"udp:127.0.0.1:{port}",
                "-A",
                f'BENCH_CONTACT="Contact: <sip:127.0.0.1:{port}>\\r\\n"',
                "-DD",
                "-E",
                "-m",
                "64",
                "-M",
                "8",
                "-w",
                wd,
                "-P",
                f"{wd}/kamailio.pid",
            ],
            cwd=wd,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        time.sleep(1.0)
        try:
            if proc.poll() is not None:
                sys.exit("kamailio did not start:\n" + Path(f"{wd}/kamailio.log").read_text())
            yield port
        finally:
            stop(proc)
            log.close()


@contextlib.contextmanager
def gateway(max_limit: int) -> Iterator[Gateway]:
    """One ``python -m gateway`` with one room, its caps sized for ``max_limit`` calls."""
    sip_port, http_port = free_port(), free_port(socket.SOCK_STREAM)
    caps = str(2 * max_limit)
    with tempfile.TemporaryDirectory() as wd:
        env = {
            **os.environ,
            "GATEWAY_SIP_PORT": str(sip_port),
            "GATEWAY_HTTP_PORT": str(http_port),
            "GATEWAY_RTP_PORTS": "40000-49999",
            "GATEWAY_ADMIN_TOKEN": TOKEN,
            "GATEWAY_DATABASE_URL": f"sqlite:///{wd}/bench.db",
            # sipp is one source address: its concurrency must fit the per-source caps,
            # and the whole load the global ones
            "GATEWAY_MAX_CALLS_PER_SOURCE": caps,
            "GATEWAY_MAX_PENDING_PER_SOURCE": caps,
            "GATEWAY_MAX_CALLS": caps,
            "GATEWAY_MAX_SETUPS": caps,
            "PYTHONPATH": str(ROOT),
        }
        log_path = Path(f"{wd}/gateway.log")
        log = open(log_path, "wb")  # noqa: SIM115
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway"], cwd=wd, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            base = f"http://127.0.0.1:{http_port}"
            for _ in range(100):
                try:
                    api(base, TOKEN, "GET", "/api/health")
                    break
                except OSError:
                    if proc.poll() is not None:
                        break
                    time.sleep(0.1)
            try:
                room = api(base, TOKEN, "POST", "/api/rooms", {"name": "bench"})
            except OSError:
                sys.exit("gateway did not start:\n" + log_path.read_text())
            yield Gateway(sip_port, base, str(room["id"]), str(room["number"]), log_path)
        finally:
            stop(proc)
            log.close()


def legs_left(gw: Gateway) -> int:
    """Wait up to DRAIN_SECONDS for the room to have no participant; how many are left."""
    deadline = time.monotonic() + DRAIN_SECONDS
    left = -1
    while True:
        try:
            left = len(api(gw.base, TOKEN, "GET", f"/api/rooms/{gw.room_id}/participants"))
        except OSError as exc:
            print(f"participants poll failed: {exc}", flush=True)
        if left == 0 or time.monotonic() >= deadline:
            return left
        time.sleep(0.25)


def ratio(a: float, b: float) -> float:
    return a / b if b > 0 else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000, help="calls per run")
    parser.add_argument("--rate", type=int, default=1000, help="offered calls per second")
    parser.add_argument(
        "--limits",
        default="20,100,500",
        help="comma-separated sipp -l values (simultaneous calls at most)",
    )
    args = parser.parse_args()
    limits = [int(x) for x in args.limits.split(",") if x.strip()]
    if not limits or min(limits) < 1:
        parser.error("--limits needs positive integers")
    print(f"{args.calls} calls per run, offered at {args.rate} calls/s", flush=True)

    results: list[tuple[int, Run, Run, Run, int]] = []
    with contextlib.ExitStack() as stack:
        uas_port = stack.enter_context(sipp_uas())
        kam_port = stack.enter_context(kamailio())
        gw = stack.enter_context(gateway(max(limits)))
        for limit in limits:
            uas = run_sipp(uas_port, "service", args.calls, args.rate, limit)
            kam = run_sipp(kam_port, "service", args.calls, args.rate, limit)
            gwr = run_sipp(gw.sip_port, gw.number, args.calls, args.rate, limit)
            left = legs_left(gw)
            failed = uas.failed + kam.failed + gwr.failed
            print(
                f"LIMIT limit={limit} gateway_cps={gwr.cps:.0f} sipp_uas_cps={uas.cps:.0f} "
                f"kamailio_cps={kam.cps:.0f} gw/kamailio={ratio(gwr.cps, kam.cps):.2f} "
                f"gw/sipp_uas={ratio(gwr.cps, uas.cps):.2f} gateway_ok={gwr.ok} "
                f"gateway_failed={gwr.failed} sipp_uas_failed={uas.failed} "
                f"kamailio_failed={kam.failed} legs_left={left}",
                flush=True,
            )
            if failed:
                print(f"  limit {limit}: {failed} failed calls (0 expected)", flush=True)
            if left < 0:
                print(f"  limit {limit}: the room's participants could not be read", flush=True)
            elif left:
                print(
                    f"  limit {limit}: {left} gateway legs still in the room after "
                    f"{DRAIN_SECONDS:.0f} s (leak)",
                    flush=True,
                )
            results.append((limit, uas, kam, gwr, left))

    best = max(results, key=lambda r: r[3].cps)
    limit, _, kam, gwr, _ = best
    failed = sum(r[1].failed + r[2].failed + r[3].failed for r in results)
    leaked = sum(max(r[4], 0) for r in results)
    print(
        f"SUMMARY: gateway {gwr.cps:.0f} call setups/s at limit {limit} (best), "
        f"Kamailio {kam.cps:.0f}/s, ratio {ratio(gwr.cps, kam.cps):.2f}; failed {failed}; "
        f"legs left {leaked}"
    )


if __name__ == "__main__":
    main()
