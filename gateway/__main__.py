"""``python -m gateway``: REST API, pages, SIP and media in one process.

SIGTERM (or SIGINT) drains: no new calls, live ones go on for up to ``GATEWAY_DRAIN_SECONDS``,
then hear that the conference has ended and are hung up, and the process exits with 0; a
second signal ends at once (see :mod:`gateway.service`).
"""

from __future__ import annotations

import asyncio
import logging
import sys

from aiohttp import web

from api.browser import BROWSERS
from api.health import SERVICE
from config import ConfigError, load_settings
from gateway import logs
from gateway.app import SIP, build_app
from gateway.browser_calls import BrowserCalls
from gateway.service import Draining, drain_target, serve


def main() -> None:
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    logs.configure(settings.log_level, settings.log_format)
    # ICE check-by-check and DTLS chatter of every browser leg: warnings only.
    for noisy in ("aioice", "aiortc"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    app = build_app(settings)

    def target(app: web.Application) -> Draining:
        browsers = app[BROWSERS]
        assert isinstance(browsers, BrowserCalls)
        return drain_target(app[SERVICE], app.get(SIP), browsers, settings.drain_seconds)

    try:
        asyncio.run(
            serve(app, settings.http_host, settings.http_port, target, settings.drain_seconds)
        )
    except OSError as exc:  # a port in use, an address we cannot bind
        print(f"cannot start: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
