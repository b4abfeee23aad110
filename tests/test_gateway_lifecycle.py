"""The fan-out of call-leg events: every observer is told, in order, and one that raises
neither stops the others nor reaches the call."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.lifecycle import END_REASONS, LegInfo, LegTotals, Observers


class Recorder:
    def __init__(self, name: str, log: list[str], broken: bool = False) -> None:
        self.name, self.log, self.broken = name, log, broken

    def _note(self, what: str) -> None:
        self.log.append(f"{self.name}:{what}")
        if self.broken:
            raise RuntimeError("observer bug")

    def leg_started(self, leg: LegInfo, at: datetime) -> None:
        self._note(f"started {leg.id}")

    def leg_answered(self, leg: LegInfo, at: datetime) -> None:
        self._note(f"answered {leg.id}")

    def leg_updated(self, leg: LegInfo) -> None:
        self._note(f"updated {leg.room_id}")

    def leg_ended(
        self, leg: LegInfo, at: datetime, reason: str, totals: LegTotals | None = None
    ) -> None:
        self._note(f"ended {reason} {totals.packets_received if totals else None}")

    def call_refused(self, kind: str, status: int) -> None:
        self._note(f"refused {kind} {status}")


def test_every_observer_hears_every_event_even_after_one_fails(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log: list[str] = []
    observers = Observers(Recorder("a", log, broken=True))
    observers.add(Recorder("b", log))
    leg = LegInfo(id="p1", kind="sip", display_name="Room")
    now = datetime.now(UTC)
    observers.leg_started(leg, now)
    observers.leg_answered(leg, now)
    observers.leg_updated(leg.with_room("r1"))
    observers.leg_ended(leg, now, "hangup", LegTotals(packets_received=7))
    observers.call_refused("phone", 404)
    assert log == [
        f"{who}:{what}"
        for what in (
            "started p1",
            "answered p1",
            "updated r1",
            "ended hangup 7",
            "refused phone 404",
        )
        for who in ("a", "b")
    ]
    assert caplog.text.count("call observer") == 5  # each failure logged, none raised


def test_end_reasons_are_the_documented_ones() -> None:
    assert END_REASONS == (
        "hangup", "removed", "room_ended", "timeout", "refused", "wrong_pin", "shutdown", "failed",
    )  # fmt: skip
