"""The gateway's Prometheus metrics: calls, live rooms and legs, RTP, DTMF, PINs, the mixer clock.

:class:`GatewayMetrics` is a :class:`~gateway.lifecycle.CallObserver` (calls set up, refused,
failed, ended; call setup time) and a collector read at scrape time (everything the media path
already counts as plain ints: no ``prometheus_client`` call per packet). It registers on the
application's registry (:data:`api.metrics.METRICS`), which also holds the process metrics.

Counters read off live objects (an :class:`~gateway.media.leg.AudioLeg`, a
:class:`~webrtc.leg.BrowserLeg`, a call's :class:`~gateway.phone_menu.CallDtmf`) are the sum
over live legs plus the last values of those that went away (a leg that ended, an audio leg a
codec change replaced), folded in when they go, so that counters never go down. An object is
followed from the moment a hook (started, answered, updated) or a scrape sees it; one that
lived and died unseen between two scrapes (a call whose hooks never came) is counted from the
totals its ``leg_ended`` carries, received, sent and lost packets only.

Label values are bounded: kinds from :data:`~gateway.lifecycle.KINDS`, codecs from
:data:`CODECS`, end reasons from :data:`~gateway.lifecycle.END_REASONS`, SIP status codes as
three digits, anything else ``other``. Never a room id, participant id or caller number.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from gateway.browser_calls import BrowserCalls, BrowserSession
from gateway.conference import Conference
from gateway.lifecycle import END_REASONS, KINDS, LegInfo, LegTotals
from gateway.media.leg import AudioLeg
from gateway.media.transport import MixerClock
from gateway.phone_menu import CallDtmf
from gateway.sip_calls import SipCalls, SipLeg
from media.jitter import JitterBuffer
from webrtc.leg import BrowserLeg

__all__ = ["CODECS", "DTMF_METHODS", "RTP_COUNTERS", "GatewayMetrics", "codec_label"]

#: Codecs legs are labelled with (anything else: ``other``).
CODECS = ("PCMU", "PCMA", "G722", "opus")
#: The codecs each kind of leg may show, for series present at 0.
_KIND_CODECS = {
    "sip": ("PCMU", "PCMA", "G722"),
    "phone": ("PCMU", "PCMA", "G722"),
    "browser": ("opus",),
}
DTMF_METHODS = ("rfc4733", "info", "inband")
#: The RTP counters of a leg, in the order :func:`audio_counters` reads them.
RTP_COUNTERS = ("received", "sent", "lost", "late", "stranger", "malformed", "wrong_payload_type")
_DROPPED = ("stranger", "malformed", "wrong_payload_type")

#: Call setup (started to answered) buckets, seconds.
SETUP_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
#: Mixer tick lateness buckets, seconds (a tick is 20 ms; past 60 ms ticks are skipped).
LATENESS_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.04, 0.06, 0.1, 0.25)


def codec_label(name: str | None) -> str:
    """A codec name as a label value: one of :data:`CODECS` or ``other``."""
    if name is None:
        return "other"
    for codec in CODECS:
        if name.lower() == codec.lower():
            return codec
    return "other"


def _kind(kind: str) -> str:
    return kind if kind in KINDS else "other"


def _status(status: int) -> str:
    return str(status) if 100 <= status <= 699 else "other"


def _jitter(leg: AudioLeg | BrowserLeg) -> JitterBuffer:
    return leg.jitter


def audio_counters(leg: AudioLeg) -> tuple[int, ...]:
    """A SIP or phone leg's :data:`RTP_COUNTERS`. Lost: due at playout and never there
    (lost on the way, or late); late: came after its playout time."""
    stats = _jitter(leg).stats
    return (
        leg.packets_received,
        leg.packets_sent,
        stats.missing,
        stats.late,
        leg.strangers,
        leg.bad_packets,
        leg.wrong_payload_type,
    )


def browser_counters(leg: BrowserLeg) -> tuple[int, ...]:
    """A browser leg's :data:`RTP_COUNTERS` (SRTP lets no stranger or malformed packet
    through; other payload types are ignored uncounted)."""
    stats = _jitter(leg).stats
    return (leg.stats.packets_in, leg.stats.packets_out, stats.missing, stats.late, 0, 0, 0)


@dataclass(frozen=True)
class _Source:
    """One object whose counters are followed: its leg's kind and participant id."""

    kind: str
    member: str
    obj: object
    read: Callable[[], Sequence[int]]


