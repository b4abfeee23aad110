"""The phone menu end to end: real callers (sipp, PJSIP) dial the dial-in number, type the
conference code (and PIN) as RFC 4733 events, SIP INFO or in-band tones, and must end up in
the room, or be told goodbye and hung up on (BYE) after three wrong tries, silence, or a
locked room. Checked through the REST participant list and what the callers heard.

Timelines are given in seconds after the ACK (sipp pcaps carry their own timing): the
English welcome prompt lasts about 6.6 s, "joining" about 2 s; digits are typed while the
prompts play (type-ahead), as the contract allows.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.gateway_proc import GatewayProcess, start_gateway
from tests.peers import sipp
from tests.peers.audio import (
    assert_contains_tone,
    describe,
    file_tone_stats,
    read_wav,
    write_wav,
)
from tests.peers.fixtures import PeerFactory
from tests.peers.pcap import (
    dtmf_schedule,
    inband_dtmf_packets,
    silence_packets,
    write_pcap,
)
from tests.peers.sipp import SippResult, in_background

pytestmark = pytest.mark.interop

HOST = "127.0.0.1"
DIALIN = "+33186950000"
PIN, HOST_PIN = "4321", "9876"
ROOM_TONE, CALLER_TONE = 700, 440


# -- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    yield from start_gateway(
        tmp_path_factory.mktemp("menu-gateway"),
        GATEWAY_DIALIN_NUMBERS=DIALIN,
        GATEWAY_LANGUAGE="en",
    )


@contextmanager
def own_gateway(tmp_path: Path, **env: str) -> Iterator[GatewayProcess]:
    """A gateway of the test's own (short timeouts), stopped when the block ends."""
    yield from start_gateway(tmp_path, GATEWAY_DIALIN_NUMBERS=DIALIN, GATEWAY_LANGUAGE="en", **env)


# -- helpers ----------------------------------------------------------------------------------
def code_of(room: dict[str, Any]) -> str:
    code = str(room["dial_in"]["code"])
    assert code.isdigit(), room
    return code


def wrong_code(gateway: GatewayProcess, room: dict[str, Any]) -> str:
    """A 10-digit code that is no room's."""
    status, rooms = gateway.api("GET", "/api/rooms")
    assert status == 200, rooms
    taken = {str(r["dial_in"]["code"]) for r in rooms} | {str(r["number"]) for r in rooms}
    candidate = int(code_of(room))
    while str(candidate).zfill(10) in taken:
        candidate = (candidate + 1) % 10**10
    return str(candidate).zfill(10)


def rfc4733_pcap(
    path: Path, groups: list[tuple[float, str]], payload_type: int = 101
) -> tuple[Path, int]:
    """A pcap of RFC 4733 digit groups ``[(seconds after the ACK, digits), ...]`` and the
    ``lead_ms`` to give the scenario: sipp plays a pcap's first packet at once, so the first
    group's delay is the scenario's pause before it starts playing."""
    first = groups[0][0]
    shifted = [(start - first, digits) for start, digits in groups]
    return write_pcap(path, dtmf_schedule(shifted, payload_type=payload_type)), int(first * 1000)


def context(gateway: GatewayProcess, result: SippResult | None = None) -> str:
    """What a failure message shows: sipp's summary and the gateway log without HTTP lines."""
    text = result.summary() if result is not None else ""
    log = [ln for ln in gateway.log().splitlines() if "aiohttp.access" not in ln]
    return text + "\n--- gateway log (tail) ---\n" + "\n".join(log[-60:])


def poll_until(
    gateway: GatewayProcess,
    room_id: str,
    predicate: Callable[[list[dict[str, Any]]], bool],
    deadline: float,
    call: Future[SippResult] | None = None,
    what: str = "",
) -> list[dict[str, Any]]:
    """Poll the room's participants until ``predicate`` holds; fail at ``deadline``
    (monotonic) or when the sipp call ended first."""
    seen: list[dict[str, Any]] = []
    while True:
        seen = gateway.participants(room_id)
        if predicate(seen):
            return seen
        if call is not None and call.done():
            result = call.result()
            pytest.fail(
                f"call ended before {what}: participants {seen}\n{context(gateway, result)}"
            )
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}: participants {seen}\n{context(gateway)}")
        time.sleep(0.2)


