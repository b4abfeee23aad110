"""Hostile HTTP input must not flood the log: aiohttp logs every malformed request (a request
line over 8 KB, a bad header) as an ERROR with a traceback. This filter turns each into one
short WARNING line, and says so at most once every ``interval`` seconds with a count."""

from __future__ import annotations

import logging
import time

from aiohttp.http_exceptions import HttpProcessingError

__all__ = ["BadRequestLogFilter", "install"]


class BadRequestLogFilter(logging.Filter):
    def __init__(self, interval: float = 10.0) -> None:
        super().__init__()
        self.interval = interval
        self._last = -float("inf")
        self._suppressed = 0

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, HttpProcessingError):
            return True
        now = time.monotonic()
        if now - self._last < self.interval:
            self._suppressed += 1
            return False
        reason = type(exc).__name__
        more = f"; {self._suppressed} more since the last report" if self._suppressed else ""
        record.msg = f"malformed HTTP request ({reason}){more}"
        record.args = ()
        record.exc_info = None
        record.exc_text = None
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        self._last, self._suppressed = now, 0
        return True


def install() -> None:
    """Add the filter to aiohttp's server logger once per process."""
    target = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, BadRequestLogFilter) for f in target.filters):
        target.addFilter(BadRequestLogFilter())
