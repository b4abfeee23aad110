"""A small pull-driven audio jitter buffer with an adaptive playout point.

aiortc's ``JitterBuffer`` is push-driven (``add()`` hands back a frame once the *next* one
has arrived) and never reports a gap as a loss, which suits video but not a mixer that needs
exactly one frame every 20 ms.  This one is pulled once per packet interval:

* packets are keyed by the *extended* sequence number (16-bit wrap-around unfolded);
* playout starts once ``depth`` packets' worth of sequence span is buffered;
* ``pop()`` returns the next payload, or ``None`` when there is nothing to play this time
  (a lost packet, an underrun, a deliberately inserted frame, or playout not started): the
  caller conceals one frame;
* an empty payload ``b""`` is a "no audio" slot (an RFC 4733 telephone-event packet shares
  the RTP sequence space): it plays as one frame of no audio, so the audio timeline around a
  digit keeps its place and the audio after the digit is neither late nor skipped;
* duplicates and packets older than the playout point ("late") are dropped and counted;
* a big sequence jump (peer restart) resets the buffer.

Memory is bounded whatever the state: at most ``capacity`` packets are kept (the oldest go
first, counted as ``overflow``), also when nobody pops (a waiting-room member), and when
playout starts on a backlog it starts ``depth`` packets from the newest.

Playout point adaptation (sender clock drift, changing network delay).  At each pop the
*level* is the sequence span available (``highest - next + 1``); its minimum over a window
of ``window`` pops is the margin the buffer really had.

* minimum above ``depth`` (persistently deep: the sender's clock is fast): drop ONE packet,
  preferably one the ``quiet`` predicate calls silent (an empty slot always is), after at
  most ``max_defer`` pops anyway;
* minimum below ``depth - 1`` (persistently shallow: the sender's clock is slow, or the
  network delay grew): insert ONE frame (``pop`` returns ``None`` without moving on),
  preferably before a quiet packet;
* the due packet missing and nothing newer buffered (underrun): conceal one frame and hold
  the playout point (re-anchor) instead of moving on, so the packet, when it comes, is not
  "late"; if newer packets come first the missing one is taken as lost and playout jumps to
  them without a second concealed frame; after ``underrun_reset`` empty pops in a row (the
  peer went quiet) it goes back to buffering;
* the hard limit stays: a span of ``max_depth`` or more (a burst) is cut to ``depth`` at once.

One adjustment at a time, at most one per window: a drift of 0.5 % costs one inserted or
dropped frame every 200 frames, never a burst.

``discontinuity`` is true for the pop right after packets were skipped or dropped or the
buffer was reset, so the caller can cross-fade instead of clicking.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

MAX_SEQ_JUMP = 1000


@dataclass
class JitterStats:
    received: int = 0
    played: int = 0
    missing: int = 0  # packets that were due but never came (lost)
    duplicates: int = 0
    late: int = 0
    skipped: int = 0  # dropped at once because a burst grew the span beyond max_depth
    resets: int = 0
    dropped: int = 0  # dropped one at a time: the buffer ran persistently deep
    inserted: int = 0  # frames inserted one at a time: the buffer ran persistently shallow
    underruns: int = 0  # pops that found nothing at all and held the playout point
    overflow: int = 0  # dropped because more than ``capacity`` packets were buffered


class JitterBuffer:
    def __init__(
        self,
        depth: int = 3,
        max_depth: int = 8,
        underrun_reset: int = 5,
        *,
        capacity: int = 16,
        window: int = 50,
        max_defer: int = 100,
        quiet: Callable[[bytes], bool] | None = None,
    ) -> None:
        if depth < 1 or max_depth < depth:
            raise ValueError("need 1 <= depth <= max_depth")
        if capacity < max_depth:
            raise ValueError("need capacity >= max_depth")
        self.depth = depth
        self.max_depth = max_depth
        self.underrun_reset = underrun_reset
        self.capacity = capacity
        self.window = window
        self.max_defer = max_defer
        self.quiet = quiet
        self.stats = JitterStats()
        self.discontinuity = False
        self.last_dropped: bytes | None = None
        self._packets: dict[int, bytes] = {}
        self._highest: int | None = None  # highest extended sequence number seen
        self._next: int | None = None  # extended sequence number to play next
        self._playing = False
        self._empty_pops = 0
        self._held = False  # the last pop held the playout point (underrun)
        self._pending_discontinuity = False
        self._win_min = 1 << 30
        self._win_n = 0
        self._adjust = 0  # +1: insert a frame, -1: drop a packet, 0: nothing pending
        self._adjust_wait = 0

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
        self._held = False
        self._pending_discontinuity = True
        self._reset_control()
        self.stats.resets += 1

    def _reset_control(self) -> None:
        self._win_min = 1 << 30
        self._win_n = 0
        self._adjust = 0
        self._adjust_wait = 0

    def put(self, seq: int, payload: bytes) -> bool:
        """Store one packet (``b""``: a slot without audio); False if it was dropped."""
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
            # a burst: far too much audio queued at once; skip to nominal depth
            target = top - self.depth + 1
            for s in range(nxt, target):
                if packets.pop(s, None) is not None:
                    self.stats.skipped += 1
            self._next = nxt = target
            self._pending_discontinuity = True
            self._reset_control()
        while len(packets) > self.capacity:  # always bounded, playing or not
            oldest = min(packets)
            del packets[oldest]
            self.stats.overflow += 1
            if nxt is not None and nxt <= oldest:
                self._next = nxt = oldest + 1
                self._pending_discontinuity = True
        return True

    def _is_quiet(self, payload: bytes) -> bool:
        if not payload:
            return True
        if self.quiet is None:
            return True  # no way to tell: any packet will do
        try:
            return bool(self.quiet(payload))
        except Exception:  # a predicate on hostile bytes must not break playout
            return False

    def _start(self) -> bool:
        packets = self._packets
        highest = self._highest
        if not packets or highest is None:
            return False
        first = min(packets)
        if highest - first + 1 < self.depth:
            return False
        if highest - first + 1 > self.max_depth:
            # a backlog (nobody popped for a while): start at the nominal delay
            first = highest - self.depth + 1
            for s in [s for s in packets if s < first]:
                del packets[s]
                self.stats.overflow += 1
            self._pending_discontinuity = True
        self._playing = True
        self._next = first
        self._empty_pops = 0
        self._held = False
        self._reset_control()
        return True

    def pop(self) -> bytes | None:
        """The payload due now, or None (conceal one frame)."""
        self.discontinuity = False
        if not self._playing and not self._start():
            return None
        nxt = self._next
        highest = self._highest
        assert nxt is not None and highest is not None
        packets = self._packets

        # -- playout point control ------------------------------------------------------
        level = highest - nxt + 1
        if level < self._win_min:
            self._win_min = level
        self._win_n += 1
        if self._win_n >= self.window:
            if self._adjust == 0:
                if self._win_min > self.depth:
                    self._adjust, self._adjust_wait = -1, 0
                elif self._win_min < self.depth - 1:
                    self._adjust, self._adjust_wait = 1, 0
            self._win_min = 1 << 30
            self._win_n = 0
        if self._adjust:
            due = packets.get(nxt)
            self._adjust_wait += 1
            if due is not None:
                if self._adjust > 0:
                    limit = max(1, self.max_defer // 4)
                    if self._is_quiet(due) or self._adjust_wait >= limit:
                        self._adjust = 0
                        self.stats.inserted += 1
                        return None  # one frame more delay: the due packet waits a pop
                elif nxt + 1 in packets:
                    if self._is_quiet(due) or self._adjust_wait >= self.max_defer:
                        self._adjust = 0
                        del packets[nxt]
                        self.last_dropped = due
                        self.stats.dropped += 1
                        self._next = nxt = nxt + 1
                        self._pending_discontinuity = True
            if self._adjust_wait > 4 * self.max_defer:
                self._adjust = 0  # the condition went away by itself

        # -- play -----------------------------------------------------------------------
        payload = packets.pop(nxt, None)
        if payload is None:
            if not packets:
                # underrun: conceal one frame and hold the playout point
                self.stats.underruns += 1
                self._held = True
                self._empty_pops += 1
                if self._empty_pops >= self.underrun_reset:
                    # the peer went quiet: rebuffer; accept anything newer than what we saw
                    self._playing = False
                    self._empty_pops = 0
                    self._held = False
                    self._next = max(nxt, highest + 1)
                return None
            self.stats.missing += 1
            if not self._held:
                self._next = nxt + 1  # a lost packet: conceal it, move on
                return None
            # re-anchor: the hold already concealed the lost packet; play what is there
            nxt = min(packets)
            payload = packets.pop(nxt)
            self._pending_discontinuity = True
        self._next = nxt + 1
        self._held = False
        self._empty_pops = 0
        self.stats.played += 1
        if self._pending_discontinuity:
            self._pending_discontinuity = False
            self.discontinuity = True
        return payload
