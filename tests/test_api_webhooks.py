"""Webhooks: every room event POSTed to GATEWAY_WEBHOOK_URL, signed with the admin token,
retried when the receiver fails, and never holding up the publisher."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from api.app import create_app
from api.events import EVENTS
from api.live import Participant
from api.webhooks import WebhookSender
from config import Settings


def someone() -> Participant:
    return Participant("p1", "Ann", "phone", "guest", "joined", False, datetime.now(UTC), "+331")


async def receiver(fail_first: int = 0) -> tuple[TestServer, list[tuple[dict[str, str], bytes]]]:
    got: list[tuple[dict[str, str], bytes]] = []
    calls = {"n": 0}

    async def hook(request: web.Request) -> web.Response:
        calls["n"] += 1
        if calls["n"] <= fail_first:
            return web.Response(status=503)
        got.append((dict(request.headers), await request.read()))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    server = TestServer(app)
    await server.start_server()
    return server, got


async def test_events_are_posted_signed_and_in_order(
    settings: Settings, admin_token: str, aiohttp_client: Any
) -> None:
    server, got = await receiver()
    try:
        hooked = replace(settings, webhook_url=str(server.make_url("/hook")))
        client = await aiohttp_client(create_app(hooked))
        hub = client.app[EVENTS]
        for kind in ("joined", "muted", "left"):
            hub.publish(kind, "room-1", someone())
        for _ in range(100):
            if len(got) == 3:
                break
            await asyncio.sleep(0.02)
        assert [json.loads(body)["type"] for _, body in got] == ["joined", "muted", "left"]
        for headers, body in got:
            expected = hmac.new(admin_token.encode(), body, hashlib.sha256).hexdigest()
            assert headers["X-Gateway-Signature"] == f"sha256={expected}"
            assert headers["X-Gateway-Event"] == json.loads(body)["type"]
            assert json.loads(body)["room_id"] == "room-1"
    finally:
        await server.close()


async def test_a_failing_receiver_is_retried_then_gets_it() -> None:
    server, got = await receiver(fail_first=2)
    try:
        sender = WebhookSender(str(server.make_url("/hook")), "key", retries=(0.01, 0.01, 0.01))
        sender.start()
        sender({"type": "joined", "room_id": "r"})
        for _ in range(100):
            if got:
                break
            await asyncio.sleep(0.02)
        assert len(got) == 1 and sender.delivered == 1 and sender.failed == 0
        await sender.stop()
    finally:
        await server.close()


async def test_an_unreachable_receiver_never_blocks_and_the_queue_is_bounded(
    monkeypatch: Any,
) -> None:
    from api import webhooks

    monkeypatch.setattr(webhooks, "QUEUE", 10)
    sender = WebhookSender("http://127.0.0.1:9/hook", "key", retries=(0.01,), timeout=0.2)
    sender.start()
    for i in range(100):
        sender({"type": "joined", "n": i})  # returns at once, whatever the receiver does
    assert sender.dropped >= 89
    for _ in range(100):
        if sender.failed:
            break
        await asyncio.sleep(0.02)
    assert sender.failed >= 1 and sender.delivered == 0
    await sender.stop()
