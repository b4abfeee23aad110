"""Log output: JSON lines with the call's ids, text with them appended, and nothing secret
(tokens, PINs, full phone numbers) in either format."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

import pytest

from gateway import logs


@dataclass
class FakeMember:
    id: str
    room_id: str


@pytest.fixture
def capture() -> Iterator[tuple[logging.Logger, io.StringIO, logging.Handler]]:
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    handler = logs.configure("DEBUG", "json", stream)
    try:
        yield logging.getLogger("test.logs"), stream, handler
    finally:
        root.removeHandler(handler)
        for old in saved[0]:
            root.addHandler(old)
        root.setLevel(saved[1])


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    """The lines this test logged (not asyncio's own)."""
    found = [json.loads(line) for line in stream.getvalue().splitlines()]
    return [entry for entry in found if entry["logger"] == "test.logs"]


def test_json_line_has_time_level_logger_message(capture: tuple) -> None:  # type: ignore[type-arg]
    logger, stream, _ = capture
    logger.info("hello %s", "world")
    [entry] = lines(stream)
    assert entry["level"] == "INFO" and entry["logger"] == "test.logs"
    assert entry["message"] == "hello world"
    at = datetime.fromisoformat(str(entry["time"]))
    assert at.utcoffset() is not None and at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert "call_id" not in entry


def test_extra_ids_and_exception(capture: tuple) -> None:  # type: ignore[type-arg]
    logger, stream, _ = capture
    member = FakeMember("p1", "room-1")
    try:
        raise ValueError("boom")
    except ValueError:
        logger.exception("failed", extra=logs.ids(member, call_id="abc@host"))
    [entry] = lines(stream)
    assert (entry["call_id"], entry["room_id"], entry["participant"]) == (
        "abc@host",
        "room-1",
        "p1",
    )
    assert "ValueError: boom" in str(entry["exception"])


def test_call_context_reaches_tasks_and_follows_the_member(capture: tuple) -> None:  # type: ignore[type-arg]
    logger, stream, _ = capture
    member = FakeMember("p2", "")

    async def menu() -> None:
        logger.info("in the menu")
        member.room_id = "room-2"  # the menu found the room
        logger.info("joined")

    async def main() -> None:
        token = logs.enter_call("call-2")
        try:
            logs.attach(member)
            task = asyncio.ensure_future(menu())
        finally:
            logs.leave_call(token)
        await task
        logger.info("not about a call")
        # a line naming the participant only gets its call id
        logger.info("left", extra={"participant": "p2", "room_id": "room-2"})

    asyncio.run(main())
    first, second, other, left = lines(stream)
    assert first["call_id"] == "call-2" and first["participant"] == "p2" and "room_id" not in first
    assert second["room_id"] == "room-2"
    assert "call_id" not in other
    assert left["call_id"] == "call-2"


@pytest.mark.parametrize(
    ("text", "secret", "kept"),
    [
        ('"GET /join/123?token=s3cr3t-T0ken HTTP/1.1"', "s3cr3t-T0ken", "token=[redacted]"),
        ("Authorization: Bearer abc.DEF-123", "abc.DEF-123", "Bearer [redacted]"),
        ('{"pin": "80716253"}', "80716253", "[redacted]"),
        ("pin=4321 tried", "4321", "pin=[redacted]"),
        ("caller +33612345678 joined", "+33612345678", "+*********78"),
        ("From: <sip:0612345678@trunk>", "0612345678", "sip:********78@"),
        ("tel:+33612345678;ext=1", "33612345678", "tel:+*********78"),
    ],
)
def test_redact(text: str, secret: str, kept: str) -> None:
    cleaned = logs.redact(text)
    assert secret not in cleaned and kept in cleaned, cleaned


def test_redact_keeps_ordinary_lines() -> None:
    line = "stats: calls=3 rooms=1 ticks=3000 late_p99_ms=1.20 rss_kib=123456"
    assert logs.redact(line) == line


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_both_formats_redact_message_args_and_tracebacks(fmt: str) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter() if fmt == "json" else logs.TextFormatter())
    handler.addFilter(logs.CallContextFilter())
    handler.addFilter(logs.RedactFilter())
    logger = logging.getLogger(f"test.redact.{fmt}")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    try:
        logger.info("join %s", "/join/1?token=abcdef", extra={"call_id": "c9"})
        try:
            raise RuntimeError("caller +33612345678 with pin=80716253")
        except RuntimeError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    out = stream.getvalue()
    for secret in ("abcdef", "+33612345678", "80716253"):
        assert secret not in out, out
    assert "RuntimeError" in out and "c9" in out
    if fmt == "json":
        assert all(json.loads(line) for line in out.splitlines() if line.startswith("{"))
        assert len([line for line in out.splitlines() if line.strip()]) == 2  # one per record
    else:
        assert "[call_id=c9]" in out
