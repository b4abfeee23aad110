"""Room events POSTed to ``GATEWAY_WEBHOOK_URL``, signed, retried, never in the media's way.

Every event of :class:`api.events.EventHub` is queued (bounded: past ``QUEUE`` waiting events
the oldest are dropped and counted) and one task POSTs them in order, one JSON object per
request, with ``X-Gateway-Event: TYPE`` and ``X-Gateway-Signature: sha256=HEX``, the
HMAC-SHA256 of the body with the admin token as key (the receiver checks it with the token it
knows). A failed delivery (a network error, a timeout, any status but 2xx) is retried after 1,
2, 4, 8 and 16 s, then given up and logged. Publishing only appends to the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
from collections import deque
from typing import Any

import aiohttp

__all__ = ["WebhookSender", "sign"]

logger = logging.getLogger(__name__)

QUEUE = 10_000
RETRIES = (1.0, 2.0, 4.0, 8.0, 16.0)


def sign(key: str, body: bytes) -> str:
    return "sha256=" + hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


class WebhookSender:
    def __init__(
        self, url: str, key: str, *, retries: tuple[float, ...] = RETRIES, timeout: float = 5.0
    ) -> None:
        self.url = url
        self.key = key
        self.retries = retries
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self._queue: deque[dict[str, Any]] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.delivered = 0
        self.dropped = 0
        self.failed = 0

    def __call__(self, event: dict[str, Any]) -> None:
        """An :class:`~api.events.EventHub` listener: queue, never block."""
        if len(self._queue) >= QUEUE:
            self._queue.popleft()
            self.dropped += 1
        self._queue.append(event)
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="webhooks")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        async with aiohttp.ClientSession(timeout=self.timeout) as http:
            while True:
                while not self._queue:
                    self._wake.clear()
                    await self._wake.wait()
                event = self._queue.popleft()
                await self._deliver(http, event)

    async def _deliver(self, http: aiohttp.ClientSession, event: dict[str, Any]) -> None:
        body = json.dumps(event).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Gateway-Event": str(event.get("type")),
            "X-Gateway-Signature": sign(self.key, body),
        }
        for attempt, delay in enumerate((0.0, *self.retries)):
            if delay:
                await asyncio.sleep(delay)
            try:
                async with http.post(self.url, data=body, headers=headers) as response:
                    if 200 <= response.status < 300:
                        self.delivered += 1
                        return
                    why = f"status {response.status}"
            except (aiohttp.ClientError, TimeoutError) as exc:
                why = type(exc).__name__
            logger.info("webhook %s: attempt %d failed (%s)", event.get("type"), attempt + 1, why)
        self.failed += 1
        logger.warning("webhook %s to %s given up after retries", event.get("type"), self.url)
