"""How many calls one source address may hold: a cap on live calls and on INVITEs not yet
confirmed by an ACK, so one host cannot take every RTP port or make the gateway answer for
others (the 200 of an INVITE never ACKed is retransmitted for 32 s). The same two caps bound
the whole process (``max_total_calls``, ``max_total_pending``): past them the gateway refuses
new calls instead of accepting calls it cannot carry, and the calls already up keep their audio.

Pure bookkeeping, keyed by any hashable call object; the SIP layer answers 503 with
``Retry-After`` when :meth:`SourceLimits.admit` says no.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable

__all__ = ["SourceLimits"]


class SourceLimits:
    def __init__(
        self,
        *,
        max_calls: int,
        max_pending: int,
        max_total_calls: int | None = None,
        max_total_pending: int | None = None,
    ) -> None:
        self.max_calls = max_calls
        self.max_pending = max_pending
        self.max_total_calls = max_total_calls
        self.max_total_pending = max_total_pending
        self.total_pending = 0
        #: Why the last refusal happened: "source" or "process".
        self.last_refusal = ""
        self.calls: Counter[str] = Counter()
        self.pending: Counter[str] = Counter()
        self._of: dict[Hashable, tuple[str, bool]] = {}  # call -> (source, still pending)
        self.refused = 0

    def admit(self, call: Hashable, source: str) -> bool:
        """Count a new INVITE from ``source``; False (and nothing counted) over a cap."""
        if call in self._of:
            return True
        if (self.max_total_calls is not None and len(self._of) >= self.max_total_calls) or (
            self.max_total_pending is not None and self.total_pending >= self.max_total_pending
        ):
            self.refused += 1
            self.last_refusal = "process"
            return False
        if self.calls[source] >= self.max_calls or self.pending[source] >= self.max_pending:
            self.refused += 1
            self.last_refusal = "source"
            return False
        self.calls[source] += 1
        self.pending[source] += 1
        self.total_pending += 1
        self._of[call] = (source, True)
        return True

    def confirm(self, call: Hashable) -> None:
        """The ACK came: the call no longer counts as pending."""
        entry = self._of.get(call)
        if entry is not None and entry[1]:
            self._decrement(self.pending, entry[0])
            self.total_pending -= 1
            self._of[call] = (entry[0], False)

    def forget(self, call: Hashable) -> None:
        """The call is over (or was refused): it counts no more."""
        entry = self._of.pop(call, None)
        if entry is None:
            return
        source, pending = entry
        self._decrement(self.calls, source)
        if pending:
            self._decrement(self.pending, source)
            self.total_pending -= 1

    def __len__(self) -> int:
        return len(self._of)

    @staticmethod
    def _decrement(counter: Counter[str], source: str) -> None:
        counter[source] -= 1
        if counter[source] <= 0:
            del counter[source]
