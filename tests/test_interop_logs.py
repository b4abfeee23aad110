"""Structured logs of a real gateway (``GATEWAY_LOG_FORMAT=json``, ``DEBUG``): a PJSIP caller
with a phone number dials a room with a PIN, types it (RFC 4733) and joins; a join page is
fetched with its link token. Every line the process wrote parses as JSON, a line about the
call carries its SIP Call-ID (read from PJSIP's own log) and the room id, and neither the
PIN, nor the admin token, nor the link token, nor the caller's full number is anywhere."""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path

import pytest

from tests.gateway_proc import ADMIN_TOKEN, start_gateway
from tests.peers.fixtures import PeerFactory

pytestmark = pytest.mark.interop

HOST = "127.0.0.1"
PIN = "80716253"
CALLER = "+33612345678"


def test_json_logs_carry_call_ids_and_no_secrets(tmp_path: Path, peers: PeerFactory) -> None:
    pj_log = peers.path("pjsip.log")
    for gateway in start_gateway(
        tmp_path, GATEWAY_LOG_FORMAT="json", GATEWAY_LOG_LEVEL="DEBUG", GATEWAY_LANGUAGE="en"
    ):
        room = gateway.create_room(name="logged", pin=PIN)
        link = str(room["links"]["guest"]).replace("http://127.0.0.1:8080", gateway.base_url)
        with urllib.request.urlopen(link, timeout=10) as page:
            assert page.status == 200
        caller = peers.pjsua_call(
            f"sip:{room['number']}@{HOST}:{gateway.sip_port}",
            user=CALLER,
            dtmf=PIN + "#",
            dtmf_at=1.0,
            seconds=8,
            codecs=("PCMU",),
            log=pj_log,
        )
        caller.wait_event("CONFIRMED", 10)
        joined = gateway.wait_participants(str(room["id"]), 1)
        deadline_joined = [p for p in joined if p["state"] == "joined"]
        assert deadline_joined, joined
        assert caller.wait_result(30).ok, caller.output()
    text = gateway.log()
    entries = [json.loads(line) for line in text.splitlines()]  # every line is JSON
    assert all({"time", "level", "logger", "message"} <= entry.keys() for entry in entries)
    found = re.search(r"^Call-ID:\s*(\S+)", pj_log.read_text(errors="replace"), re.MULTILINE)
    assert found, "no Call-ID in PJSIP's log"
    call_id = found[1]
    about = [e for e in entries if e.get("call_id") == call_id]
    assert any(e.get("room_id") == room["id"] for e in about), [e["message"] for e in about]
    token = link.split("token=", 1)[1]
    for secret in (PIN, ADMIN_TOKEN, token, CALLER, CALLER[1:]):
        assert secret not in text, secret
