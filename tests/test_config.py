"""Configuration: every contract variable, bad values naming the variable, .env handling."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import ConfigError, Settings, load_settings

FULL = {
    "GATEWAY_HTTP_HOST": "0.0.0.0",
    "GATEWAY_HTTP_PORT": "9090",
    "GATEWAY_SIP_HOST": "10.0.0.5",
    "GATEWAY_SIP_PORT": "5080",
    "GATEWAY_SIP_DOMAIN": "visio.example.org",
    "GATEWAY_PUBLIC_URL": "https://meet.example.org/",
    "GATEWAY_RTP_PORTS": "30000-30100",
    "GATEWAY_DATABASE_URL": "postgresql://gw:secret@db.example.org/gateway",
    "GATEWAY_ADMIN_TOKEN": "a-very-long-admin-token",
    "GATEWAY_DIALIN_NUMBERS": "+33186950000, 01 86 95 00 01,+14155550100",
    "GATEWAY_DEFAULT_REGION": "fr",
    "GATEWAY_RTP_TIMEOUT": "30",
    "GATEWAY_LANGUAGE": "EN",
    "GATEWAY_MENU_TIMEOUT": "90",
    "GATEWAY_DIGIT_TIMEOUT": "3.5",
    "GATEWAY_PIN_MAX_FAILURES": "5",
    "GATEWAY_PIN_LOCKOUT_SECONDS": "60",
    "GATEWAY_SIP_PUBLIC_HOST": "203.0.113.7",
    "GATEWAY_MAX_CALLS_PER_SOURCE": "10",
    "GATEWAY_MAX_PENDING_PER_SOURCE": "3",
    "GATEWAY_TCP_MAX_CONNECTIONS": "200",
    "GATEWAY_TCP_MAX_PER_ADDRESS": "8",
    "GATEWAY_TCP_IDLE_SECONDS": "30",
    "GATEWAY_WEBRTC_HOST": "198.51.100.4",
    "GATEWAY_ICE_SERVERS": "stun:stun.example.org:3478, turn:bob:pa:ss@turn.example.org?transport=tcp",
    "GATEWAY_MAX_BROWSER_LEGS": "50",
    "GATEWAY_WEBHOOK_URL": "https://hooks.example.org/gateway",
    "GATEWAY_MAX_CALLS": "300",
    "GATEWAY_MAX_SETUPS": "40",
    "GATEWAY_ROOM_CACHE_SECONDS": "0",
    "GATEWAY_LOG_LEVEL": "debug",
    "GATEWAY_STATS_SECONDS": "5",
    "GATEWAY_LOG_FORMAT": "JSON",
    "GATEWAY_DRAIN_SECONDS": "30",
    "GATEWAY_CDR_DAYS": "7",
    "GATEWAY_METRICS_TOKEN": "metrics-token-0123456789",
}


def test_defaults_match_the_contract() -> None:
    settings = load_settings({}, env_file=None)
    assert settings == Settings()
    assert (settings.http_host, settings.http_port) == ("127.0.0.1", 8080)
    assert (settings.sip_host, settings.sip_port) == ("127.0.0.1", 5060)
    assert settings.sip_domain == "localhost"
    assert settings.public_url == "http://127.0.0.1:8080"
    assert settings.rtp_ports == (20000, 29999)
    assert settings.database_url == "sqlite:///gateway.db"
    assert settings.admin_token is None
    assert settings.dialin_numbers == ()
    assert settings.default_region == "FR"
    assert settings.language == "fr"
    assert (settings.menu_timeout, settings.digit_timeout) == (120.0, 5.0)
    assert (settings.pin_max_failures, settings.pin_lockout_seconds) == (20, 600.0)
    assert settings.sip_public_host is None
    assert (settings.webrtc_host, settings.ice_servers) == (None, ())
    assert (settings.max_calls, settings.max_setups) == (1000, 200)
    assert (settings.room_cache_seconds, settings.log_level) == (2.0, "INFO")
    assert settings.stats_seconds == 60.0
    assert (settings.log_format, settings.drain_seconds) == ("text", 0.0)
    assert (settings.cdr_days, settings.metrics_token) == (90, None)


def test_every_variable_is_read() -> None:
    settings = load_settings(FULL, env_file=None)
    assert settings.http_host == "0.0.0.0"
    assert settings.http_port == 9090
    assert settings.sip_host == "10.0.0.5"
    assert settings.sip_port == 5080
    assert settings.sip_domain == "visio.example.org"
    assert settings.public_url == "https://meet.example.org"
    assert settings.rtp_ports == (30000, 30100)
    assert settings.database_url == "postgresql://gw:secret@db.example.org/gateway"
    assert settings.admin_token == "a-very-long-admin-token"
    assert settings.dialin_numbers == ("+33186950000", "+33186950001", "+14155550100")
    assert settings.default_region == "FR"
    assert settings.rtp_timeout == 30.0
    assert settings.language == "en"
    assert (settings.menu_timeout, settings.digit_timeout) == (90.0, 3.5)
    assert (settings.pin_max_failures, settings.pin_lockout_seconds) == (5, 60.0)
    assert settings.sip_public_host == "203.0.113.7"
    assert (settings.max_calls_per_source, settings.max_pending_per_source) == (10, 3)
    assert (settings.tcp_max_connections, settings.tcp_max_per_address) == (200, 8)
    assert settings.tcp_idle_seconds == 30.0
    assert settings.webrtc_host == "198.51.100.4"
    assert [s.as_browser() for s in settings.ice_servers] == [
        {"urls": ["stun:stun.example.org:3478"]},
        {
            "urls": ["turn:turn.example.org?transport=tcp"],
            "username": "bob",
            "credential": "pa:ss",
        },
    ]
    assert settings.max_browser_legs == 50
    assert settings.webhook_url == "https://hooks.example.org/gateway"
    assert (settings.max_calls, settings.max_setups) == (300, 40)
    assert (settings.room_cache_seconds, settings.log_level) == (0.0, "DEBUG")
    assert settings.stats_seconds == 5.0
    assert (settings.log_format, settings.drain_seconds) == ("json", 30.0)
    assert (settings.cdr_days, settings.metrics_token) == (7, "metrics-token-0123456789")
    assert settings.sip_uri("1234567890") == "sip:1234567890@visio.example.org"
    assert (
        settings.join_url("1234567890", "tok")
        == "https://meet.example.org/join/1234567890?token=tok"
    )


def test_empty_admin_token_means_generate() -> None:
    assert load_settings({"GATEWAY_ADMIN_TOKEN": ""}, env_file=None).admin_token is None


def test_region_applies_to_numbers_without_plus() -> None:
    settings = load_settings(
        {"GATEWAY_DEFAULT_REGION": "US", "GATEWAY_DIALIN_NUMBERS": "(415) 555-0100"},
        env_file=None,
    )
    assert settings.dialin_numbers == ("+14155550100",)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("GATEWAY_HTTP_HOST", ""),
        ("GATEWAY_HTTP_HOST", "not a host!"),
        ("GATEWAY_HTTP_PORT", "http"),
        ("GATEWAY_HTTP_PORT", "0"),
        ("GATEWAY_SIP_HOST", "bad host"),
        ("GATEWAY_SIP_PORT", "70000"),
        ("GATEWAY_SIP_DOMAIN", "exa mple.org"),
        ("GATEWAY_PUBLIC_URL", "ftp://example.org"),
        ("GATEWAY_PUBLIC_URL", "example.org"),
        ("GATEWAY_RTP_PORTS", "20000"),
        ("GATEWAY_RTP_PORTS", "30000-20000"),
        ("GATEWAY_RTP_PORTS", "20000-20001"),
        ("GATEWAY_RTP_PORTS", "a-b"),
        ("GATEWAY_DATABASE_URL", "not a url"),
        ("GATEWAY_DATABASE_URL", "mysql://localhost/db"),
        ("GATEWAY_ADMIN_TOKEN", "short"),
        ("GATEWAY_ADMIN_TOKEN", "has a space in the middle"),
        ("GATEWAY_DIALIN_NUMBERS", "+33186950000,hello"),
        ("GATEWAY_DIALIN_NUMBERS", "+331"),
        ("GATEWAY_DEFAULT_REGION", "XX"),
        ("GATEWAY_RTP_TIMEOUT", "soon"),
        ("GATEWAY_RTP_TIMEOUT", "-1"),
        ("GATEWAY_LANGUAGE", "de"),
        ("GATEWAY_MENU_TIMEOUT", "0"),
        ("GATEWAY_DIGIT_TIMEOUT", "x"),
        ("GATEWAY_PIN_MAX_FAILURES", "0"),
        ("GATEWAY_PIN_MAX_FAILURES", "2.5"),
        ("GATEWAY_PIN_LOCKOUT_SECONDS", "-3"),
        ("GATEWAY_SIP_PUBLIC_HOST", "0.0.0.0"),
        ("GATEWAY_SIP_PUBLIC_HOST", "gw.example.org"),
        ("GATEWAY_MAX_CALLS_PER_SOURCE", "0"),
        ("GATEWAY_TCP_IDLE_SECONDS", "never"),
        ("GATEWAY_WEBRTC_HOST", "webrtc.example.org"),
        ("GATEWAY_ICE_SERVERS", "http://stun.example.org"),
        ("GATEWAY_ICE_SERVERS", "turn:turn.example.org"),
        ("GATEWAY_ICE_SERVERS", "stun:stun.example.org:99999"),
        ("GATEWAY_ICE_SERVERS", "stun:"),
        ("GATEWAY_MAX_BROWSER_LEGS", "0"),
        ("GATEWAY_WEBHOOK_URL", "hooks.example.org"),
        ("GATEWAY_MAX_CALLS", "0"),
        ("GATEWAY_MAX_SETUPS", "-5"),
        ("GATEWAY_ROOM_CACHE_SECONDS", "-1"),
        ("GATEWAY_LOG_LEVEL", "chatty"),
        ("GATEWAY_STATS_SECONDS", "0"),
        ("GATEWAY_LOG_FORMAT", "xml"),
        ("GATEWAY_DRAIN_SECONDS", "-1"),
        ("GATEWAY_CDR_DAYS", "0"),
        ("GATEWAY_METRICS_TOKEN", "short"),
    ],
)
def test_bad_value_names_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({variable: value}, env_file=None)
    assert caught.value.variable == variable
    message = str(caught.value)
    assert message.startswith(f"{variable}: ")
    assert "\n" not in message


def test_env_file_is_read(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("GATEWAY_HTTP_PORT=8181\nGATEWAY_SIP_DOMAIN=from-file.example.org\n")
    settings = load_settings({}, env_file=str(env))
    assert settings.http_port == 8181
    assert settings.sip_domain == "from-file.example.org"


def test_environment_beats_env_file(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("GATEWAY_HTTP_PORT=8181\nGATEWAY_SIP_PORT=5070\n")
    settings = load_settings({"GATEWAY_HTTP_PORT": "8282"}, env_file=str(env))
    assert settings.http_port == 8282
    assert settings.sip_port == 5070


def test_bad_value_in_env_file_names_the_variable(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("GATEWAY_SIP_PORT=99999\n")
    with pytest.raises(ConfigError, match="^GATEWAY_SIP_PORT: "):
        load_settings({}, env_file=str(env))


def test_missing_env_file_is_fine(tmp_path: Path) -> None:
    assert load_settings({}, env_file=str(tmp_path / "absent.env")) == Settings()


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(AttributeError):
        settings.http_port = 1  # type: ignore[misc]