def joined(kind: str, role: str = "guest") -> Callable[[list[dict[str, Any]]], bool]:
    def check(found: list[dict[str, Any]]) -> bool:
        return any(
            p["kind"] == kind and p["state"] == "joined" and p["role"] == role for p in found
        )

    return check


def finish(call: Future[SippResult], gateway: GatewayProcess, timeout: float = 40.0) -> SippResult:
    result = call.result(timeout)
    assert result.ok, context(gateway, result)
    return result


def assert_emptied(gateway: GatewayProcess, room_id: str) -> None:
    """After the caller's BYE it is no longer in the room."""
    left = gateway.wait_participants(room_id, 0, timeout=5)
    assert left == [], left


def phone_joins(
    gateway: GatewayProcess,
    room: dict[str, Any],
    start: Callable[[], Future[SippResult]],
    join_by: float,
    kind: str = "phone",
    role: str = "guest",
) -> dict[str, Any]:
    """Start a call, wait (up to ``join_by`` s after its start) until it is a joined
    participant of ``kind``/``role``, let it hang up, check it left; returns the participant."""
    t0 = time.monotonic()
    call = start()
    found = poll_until(
        gateway, str(room["id"]), joined(kind, role), t0 + join_by, call, f"a joined {kind} {role}"
    )
    [participant] = [p for p in found if p["kind"] == kind]
    assert participant["state"] == "joined" and participant["role"] == role, participant
    assert participant["muted"] is False, participant
    assert len(found) == 1, found
    finish(call, gateway)
    assert_emptied(gateway, str(room["id"]))
    return participant


# -- 1, 9: RFC 4733, every form of the dial-in number ------------------------------------------
@pytest.mark.parametrize(
    ("number", "payload_type"),
    [(DIALIN, 101), (DIALIN, 96), ("33186950000", 101), ("0186950000", 101)],
    ids=["e164-pt101", "e164-pt96", "without-plus", "national"],
)
def test_code_as_rfc4733_joins_as_phone(
    gateway: GatewayProcess, tmp_path: Path, number: str, payload_type: int
) -> None:
    room = gateway.create_room(name=f"rfc4733 {number} {payload_type}")
    # code + '#' from 1.0 s (ends 3.6 s), typed over the welcome prompt; the call stays 17 s.
    pcap, lead = rfc4733_pcap(tmp_path / "code.pcap", [(1.0, code_of(room) + "#")], payload_type)
    phone_joins(
        gateway,
        room,
        lambda: in_background(
            sipp.run_dialin_dtmf,
            HOST,
            gateway.sip_port,
            number,
            pcap,
            16000,
            te_pt=payload_type,
            lead_ms=lead,
            timeout=35,
        ),
        join_by=15.0,
    )


# -- 2: SIP INFO ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["dtmf-relay", "dtmf"])
def test_code_as_sip_info_joins_as_phone(
    gateway: GatewayProcess, tmp_path: Path, kind: str
) -> None:
    room = gateway.create_room(name=f"info {kind}")
    silence = write_pcap(tmp_path / "silence.pcap", silence_packets(15.0))
    # one INFO per digit from 1.0 s, 200 ms apart (each must get a 200), then 13 s up.
    phone_joins(
        gateway,
        room,
        lambda: in_background(
            sipp.run_dialin_info,
            HOST,
            gateway.sip_port,
            DIALIN,
            code_of(room) + "#",
            kind=kind,
            silence=silence,
            start_ms=1000,
            gap_ms=200,
            pause_ms=13000,
            timeout=35,
        ),
        join_by=15.0,
    )


# -- 3: in-band tones ----------------------------------------------------------------------------
def test_code_as_inband_tones_joins_as_phone(gateway: GatewayProcess, tmp_path: Path) -> None:
    room = gateway.create_room(name="inband")
    # PCMU only, no telephone-event: a continuous 17 s PCMU stream, the code's tones from 1.0 s.
    pcap = write_pcap(
        tmp_path / "inband.pcap",
        inband_dtmf_packets(code_of(room) + "#", start=1.0, total_seconds=17.0),
    )
    phone_joins(
        gateway,
        room,
        lambda: in_background(
            sipp.run_dialin_inband, HOST, gateway.sip_port, DIALIN, pcap, 17500, timeout=35
        ),
        join_by=16.0,
    )


