"""The join page in a real headless Firefox ESR (its fake microphone plays a 1 kHz tone), with
PJSIP in the same room: the page reaches ``joined``, the SIP leg records Firefox's tone, and
the page's WebAudio analyser finds the SIP leg's tone."""

from __future__ import annotations

import time

import pytest

from tests.gateway_proc import GatewayProcess, gateway  # noqa: F401  (fixture)
from tests.peers import firefox
from tests.peers.audio import assert_contains_tone
from tests.peers.fixtures import PeerFactory
from tests.peers.join_page import join, link, measured_peak

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(not firefox.available(), reason="firefox, geckodriver or selenium missing"),
]

HOST = "127.0.0.1"


#: Keeps the page's RTCPeerConnection reachable (window.__pcs) without changing it.
KEEP_PEER_CONNECTIONS = """
const Original = window.RTCPeerConnection;
window.__pcs = [];
window.RTCPeerConnection = function (config) {
  const pc = new Original(config);
  window.__pcs.push(pc);
  return pc;
};
window.RTCPeerConnection.prototype = Original.prototype;
"""

#: The nominated candidate pair's local and remote addresses, and the offered candidates.
SELECTED_PAIR = """
const pc = window.__pcs[window.__pcs.length - 1];
const stats = await pc.getStats();
const byId = new Map();
stats.forEach(r => byId.set(r.id, r));
let pair = null;
stats.forEach(r => {
  if (r.type === "candidate-pair" && r.nominated && r.state === "succeeded") { pair = r; }
});
const offered = pc.localDescription.sdp.split("\\r\\n").filter(l => l.startsWith("a=candidate"));
if (!pair) { return {local: null, remote: null, offered}; }
return {
  local: byId.get(pair.localCandidateId).address,
  remote: byId.get(pair.remoteCandidateId).address,
  offered
};
"""


def test_firefox_guest_link_reaches_joined(gateway: GatewayProcess) -> None:  # noqa: F811
    room = gateway.create_room(name="firefox guest")
    with firefox.Browser() as browser:
        browser.open(link(gateway, room, "guest"))
        browser.js(KEEP_PEER_CONNECTIONS)
        browser.type("#name", "Firefox")
        browser.click("#join")
        browser.wait_for('return document.getElementById("status").textContent === "joined"', 20)
        [member] = gateway.participants(str(room["id"]))
        assert member["display_name"] == "Firefox" and member["kind"] == "browser", member
        # the loopback prefs work: Firefox offers 127.0.0.1 and ICE runs over it
        pair = browser.js("return (async () => {" + SELECTED_PAIR + "})()")
        assert any(" 127.0.0.1 " in c for c in pair["offered"]), pair
        assert not any(".local " in c for c in pair["offered"]), pair
        assert (pair["local"], pair["remote"]) == ("127.0.0.1", "127.0.0.1"), pair


def test_firefox_talks_with_a_sip_phone(
    gateway: GatewayProcess,  # noqa: F811
    peers: PeerFactory,
) -> None:
    room = gateway.create_room(name="firefox and phone")
    heard_sip = peers.path("sip-heard.wav")
    sip = peers.pjsua_call(
        f"sip:{room['number']}@{HOST}:{gateway.sip_port}",
        play=peers.tone(440),
        record=heard_sip,
        seconds=14,
        codecs=("PCMU",),
    )
    sip.wait_event("CONFIRMED", 10)
    with firefox.Browser() as browser:
        join(browser, link(gateway, room, "guest"), "Firefox")
        kinds = {p["display_name"]: p["kind"] for p in gateway.participants(str(room["id"]))}
        assert kinds["Firefox"] == "browser", kinds
        peaks = measured_peak(browser)
        assert len(peaks) >= 8 and sum(abs(p - 440) < 30 for p in peaks) >= 0.8 * len(peaks), (
            peaks,
            browser.console_log(),
        )
        time.sleep(2)
    assert sip.wait_result(30).ok, sip.output()
    assert_contains_tone(heard_sip, firefox.FAKE_TONE_HZ, skip_seconds=4.0)