class _Folded:
    """Counters of live objects, plus the last values of followed objects that went away."""

    def __init__(self, width: int) -> None:
        self.width = width
        self._sources: dict[int, _Source] = {}  # by id(obj); the source holds obj alive
        self._by_member: dict[str, set[int]] = {}
        self._retired: dict[str, list[int]] = {}  # by kind

    def following(self, member: str) -> bool:
        return member in self._by_member

    def follow(self, source: _Source) -> None:
        key = id(source.obj)
        if key not in self._sources:
            self._sources[key] = source
            self._by_member.setdefault(source.member, set()).add(key)

    def _fold(self, key: int) -> None:
        source = self._sources.pop(key)
        members = self._by_member.get(source.member)
        if members is not None:
            members.discard(key)
            if not members:
                del self._by_member[source.member]
        self.add(source.kind, source.read())

    def add(self, kind: str, values: Sequence[int]) -> None:
        totals = self._retired.setdefault(kind, [0] * self.width)
        for i, value in enumerate(values):
            totals[i] += max(value, 0)

    def retire(self, member: str) -> None:
        """The leg of ``member`` ended: fold in what its objects counted."""
        for key in list(self._by_member.get(member, ())):
            self._fold(key)

    def sums(self, live: Iterable[_Source]) -> dict[str, list[int]]:
        """Follow ``live`` (every object of a live leg now); fold in the followed objects
        that are not among them; totals by kind."""
        seen: set[int] = set()
        for source in live:
            seen.add(id(source.obj))
            self.follow(source)
        for key in [key for key in self._sources if key not in seen]:
            self._fold(key)
        totals = {kind: list(values) for kind, values in self._retired.items()}
        for source in self._sources.values():
            row = totals.setdefault(source.kind, [0] * self.width)
            for i, value in enumerate(source.read()):
                row[i] += max(value, 0)
        return totals


@dataclass(frozen=True)
class _Live:
    """A live leg at scrape time."""

    kind: str
    codec: str
    member: str
    rtp: _Source
    dtmf: _Source | None
    depth: int


