"""Start :mod:`tests.peers.pjsua_peer` in its own process and follow its stdout protocol."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from .net import LOCALHOST, free_port, free_rtp_port_pair
from .proc import ManagedProcess

PEER_SCRIPT = Path(__file__).resolve().parent / "pjsua_peer.py"


@dataclass(frozen=True)
class PjsuaEvent:
    name: str  # CONFIRMED, DISCONNECTED, MEDIA, DTMF, INCOMING, STATE, HOLD, ...
    fields: dict[str, str]
    line: str

    def __getitem__(self, key: str) -> str:
        return self.fields[key]


@dataclass
class PjsuaResult:
    ok: bool
    returncode: int | None
    fields: dict[str, str]
    events: list[PjsuaEvent] = field(default_factory=list)
    output: str = ""

    @property
    def codes(self) -> list[int]:
        """Final SIP status of each call (e.g. ``[200]`` or ``[404]``)."""
        raw = self.fields.get("codes", "-")
        return [] if raw in ("", "-") else [int(c) for c in raw.split(",")]

    @property
    def dtmf_received(self) -> str:
        return "".join(e.fields.get("digit", "") for e in self.events if e.name == "DTMF")

    def named(self, name: str) -> list[PjsuaEvent]:
        return [e for e in self.events if e.name == name]


def parse_line(line: str) -> tuple[str, str, dict[str, str]] | None:
    """``EVENT NAME k=v ...`` / ``RESULT ok k=v`` -> (kind, name, fields); None for log noise."""
    parts = line.split()
    if len(parts) < 2 or parts[0] not in ("EVENT", "RESULT"):
        return None
    fields = dict(p.split("=", 1) for p in parts[2:] if "=" in p)
    return parts[0], parts[1], fields


class PjsuaPeer:
    """A pjsua2 peer process: ``PjsuaPeer.answer(...)`` (callee) or ``PjsuaPeer.call(uri, ...)``.

    Usage::

        with PjsuaPeer.answer(play=tone440, record=tmp_path / "heard.wav") as callee:
            ...  # call callee.uri from somewhere
            callee.wait_event("CONFIRMED", timeout=10)
            result = callee.wait_result(timeout=30)   # after the caller hung up
            assert_contains_tone(tmp_path / "heard.wav", 700)
    """

    def __init__(
        self,
        mode: Literal["call", "answer"],
        *,
        uri: str | None = None,
        port: int | None = None,
        rtp_port: int | None = None,
        user: str = "pjsua",
        play: str | Path | None = None,
        record: str | Path | None = None,
        seconds: float | None = None,
        dtmf: str | None = None,
        dtmf_method: Literal["rfc4733", "info"] = "rfc4733",
        dtmf_at: float = 1.0,
        hold_at: float | None = None,
        unhold_at: float | None = None,
        codecs: Sequence[str] = ("PCMU", "PCMA", "G722"),
        calls: int = 1,
        hangup: bool = False,
        answer_code: int = 200,
        ring_seconds: float = 0.0,
        max_seconds: float = 60.0,
        log: str | Path | None = None,
        python: str = sys.executable,
    ) -> None:
        if mode == "call" and not uri:
            raise ValueError("call mode needs a uri")
        self.mode = mode
        self.port = port if port is not None else free_port("udp")
        self.rtp_port = rtp_port if rtp_port is not None else free_rtp_port_pair()
        self.user = user
        self.record = Path(record) if record else None
        self.max_seconds = max_seconds
        argv = [python, str(PEER_SCRIPT), mode]
        if mode == "call":
            argv.append(str(uri))
        argv += ["--port", str(self.port), "--rtp-port", str(self.rtp_port), "--user", user]
        argv += ["--codecs", ",".join(codecs), "--max-seconds", str(max_seconds)]
        if play:
            argv += ["--play", str(play)]
        if record:
            argv += ["--record", str(record)]
        if seconds is not None:
            argv += ["--seconds", str(seconds)]
        if dtmf:
            argv += ["--dtmf", dtmf, "--dtmf-method", dtmf_method, "--dtmf-at", str(dtmf_at)]
        if hold_at is not None:
            argv += ["--hold-at", str(hold_at)]
        if unhold_at is not None:
            argv += ["--unhold-at", str(unhold_at)]
        if log:
            argv += ["--log", str(log)]
        if mode == "answer":
            argv += [
                "--calls",
                str(calls),
                "--answer-code",
                str(answer_code),
                "--ring-seconds",
                str(ring_seconds),
            ]
            if hangup:
                argv.append("--hangup")
        self.argv = argv
        self._proc = ManagedProcess(argv, lifetime=max_seconds + 15, name=f"pjsua-{mode}")
        self._consumed: set[int] = set()

    @classmethod
    def call(cls, uri: str, **kw: Any) -> PjsuaPeer:
        """Caller: ``--seconds`` after CONFIRMED it hangs up (default: wait for the far end)."""
        return cls("call", uri=uri, **kw)

    @classmethod
    def answer(cls, **kw: Any) -> PjsuaPeer:
        """Callee: auto-answers (``answer_code``), exits after ``calls`` calls have ended."""
        return cls("answer", **kw)

    @property
    def uri(self) -> str:
        return f"sip:{self.user}@{LOCALHOST}:{self.port}"

    # -- lifecycle -----------------------------------------------------------------------
    def start(self, timeout: float = 10.0) -> PjsuaPeer:
        self._proc.start()
        try:
            ready = self.wait_event("READY", timeout)
            self.port = int(ready.fields.get("port", self.port))
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        self._proc.terminate(grace=2.0)

    def __enter__(self) -> PjsuaPeer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def running(self) -> bool:
        return self._proc.running()

    def output(self) -> str:
        lines = [ln for ln in self._proc.stdout_lines if parse_line(ln) is not None]
        return "\n".join(lines) + "\n--- stderr ---\n" + "\n".join(self._proc.stderr_lines[-40:])

    # -- protocol ------------------------------------------------------------------------
    @property
    def events(self) -> list[PjsuaEvent]:
        out = []
        for ln in list(self._proc.stdout_lines):
            parsed = parse_line(ln)
            if parsed and parsed[0] == "EVENT":
                out.append(PjsuaEvent(parsed[1], parsed[2], ln))
        return out

    def wait_event(self, name: str, timeout: float = 10.0, **match: str | int) -> PjsuaEvent:
        """Oldest not-yet-returned ``EVENT name`` whose fields match ``match``."""
        deadline = time.monotonic() + timeout
        while True:
            lines = list(self._proc.stdout_lines)
            for i, ln in enumerate(lines):
                if i in self._consumed:
                    continue
                parsed = parse_line(ln)
                if not parsed or parsed[0] != "EVENT" or parsed[1] != name:
                    continue
                if all(parsed[2].get(k) == str(v) for k, v in match.items()):
                    self._consumed.add(i)
                    return PjsuaEvent(parsed[1], parsed[2], ln)
            if not self._proc.running():
                self._proc.drain()  # the last lines may still be in the pipe
            if not self._proc.running() and len(self._proc.stdout_lines) == len(lines):
                raise EOFError(
                    f"pjsua peer exited (rc={self._proc.returncode}) without EVENT {name}\n{self.output()}"
                )
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"pjsua peer: no EVENT {name} {match} within {timeout}s\n{self.output()}"
                )
            time.sleep(0.02)

    def wait_result(self, timeout: float | None = None) -> PjsuaResult:
        """Wait for ``RESULT`` and the process's exit (bounded by ``max_seconds`` anyway)."""
        limit = timeout if timeout is not None else self.max_seconds + 10
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            for ln in list(self._proc.stdout_lines):
                parsed = parse_line(ln)
                if parsed and parsed[0] == "RESULT":
                    try:
                        rc: int | None = self._proc.wait(max(0.1, deadline - time.monotonic()))
                    except Exception:
                        rc = self._proc.returncode
                    return PjsuaResult(parsed[1] == "ok", rc, parsed[2], self.events, self.output())
            if not self._proc.running():
                time.sleep(0.1)  # let the reader drain
                if not any(
                    (p := parse_line(ln)) and p[0] == "RESULT" for ln in self._proc.stdout_lines
                ):
                    return PjsuaResult(
                        False,
                        self._proc.returncode,
                        {"reason": "no-result"},
                        self.events,
                        self.output(),
                    )
            time.sleep(0.05)
        raise TimeoutError(f"pjsua peer: no RESULT within {limit}s\n{self.output()}")
