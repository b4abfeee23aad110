"""baresip 1.0.0, a real and independent SIP stack, as a caller of rooms on the gateway.

Signalling: baresip dials in (UDP and TCP), shows up as a ``sip`` participant, hangs up and is
gone; the gateway hangs up on it (participant removed, room deleted) with a BYE baresip sees.
Media: baresip (G.722) and a PJSIP caller (PCMU) hear each other's tone and not their own;
muting baresip through the API takes its tone out of what the other leg hears, and unmuting
brings it back.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.gateway_proc import GatewayProcess, gateway  # noqa: F401  (fixture)
from tests.peers.audio import (
    assert_contains_tone,
    assert_lacks_tone,
    read_wav,
    wav_duration,
    write_wav,
)
from tests.peers.baresip import Baresip
from tests.peers.fixtures import PeerFactory

pytestmark = pytest.mark.interop

HOST = "127.0.0.1"
BARESIP_TONE = 700
PJSUA_TONE = 440


def room_uri(gateway: GatewayProcess, room: dict[str, Any]) -> str:  # noqa: F811
    return f"sip:{room['number']}@{HOST}:{gateway.sip_port}"


def tcp_peers_of(port: int) -> list[int]:
    """Remote ports of the established IPv4 TCP connections accepted on local ``port``."""
    found = []
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state = fields[1], fields[2], fields[3]
        if state == "01" and int(local.rsplit(":", 1)[1], 16) == port:
            found.append(int(remote.rsplit(":", 1)[1], 16))
    return found


def only_participant(gateway: GatewayProcess, room_id: str) -> dict[str, Any]:  # noqa: F811
    found = gateway.wait_participants(room_id, 1)
    assert len(found) == 1, found
    return dict(found[0])


def participant_named(
    gateway: GatewayProcess,  # noqa: F811
    room_id: str,
    name: str,
    count: int,  # noqa: F811
) -> dict[str, Any]:
    found = gateway.wait_participants(room_id, count)
    assert len(found) == count, found
    matching = [p for p in found if p["display_name"] == name]
    assert len(matching) == 1, found
    return dict(matching[0])


def dial_in(bob: Baresip, gateway: GatewayProcess, room: dict[str, Any]) -> dict[str, Any]:  # noqa: F811
    """baresip calls the room; over TCP (its account's transport), check it really is TCP."""
    before = set(tcp_peers_of(gateway.sip_port))
    bob.dial(room_uri(gateway, room))
    established = bob.wait_event("CALL_ESTABLISHED", timeout=10)
    if bob.transport == "tcp":
        assert established["peeruri"].endswith(";transport=tcp"), established
        assert set(tcp_peers_of(gateway.sip_port)) - before, "no new TCP connection to the gateway"
    return established


def wait_hung_up_on(bob: Baresip) -> None:
    """baresip saw the call end by the far end's BYE (its own hang-up says "...by user")."""
    closed = bob.wait_event("CALL_CLOSED", timeout=10)
    assert closed["param"] == "Connection reset by peer", closed


def wav_slice(src: Path, dst: Path, start: float, end: float) -> Path:
    """Copy seconds ``[start, end)`` of a recording to ``dst`` (for analysing one phase)."""
    rate, samples = read_wav(src)
    part = samples[int(start * rate) : int(end * rate)]
    assert len(part) >= rate // 2, (
        f"{src}: slice {start:.2f}-{end:.2f}s too short (recording {len(samples) / rate:.2f}s)"
    )
    write_wav(dst, rate, part)
    return dst


# -- signalling ------------------------------------------------------------------------------
def test_baresip_calls_in_and_hangs_up(
    gateway: GatewayProcess,  # noqa: F811
    peers: PeerFactory,  # noqa: F811
) -> None:
    room = gateway.create_room(name="baresip in")
    bob = peers.baresip("bob", tone_hz=BARESIP_TONE)
    dial_in(bob, gateway, room)
    participant = only_participant(gateway, room["id"])
    assert participant["kind"] == "sip"
    assert participant["state"] == "joined"
    assert participant["muted"] is False
    assert participant["display_name"] == "bob"
    bob.hangup()
    bob.wait_event("CALL_CLOSED", timeout=10)
    assert gateway.wait_participants(room["id"], 0) == []


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_removing_the_participant_hangs_up_on_baresip(
    gateway: GatewayProcess,  # noqa: F811
    peers: PeerFactory,
    transport: str,  # noqa: F811
) -> None:
    room = gateway.create_room(name=f"baresip removed {transport}")
    bob = peers.baresip(
        "bob", tone_hz=BARESIP_TONE, transport="tcp" if transport == "tcp" else None
    )
    dial_in(bob, gateway, room)
    pid = only_participant(gateway, room["id"])["id"]
    status, body = gateway.api("DELETE", f"/api/rooms/{room['id']}/participants/{pid}")
    assert status == 204, body
    wait_hung_up_on(bob)
    assert gateway.participants(room["id"]) == []
    status, body = gateway.api("DELETE", f"/api/rooms/{room['id']}/participants/{pid}")
    assert status == 404, body


