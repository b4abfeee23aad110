"""SDP (RFC 4566) and the offer/answer model (RFC 3264) for audio - pure, no I/O.

Parsing keeps what it does not interpret (attributes, bandwidth, ``i=``/``k=``/``r=``... lines) so
``SessionDescription.parse(str(sd)) == sd`` for every parsed ``sd``.

Negotiation policy (the gateway mixes narrowband/wideband audio only):

* :func:`answer_offer` mirrors every offered m-line in order. The first audio m-line over
  ``RTP/AVP`` or ``RTP/AVPF`` that shares a codec with us is accepted; every other m-line (video,
  unknown media, SRTP profiles, further audio) is rejected with port 0. The codec chosen is the
  *first offered* one we support; telephone-event is matched to its clock rate when offered at
  that rate, else any offered rate is taken. Direction is mirrored; unknown attributes are not
  copied. An offered ``ptime`` is answered with :data:`PTIME` (what we send; the offered one is
  kept in :attr:`NegotiatedAudio.ptime`, what the peer sends). An audio m-line is only usable
  when its connection address is an IP literal (never a name: it would be resolved for every
  RTP packet) of its declared family, and that family is one the caller serves (``families``);
  ``0.0.0.0`` (RFC 2543 hold) is accepted. No acceptable audio -> :class:`SdpError` (answer
  488).
* :func:`make_offer` builds our offer (dial-out, delayed offer) and :func:`negotiate_answer`
  reads what the remote chose from its answer (with the same address rules).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace

from sip.errors import SdpError

__all__ = [
    "DIRECTIONS",
    "FAMILIES",
    "PTIME",
    "STATIC_PAYLOAD_TYPES",
    "SUPPORTED_AUDIO",
    "AnswerResult",
    "Codec",
    "MediaDescription",
    "NegotiatedAudio",
    "Origin",
    "SdpError",
    "SessionDescription",
    "answer_offer",
    "make_offer",
    "mirror_direction",
    "negotiate_answer",
]

SUPPORTED_AUDIO: tuple[str, ...] = ("G722", "PCMU", "PCMA")
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
RTP_PROTOS = ("RTP/AVP", "RTP/AVPF")
TELEPHONE_EVENT = "telephone-event"
#: Address families (SDP ``addrtype``) a gateway may serve.
FAMILIES: tuple[str, ...] = ("IP4", "IP6")
#: The packetization time of what we send (ms), said in our answers.
PTIME = 20


@dataclass(frozen=True)
class Codec:
    payload_type: int
    name: str
    clock_rate: int
    channels: int = 1
    fmtp: str | None = None

    @property
    def rtpmap(self) -> str:
        """The ``a=rtpmap`` value: ``<pt> <name>/<rate>[/<channels>]``."""
        channels = f"/{self.channels}" if self.channels != 1 else ""
        return f"{self.payload_type} {self.name}/{self.clock_rate}{channels}"

    def is_named(self, name: str) -> bool:
        return self.name.lower() == name.lower()


# RFC 3551 static payload types we may meet without an rtpmap.
STATIC_PAYLOAD_TYPES: dict[int, Codec] = {
    0: Codec(0, "PCMU", 8000),
    3: Codec(3, "GSM", 8000),
    4: Codec(4, "G723", 8000),
    8: Codec(8, "PCMA", 8000),
    9: Codec(9, "G722", 8000),
    13: Codec(13, "CN", 8000),
    18: Codec(18, "G729", 8000),
}
_STATIC_BY_NAME = {c.name.lower(): c for c in STATIC_PAYLOAD_TYPES.values()}

Attributes = tuple[tuple[str, str | None], ...]
Lines = tuple[tuple[str, str], ...]


def mirror_direction(direction: str) -> str:
    """The answerer's direction for an offered one (RFC 3264 6.1)."""
    return {"sendonly": "recvonly", "recvonly": "sendonly"}.get(direction, direction)


