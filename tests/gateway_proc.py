"""A real gateway process (`python -m gateway`) for interop tests, on 127.0.0.1 only.

It runs exactly as a user starts it, with its own SQLite file, free HTTP and SIP ports and an
RTP range of its own; tests create rooms through the REST API and call it with real SIP peers.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.peers.net import free_port

ADMIN_TOKEN = "interop-admin-token-0123456789"
ROOT = Path(__file__).resolve().parent.parent
_rtp_blocks = itertools.count(0)


@dataclass
class GatewayProcess:
    http_port: int
    sip_port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def api(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            return exc.code, json.loads(raw) if raw else None

    def create_room(self, **fields: Any) -> dict[str, Any]:
        status, room = self.api("POST", "/api/rooms", {"name": "interop", **fields})
        assert status == 201, room
        return dict(room)

    def participants(self, room_id: str) -> list[dict[str, Any]]:
        status, body = self.api("GET", f"/api/rooms/{room_id}/participants")
        assert status == 200, body
        return list(body)

    def wait_participants(self, room_id: str, count: int, timeout: float = 10.0) -> list[Any]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.participants(room_id)
            if len(found) == count or time.monotonic() > deadline:
                return found
            time.sleep(0.1)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_gateway(tmp_path: Path, **env: str) -> Iterator[GatewayProcess]:
    # ports given in ``env`` are kept (a restart on the same address), else fresh ones
    http_port = int(env.get("GATEWAY_HTTP_PORT") or free_port("tcp"))
    sip_port = int(env.get("GATEWAY_SIP_PORT") or free_port("udp"))
    block = 20000 + 200 * (next(_rtp_blocks) % 40)
    log_path = tmp_path / "gateway.log"
    environment = {
        **os.environ,
        "GATEWAY_HTTP_PORT": str(http_port),
        "GATEWAY_SIP_PORT": str(sip_port),
        "GATEWAY_RTP_PORTS": f"{block}-{block + 199}",
        "GATEWAY_DATABASE_URL": f"sqlite:///{tmp_path / 'gateway.db'}",
        "GATEWAY_ADMIN_TOKEN": ADMIN_TOKEN,
        "GATEWAY_HTTP_HOST": "127.0.0.1",
        "GATEWAY_SIP_HOST": "127.0.0.1",
        **env,
    }
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway"],
            cwd=tmp_path,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    gateway = GatewayProcess(http_port, sip_port, process, log_path)
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                pytest.fail(f"gateway exited at start:\n{gateway.log()}")
            try:
                with urllib.request.urlopen(gateway.base_url + "/api/health", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"gateway did not start:\n{gateway.log()}")
                time.sleep(0.1)
        yield gateway
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert "Traceback" not in gateway.log(), gateway.log()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    yield from start_gateway(tmp_path_factory.mktemp("gateway"))