# -- 4: audio crosses between a dial-in caller and a room system ---------------------------------
def wav_slice(src: Path, dst: Path, start: float, end: float | None = None) -> Path:
    rate, samples = read_wav(src)
    part = samples[int(start * rate) : None if end is None else int(end * rate)]
    assert len(part) >= rate, (
        f"{src}: slice {start:.2f}-{end}s too short ({len(samples) / rate:.2f}s)"
    )
    write_wav(dst, rate, part)
    return dst


def assert_no_steady_tone(path: Path, freq: float) -> None:
    """No steady tone at ``freq``: the prompts' speech has harmonics near any frequency (a
    band ratio of a few percent, prominence below ~100), a tone heard through the mix stands
    out of the median band by many orders of magnitude (1e6 and more here)."""
    stats = file_tone_stats(path, freq, skip_seconds=0.0)
    assert stats.prominence < 1000 or stats.tone_rms < 1e-3, describe(path, 0.0, [freq])


@pytest.mark.parametrize("method", ["rfc4733", "info"])
def test_dialin_caller_and_room_hear_each_other(
    gateway: GatewayProcess, peers: PeerFactory, method: str
) -> None:
    room = gateway.create_room(name=f"audio {method}")
    room_id = str(room["id"])
    system_heard, phone_heard = peers.path("system.wav"), peers.path("phone.wav")
    system = peers.pjsua_call(
        f"sip:{room['number']}@{HOST}:{gateway.sip_port}",
        play=peers.tone(ROOM_TONE),
        record=system_heard,
        seconds=22,
        codecs=("PCMU",),
        max_seconds=40,
    )
    system.wait_event("CONFIRMED", 10)
    system_confirmed = time.monotonic()
    poll_until(gateway, room_id, joined("sip"), time.monotonic() + 5, what="the room system")
    phone = peers.pjsua_call(
        f"sip:{DIALIN}@{HOST}:{gateway.sip_port}",
        play=peers.tone(CALLER_TONE),
        record=phone_heard,
        seconds=17,
        codecs=("PCMU", "PCMA", "G722"),
        dtmf=code_of(room) + "#",
        dtmf_method=method,
        dtmf_at=1.0,
        max_seconds=40,
    )
    phone.wait_event("CONFIRMED", 10)
    confirmed = time.monotonic()
    phone.wait_event("DTMF_SENT", 5)
    poll_until(
        gateway,
        room_id,
        lambda ps: joined("phone")(ps) and len(ps) == 2,
        confirmed + 14,
        what="the dial-in caller in the room",
    )
    joined_after = time.monotonic() - confirmed  # seconds into the phone's recording
    system_lead = confirmed - system_confirmed  # the system's recording began that much earlier
    phone_result = phone.wait_result(30)
    assert phone_result.ok, phone.output()
    system_result = system.wait_result(30)
    assert system_result.ok, system.output()
    # Both hung up themselves (code 200 on their side), the gateway did not.
    assert [e["code"] for e in phone.events if e.name == "DISCONNECTED"] == ["200"], phone.output()
    assert joined_after < 13.0, joined_after
    # In the menu the caller hears a spoken prompt, not the room; the room does not hear it.
    rate, heard = read_wav(phone_heard)
    assert float(np.sqrt(np.mean(heard[:rate] ** 2))) > 0.01, "no prompt in the first second"
    menu = min(joined_after - 1.0, 5.0)
    assert_no_steady_tone(
        wav_slice(phone_heard, peers.path("phone-menu.wav"), 0.5, menu), ROOM_TONE
    )
    assert_no_steady_tone(
        wav_slice(
            system_heard, peers.path("system-menu.wav"), system_lead + 0.5, system_lead + menu
        ),
        CALLER_TONE,
    )
    # Once joined, each hears the other's tone.
    assert_contains_tone(
        wav_slice(phone_heard, peers.path("phone-joined.wav"), joined_after + 1.0),
        ROOM_TONE,
        skip_seconds=0.0,
    )
    assert_contains_tone(
        wav_slice(
            system_heard,
            peers.path("system-joined.wav"),
            system_lead + joined_after + 1.0,
            system_lead + joined_after + 5.0,
        ),
        CALLER_TONE,
        skip_seconds=0.0,
    )