def _int(text: str, what: str, *, low: int = 0, high: int | None = None) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 20:
        raise SdpError(f"bad {what}: {text[:30]!r}")
    value = int(text)
    if value < low or (high is not None and value > high):
        raise SdpError(f"{what} out of range: {value}")
    return value


def _addr_type(address: str) -> str:
    return "IP6" if ":" in address else "IP4"


def _declared_type(address: str, addrtype: str) -> str | None:
    """What to keep of a parsed c= addrtype: None when :func:`_addr_type` derives it."""
    return None if addrtype == _addr_type(address) else addrtype


def _usable_address(address: str, family: str, families: tuple[str, ...]) -> bool:
    """An IP literal (no name, no multicast TTL) of its declared ``family``, served."""
    if family not in families:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return ip.version == (6 if family == "IP6" else 4)


def _find_attr(attributes: Attributes, name: str) -> list[str | None]:
    return [v for n, v in attributes if n == name]


def _direction_of(attributes: Attributes) -> str | None:
    found = [n for n, _ in attributes if n in DIRECTIONS]
    return found[-1] if found else None


@dataclass(frozen=True)
class Origin:
    username: str
    sess_id: int
    sess_version: int
    nettype: str = "IN"
    addrtype: str = "IP4"
    address: str = "0.0.0.0"

    def __str__(self) -> str:
        return (
            f"{self.username} {self.sess_id} {self.sess_version} {self.nettype} "
            f"{self.addrtype} {self.address}"
        )


@dataclass(frozen=True)
class MediaDescription:
    media: str
    port: int
    proto: str
    formats: tuple[str, ...]
    connection: str | None = None
    attributes: Attributes = ()
    bandwidth: tuple[tuple[str, int], ...] = ()
    port_count: int | None = None
    other: Lines = ()  # i= and k= lines, kept verbatim
    # The c= addrtype when it is not what the address says (e.g. "IN IP4 2001:db8::1").
    connection_type: str | None = None

    @property
    def connection_family(self) -> str | None:
        """The declared addrtype of this m-line's own c= line (None without one)."""
        if self.connection is None:
            return None
        return self.connection_type or _addr_type(self.connection)

    @property
    def is_rtp(self) -> bool:
        return self.proto.upper().startswith("RTP/") or "/RTP/" in self.proto.upper()

    def attribute(self, name: str) -> str | None:
        """Value of the first ``a=name:value`` (None if absent or a flag attribute)."""
        for n, v in self.attributes:
            if n == name:
                return v
        return None

    def has_attribute(self, name: str) -> bool:
        return any(n == name for n, _ in self.attributes)

    def attribute_values(self, name: str) -> list[str | None]:
        return _find_attr(self.attributes, name)

    @property
    def codecs(self) -> list[Codec]:
        """Codecs in format order, from rtpmap/fmtp (static payload types need no rtpmap).

        Dynamic payload types without an rtpmap are skipped."""
        if not self.is_rtp:
            return []
        rtpmaps: dict[int, tuple[str, int, int]] = {}
        fmtps: dict[int, str] = {}
        for name, value in self.attributes:
            if value is None or name not in ("rtpmap", "fmtp"):
                continue
            pt_text, _, rest = value.strip().partition(" ")
            if not (pt_text.isascii() and pt_text.isdigit()) or len(pt_text) > 3:
                continue
            pt = int(pt_text)
            if name == "fmtp":
                fmtps.setdefault(pt, rest.strip())
                continue
            parts = rest.strip().split("/")
            if len(parts) < 2 or not parts[0] or not parts[1].isdigit() or len(parts[1]) > 9:
                continue
            if not parts[1].isascii():
                continue
            channels_text = parts[2] if len(parts) > 2 else "1"
            if not (channels_text.isascii() and channels_text.isdigit()) or len(channels_text) > 3:
                continue
            if not parts[1].isascii():
                continue
            rtpmaps.setdefault(pt, (parts[0], int(parts[1]), int(channels_text)))
        out: list[Codec] = []
        for fmt in self.formats:
            if not (fmt.isascii() and fmt.isdigit()) or len(fmt) > 3:
                continue
            pt = int(fmt)
            if pt in rtpmaps:
                name, rate, channels = rtpmaps[pt]
                out.append(Codec(pt, name, rate, channels, fmtps.get(pt)))
            elif pt in STATIC_PAYLOAD_TYPES:
                out.append(replace(STATIC_PAYLOAD_TYPES[pt], fmtp=fmtps.get(pt)))
        return out

    def direction_or(self, session_default: str = "sendrecv") -> str:
        """The media direction; the media-level attribute overrides the session default."""
        return _direction_of(self.attributes) or session_default

    @property
    def direction(self) -> str:
        """Media-level direction, ``sendrecv`` if none (use :meth:`SessionDescription.
        media_direction` to take a session-level default into account)."""
        return self.direction_or("sendrecv")

    @property
    def ptime(self) -> int | None:
        value = self.attribute("ptime")
        if value is None:
            return None
        try:
            ptime = round(float(value.strip()))
        except (ValueError, OverflowError):
            return None
        return ptime if 0 < ptime <= 1000 else None

    @property
    def rtcp_port(self) -> int | None:
        """Remote RTCP port: ``a=rtcp`` (RFC 3605), else RTP port + 1; None if port 0."""
        if self.port == 0:
            return None
        value = self.attribute("rtcp")
        if value is not None:
            text = value.strip().split(" ", 1)[0]
            if text.isascii() and text.isdigit() and 0 < int(text) <= 65535:
                return int(text)
        return self.port + 1

    def lines(self) -> list[str]:
        count = f"/{self.port_count}" if self.port_count is not None else ""
        out = [f"m={self.media} {self.port}{count} {self.proto} {' '.join(self.formats)}".rstrip()]
        out.extend(f"{k}={v}" for k, v in self.other if k == "i")
        if self.connection is not None:
            out.append(f"c=IN {self.connection_family} {self.connection}")
        out.extend(f"b={t}:{v}" for t, v in self.bandwidth)
        out.extend(f"{k}={v}" for k, v in self.other if k != "i")
        out.extend(f"a={n}" if v is None else f"a={n}:{v}" for n, v in self.attributes)
        return out