class GatewayMetrics(Collector):
    """Call observer and scrape-time collector of one gateway process. ``sip`` is set once
    the SIP side is up (until then, and in tests without it, SIP legs count as none)."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        clock: MixerClock,
        conference: Conference,
        browsers: BrowserCalls | None = None,
        sip: SipCalls | None = None,
    ) -> None:
        self.clock = clock
        self.conference = conference
        self.browsers = browsers
        self.sip = sip
        self._rtp = _Folded(len(RTP_COUNTERS))
        self._dtmf = _Folded(len(DTMF_METHODS))
        #: Legs that ended while still live (a goodbye prompt playing): not followed again.
        self._ended: set[str] = set()
        self._started: dict[str, datetime] = {}
        self.set_up = Counter(
            "gateway_calls_set_up",
            "Legs answered (connected to a room, its waiting room or the phone menu)",
            ["kind"],
            registry=registry,
        )
        self.refused = Counter(
            "gateway_calls_refused",
            "Calls refused before any leg started, by the status answered (SIP code; 503 for"
            " a browser turned away)",
            ["kind", "status"],
            registry=registry,
        )
        self.failed = Counter(
            "gateway_calls_failed",
            "Legs that ended in failure (an error, a failed negotiation, no ACK)",
            ["kind"],
            registry=registry,
        )
        self.ended = Counter(
            "gateway_calls_ended", "Legs ended, by reason", ["kind", "reason"], registry=registry
        )
        self.setup_seconds = Histogram(
            "gateway_call_setup_seconds",
            "From a leg's start (INVITE taken in, browser joined) to its answer",
            ["kind"],
            buckets=SETUP_BUCKETS,
            registry=registry,
        )
        self.tick_lateness = Histogram(
            "gateway_mixer_tick_lateness_seconds",
            "How late each mixer tick ran after its deadline",
            buckets=LATENESS_BUCKETS,
            registry=registry,
        )
        for kind in KINDS:
            self.set_up.labels(kind)
            self.failed.labels(kind)
            self.setup_seconds.labels(kind)
        clock.on_tick = self.tick_lateness.observe
        registry.register(self)

    # -- the call observer ---------------------------------------------------------------
    def leg_started(self, leg: LegInfo, at: datetime) -> None:
        self._started[leg.id] = at
        self._follow_member(leg.id)

    def leg_answered(self, leg: LegInfo, at: datetime) -> None:
        kind = _kind(leg.kind)
        self.set_up.labels(kind).inc()
        started = self._started.pop(leg.id, None)
        if started is not None:
            self.setup_seconds.labels(kind).observe(max((at - started).total_seconds(), 0.0))
        self._follow_member(leg.id)

    def leg_updated(self, leg: LegInfo) -> None:
        self._follow_member(leg.id)

    def leg_ended(
        self, leg: LegInfo, at: datetime, reason: str, totals: LegTotals | None = None
    ) -> None:
        kind = _kind(leg.kind)
        self._started.pop(leg.id, None)
        self.ended.labels(kind, reason if reason in END_REASONS else "other").inc()
        if reason == "failed":
            self.failed.labels(kind).inc()
        if self._rtp.following(leg.id):
            self._rtp.retire(leg.id)
        elif totals is not None:
            received, sent, lost = totals.packets_received, totals.packets_sent, totals.packets_lost
            self._rtp.add(kind, (received, sent, lost))
        self._dtmf.retire(leg.id)
        if self._is_live(leg.id):
            self._ended.add(leg.id)
            if len(self._ended) > 10000:  # never scraped: keep only the live ones
                self._ended &= {live.member for live in self._live()}

    def call_refused(self, kind: str, status: int) -> None:
        self.refused.labels(_kind(kind), _status(status)).inc()

    # -- live legs -----------------------------------------------------------------------
    def _live(self) -> Iterator[_Live]:
        sip = self.sip
        if sip is not None:
            for leg in list(sip.legs.values()):
                yield _sip_live(leg)
        if self.browsers is not None:
            for session in list(self.browsers.sessions.values()):
                yield _browser_live(session)

    def _find(self, member: str) -> _Live | None:
        """The live leg of participant ``member`` (on call events only, never per packet)."""
        if self.browsers is not None:
            session = self.browsers.sessions.get(member)
            if session is not None:
                return _browser_live(session)
        leg = self.sip.leg_of(member) if self.sip is not None else None
        return _sip_live(leg) if leg is not None else None

    def _is_live(self, member: str) -> bool:
        return self._find(member) is not None

    def _follow_member(self, member: str) -> None:
        if member in self._ended:
            return
        live = self._find(member)
        if live is None:
            return
        self._rtp.follow(live.rtp)
        if live.dtmf is not None:
            self._dtmf.follow(live.dtmf)

    # -- the collector -------------------------------------------------------------------
    def collect(self) -> Iterator[Metric]:
        live = list(self._live())
        members = {x.member for x in live}
        self._ended &= members
        counted = [x for x in live if x.member not in self._ended]
        rtp = self._rtp.sums(x.rtp for x in counted)
        dtmf = self._dtmf.sums(x.dtmf for x in counted if x.dtmf is not None)

        yield GaugeMetricFamily(
            "gateway_rooms", "Rooms with at least one leg in them", value=len(self.conference.rooms)
        )
        legs = GaugeMetricFamily(
            "gateway_legs",
            "Live legs (in a room, its waiting room or the phone menu)",
            labels=["kind", "codec"],
        )
        counts: dict[tuple[str, str], int] = {
            (kind, codec): 0 for kind, codecs in _KIND_CODECS.items() for codec in codecs
        }
        for x in live:
            counts[(x.kind, x.codec)] = counts.get((x.kind, x.codec), 0) + 1
        for (kind, codec), n in sorted(counts.items()):
            legs.add_metric([kind, codec], n)
        yield legs

        kinds = sorted(set(KINDS) | set(rtp))
        zero = [0] * len(RTP_COUNTERS)
        for name, index, text in (
            ("received", 0, "RTP packets received and accepted from the latched peer"),
            ("sent", 1, "RTP packets sent"),
            ("lost", 2, "RTP packets due at playout that never came (lost, or too late)"),
            ("late", 3, "RTP packets that came after their playout time (dropped)"),
        ):
            family = CounterMetricFamily(f"gateway_rtp_packets_{name}", text, labels=["kind"])
            for kind in kinds:
                family.add_metric([kind], rtp.get(kind, zero)[index])
            yield family
        dropped = CounterMetricFamily(
            "gateway_rtp_packets_dropped",
            "RTP packets dropped on arrival: from another source than the peer (stranger),"
            " unparsable (malformed), of a payload type not negotiated",
            labels=["kind", "reason"],
        )
        for kind in kinds:
            for reason in _DROPPED:
                dropped.add_metric([kind, reason], rtp.get(kind, zero)[RTP_COUNTERS.index(reason)])
        yield dropped

        depth = GaugeMetricFamily(
            "gateway_jitter_buffer_depth_packets",
            "Packets waiting in the jitter buffers of live legs, summed (divide by gateway_legs"
            " for the mean)",
            labels=["kind"],
        )
        deepest = GaugeMetricFamily(
            "gateway_jitter_buffer_depth_max_packets",
            "Packets waiting in the deepest jitter buffer of a live leg",
            labels=["kind"],
        )
        for kind in KINDS:
            depths = [x.depth for x in live if x.kind == kind]
            depth.add_metric([kind], sum(depths))
            deepest.add_metric([kind], max(depths, default=0))
        yield depth
        yield deepest

        digits = CounterMetricFamily(
            "gateway_dtmf_digits", "DTMF digits received, by method", labels=["method"]
        )
        for i, method in enumerate(DTMF_METHODS):
            digits.add_metric([method], sum(values[i] for values in dtmf.values()))
        yield digits

        guard = self.sip.pin_guard if self.sip is not None else None
        yield CounterMetricFamily(
            "gateway_pin_failures",
            "Wrong PINs typed at the phone menu",
            value=guard.failures_total if guard is not None else 0,
        )
        yield CounterMetricFamily(
            "gateway_pin_lockouts",
            "Rooms whose PIN entry was locked after repeated wrong PINs",
            value=guard.lockouts_total if guard is not None else 0,
        )
        yield CounterMetricFamily(
            "gateway_mixer_ticks_skipped",
            "Mixer ticks skipped because the clock fell more than 3 frames behind",
            value=self.clock.skipped_total,
        )
        yield CounterMetricFamily(
            "gateway_mixer_tick_errors",
            "Rooms whose tick raised (logged; the tick went on)",
            value=self.clock.errors,
        )


def _dtmf_counters(dtmf: CallDtmf) -> tuple[int, ...]:
    return tuple(dtmf.received.get(method, 0) for method in DTMF_METHODS)


def _sip_live(leg: SipLeg) -> _Live:
    audio = leg.endpoint.leg
    member = leg.member
    kind = _kind(member.kind)
    return _Live(
        kind,
        codec_label(audio.codec.name),
        member.id,
        _Source(kind, member.id, audio, functools.partial(audio_counters, audio)),
        _Source(kind, member.id, leg.dtmf, functools.partial(_dtmf_counters, leg.dtmf)),
        len(_jitter(audio)),
    )


def _browser_live(session: BrowserSession) -> _Live:
    leg = session.leg
    member = session.member.id
    return _Live(
        "browser",
        "opus",
        member,
        _Source("browser", member, leg, functools.partial(browser_counters, leg)),
        None,
        len(_jitter(leg)),
    )
