"""A small pull-driven audio jitter buffer with a fixed playout delay.

aiortc's ``JitterBuffer`` is push-driven (``add()`` hands back a frame once the *next* one
has arrived) and never reports a gap as a loss, which suits video but not a mixer that needs
exactly one frame every 20 ms.  This one is pulled once per packet interval:

* packets are keyed by the *extended* sequence number (16-bit wrap-around unfolded);
* playout starts once ``depth`` packets' worth of sequence span is buffered (fixed delay);
* ``pop()`` returns the next payload, or ``None`` when that packet is missing (the caller
  conceals it) or when playout has not started;
* duplicates and packets older than the playout point ("late") are dropped and counted;
* a big sequence jump (peer restart) resets the buffer; if the buffer keeps growing
  beyond ``max_depth`` (sender clock faster than ours) the oldest packets are skipped;
* after ``underrun_reset`` consecutive empty pops (peer stopped sending) it goes back to
  buffering, so a resumed stream gets its full playout delay again.

``discontinuity`` is true for the pop right after packets were skipped or the buffer was
reset, so the caller can cross-fade instead of clicking.
"""

from __future__ import annotations

from dataclasses import dataclass

MAX_SEQ_JUMP = 1000


@dataclass
class JitterStats:
    received: int = 0
    played: int = 0
    missing: int = 0  # pops that found no packet while playing
    duplicates: int = 0
    late: int = 0
    skipped: int = 0  # dropped because the buffer grew beyond max_depth
    resets: int = 0


class JitterBuffer:
    def __init__(self, depth: int = 3, max_depth: int = 8, underrun_reset: int = 5) -> None:
        if depth < 1 or max_depth < depth:
            raise ValueError("need 1 <= depth <= max_depth")
        self.depth = depth
        self.max_depth = max_depth
        self.underrun_reset = underrun_reset
        self.stats = JitterStats()
        self.discontinuity = False
        self._packets: dict[int, bytes] = {}
        self._highest: int | None = None  # highest extended sequence number seen
        self._next: int | None = None  # extended sequence number to play next
        self._playing = False
        self._empty_pops = 0
        self._pending_discontinuity = False

    @property
    def playing(self) -> bool:
        return self._playing

    def __len__(self) -> int:
        return len(self._packets)

    def reset(self) -> None:
        """Forget everything (e.g. the peer's SSRC changed)."""
        self._packets.clear()
        self._highest = None
        self._next = None
        self._playing = False
        self._empty_pops = 0
        self._pending_discontinuity = True
        self.stats.resets += 1

    def put(self, seq: int, payload: bytes) -> bool:
        """Store one packet; False if it was dropped (duplicate or too late)."""
        highest = self._highest
        if highest is None:
            top = ext = seq + 0x10000  # headroom so slightly older packets stay positive
        else:
            delta = ((seq - highest + 0x8000) & 0xFFFF) - 0x8000
            if delta > MAX_SEQ_JUMP or delta < -MAX_SEQ_JUMP:
                self.reset()  # the peer restarted its sequence numbers
                top = ext = seq + 0x10000
            else:
                ext = highest + delta
                top = ext if delta > 0 else highest
        self._highest = top
        nxt = self._next
        if nxt is not None and ext < nxt:
            self.stats.late += 1
            return False
        packets = self._packets
        if ext in packets:
            self.stats.duplicates += 1
            return False
        packets[ext] = payload
        self.stats.received += 1
        if self._playing and nxt is not None and top - nxt >= self.max_depth:
            # too much audio queued (sender clock faster than ours): skip to nominal depth
            target = top - self.depth + 1
            for s in range(nxt, target):
                if packets.pop(s, None) is not None:
                    self.stats.skipped += 1
            self._next = target
            self._pending_discontinuity = True
        return True

    def pop(self) -> bytes | None:
        """The payload due now, or None (missing packet, or nothing to play yet)."""
        self.discontinuity = False
        if not self._playing:
            packets = self._packets
            if not packets or self._highest is None:
                return None
            first = min(packets)
            if self._highest - first + 1 < self.depth:
                return None
            self._playing = True
            self._next = first
            self._empty_pops = 0
        nxt = self._next
        assert nxt is not None
        payload = self._packets.pop(nxt, None)
        self._next = nxt + 1
        if payload is None:
            self.stats.missing += 1
            if not self._packets:
                self._empty_pops += 1
                if self._empty_pops >= self.underrun_reset:
                    # the peer went quiet: rebuffer; accept anything newer than what we saw
                    self._playing = False
                    self._empty_pops = 0
                    if self._highest is not None:
                        self._next = self._highest + 1
            return None
        self._empty_pops = 0
        self.stats.played += 1
        if self._pending_discontinuity:
            self._pending_discontinuity = False
            self.discontinuity = True
        return payload