@dataclass(frozen=True)
class SessionDescription:
    origin: Origin
    session_name: str = "-"
    connection: str | None = None
    timing: tuple[int, int] = (0, 0)
    attributes: Attributes = ()
    media: tuple[MediaDescription, ...] = ()
    bandwidth: tuple[tuple[str, int], ...] = ()
    version: int = 0
    other: Lines = field(default=())  # i= u= e= p= r= z= k= and unknown lines, verbatim
    # The session c= addrtype when it is not what the address says.
    connection_type: str | None = None

    # -- parsing --------------------------------------------------------------------------

    @classmethod
    def parse(cls, text: str | bytes) -> SessionDescription:
        if isinstance(text, bytes):
            try:
                text = text.decode("utf-8")
            except UnicodeDecodeError:
                raise SdpError("SDP is not UTF-8") from None
        lines = [line for line in text.replace("\r\n", "\n").split("\n") if line.strip()]
        if not lines:
            raise SdpError("empty SDP")
        session_name = "-"
        connection: str | None = None
        connection_type: str | None = None
        timing = (0, 0)
        s_attrs: list[tuple[str, str | None]] = []
        s_bw: list[tuple[str, int]] = []
        s_other: list[tuple[str, str]] = []
        media: list[MediaDescription] = []
        cur: _MediaBuilder | None = None
        origin: Origin | None = None
        version: int | None = None

        def finish() -> None:
            if cur is not None:
                media.append(cur.build())

        for index, line in enumerate(lines):
            if len(line) < 2 or line[1] != "=" or not ("a" <= line[0] <= "z"):
                raise SdpError(f"malformed SDP line {line[:40]!r}")
            kind, value = line[0], line[2:]
            if index == 0:
                if kind != "v":
                    raise SdpError("SDP must start with v=")
                version = _int(value.strip(), "version")
                if version != 0:
                    raise SdpError("unsupported SDP version")
                continue
            if kind == "v":
                raise SdpError("repeated v= line")
            if kind == "m":
                finish()
                cur = _parse_m(value)
                continue
            if cur is not None:
                if kind == "c":
                    if cur.connection is None:
                        cur.connection, cur.connection_type = _parse_c(value)
                elif kind == "a":
                    cur.attributes.append(_parse_a(value))
                elif kind == "b":
                    cur.bandwidth.append(_parse_b(value))
                elif kind in "ik":
                    cur.other.append((kind, value))
                else:
                    raise SdpError(f"unexpected {kind}= line in a media section")
                continue
            if kind == "o":
                origin = _parse_o(value)
            elif kind == "s":
                session_name = value
            elif kind == "c":
                connection, connection_type = _parse_c(value)
            elif kind == "t":
                parts = value.split()
                if len(parts) != 2:
                    raise SdpError("malformed t= line")
                timing = (_int(parts[0], "start time"), _int(parts[1], "stop time"))
            elif kind == "a":
                s_attrs.append(_parse_a(value))
            elif kind == "b":
                s_bw.append(_parse_b(value))
            else:
                s_other.append((kind, value))
        finish()
        if origin is None:
            raise SdpError("missing o= line")
        assert version is not None
        return cls(
            origin=origin,
            session_name=session_name,
            connection=connection,
            timing=timing,
            attributes=tuple(s_attrs),
            media=tuple(media),
            bandwidth=tuple(s_bw),
            version=version,
            other=tuple(s_other),
            connection_type=connection_type,
        )

    # -- serialising ----------------------------------------------------------------------

    def serialise(self) -> str:
        out = [f"v={self.version}", f"o={self.origin}", f"s={self.session_name}"]
        out.extend(f"{k}={v}" for k, v in self.other if k in "iuep")
        if self.connection is not None:
            family = self.connection_type or _addr_type(self.connection)
            out.append(f"c=IN {family} {self.connection}")
        out.extend(f"b={t}:{v}" for t, v in self.bandwidth)
        out.append(f"t={self.timing[0]} {self.timing[1]}")
        out.extend(f"{k}={v}" for k, v in self.other if k not in "iuep")
        out.extend(f"a={n}" if v is None else f"a={n}:{v}" for n, v in self.attributes)
        for m in self.media:
            out.extend(m.lines())
        return "\r\n".join(out) + "\r\n"

    def __str__(self) -> str:
        return self.serialise()

    def __bytes__(self) -> bytes:
        return self.serialise().encode("utf-8")

    # -- helpers --------------------------------------------------------------------------

    @property
    def direction(self) -> str:
        """Session-level direction attribute, ``sendrecv`` if none."""
        return _direction_of(self.attributes) or "sendrecv"

    def media_direction(self, m: MediaDescription) -> str:
        return m.direction_or(self.direction)

    def media_connection(self, m: MediaDescription) -> str | None:
        """Connection address of ``m``: its own c= line, else the session's."""
        return m.connection if m.connection is not None else self.connection

    def media_connection_family(self, m: MediaDescription) -> str | None:
        """The declared addrtype (``IP4``/``IP6``) of :meth:`media_connection`."""
        if m.connection is not None:
            return m.connection_family
        if self.connection is None:
            return None
        return self.connection_type or _addr_type(self.connection)

    def usable_connection(
        self, m: MediaDescription, families: tuple[str, ...] = FAMILIES
    ) -> str | None:
        """:meth:`media_connection` if it is an IP literal of its declared family and that
        family is in ``families``; None otherwise (a name, a mismatch, an unserved family)."""
        address = self.media_connection(m)
        family = self.media_connection_family(m)
        if address is None or family is None or not _usable_address(address, family, families):
            return None
        return address

    def attribute(self, name: str) -> str | None:
        for n, v in self.attributes:
            if n == name:
                return v
        return None


