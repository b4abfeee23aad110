"""REST latency: room creation at a steady request rate, beside a bare aiohttp handler.

An aiohttp client in this process sends ``POST /api/rooms`` at a fixed rate (default 200
requests/s for 10 s, each request on its own schedule, not waiting for the previous answer)
to ``python -m gateway`` on SQLite in another process, and the same load to a bare aiohttp
app (another process: one handler that reads the JSON body and answers 201 with a JSON
object; no auth, no database). Prints p50/p99/max latency of both and the ratio of the p99s.

Run: ``python bench/rest.py [--rate 200] [--seconds 10]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import aiohttp
from benchlib import free_port

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-admin-token-0123456789"

BARE_APP = """
import sys
from aiohttp import web

async def create(request):
    body = await request.json()
    return web.json_response({"id": "x", "name": body.get("name")}, status=201)

app = web.Application()
app.router.add_post("/api/rooms", create)
app.router.add_get("/api/health", lambda r: web.json_response({"ok": True}))
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
"""


def wait_up(base: str) -> None:
    for _ in range(150):
        try:
            urllib.request.urlopen(base + "/api/health", timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"{base} did not start")


async def load(base: str, rate: int, seconds: float, token: str | None) -> tuple[list[float], int]:
    """Latencies (ms) of the successful requests, and how many failed."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    latencies: list[float] = []
    failed = 0
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(base, headers=headers, connector=connector) as session:

        async def one(i: int) -> None:
            nonlocal failed
            start = time.perf_counter()
            try:
                async with session.post("/api/rooms", json={"name": f"bench {i}"}) as response:
                    await response.read()
                    ok = response.status == 201
            except aiohttp.ClientError:
                ok = False
            if ok:
                latencies.append((time.perf_counter() - start) * 1000)
            else:
                failed += 1

        loop = asyncio.get_running_loop()
        t0 = loop.time()
        tasks = []
        for i in range(int(rate * seconds)):
            delay = t0 + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(one(i)))
        await asyncio.gather(*tasks)
    return latencies, failed


def figures(latencies: list[float]) -> tuple[float, float, float]:
    if len(latencies) < 2:
        return float("nan"), float("nan"), float("nan")
    cuts = statistics.quantiles(latencies, n=100)
    return statistics.median(latencies), cuts[98], max(latencies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=200, help="requests per second")
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as wd:
        bare_port = free_port(socket.SOCK_STREAM)
        bare = subprocess.Popen([sys.executable, "-c", BARE_APP, str(bare_port)])
        try:
            wait_up(f"http://127.0.0.1:{bare_port}")
            results["bare aiohttp"] = asyncio.run(
                load(f"http://127.0.0.1:{bare_port}", args.rate, args.seconds, None)
            )
        finally:
            bare.terminate()
            bare.wait(timeout=10)
        http_port = free_port(socket.SOCK_STREAM)
        env = {
            **os.environ,
            "GATEWAY_SIP_PORT": str(free_port()),
            "GATEWAY_HTTP_PORT": str(http_port),
            "GATEWAY_ADMIN_TOKEN": TOKEN,
            "GATEWAY_DATABASE_URL": f"sqlite:///{wd}/bench.db",
            "PYTHONPATH": str(ROOT),
        }
        with open(f"{wd}/gateway.log", "wb") as log:
            gw = subprocess.Popen(
                [sys.executable, "-m", "gateway"], cwd=wd, env=env, stdout=log, stderr=log
            )
            try:
                wait_up(f"http://127.0.0.1:{http_port}")
                results["gateway"] = asyncio.run(
                    load(f"http://127.0.0.1:{http_port}", args.rate, args.seconds, TOKEN)
                )
            finally:
                gw.terminate()
                gw.wait(timeout=15)
    p99s = {}
    for name, (latencies, failed) in results.items():
        p50, p99, worst = figures(latencies)
        p99s[name] = p99
        print(
            f"{name:13s} {len(latencies)} created ({failed} failed) at {args.rate}/s: "
            f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, max {worst:.1f} ms"
        )
    ratio = p99s["gateway"] / p99s["bare aiohttp"]
    failed_gw = results["gateway"][1]
    print(
        f"SUMMARY: room creation p99 {p99s['gateway']:.1f} ms at {args.rate} requests/s "
        f"(bare aiohttp {p99s['bare aiohttp']:.1f} ms, ratio {ratio:.1f}); failed {failed_gw}"
    )


if __name__ == "__main__":
    main()