# -- 5: wrong code, PIN, host PIN, direct dial of a PIN room -------------------------------------
def test_three_wrong_codes_get_goodbye_and_bye(gateway: GatewayProcess, tmp_path: Path) -> None:
    room = gateway.create_room(name="wrong code")
    bad = wrong_code(gateway, room) + "#"
    # three wrong codes at 1, 7 and 13 s (each 2.6 s long); the BYE must follow the third.
    pcap, lead = rfc4733_pcap(tmp_path / "wrong.pcap", [(1.0, bad), (7.0, bad), (13.0, bad)])
    t0 = time.monotonic()
    call = in_background(
        sipp.run_dialin_expect_bye,
        HOST,
        gateway.sip_port,
        DIALIN,
        pcap,
        29000,
        lead_ms=lead,
        timeout=40,
    )
    while not call.done():
        assert gateway.participants(str(room["id"])) == []
        time.sleep(0.3)
    elapsed = time.monotonic() - t0
    result = call.result()
    assert result.ok, context(gateway, result)
    assert elapsed > 15.5, f"BYE after {elapsed:.1f}s: before the third wrong code was typed"
    assert gateway.participants(str(room["id"])) == []


def test_three_wrong_pins_get_goodbye_and_bye(gateway: GatewayProcess, tmp_path: Path) -> None:
    room = gateway.create_room(name="wrong pin", pin=PIN)
    pcap, lead = rfc4733_pcap(
        tmp_path / "wrong-pin.pcap",
        [(1.0, code_of(room) + "#"), (8.0, "1111#"), (13.0, "2222#"), (18.0, "3333#")],
    )
    t0 = time.monotonic()
    call = in_background(
        sipp.run_dialin_expect_bye,
        HOST,
        gateway.sip_port,
        DIALIN,
        pcap,
        31000,
        lead_ms=lead,
        timeout=42,
    )
    while not call.done():
        assert gateway.participants(str(room["id"])) == []
        time.sleep(0.3)
    elapsed = time.monotonic() - t0
    result = call.result()
    assert result.ok, context(gateway, result)
    assert elapsed > 19.0, f"BYE after {elapsed:.1f}s: before the third wrong PIN was typed"


@pytest.mark.parametrize(
    ("pin", "role"), [(PIN, "guest"), (HOST_PIN, "organiser")], ids=["pin", "host-pin"]
)
def test_pin_room_asks_for_the_pin_then_joins(
    gateway: GatewayProcess, tmp_path: Path, pin: str, role: str
) -> None:
    room = gateway.create_room(name=f"pin {role}", pin=PIN, host_pin=HOST_PIN)
    # code at 1 s; the PIN at 8 s, while (or after) the PIN prompt plays; joined by ~20 s.
    pcap, lead = rfc4733_pcap(tmp_path / "pin.pcap", [(1.0, code_of(room) + "#"), (8.0, pin + "#")])
    phone_joins(
        gateway,
        room,
        lambda: in_background(
            sipp.run_dialin_dtmf,
            HOST,
            gateway.sip_port,
            DIALIN,
            pcap,
            21000,
            lead_ms=lead,
            timeout=40,
        ),
        join_by=21.0,
        role=role,
    )


def test_pin_room_without_its_pin_is_not_joined(gateway: GatewayProcess, tmp_path: Path) -> None:
    """The code alone does not let a caller into a PIN room (it is asked for the PIN)."""
    room = gateway.create_room(name="pin only code", pin=PIN)
    pcap, lead = rfc4733_pcap(tmp_path / "code.pcap", [(1.0, code_of(room) + "#")])
    call = in_background(
        sipp.run_dialin_dtmf, HOST, gateway.sip_port, DIALIN, pcap, 11000, lead_ms=lead, timeout=30
    )
    while not call.done():
        assert gateway.participants(str(room["id"])) == []
        time.sleep(0.3)
    # The call stayed up for the whole 12 s (the gateway waits for the PIN), then hung up by us.
    finish(call, gateway)


