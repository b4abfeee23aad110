"""RTP hijack: someone who sprays PCMU at every RTP port of the gateway neither hears the
room nor is heard in it, and the legs' own audio goes on undisturbed.

A real gateway (its RTP range known: we give it one), two PJSIP peers in one room (440 Hz
and 700 Hz, both recording), and an attacker: a plain UDP socket on 127.0.0.1 (the same
host as the peers, so only the exact latch protects them) sending a 1500 Hz tone as PCMU,
50 packets per second, to every even port of the range for a few seconds.
"""

from __future__ import annotations

import select
import socket
import struct
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.gateway_proc import GatewayProcess, start_gateway
from tests.peers.audio import assert_contains_tone, assert_lacks_tone, tone_presence
from tests.peers.fixtures import PeerFactory
from tests.peers.pcap import audio_packets

pytestmark = pytest.mark.interop

HOST = "127.0.0.1"
# below the Linux ephemeral range (where the peers' own RTP ports come from, which the
# spray must not hit) and outside the blocks tests.gateway_proc hands out (20000-27999)
RTP_LOW, RTP_HIGH = 28400, 28599
ATTACK_SECONDS = 4.0


@pytest.fixture
def hijack_gateway(tmp_path: Path) -> Iterator[GatewayProcess]:
    home = tmp_path / "gw"
    home.mkdir()
    yield from start_gateway(home, GATEWAY_RTP_PORTS=f"{RTP_LOW}-{RTP_HIGH}")


def _attack_payloads() -> list[bytes]:
    t = np.arange(8000) / 8000
    packets = audio_packets(0.5 * np.sin(2 * np.pi * 1500 * t), 8000, "PCMU")
    return [bytes(p.payload) for p in packets]


def spray(seconds: float) -> tuple[int, int, int]:
    """Send the 1500 Hz tone to every even port of the range; (sent, datagrams received,
    RTP packets received)."""
    payloads = _attack_payloads()
    ports = list(range(RTP_LOW, RTP_HIGH, 2))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((HOST, 0))
    sock.setblocking(False)
    sent = received = rtp = 0
    seq, ts = 1, 0
    start = time.monotonic()
    try:
        k = 0
        while time.monotonic() - start < seconds:
            payload = payloads[k % len(payloads)]
            header = struct.pack("!BBHII", 0x80, 0, seq & 0xFFFF, ts & 0xFFFFFFFF, 0x0BADF00D)
            for port in ports:
                try:
                    sock.sendto(header + payload, (HOST, port))
                    sent += 1
                except OSError:  # ICMP port unreachable from an earlier send
                    pass
            seq, ts, k = seq + 1, ts + 160, k + 1
            deadline = start + k * 0.020
            while True:
                wait = deadline - time.monotonic()
                ready, _, _ = select.select([sock], [], [], max(0.0, wait))
                if ready:
                    try:
                        data, _ = sock.recvfrom(2048)
                    except OSError:
                        continue
                    received += 1
                    if len(data) >= 12 and data[0] >> 6 == 2 and not 192 <= data[1] <= 223:
                        rtp += 1
                if wait <= 0:
                    break
        # anything still on its way
        end = time.monotonic() + 0.5
        while time.monotonic() < end:
            ready, _, _ = select.select([sock], [], [], 0.05)
            if ready:
                try:
                    data, _ = sock.recvfrom(2048)
                except OSError:
                    continue
                received += 1
                if len(data) >= 12 and data[0] >> 6 == 2 and not 192 <= data[1] <= 223:
                    rtp += 1
    finally:
        sock.close()
    return sent, received, rtp


def test_an_rtp_spray_neither_hears_nor_is_heard(
    hijack_gateway: GatewayProcess, peers: PeerFactory
) -> None:
    gateway = hijack_gateway
    room = gateway.create_room(name="hijack")
    uri = f"sip:{room['number']}@{HOST}:{gateway.sip_port}"
    heard_a, heard_b = peers.path("heard-a.wav"), peers.path("heard-b.wav")
    a = peers.pjsua_call(uri, play=peers.tone(440), record=heard_a, seconds=10, codecs=("PCMU",))
    a.wait_event("MEDIA", 10, status="ACTIVE")
    b = peers.pjsua_call(uri, play=peers.tone(700), record=heard_b, seconds=10, codecs=("PCMU",))
    b.wait_event("MEDIA", 10, status="ACTIVE")
    assert len(gateway.wait_participants(str(room["id"]), 2)) == 2
    time.sleep(1.5)  # both legs latched on their peers
    sent, received, rtp = spray(ATTACK_SECONDS)
    assert sent > 0.8 * ATTACK_SECONDS * 50 * len(range(RTP_LOW, RTP_HIGH, 2))
    for peer in (a, b):
        result = peer.wait_result(30)
        assert result.ok, peer.output()
    assert rtp <= 2, f"the attacker got {rtp} RTP packets ({received} datagrams)"
    for heard in (heard_a, heard_b):
        assert_lacks_tone(heard, 1500, skip_seconds=1.0)
    assert_contains_tone(heard_a, 700, skip_seconds=1.5)
    assert_contains_tone(heard_b, 440, skip_seconds=1.5)
    # the attack did not cut the room's audio: 700 Hz is there (almost) all the time
    presence = tone_presence(heard_a, 700, window=0.1, skip_seconds=2.5, tail_seconds=1.0)
    assert presence > 0.9, presence