def _parse_o(value: str) -> Origin:
    parts = value.split()
    if len(parts) != 6:
        raise SdpError("malformed o= line")
    return Origin(
        parts[0],
        _int(parts[1], "session id"),
        _int(parts[2], "session version"),
        parts[3],
        parts[4],
        parts[5],
    )


def _parse_c(value: str) -> tuple[str, str | None]:
    """The address and its declared addrtype (None when the address implies it)."""
    parts = value.split()
    if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
        raise SdpError("malformed c= line")
    return parts[2], _declared_type(parts[2], parts[1])


def _parse_a(value: str) -> tuple[str, str | None]:
    name, colon, rest = value.partition(":")
    if not name or any(c.isspace() for c in name):
        raise SdpError(f"malformed a= line {value[:40]!r}")
    return name, rest if colon else None


def _parse_b(value: str) -> tuple[str, int]:
    kind, colon, rest = value.partition(":")
    if not colon or not kind:
        raise SdpError("malformed b= line")
    return kind, _int(rest.strip(), "bandwidth")


@dataclass
class _MediaBuilder:
    media: str
    port: int
    proto: str
    formats: tuple[str, ...]
    port_count: int | None
    connection: str | None = None
    connection_type: str | None = None
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    bandwidth: list[tuple[str, int]] = field(default_factory=list)
    other: list[tuple[str, str]] = field(default_factory=list)

    def build(self) -> MediaDescription:
        return MediaDescription(
            media=self.media,
            port=self.port,
            proto=self.proto,
            formats=self.formats,
            connection=self.connection,
            attributes=tuple(self.attributes),
            bandwidth=tuple(self.bandwidth),
            port_count=self.port_count,
            other=tuple(self.other),
            connection_type=self.connection_type,
        )