def test_deleting_the_room_hangs_up_on_baresip(
    gateway: GatewayProcess,  # noqa: F811
    peers: PeerFactory,  # noqa: F811
) -> None:
    room = gateway.create_room(name="baresip room deleted")
    bob = peers.baresip("bob", tone_hz=BARESIP_TONE)
    dial_in(bob, gateway, room)
    only_participant(gateway, room["id"])
    status, body = gateway.api("DELETE", f"/api/rooms/{room['id']}")
    assert status == 204, body
    wait_hung_up_on(bob)
    status, body = gateway.api("GET", f"/api/rooms/{room['id']}/participants")
    assert status == 404, body


def test_baresip_over_tcp(gateway: GatewayProcess, peers: PeerFactory) -> None:  # noqa: F811
    room = gateway.create_room(name="baresip tcp")
    bob = peers.baresip("bob", tone_hz=BARESIP_TONE, transport="tcp")
    dial_in(bob, gateway, room)
    assert only_participant(gateway, room["id"])["kind"] == "sip"
    bob.hangup()
    closed = bob.wait_event("CALL_CLOSED", timeout=10)
    assert closed["param"] == "Connection reset by user", closed
    assert gateway.wait_participants(room["id"], 0) == []


# -- media -----------------------------------------------------------------------------------
def test_baresip_g722_and_pjsua_pcmu_hear_each_other(
    gateway: GatewayProcess,  # noqa: F811
    peers: PeerFactory,  # noqa: F811
) -> None:
    room = gateway.create_room(name="baresip audio")
    uri = room_uri(gateway, room)
    bob = peers.baresip("bob", tone_hz=BARESIP_TONE, codecs=["G722"])
    dial_in(bob, gateway, room)
    heard_by_pjsua = peers.path("pjsua-heard.wav")
    alice = peers.pjsua_call(
        uri,
        play=peers.tone(PJSUA_TONE),
        record=heard_by_pjsua,
        seconds=6,
        codecs=("PCMU",),
        max_seconds=30,
    )
    assert alice.wait_event("MEDIA", 10, status="ACTIVE")["codec"].startswith("PCMU")
    assert len(gateway.wait_participants(room["id"], 2)) == 2
    result = alice.wait_result(30)
    assert result.ok, alice.output()
    bob.hangup()
    bob.wait_event("CALL_CLOSED", timeout=10)
    bob.wait_recordings_final(timeout=5)
    heard_by_bob = bob.last_recording("dec")
    assert "Set audio decoder: G722 16000Hz" in bob.output(), bob.output()
    assert "Set audio encoder: G722 16000Hz" in bob.output(), bob.output()
    # (baresip's first seconds alone in the room are silence, which moves no tone ratio)
    assert_contains_tone(heard_by_bob, PJSUA_TONE, skip_seconds=1.0)
    assert_lacks_tone(heard_by_bob, BARESIP_TONE, skip_seconds=1.0)
    assert_contains_tone(heard_by_pjsua, BARESIP_TONE, skip_seconds=1.5)
    assert_lacks_tone(heard_by_pjsua, PJSUA_TONE, skip_seconds=1.5)


def test_muting_baresip_through_the_api(
    gateway: GatewayProcess,  # noqa: F811
    peers: PeerFactory,  # noqa: F811
) -> None:
    room = gateway.create_room(name="baresip mute")
    uri = room_uri(gateway, room)
    bob = peers.baresip("bob", tone_hz=BARESIP_TONE, codecs=["G722"])
    dial_in(bob, gateway, room)
    heard = peers.path("pjsua-heard.wav")
    alice = peers.pjsua_call(
        uri,
        play=peers.tone(PJSUA_TONE),
        record=heard,
        seconds=9.5,
        codecs=("PCMU",),
        max_seconds=30,
    )
    alice.wait_event("MEDIA", 10, status="ACTIVE")
    started = time.monotonic()  # pjsua's recorder starts with the call's media
    pid = participant_named(gateway, room["id"], "bob", 2)["id"]
    mute_path = f"/api/rooms/{room['id']}/participants/{pid}/mute"

    time.sleep(3.0)
    status, body = gateway.api("POST", mute_path, {"muted": True})
    muted_at = time.monotonic() - started
    assert status == 200, body
    assert body["id"] == pid and body["muted"] is True
    assert participant_named(gateway, room["id"], "bob", 2)["muted"] is True

    time.sleep(3.0)
    status, body = gateway.api("POST", mute_path, {"muted": False})
    unmuted_at = time.monotonic() - started
    assert status == 200, body
    assert body["muted"] is False

    result = alice.wait_result(30)
    assert result.ok, alice.output()
    bob.hangup()
    bob.wait_event("CALL_CLOSED", timeout=10)
    end = wav_duration(heard)
    before = wav_slice(heard, peers.path("before.wav"), 1.0, muted_at - 0.2)
    during = wav_slice(heard, peers.path("during.wav"), muted_at + 0.5, unmuted_at - 0.2)
    after = wav_slice(heard, peers.path("after.wav"), unmuted_at + 0.5, end - 0.5)
    assert_contains_tone(before, BARESIP_TONE, skip_seconds=0)
    assert_lacks_tone(during, BARESIP_TONE, skip_seconds=0)
    assert_contains_tone(after, BARESIP_TONE, skip_seconds=0)
