"""Gateway settings: every variable of the contract, read from the environment and `.env`.

One frozen :class:`Settings` object is built at start-up by :func:`load_settings`; a bad value
raises :class:`ConfigError` whose message is one line naming the variable.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import phonenumbers
from dotenv import dotenv_values

__all__ = ["ConfigError", "IceServer", "Settings", "load_settings"]


class ConfigError(ValueError):
    """A configuration value is invalid; ``str()`` is one line naming the variable."""

    def __init__(self, variable: str, message: str) -> None:
        super().__init__(f"{variable}: {message}")
        self.variable = variable


@dataclass(frozen=True)
class IceServer:
    """One STUN or TURN server: ``stun:host[:port]``, ``turn:user:pass@host[:port]`` (or
    ``turns:``; ``?transport=tcp`` kept)."""

    url: str  # without credentials, as browsers want it in ``urls``
    username: str | None = None
    credential: str | None = None

    def as_browser(self) -> dict[str, object]:
        """The ``RTCIceServer`` dictionary of the WebRTC API."""
        out: dict[str, object] = {"urls": [self.url]}
        if self.username is not None:
            out["username"] = self.username
            out["credential"] = self.credential or ""
        return out


@dataclass(frozen=True)
class Settings:
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    sip_host: str = "127.0.0.1"
    sip_port: int = 5060
    sip_domain: str = "localhost"
    public_url: str = "http://127.0.0.1:8080"
    rtp_port_min: int = 20000
    rtp_port_max: int = 29999
    database_url: str = "sqlite:///gateway.db"
    admin_token: str | None = None
    dialin_numbers: tuple[str, ...] = ()
    default_region: str = "FR"
    rtp_timeout: float = 60.0
    language: str = "fr"
    #: Phone menu: how long a caller may take in all, and between two digits (seconds).
    menu_timeout: float = 120.0
    digit_timeout: float = 5.0
    #: Wrong PINs for one room within ``pin_lockout_seconds`` that block its PIN entry for
    #: as long.
    pin_max_failures: int = 20
    pin_lockout_seconds: float = 600.0
    #: The address peers reach us at, written in Contact, Via and SDP (behind a NAT or on a
    #: wildcard bind); None: the interface address each request arrived on.
    sip_public_host: str | None = None
    #: Calls, and INVITEs not yet confirmed by an ACK, one source address may hold at once.
    max_calls_per_source: int = 100
    max_pending_per_source: int = 20
    #: SIP calls this process carries at once, and INVITEs not yet confirmed by an ACK in all
    #: (calls being set up): over either, new calls get 503 with Retry-After, and calls
    #: already up keep their audio.
    max_calls: int = 1000
    max_setups: int = 200
    #: How long a room looked up by number is remembered (0: never): this process's own
    #: edits apply at once, another process's (sharing the database) within this time.
    room_cache_seconds: float = 2.0
    #: Log level: per-call lines (joined, left, ended) are DEBUG; INFO keeps what an operator
    #: acts on.
    log_level: str = "INFO"
    #: Seconds between the ``stats:`` log lines (calls, rooms, mixer lateness, memory).
    stats_seconds: float = 60.0
    tcp_max_connections: int = 1000
    tcp_max_per_address: int = 64
    tcp_idle_seconds: float = 300.0
    #: The IP address announced to browsers in ICE candidates; None: the SIP public host or
    #: the SIP host (every interface for a wildcard bind).
    webrtc_host: str | None = None
    #: STUN/TURN servers handed to browsers and used by the gateway.
    ice_servers: tuple[IceServer, ...] = ()
    #: Browser legs this process takes at once (each costs an Opus encoder and decoder).
    max_browser_legs: int = 200
    #: Where room events are POSTed, signed with the admin token; None: nowhere.
    webhook_url: str | None = None
    #: ``text`` (human lines) or ``json`` (one JSON object per line).
    log_format: str = "text"
    #: On SIGTERM, how long live calls may go on (new ones refused) before they are ended.
    drain_seconds: float = 0.0
    #: Call records older than this many days are pruned.
    cdr_days: int = 90
    #: A bearer token that may read ``/metrics`` only (the admin token always may).
    metrics_token: str | None = None
    extra: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def rtp_ports(self) -> tuple[int, int]:
        return (self.rtp_port_min, self.rtp_port_max)

    def join_url(self, number: str, token: str) -> str:
        return f"{self.public_url}/join/{number}?token={token}"

    def sip_uri(self, number: str) -> str:
        return f"sip:{number}@{self.sip_domain}"


def _host(var: str, value: str) -> str:
    value = value.strip()
    if not value:
        raise ConfigError(var, "must not be empty")
    try:
        ipaddress.ip_address(value)
        return value
    except ValueError:
        pass
    labels = value.split(".")
    if value == "localhost" or all(
        label and len(label) <= 63 and label.replace("-", "").isalnum() for label in labels
    ):
        return value
    raise ConfigError(var, f"not an IP address or host name: {value!r}")


def _port(var: str, value: str) -> int:
    try:
        port = int(value.strip())
    except ValueError:
        raise ConfigError(var, f"not a port number: {value!r}") from None
    if not 1 <= port <= 65535:
        raise ConfigError(var, f"port out of range 1-65535: {port}")
    return port


def _port_range(var: str, value: str) -> tuple[int, int]:
    parts = value.strip().split("-")
    if len(parts) != 2:
        raise ConfigError(var, f"expected LOW-HIGH, e.g. 20000-29999, got {value!r}")
    low, high = (_port(var, p) for p in parts)
    if low > high:
        raise ConfigError(var, f"low port {low} is above high port {high}")
    if high - low < 3:
        raise ConfigError(var, "range must hold at least two even/odd port pairs")
    return low, high


def _url(var: str, value: str) -> str:
    value = value.strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(var, f"expected an http(s) URL, got {value!r}")
    return value


def _database_url(var: str, value: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    value = value.strip()
    try:
        url = make_url(value)
    except ArgumentError:
        raise ConfigError(var, f"not a SQLAlchemy URL: {value!r}") from None
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise ConfigError(var, f"unsupported database {url.get_backend_name()!r}")
    return value


def _region(var: str, value: str) -> str:
    region = value.strip().upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ConfigError(var, f"unknown region code {value!r}")
    return region


def _numbers(var: str, value: str, region: str) -> tuple[str, ...]:
    out: list[str] = []
    for raw in (v.strip() for v in value.split(",")):
        if not raw:
            continue
        try:
            parsed = phonenumbers.parse(raw, region)
        except phonenumbers.NumberParseException:
            raise ConfigError(var, f"not a phone number: {raw!r}") from None
        if not phonenumbers.is_possible_number(parsed):
            raise ConfigError(var, f"not a possible phone number: {raw!r}")
        out.append(phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164))
    return tuple(dict.fromkeys(out))


def _token(var: str, value: str) -> str | None:
    value = value.strip()
    if not value:
        return None
    if len(value) < 16 or any(c.isspace() for c in value):
        raise ConfigError(var, "must be at least 16 characters without spaces")
    return value


def _positive_float(var: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(var, f"not a number: {value!r}") from None
    if not number > 0:
        raise ConfigError(var, "must be positive")
    return number


LANGUAGES = ("fr", "en")


def _language(var: str, value: str) -> str:
    language = value.strip().lower()
    if language not in LANGUAGES:
        raise ConfigError(var, f"expected one of {', '.join(LANGUAGES)}, got {value!r}")
    return language


def _positive_int(var: str, value: str) -> int:
    try:
        number = int(value.strip())
    except ValueError:
        raise ConfigError(var, f"not a whole number: {value!r}") from None
    if number < 1:
        raise ConfigError(var, "must be at least 1")
    return number


def _ice_servers(var: str, value: str) -> tuple[IceServer, ...]:
    servers = []
    for raw in (part.strip() for part in value.split(",")):
        if not raw:
            continue
        scheme, sep, rest = raw.partition(":")
        scheme = scheme.lower()
        if not sep or scheme not in ("stun", "stuns", "turn", "turns"):
            raise ConfigError(var, f"{raw!r} is not a stun:, turn: or turns: URL")
        rest = rest.removeprefix("//")
        username = credential = None
        if "@" in rest:
            userinfo, _, rest = rest.rpartition("@")
            username, _, credential = userinfo.partition(":")
            if not username:
                raise ConfigError(var, f"{raw!r}: empty TURN user name")
        elif scheme.startswith("turn"):
            raise ConfigError(var, f"{raw!r}: a TURN server needs user:password@")
        hostport, _, query = rest.partition("?")
        host, _, port = hostport.rpartition(":") if hostport.count(":") == 1 else (hostport, "", "")
        if not host or any(c.isspace() or c in "/@" for c in host):
            raise ConfigError(var, f"{raw!r}: no host")
        if port and (not port.isdigit() or not 0 < int(port) < 65536):
            raise ConfigError(var, f"{raw!r}: bad port {port!r}")
        url = f"{scheme}:{hostport}" + (f"?{query}" if query else "")
        servers.append(IceServer(url, username, credential))
    return tuple(servers)


def load_settings(
    environ: Mapping[str, str] | None = None, env_file: str | None = ".env"
) -> Settings:
    """Build the settings from ``environ`` (default: ``os.environ``) over the ``.env`` file.

    Variables set in the environment win over the file, as python-dotenv does by default.
    """
    values: dict[str, str] = {}
    if env_file and os.path.exists(env_file):
        values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    values.update(os.environ if environ is None else environ)

    def get(name: str) -> str | None:
        return values.get(name)

    kwargs: dict[str, object] = {}
    if (v := get("GATEWAY_HTTP_HOST")) is not None:
        kwargs["http_host"] = _host("GATEWAY_HTTP_HOST", v)
    if (v := get("GATEWAY_HTTP_PORT")) is not None:
        kwargs["http_port"] = _port("GATEWAY_HTTP_PORT", v)
    if (v := get("GATEWAY_SIP_HOST")) is not None:
        kwargs["sip_host"] = _host("GATEWAY_SIP_HOST", v)
    if (v := get("GATEWAY_SIP_PORT")) is not None:
        kwargs["sip_port"] = _port("GATEWAY_SIP_PORT", v)
    if (v := get("GATEWAY_SIP_DOMAIN")) is not None:
        kwargs["sip_domain"] = _host("GATEWAY_SIP_DOMAIN", v)
    if (v := get("GATEWAY_PUBLIC_URL")) is not None:
        kwargs["public_url"] = _url("GATEWAY_PUBLIC_URL", v)
    if (v := get("GATEWAY_RTP_PORTS")) is not None:
        kwargs["rtp_port_min"], kwargs["rtp_port_max"] = _port_range("GATEWAY_RTP_PORTS", v)
    if (v := get("GATEWAY_DATABASE_URL")) is not None:
        kwargs["database_url"] = _database_url("GATEWAY_DATABASE_URL", v)
    if (v := get("GATEWAY_ADMIN_TOKEN")) is not None:
        kwargs["admin_token"] = _token("GATEWAY_ADMIN_TOKEN", v)
    region = "FR"
    if (v := get("GATEWAY_DEFAULT_REGION")) is not None:
        region = kwargs["default_region"] = _region("GATEWAY_DEFAULT_REGION", v)
    if (v := get("GATEWAY_DIALIN_NUMBERS")) is not None:
        kwargs["dialin_numbers"] = _numbers("GATEWAY_DIALIN_NUMBERS", v, region)
    if (v := get("GATEWAY_RTP_TIMEOUT")) is not None:
        kwargs["rtp_timeout"] = _positive_float("GATEWAY_RTP_TIMEOUT", v)
    if (v := get("GATEWAY_LANGUAGE")) is not None:
        kwargs["language"] = _language("GATEWAY_LANGUAGE", v)
    if (v := get("GATEWAY_MENU_TIMEOUT")) is not None:
        kwargs["menu_timeout"] = _positive_float("GATEWAY_MENU_TIMEOUT", v)
    if (v := get("GATEWAY_DIGIT_TIMEOUT")) is not None:
        kwargs["digit_timeout"] = _positive_float("GATEWAY_DIGIT_TIMEOUT", v)
    if (v := get("GATEWAY_PIN_MAX_FAILURES")) is not None:
        kwargs["pin_max_failures"] = _positive_int("GATEWAY_PIN_MAX_FAILURES", v)
    if (v := get("GATEWAY_PIN_LOCKOUT_SECONDS")) is not None:
        kwargs["pin_lockout_seconds"] = _positive_float("GATEWAY_PIN_LOCKOUT_SECONDS", v)
    if (v := get("GATEWAY_SIP_PUBLIC_HOST")) is not None and v.strip():
        host = _host("GATEWAY_SIP_PUBLIC_HOST", v)
        try:
            if ipaddress.ip_address(host).is_unspecified:
                raise ConfigError("GATEWAY_SIP_PUBLIC_HOST", "must be a reachable address")
        except ValueError:
            raise ConfigError(
                "GATEWAY_SIP_PUBLIC_HOST", f"must be an IP address, not a name: {host!r}"
            ) from None
        kwargs["sip_public_host"] = host
    for name, key in (
        ("GATEWAY_MAX_CALLS_PER_SOURCE", "max_calls_per_source"),
        ("GATEWAY_MAX_PENDING_PER_SOURCE", "max_pending_per_source"),
        ("GATEWAY_MAX_CALLS", "max_calls"),
        ("GATEWAY_MAX_SETUPS", "max_setups"),
        ("GATEWAY_TCP_MAX_CONNECTIONS", "tcp_max_connections"),
        ("GATEWAY_TCP_MAX_PER_ADDRESS", "tcp_max_per_address"),
    ):
        if (v := get(name)) is not None:
            kwargs[key] = _positive_int(name, v)
    if (v := get("GATEWAY_TCP_IDLE_SECONDS")) is not None:
        kwargs["tcp_idle_seconds"] = _positive_float("GATEWAY_TCP_IDLE_SECONDS", v)
    if (v := get("GATEWAY_WEBRTC_HOST")) is not None and v.strip():
        host = _host("GATEWAY_WEBRTC_HOST", v)
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise ConfigError(
                "GATEWAY_WEBRTC_HOST", f"must be an IP address, not a name: {host!r}"
            ) from None
        kwargs["webrtc_host"] = host
    if (v := get("GATEWAY_ICE_SERVERS")) is not None:
        kwargs["ice_servers"] = _ice_servers("GATEWAY_ICE_SERVERS", v)
    if (v := get("GATEWAY_WEBHOOK_URL")) is not None and v.strip():
        kwargs["webhook_url"] = _url("GATEWAY_WEBHOOK_URL", v)
    if (v := get("GATEWAY_LOG_LEVEL")) is not None:
        level = v.strip().upper()
        if level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError("GATEWAY_LOG_LEVEL", f"expected DEBUG, INFO, WARNING or ERROR: {v!r}")
        kwargs["log_level"] = level
    if (v := get("GATEWAY_ROOM_CACHE_SECONDS")) is not None:
        kwargs["room_cache_seconds"] = (
            0.0 if v.strip() in ("0", "0.0") else _positive_float("GATEWAY_ROOM_CACHE_SECONDS", v)
        )
    if (v := get("GATEWAY_STATS_SECONDS")) is not None:
        kwargs["stats_seconds"] = _positive_float("GATEWAY_STATS_SECONDS", v)
    if (v := get("GATEWAY_MAX_BROWSER_LEGS")) is not None:
        kwargs["max_browser_legs"] = _positive_int("GATEWAY_MAX_BROWSER_LEGS", v)
    if (v := get("GATEWAY_LOG_FORMAT")) is not None:
        fmt = v.strip().lower()
        if fmt not in ("text", "json"):
            raise ConfigError("GATEWAY_LOG_FORMAT", f"expected text or json: {v!r}")
        kwargs["log_format"] = fmt
    if (v := get("GATEWAY_DRAIN_SECONDS")) is not None:
        kwargs["drain_seconds"] = (
            0.0 if v.strip() in ("0", "0.0") else _positive_float("GATEWAY_DRAIN_SECONDS", v)
        )
    if (v := get("GATEWAY_CDR_DAYS")) is not None:
        kwargs["cdr_days"] = _positive_int("GATEWAY_CDR_DAYS", v)
    if (v := get("GATEWAY_METRICS_TOKEN")) is not None:
        kwargs["metrics_token"] = _token("GATEWAY_METRICS_TOKEN", v)
    kwargs["extra"] = {k: v for k, v in values.items() if k.startswith("GATEWAY_")}
    return Settings(**kwargs)  # type: ignore[arg-type]
