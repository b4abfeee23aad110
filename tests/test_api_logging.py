"""Hostile HTTP input does not flood the log: a request line over aiohttp's limit is one
short line, without a traceback, whatever the number of such requests."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest


async def _send_raw(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(4096), 5)
    finally:
        writer.close()


async def test_overlong_request_line_logs_one_line_without_traceback(
    client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    port = client.server.port
    caplog.set_level(logging.DEBUG)
    for _ in range(20):
        answer = await _send_raw(port, b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        assert answer.split(b" ")[1] == b"400"  # aiohttp still answers 400
    records = [
        r for r in caplog.records if r.levelno >= logging.INFO and r.name.startswith("aiohttp")
    ]
    assert all(r.exc_info is None and r.exc_text is None for r in records), [
        r.getMessage() for r in records
    ]
    assert all(r.levelno < logging.ERROR for r in records)
    assert len([r for r in records if r.name == "aiohttp.server"]) <= 1
    # the API still answers
    response = await client.get("/api/health")
    assert response.status == 200