def _parse_m(value: str) -> _MediaBuilder:
    parts = value.split()
    if len(parts) < 3:
        raise SdpError("malformed m= line")
    port_text, slash, count_text = parts[1].partition("/")
    port = _int(port_text, "media port", high=65535)
    count = _int(count_text, "port count", low=1) if slash else None
    return _MediaBuilder(parts[0], port, parts[2], tuple(parts[3:]), count)


# --------------------------------------------------------------------------------------------
# Offer / answer


@dataclass(frozen=True)
class NegotiatedAudio:
    """The audio stream agreed by an offer/answer exchange, from our point of view."""

    codec: Codec
    dtmf: Codec | None
    remote_address: str
    remote_port: int
    direction: str  # our direction: "sendrecv", "sendonly", "recvonly" or "inactive"
    ptime: int | None = None
    remote_rtcp_port: int | None = None
    media_index: int = 0
    on_hold: bool = False  # the remote side put the call on hold (sendonly/inactive/0.0.0.0)

    @property
    def we_send(self) -> bool:
        return self.direction in ("sendrecv", "sendonly")

    @property
    def we_receive(self) -> bool:
        return self.direction in ("sendrecv", "recvonly")


@dataclass(frozen=True)
class AnswerResult:
    answer: SessionDescription
    audio: NegotiatedAudio | None


def _is_null_address(address: str | None) -> bool:
    return address in ("0.0.0.0", "::")


def _remote_direction(direction: str, address: str | None) -> str:
    """Offered direction, with RFC 2543 hold (c=0.0.0.0) meaning "do not send to me"."""
    if _is_null_address(address):
        return {"sendrecv": "sendonly", "recvonly": "inactive"}.get(direction, direction)
    return direction


