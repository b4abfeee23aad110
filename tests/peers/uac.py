"""Our own SIP endpoint as a test caller: an ``on_event`` that a test can await."""

from __future__ import annotations

import asyncio
from typing import TypeVar

from sip.dialog import CallEvent

EVENT_TIMEOUT = 10.0
E = TypeVar("E", bound=CallEvent)


class EventLog:
    """The endpoint's ``on_event``: keeps every call event, lets a test await the next one."""

    def __init__(self) -> None:
        self.events: list[CallEvent] = []
        self._changed = asyncio.Condition()
        self._seen = 0

    def __call__(self, event: CallEvent) -> None:
        self.events.append(event)
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def next(self, kind: type[E]) -> E:
        """The first event of ``kind`` not returned yet (earlier other events are skipped),
        waiting up to ``EVENT_TIMEOUT``."""

        async def find() -> E:
            async with self._changed:
                while True:
                    for i in range(self._seen, len(self.events)):
                        event = self.events[i]
                        if isinstance(event, kind):
                            self._seen = i + 1
                            return event
                    await self._changed.wait()

        try:
            return await asyncio.wait_for(find(), EVENT_TIMEOUT)
        except TimeoutError:
            seen = [type(e).__name__ for e in self.events]
            raise AssertionError(
                f"no {kind.__name__} in {EVENT_TIMEOUT}s; events: {seen}"
            ) from None

    def of(self, kind: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, kind)]
