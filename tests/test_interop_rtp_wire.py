"""What the gateway puts on the wire for one leg, read by aiortc's independent parsers:
symmetric RTP (media goes where the caller's RTP comes from, not to the SDP port, as behind a
NAT), RTCP sender reports whose report block accounts for the packets we left out, and no
media while the caller holds the call."""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import AsyncIterator

import numpy as np
import pytest
from aiortc.rtp import RtcpPacket, RtcpSrPacket, RtpPacket

from media.codecs import get_codec
from sip.dialog import CallEnded, CallEstablished, ReinviteAnswered
from sip.endpoint import SipEndpoint
from sip.message import NameAddr, SipUri
from sip.sdp import SessionDescription, make_offer, negotiate_answer
from tests.gateway_proc import GatewayProcess, gateway  # noqa: F401  (fixture)
from tests.peers.net import free_rtp_port_pair
from tests.peers.uac import EventLog

pytestmark = pytest.mark.interop

HOST = "127.0.0.1"
SSRC = 0x1234ABCD


class Collector(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.packets: list[bytes] = []

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.packets.append(data)


async def udp(port: int) -> tuple[asyncio.DatagramTransport, Collector]:
    loop = asyncio.get_running_loop()
    transport, collector = await loop.create_datagram_endpoint(
        Collector, local_addr=(HOST, port), family=socket.AF_INET
    )
    return transport, collector  # type: ignore[return-value]


@pytest.fixture
async def caller() -> AsyncIterator[tuple[SipEndpoint, EventLog]]:
    events = EventLog()
    endpoint = SipEndpoint(HOST, 0, events)
    await endpoint.start()
    try:
        yield endpoint, events
    finally:
        await endpoint.stop()


async def test_symmetric_rtp_rtcp_reports_and_hold(
    gateway: GatewayProcess,  # noqa: F811
    caller: tuple[SipEndpoint, EventLog],  # noqa: F811
) -> None:
    endpoint, events = caller
    room = gateway.create_room(name="wire")
    sdp_port = free_rtp_port_pair()  # written in our SDP; RTCP expected on sdp_port + 1
    sdp_rtp, at_sdp_port = await udp(sdp_port)
    sdp_rtcp, rtcp_in = await udp(sdp_port + 1)
    nat_rtp, at_nat_port = await udp(0)  # where our RTP really comes from
    try:
        session_id = secrets.randbelow(2**31)
        offer = make_offer(
            local_address=HOST,
            audio_port=sdp_port,
            session_id=session_id,
            session_version=0,
            codecs=("PCMU",),
        )
        call = endpoint.dial(
            SipUri.parse(f"sip:{room['number']}@{HOST}:{gateway.sip_port}"),
            from_=NameAddr.parse(f"<sip:wire@{HOST}:{endpoint.port}>"),
            offer=str(offer),
        )
        established = await events.next(CallEstablished)
        assert established.sdp is not None
        negotiated = negotiate_answer(offer, SessionDescription.parse(established.sdp))
        assert negotiated is not None and negotiated.codec.name == "PCMU"
        target = (negotiated.remote_address, negotiated.remote_port)

        # 7 s of a 1 kHz tone, every 10th packet left out (10 % loss), 20 ms apart.
        encoder = get_codec("PCMU").new_encoder()
        t = np.arange(160) / 8000
        loop = asyncio.get_running_loop()
        start = loop.time()
        for seq in range(350):
            pcm = (10000 * np.sin(2 * np.pi * 1000 * (t + seq * 0.02))).astype(np.int16)
            packet = RtpPacket(
                payload_type=0,
                sequence_number=seq,
                timestamp=seq * 160,
                ssrc=SSRC,
                payload=encoder.encode(pcm),
            )
            if seq % 10 != 5:
                nat_rtp.sendto(packet.serialize(), target)
            await asyncio.sleep(max(0.0, start + (seq + 1) * 0.02 - loop.time()))

        # Symmetric RTP: the gateway answers to the port our packets came from.
        assert len(at_nat_port.packets) > 200
        assert len(at_sdp_port.packets) < 10  # at most the first few, before latching
        replies = [RtpPacket.parse(p) for p in at_nat_port.packets]
        assert {p.payload_type for p in replies} == {0}
        assert len({p.ssrc for p in replies}) == 1
        seqs = [p.sequence_number for p in replies]
        assert all((b - a) & 0xFFFF == 1 for a, b in zip(seqs, seqs[1:], strict=False))

        # RTCP: sender reports from the gateway's SSRC, with a report block on ours.
        reports = [
            packet
            for datagram in rtcp_in.packets
            for packet in RtcpPacket.parse(datagram)
            if isinstance(packet, RtcpSrPacket)
        ]
        assert reports, f"no RTCP SR among {len(rtcp_in.packets)} datagrams"
        last = reports[-1]
        assert last.ssrc == replies[0].ssrc
        assert 0 < last.sender_info.packet_count <= len(replies)
        assert last.sender_info.octet_count == 160 * last.sender_info.packet_count
        [block] = [r for r in last.reports if r.ssrc == SSRC]
        # exactly the packets we left out up to the highest sequence number it had seen
        highest = block.highest_sequence
        assert 20 <= highest < 350
        assert block.packets_lost == sum(1 for s in range(highest + 1) if s % 10 == 5)
        assert 15 <= block.fraction_lost <= 40  # about 10 % of 256

        # Hold (our re-INVITE a=sendonly): the gateway stops sending; unhold: it resumes.
        async def count_in(seconds: float) -> int:
            before = len(at_nat_port.packets)
            await asyncio.sleep(seconds)
            return len(at_nat_port.packets) - before

        for version, (direction, expected) in enumerate(
            (("sendonly", "recvonly"), ("sendrecv", "sendrecv")), start=1
        ):
            reoffer = make_offer(
                local_address=HOST,
                audio_port=sdp_port,
                session_id=session_id,
                session_version=version,
                codecs=("PCMU",),
                direction=direction,
            )
            endpoint.reinvite(call, str(reoffer))
            answered = await events.next(ReinviteAnswered)
            assert answered.sdp is not None
            assert SessionDescription.parse(answered.sdp).media[0].direction == expected
            await asyncio.sleep(0.2)  # packets already on their way
            if direction == "sendonly":
                assert await count_in(1.0) <= 1
            else:
                assert await count_in(1.0) >= 40
        endpoint.hangup(call)
        await events.next(CallEnded)
    finally:
        for transport in (sdp_rtp, sdp_rtcp, nat_rtp):
            transport.close()