def _pick_codec(codecs: list[Codec], supported: tuple[str, ...]) -> Codec | None:
    wanted = {name.lower() for name in supported}
    for codec in codecs:
        if codec.name.lower() in wanted and codec.channels == 1:
            static = _STATIC_BY_NAME.get(codec.name.lower())
            lenient = codec.name.lower() == "g722" and codec.clock_rate == 16000
            if static is not None and static.clock_rate != codec.clock_rate and not lenient:
                continue  # G722/16000: a common mistake (RFC 3551 4.5.2), understood as G722
            return codec
    return None


def _pick_dtmf(codecs: list[Codec], clock_rate: int) -> Codec | None:
    events = [c for c in codecs if c.is_named(TELEPHONE_EVENT)]
    for codec in events:
        if codec.clock_rate == clock_rate:
            return codec
    return events[0] if events else None


def _rejected(m: MediaDescription) -> MediaDescription:
    return MediaDescription(m.media, 0, m.proto, m.formats or ("0",))


def _audio_attributes(
    codec: Codec, dtmf: Codec | None, ptime: int | None, direction: str
) -> Attributes:
    attrs: list[tuple[str, str | None]] = [("rtpmap", codec.rtpmap)]
    if codec.fmtp:
        attrs.append(("fmtp", f"{codec.payload_type} {codec.fmtp}"))
    if dtmf is not None:
        attrs.append(("rtpmap", dtmf.rtpmap))
        attrs.append(("fmtp", f"{dtmf.payload_type} {dtmf.fmtp or '0-16'}"))
    if ptime is not None:
        attrs.append(("ptime", str(ptime)))
    attrs.append((direction, None))
    return tuple(attrs)


def _session(
    *,
    username: str,
    session_id: int,
    session_version: int,
    local_address: str,
    media: tuple[MediaDescription, ...],
) -> SessionDescription:
    return SessionDescription(
        origin=Origin(
            username, session_id, session_version, "IN", _addr_type(local_address), local_address
        ),
        session_name="-",
        connection=local_address,
        timing=(0, 0),
        media=media,
    )


def answer_offer(
    offer: SessionDescription,
    *,
    local_address: str,
    audio_port: int,
    session_id: int,
    session_version: int,
    supported: tuple[str, ...] = SUPPORTED_AUDIO,
    username: str = "gateway",
    families: tuple[str, ...] = FAMILIES,
) -> AnswerResult:
    """Answer ``offer`` (RFC 3264 section 6); raise :class:`SdpError` if no audio is usable.

    ``families``: the address types our media socket can send to (``("IP4",)`` for an IPv4
    socket); an audio m-line at another family, or at a name, is rejected."""
    audio: NegotiatedAudio | None = None
    answer_media: list[MediaDescription] = []
    for index, m in enumerate(offer.media):
        address = offer.usable_connection(m, families)
        acceptable = (
            audio is None
            and m.media == "audio"
            and m.port != 0
            and m.proto.upper() in RTP_PROTOS
            and address is not None
        )
        codec = _pick_codec(m.codecs, supported) if acceptable else None
        if codec is None or address is None:
            answer_media.append(_rejected(m))
            continue
        dtmf = _pick_dtmf(m.codecs, codec.clock_rate)
        offered = offer.media_direction(m)
        remote = _remote_direction(offered, address)
        ours = mirror_direction(remote)
        ptime = m.ptime  # what the peer sends; we answer with what we send
        formats = (str(codec.payload_type),) + (
            (str(dtmf.payload_type),) if dtmf is not None else ()
        )
        answer_media.append(
            MediaDescription(
                "audio",
                audio_port,
                m.proto,
                formats,
                attributes=_audio_attributes(
                    codec, dtmf, PTIME if ptime is not None else None, ours
                ),
            )
        )
        audio = NegotiatedAudio(
            codec=codec,
            dtmf=dtmf,
            remote_address=address,
            remote_port=m.port,
            direction=ours,
            ptime=ptime,
            remote_rtcp_port=m.rtcp_port,
            media_index=index,
            on_hold=remote in ("sendonly", "inactive"),
        )
    if audio is None:
        raise SdpError("no acceptable audio stream in the offer")
    answer = _session(
        username=username,
        session_id=session_id,
        session_version=session_version,
        local_address=local_address,
        media=tuple(answer_media),
    )
    return AnswerResult(answer, audio)