@pytest.mark.parametrize(
    ("pin", "role"), [(PIN, "guest"), (HOST_PIN, "organiser")], ids=["pin", "host-pin"]
)
def test_direct_dial_of_a_pin_room_asks_for_the_pin(
    gateway: GatewayProcess, tmp_path: Path, pin: str, role: str
) -> None:
    room = gateway.create_room(name=f"direct pin {role}", pin=PIN, host_pin=HOST_PIN)
    # answered 200 (no longer 403); the PIN at 2 s, over the PIN prompt.
    pcap, lead = rfc4733_pcap(tmp_path / "pin.pcap", [(2.0, pin + "#")])
    phone_joins(
        gateway,
        room,
        lambda: in_background(
            sipp.run_dialin_dtmf,
            HOST,
            gateway.sip_port,
            str(room["number"]),
            pcap,
            14000,
            lead_ms=lead,
            timeout=35,
        ),
        join_by=15.0,
        kind="sip",
        role=role,
    )


# -- 6: silence ------------------------------------------------------------------------------------
def test_caller_who_types_nothing_gets_bye_after_the_menu_timeout(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    with own_gateway(tmp_path_factory.mktemp("menu-timeout"), GATEWAY_MENU_TIMEOUT="4") as gw:
        silence = write_pcap(tmp_path / "silence.pcap", silence_packets(14.0))
        t0 = time.monotonic()
        result = sipp.run_dialin_expect_bye(HOST, gw.sip_port, DIALIN, silence, 14000, timeout=25)
        elapsed = time.monotonic() - t0
        assert result.ok, context(gw, result)
        # 4 s in the menu, then a short goodbye (and at most the welcome finishing): not the
        # default 120 s, and not at once.
        assert 3.8 <= elapsed <= 11.0, f"BYE after {elapsed:.1f}s\n{context(gw, result)}"


# -- 7: lockout --------------------------------------------------------------------------------------
def test_wrong_pins_lock_the_room_for_the_window(
    tmp_path_factory: pytest.TempPathFactory, tmp_path: Path
) -> None:
    with own_gateway(
        tmp_path_factory.mktemp("menu-lockout"),
        GATEWAY_PIN_MAX_FAILURES="3",
        GATEWAY_PIN_LOCKOUT_SECONDS="6",
    ) as gw:
        room = gw.create_room(name="lockout", pin=PIN)
        room_id, code = str(room["id"]), code_of(room) + "#"
        # Three callers at once: the code at 0.5 s, a wrong PIN at 8 s (its '#' at ~9.2 s):
        # three failures within a second lock the room until about 15 s.
        wrong, lead = rfc4733_pcap(tmp_path / "wrong.pcap", [(0.5, code), (8.0, "0000#")])
        # A fourth caller, at the same time, types the right PIN at 10.5 s ('#' at ~11.7 s),
        # inside the lockout: it must not join, hears "locked" and gets a BYE.
        early, _ = rfc4733_pcap(tmp_path / "early.pcap", [(0.5, code), (10.5, PIN + "#")])
        # A fifth caller starts at 12 s and types the right PIN at 8 s (~21 s overall, 6 s
        # after the lockout ended): it joins.
        late, _ = rfc4733_pcap(tmp_path / "late.pcap", [(0.5, code), (8.0, PIN + "#")])
        t0 = time.monotonic()
        failing = [
            in_background(
                sipp.run_dialin_dtmf,
                HOST,
                gw.sip_port,
                DIALIN,
                wrong,
                10500,
                lead_ms=lead,
                timeout=30,
            )
            for _ in range(3)
        ]
        locked_out = in_background(
            sipp.run_dialin_expect_bye,
            HOST,
            gw.sip_port,
            DIALIN,
            early,
            25500,
            lead_ms=lead,
            timeout=35,
        )
        while time.monotonic() < t0 + 12.0:
            assert gw.participants(room_id) == [], context(gw)
            time.sleep(0.3)
        admitted = in_background(
            sipp.run_dialin_dtmf, HOST, gw.sip_port, DIALIN, late, 19500, lead_ms=lead, timeout=35
        )
        found = poll_until(
            gw,
            room_id,
            joined("phone"),
            t0 + 12.0 + 19.0,
            admitted,
            "the caller after the lockout window",
        )
        assert len(found) == 1, found  # only the late caller: the locked-out one never joined
        for call in failing:
            assert not call.result(30).timed_out
        result = locked_out.result(35)
        assert result.ok, f"the caller during the lockout got no BYE\n{context(gw, result)}"
        finish(admitted, gw)
        assert_emptied(gw, room_id)


# -- 8: *6 toggles the caller's own mute --------------------------------------------------------------
def test_star_six_toggles_own_mute(gateway: GatewayProcess, tmp_path: Path) -> None:
    room = gateway.create_room(name="star six")
    room_id = str(room["id"])
    # code at 1 s (joined by ~9 s), *6 at 13 s, *6 again at 20 s, BYE at 25 s.
    pcap, lead = rfc4733_pcap(
        tmp_path / "mute.pcap", [(1.0, code_of(room) + "#"), (13.0, "*6"), (20.0, "*6")]
    )
    t0 = time.monotonic()
    call = in_background(
        sipp.run_dialin_dtmf, HOST, gateway.sip_port, DIALIN, pcap, 24000, lead_ms=lead, timeout=40
    )
    [before] = poll_until(
        gateway, room_id, joined("phone"), t0 + 12.5, call, "the caller joined before its *6"
    )
    assert before["muted"] is False, before
    [muted] = poll_until(
        gateway,
        room_id,
        lambda ps: len(ps) == 1 and ps[0]["muted"] is True,
        t0 + 19.5,
        call,
        "muted: true after *6",
    )
    assert muted["id"] == before["id"]
    assert time.monotonic() > t0 + 13.0, "muted before *6 was typed"
    [unmuted] = poll_until(
        gateway,
        room_id,
        lambda ps: len(ps) == 1 and ps[0]["muted"] is False,
        t0 + 24.5,
        call,
        "muted: false after the second *6",
    )
    assert unmuted["id"] == before["id"] and unmuted["state"] == "joined"
    assert time.monotonic() > t0 + 20.0, "unmuted before the second *6 was typed"
    finish(call, gateway)
    assert_emptied(gateway, room_id)


def test_wait_for_host_holds_a_phone_and_a_browser_until_the_organiser_is_in(
    gateway: GatewayProcess, tmp_path: Path
) -> None:
    from concurrent.futures import ThreadPoolExecutor
    from urllib.parse import urlsplit

    from tests.peers.webrtc_client import run_client

    room = gateway.create_room(name="wait for host", host_pin=HOST_PIN, wait_for_host=True)
    rid = str(room["id"])
    # a guest phone dials the room and types # alone (a host-PIN-only room lets guests in)
    guest_pcap, guest_lead = rfc4733_pcap(tmp_path / "guest.pcap", [(2.0, "#")])
    guest_phone = in_background(
        sipp.run_dialin_dtmf,
        HOST,
        gateway.sip_port,
        str(room["number"]),
        guest_pcap,
        40000,
        lead_ms=guest_lead,
        timeout=60,
    )
    token = urlsplit(room["links"]["guest"]).query.removeprefix("token=")
    with ThreadPoolExecutor(1) as pool:
        browser = pool.submit(
            run_client,
            gateway.base_url,
            str(room["number"]),
            token,
            name="Early",
            seconds=3,
            timeout=90,
        )
        deadline = time.monotonic() + 25
        while time.monotonic() < deadline:
            found = gateway.participants(rid)
            if len(found) == 2:
                break
            time.sleep(0.3)
        assert sorted(p["kind"] for p in found) == ["browser", "sip"], found
        time.sleep(2)
        assert {p["state"] for p in gateway.participants(rid)} == {"waiting"}
        # the organiser arrives by the host PIN: everyone is let in
        host_pcap, host_lead = rfc4733_pcap(tmp_path / "host.pcap", [(2.0, HOST_PIN + "#")])
        organiser = in_background(
            sipp.run_dialin_dtmf,
            HOST,
            gateway.sip_port,
            str(room["number"]),
            host_pcap,
            20000,
            lead_ms=host_lead,
            timeout=45,
        )
        deadline = time.monotonic() + 25
        while time.monotonic() < deadline:
            states = {p["role"]: p["state"] for p in gateway.participants(rid)}
            if states.get("organiser") == "joined":
                break
            time.sleep(0.3)
        everyone = gateway.participants(rid)
        assert len(everyone) == 3 and {p["state"] for p in everyone} == {"joined"}, everyone
        result = browser.result(90)
    assert result.states() == ["waiting", "joined"], result.messages
    finish(organiser, gateway)
    # the organiser left: the guest phone stays in
    assert [p["kind"] for p in gateway.participants(rid)] == ["sip"]
    finish(guest_phone, gateway, timeout=60)
