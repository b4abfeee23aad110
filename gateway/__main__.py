"""``python -m gateway``: REST API, pages, SIP and media in one process."""

from __future__ import annotations

import logging
import sys

from aiohttp import web

from config import ConfigError, load_settings
from gateway.app import build_app


def main() -> None:
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # ICE check-by-check and DTLS chatter of every browser leg: warnings only.
    for noisy in ("aioice", "aiortc"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    app = build_app(settings)
    try:
        web.run_app(
            app,
            host=settings.http_host,
            port=settings.http_port,
            print=None,
            handle_signals=True,
        )
    except OSError as exc:  # a port in use, an address we cannot bind
        print(f"cannot start: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