def make_offer(
    *,
    local_address: str,
    audio_port: int,
    session_id: int,
    session_version: int,
    codecs: tuple[str, ...] = SUPPORTED_AUDIO,
    direction: str = "sendrecv",
    dtmf_rates: tuple[int, ...] = (8000,),
    ptime: int | None = 20,
    username: str = "gateway",
) -> SessionDescription:
    """Our offer: one audio m-line with ``codecs`` (static payload types) in preference order,
    then telephone-event at each of ``dtmf_rates`` (dynamic PT 101, 102, ...)."""
    if direction not in DIRECTIONS:
        raise SdpError(f"bad direction {direction!r}")
    formats: list[str] = []
    attrs: list[tuple[str, str | None]] = []
    for name in codecs:
        codec = _STATIC_BY_NAME.get(name.lower())
        if codec is None:
            raise SdpError(f"no static payload type for codec {name!r}")
        formats.append(str(codec.payload_type))
        attrs.append(("rtpmap", codec.rtpmap))
    for i, rate in enumerate(dtmf_rates):
        pt = 101 + i
        formats.append(str(pt))
        attrs.append(("rtpmap", f"{pt} {TELEPHONE_EVENT}/{rate}"))
        attrs.append(("fmtp", f"{pt} 0-16"))
    if ptime is not None:
        attrs.append(("ptime", str(ptime)))
    attrs.append((direction, None))
    media = MediaDescription(
        "audio", audio_port, "RTP/AVP", tuple(formats), attributes=tuple(attrs)
    )
    return _session(
        username=username,
        session_id=session_id,
        session_version=session_version,
        local_address=local_address,
        media=(media,),
    )


def negotiate_answer(
    offer: SessionDescription,
    answer: SessionDescription,
    *,
    supported: tuple[str, ...] = SUPPORTED_AUDIO,
    families: tuple[str, ...] = FAMILIES,
) -> NegotiatedAudio | None:
    """What the remote chose, as the offerer (UAC) sees it; None if it accepted no audio we
    can use (no common codec, or a connection address that is a name, not of its declared
    family or not in ``families``). Raises :class:`SdpError` if the answer does not mirror the
    offer's m-lines."""
    if len(answer.media) != len(offer.media):
        raise SdpError("answer has a different number of m-lines than the offer")
    for index, (om, am) in enumerate(zip(offer.media, answer.media, strict=True)):
        if am.media != om.media:
            raise SdpError("answer m-lines are not in the offer's order")
        if om.media != "audio" or am.port == 0 or om.port == 0:
            continue
        offered = {c.payload_type: c for c in om.codecs}
        # An answer may omit rtpmaps for dynamic types it echoes: fall back to ours.
        answered = {c.payload_type: c for c in am.codecs}
        chosen: list[Codec] = []
        for fmt in am.formats:
            if fmt.isascii() and fmt.isdigit() and len(fmt) <= 3:
                pt = int(fmt)
                codec = answered.get(pt) or offered.get(pt)
                if codec is not None:
                    chosen.append(codec)
        offered_names = {c.name.lower() for c in om.codecs}
        usable = [c for c in chosen if c.name.lower() in offered_names]
        codec = _pick_codec(usable, supported)
        address = answer.usable_connection(am, families)
        if codec is None or address is None:
            return None
        dtmf = _pick_dtmf(usable, codec.clock_rate)
        remote = _remote_direction(answer.media_direction(am), address)
        return NegotiatedAudio(
            codec=codec,
            dtmf=dtmf,
            remote_address=address,
            remote_port=am.port,
            direction=mirror_direction(remote),
            ptime=am.ptime or om.ptime,
            remote_rtcp_port=am.rtcp_port,
            media_index=index,
            on_hold=remote in ("sendonly", "inactive"),
        )
    return None
