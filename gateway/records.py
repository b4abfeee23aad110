"""Call records (CDR): a :class:`~gateway.lifecycle.CallObserver` that keeps one database row
per call leg.

The observer's hooks run on the event loop, some from the media tick: they only note what
changed in a dictionary. A background task flushes those notes every second, in one
transaction, on the store's one writer thread (``api.app.WRITES``: a second writer thread
would queue on SQLite's write lock and fight the event loop for the GIL). A leg's row is
inserted at the first flush after it started and updated at the flushes after it was
answered and after it ended, so a crash loses at most the last second of notes and leaves
the rows of the calls it cut with no end.

On start-up the recorder gives its own such rows (same host and SIP port: the previous run
of this gateway) the end reason ``shutdown`` and no end time (when the process died is not
known), then prunes records older than ``GATEWAY_CDR_DAYS``, and prunes again every day.
A database that cannot be written to keeps the notes in memory (up to
:data:`MAX_PENDING` legs) and retries at the next flush.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from gateway.lifecycle import LegInfo, LegTotals
from rooms.calls import CallStore
from rooms.models import utcnow

__all__ = ["MAX_PENDING", "CallRecorder"]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

#: Legs whose unwritten notes are kept while the database is unreachable.
MAX_PENDING = 100_000
#: Longest text kept of a display name and of a SIP Call-ID (the columns' sizes).
NAME_LENGTH, CALL_ID_LENGTH = 200, 255


@dataclass
class _Live:
    """What the recorder remembers of a leg between its start and its end."""

    started_at: datetime
    answered_at: datetime | None = None


class CallRecorder:
    """Writes a call record per leg to ``store``, off the event loop, through ``executor``
    (one thread). ``node`` names this process in the rows (see
    :meth:`rooms.calls.CallStore.close_open`)."""

    def __init__(
        self,
        store: CallStore,
        executor: Executor,
        *,
        node: str,
        keep_days: int,
        flush_interval: float = 1.0,
        prune_interval: float = 86400.0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.store = store
        self.executor = executor
        self.node = node
        self.keep_days = keep_days
        self.flush_interval = flush_interval
        self.prune_interval = prune_interval
        self._clock = clock or utcnow
        self._live: dict[str, _Live] = {}
        #: Unwritten column values per leg id, newest last.
        self._pending: dict[str, dict[str, Any]] = {}
        #: Legs whose row is in the database (and may still change).
        self._written: set[str] = set()
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._flushing = asyncio.Lock()

    # -- the observer's hooks (on the event loop: no I/O) -----------------------------------
    def _note(self, leg_id: str, **values: Any) -> None:
        pending = self._pending.get(leg_id)
        if pending is None:
            if len(self._pending) >= MAX_PENDING:
                logger.warning("call records: %d legs not written yet, dropping", MAX_PENDING)
                return
            self._pending[leg_id] = values
        else:
            pending.update(values)

    def leg_started(self, leg: LegInfo, at: datetime) -> None:
        self._live[leg.id] = _Live(at)
        self._note(
            leg.id,
            id=leg.id,
            kind=leg.kind,
            node=self.node,
            started_at=at,
            **self._described(leg),
        )

    def leg_answered(self, leg: LegInfo, at: datetime) -> None:
        live = self._live.get(leg.id)
        if live is None:
            return
        live.answered_at = at
        self._note(leg.id, answered_at=at, **self._described(leg))

    def leg_updated(self, leg: LegInfo) -> None:
        if leg.id in self._live:
            self._note(leg.id, **self._described(leg))

    def leg_ended(
        self, leg: LegInfo, at: datetime, reason: str, totals: LegTotals | None = None
    ) -> None:
        live = self._live.pop(leg.id, None)
        if live is None:
            return
        answered = live.answered_at
        duration = (at - answered).total_seconds() if answered is not None else 0.0
        totals = totals or LegTotals()
        self._note(
            leg.id,
            ended_at=at,
            duration_seconds=round(max(0.0, duration), 3),
            end_reason=reason,
            packets_received=totals.packets_received,
            packets_sent=totals.packets_sent,
            packets_lost=max(0, totals.packets_lost),
            **self._described(leg),
        )

    def call_refused(self, kind: str, status: int) -> None:
        """No leg, no record (metrics count these)."""

    @staticmethod
    def _described(leg: LegInfo) -> dict[str, Any]:
        return {
            "room_id": leg.room_id,
            "display_name": leg.display_name[:NAME_LENGTH],
            "caller_number": leg.caller_number,
            "codec": leg.codec,
            "call_id": leg.call_id[:CALL_ID_LENGTH] if leg.call_id else None,
        }

    # -- writing ---------------------------------------------------------------------------
    async def _run(self, fn: Callable[..., _T], *args: Any) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    async def flush(self) -> None:
        """Write every note taken so far (one transaction); on failure keep them for the
        next flush."""
        async with self._flushing:
            batch, self._pending = self._pending, {}
            if not batch:
                return
            new = [values for leg_id, values in batch.items() if leg_id not in self._written]
            changed = [
                (leg_id, values) for leg_id, values in batch.items() if leg_id in self._written
            ]
            try:
                await self._run(self.store.save, new, changed)
            except Exception:
                logger.exception(
                    "call records: writing %d legs failed (kept for later)", len(batch)
                )
                for leg_id, values in batch.items():
                    self._pending[leg_id] = {**values, **self._pending.get(leg_id, {})}
                return
            for leg_id, values in batch.items():
                if "end_reason" in values:
                    self._written.discard(leg_id)  # nothing comes after the end
                else:
                    self._written.add(leg_id)

    async def prune(self) -> int:
        before = self._clock() - timedelta(days=self.keep_days)
        count = await self._run(self.store.prune, before)
        if count:
            logger.info("call records: pruned %d older than %d days", count, self.keep_days)
        return count

    async def start(self) -> None:
        """Close the rows a previous run of this gateway left open, prune, and start
        flushing."""
        closed = await self._run(self.store.close_open, self.node, "shutdown")
        if closed:
            logger.warning(
                "call records: %d calls of the previous run had no end (the process stopped"
                " without writing it): ended with reason shutdown",
                closed,
            )
        try:
            await self.prune()
        except Exception:
            logger.exception("call records: pruning failed")
        self._task = asyncio.get_running_loop().create_task(self._loop())

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        next_prune = loop.time() + self.prune_interval
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.flush_interval)
            await self.flush()
            if loop.time() >= next_prune:
                next_prune = loop.time() + self.prune_interval
                try:
                    await self.prune()
                except Exception:
                    logger.exception("call records: pruning failed")

    async def stop(self) -> None:
        """Stop the background task and write what is left (call after the calls ended)."""
        self._stopping.set()  # not cancelled: a write under way finishes and is accounted for
        if self._task is not None:
            await self._task
            self._task = None
        await self.flush()
