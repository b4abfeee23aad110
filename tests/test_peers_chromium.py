"""Self-test of the headless Chromium harness in tests/peers/chromium.py, without the gateway.

A tiny page served from 127.0.0.1 measures the fake mic (a 1000 Hz WAV) with WebAudio, sends
it through a loopback RTCPeerConnection pair and measures the received track, and lists
the ICE candidates a plain RTCPeerConnection gathers with the harness's flags.
"""

from __future__ import annotations

import http.server
import ipaddress
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from peers import chromium
from peers.chromium import Browser, tone_wav

pytestmark = [
    pytest.mark.interop,
    pytest.mark.skipif(not chromium.available(), reason="chromium/chromedriver/selenium missing"),
    pytest.mark.timeout(60),
]

TONE_HZ = 1000.0
TOLERANCE_HZ = 30.0
#: below this the analyser sees nothing (digital silence is -Infinity, JSON null)
MIN_DB = -70.0

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>tone</title></head>
<body><p id="status">loading</p><input id="name"><button id="go">go</button>
<script>
let ctx = null, analyser = null;
const keep = [];
const RAW = {echoCancellation: false, noiseSuppression: false, autoGainControl: false};
document.getElementById('go').onclick = () => {
  document.getElementById('status').textContent = 'hello ' + document.getElementById('name').value;
};
function setStatus(s) { document.getElementById('status').textContent = s; }
async function analyse(stream) {
  if (!ctx) ctx = new AudioContext();
  const src = ctx.createMediaStreamSource(stream);
  analyser = ctx.createAnalyser();
  analyser.fftSize = 8192;
  analyser.smoothingTimeConstant = 0;
  src.connect(analyser);
  keep.push(src, stream);
  await ctx.resume();
}
// Peak of the spectrum: {freq (Hz), db (dBFS, null for silence), rate, state}
window.measure = function () {
  if (!analyser) return null;
  const bins = new Float32Array(analyser.frequencyBinCount);
  analyser.getFloatFrequencyData(bins);
  let best = 1;
  for (let i = 2; i < bins.length; i++) if (bins[i] > bins[best]) best = i;
  return {freq: best * ctx.sampleRate / analyser.fftSize,
          db: isFinite(bins[best]) ? bins[best] : null,
          rate: ctx.sampleRate, state: ctx.state};
};
window.startMic = async function () {
  const s = await navigator.mediaDevices.getUserMedia({audio: true});
  await analyse(s);
  setStatus('mic');
  return s.getAudioTracks()[0].label;
};
// pc1 (fake mic) -> pc2; measure what pc2 receives. withElement: the muted <audio> trick.
window.startLoopback = async function (withElement) {
  const mic = await navigator.mediaDevices.getUserMedia({audio: RAW});
  const pc1 = new RTCPeerConnection(), pc2 = new RTCPeerConnection();
  keep.push(pc1, pc2);
  pc1.onicecandidate = e => e.candidate && pc2.addIceCandidate(e.candidate);
  pc2.onicecandidate = e => e.candidate && pc1.addIceCandidate(e.candidate);
  const gotTrack = new Promise(r => { pc2.ontrack = r; });
  mic.getTracks().forEach(t => pc1.addTrack(t, mic));
  await pc1.setLocalDescription(await pc1.createOffer());
  await pc2.setRemoteDescription(pc1.localDescription);
  await pc2.setLocalDescription(await pc2.createAnswer());
  await pc1.setRemoteDescription(pc2.localDescription);
  const ev = await gotTrack;
  const remote = ev.streams[0] || new MediaStream([ev.track]);
  if (withElement) {
    const el = new Audio();
    el.muted = true;
    el.srcObject = remote;
    document.body.appendChild(el);
    keep.push(el);
    await el.play();
  }
  await analyse(remote);
  window.pcs = [pc1, pc2];
  setStatus('loopback');
  return true;
};
window.gather = async function () {
  const pc = new RTCPeerConnection();
  const found = [];
  pc.onicecandidate = e => { if (e.candidate) found.push(e.candidate.candidate); };
  pc.createDataChannel('probe');
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise(resolve => {
    if (pc.iceGatheringState === 'complete') resolve();
    pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && resolve();
    setTimeout(resolve, 8000);
  });
  pc.close();
  return found;
};
setStatus('ready');
</script></body></html>
"""


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server API
        if self.path.split("?")[0] not in ("/", "/index.html"):
            self.send_error(404)
            return
        body = PAGE.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def page_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, name="tone-page", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def tone_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tone_wav(tmp_path_factory.mktemp("chromium") / "tone1000.wav", TONE_HZ, seconds=10)


@pytest.fixture(scope="module")
def browser(tone_file: Path) -> Iterator[Browser]:
    with Browser(tone_file) as b:
        yield b


def _open(b: Browser, url: str) -> None:
    b.open(url)
    b.wait_for("return document.getElementById('status').textContent === 'ready'", 10)


def _wait_tone(b: Browser, timeout: float = 8.0) -> dict[str, Any]:
    """Wait until the analyser hears something, then return the peak of a later frame."""
    b.wait_for(
        f"const m = window.measure(); return !!m && m.db !== null && m.db > {MIN_DB}", timeout
    )
    time.sleep(0.3)
    m = b.js("return window.measure()")
    assert isinstance(m, dict)
    return m


@pytest.mark.parametrize("tool", ["sox", "numpy"])
def test_tone_wav_is_a_tone(
    tool: str, tmp_path: Path, tone_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from peers.audio import dominant_frequencies, read_wav

    path = tone_file
    if tool == "numpy":
        monkeypatch.setattr(chromium.shutil, "which", lambda name: None)
        path = tone_wav(tmp_path / "numpy.wav", TONE_HZ, seconds=2)
    rate, samples = read_wav(path)
    assert rate == 48000
    assert abs(len(samples) / rate - (10 if tool == "sox" else 2)) < 0.01
    assert abs(dominant_frequencies(samples, rate, 1)[0][0] - TONE_HZ) < 5
    assert 0.45 < float(abs(samples).max()) < 0.55


def test_fake_mic_tone_measured_by_webaudio(browser: Browser, page_url: str) -> None:
    _open(browser, page_url)
    label = browser.js("return window.startMic()")
    assert label  # "Fake Default Audio Input"
    m = _wait_tone(browser)
    assert m["state"] == "running"
    assert abs(m["freq"] - TONE_HZ) <= TOLERANCE_HZ, m
    assert browser.text("#status") == "mic"


def test_remote_track_tone_measured_through_loopback_peer_connection(
    browser: Browser, page_url: str
) -> None:
    _open(browser, page_url)
    assert browser.js("return window.startLoopback(true)") is True
    browser.wait_for(
        "return window.pcs[1].connectionState === 'connected' && "
        "window.pcs[1].getReceivers()[0].track.readyState === 'live'",
        10,
    )
    m = _wait_tone(browser)
    assert abs(m["freq"] - TONE_HZ) <= TOLERANCE_HZ, (m, chromium.REMOTE_TRACK_TRICK)


def test_ice_candidates_are_real_ipv4_not_mdns(browser: Browser, page_url: str) -> None:
    _open(browser, page_url)
    found = browser.js("return window.gather()")
    assert isinstance(found, list) and found, found
    addresses = [c.split()[4] for c in found]
    assert not [a for a in addresses if a.endswith(".local")], found
    ipv4 = {a for a in addresses if _is_ipv4(a)}
    assert ipv4, found
    assert "127.0.0.1" in ipv4, (found, chromium.CANDIDATES)


def _is_ipv4(text: str) -> bool:
    try:
        return isinstance(ipaddress.ip_address(text), ipaddress.IPv4Address)
    except ValueError:
        return False


def test_page_helpers_and_console_log(browser: Browser, page_url: str) -> None:
    _open(browser, page_url)
    browser.console_log()  # drain
    browser.type("#name", "Ada")
    browser.click("#go")
    assert browser.wait_for(lambda: browser.text("#status") == "hello Ada", 5)
    browser.js("console.warn('harness-marker', arguments[0])", 42)
    logs = browser.wait_for(
        lambda: [e for e in browser.console_log() if "harness-marker" in e["message"]], 5
    )
    assert logs[0]["level"] == "WARNING"
    with pytest.raises(TimeoutError):
        browser.wait_for("return false", 0.3)


def test_kill_removes_every_chromium_process(tone_file: Path, page_url: str) -> None:
    b = Browser(tone_file).start()
    try:
        _open(b, page_url)
        pids = b.browser_pids()
        assert len(pids) >= 2  # browser + renderer/zygote/utility processes at least
        b.kill()
        time.sleep(0.2)
        alive = [p for p in pids if _alive(p)]
        assert not alive, alive
        assert b.browser_pids() == []
    finally:
        b.close()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X") and os.path.exists(f"/proc/{pid}")
