"""A real browser for tests: headless Debian Chromium driven by selenium, fake mic from a WAV.

Findings (Chromium 156, Debian bookworm, headless=new), checked by tests/test_peers_chromium.py:

* Fake media: ``--use-fake-ui-for-media-stream`` (no permission prompt) plus
  ``--use-fake-device-for-media-stream`` and ``--use-file-for-fake-audio-capture=<wav>``
  make ``getUserMedia({audio: true})`` return the WAV, looped (no ``%noloop`` suffix).
  The page must be a secure context: ``http://127.0.0.1`` / ``http://localhost`` are.
* ICE candidates: Chromium hides host IPs behind ``<uuid>.local`` mDNS names, which aiortc
  cannot resolve, and never gathers loopback. ``--disable-features=WebRtcHideLocalIpsWithMdns``
  (plus the equivalent pref ``webrtc.local_ips_allowed_urls=["*"]``, set too) gives real IPs;
  ``--allow-loopback-in-peer-connection`` adds 127.0.0.1 and ::1. Details: ``CANDIDATES``.
* Remote-track measurement: WebAudio on a remote track is silent unless the stream is also
  playing in a (muted) ``<audio>`` element. Details: ``REMOTE_TRACK_TRICK``.

API: :func:`available`, :func:`tone_wav`, :class:`Browser` (context manager: ``open``,
``js``, ``wait_for``, ``text``, ``click``, ``type``, ``console_log``, ``kill``, ``close``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import wave
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.peers.webdriver import WebDriverBrowser

CHROMIUM_CANDIDATES = ("/usr/bin/chromium", "/usr/lib/chromium/chromium")
CHROMEDRIVER_CANDIDATES = ("/usr/bin/chromedriver",)

#: Features switched off: real host IPs in ICE candidates, never ``<uuid>.local`` names.
DISABLE_FEATURES = ("WebRtcHideLocalIpsWithMdns",)
#: Profile prefs (the WebRtcLocalIpsAllowedUrls policy as a pref): the same, by another road.
PREFS: dict[str, Any] = {"webrtc": {"local_ips_allowed_urls": ["*"]}}

CANDIDATES = """\
What a plain RTCPeerConnection (one data channel, no getUserMedia) on http://127.0.0.1
gathers, per flag set (host with lo 127.0.0.1/::1 and eth0 192.0.2.2/fd00::2):

* no WebRTC flags, no --use-fake-ui-for-media-stream: only ``<uuid>.local`` (mDNS) names,
  which aiortc cannot resolve;
* --use-fake-ui-for-media-stream alone (media permission granted on a secure origin):
  192.0.2.2 and fd00::2 - no mDNS, but no loopback either;
* --disable-features=WebRtcHideLocalIpsWithMdns, or the pref
  webrtc.local_ips_allowed_urls=["*"]: real IPs even where no media permission is granted
  (checked on the insecure origin http://192.0.2.2); both are set here;
* all of the above + --allow-loopback-in-peer-connection (what Browser uses):
  127.0.0.1, 192.0.2.2, ::1, fd00::2 as udp host candidates (and tcp active, port 9, each).
  Loopback needs the flag *and* the media permission: without --use-fake-ui-for-media-stream,
  or on an insecure origin (http://192.0.2.2, no permission possible), only 192.0.2.2 and
  fd00::2 appear. So serve test pages from http://127.0.0.1 or http://localhost.
"""

REMOTE_TRACK_TRICK = """\
A remote WebRTC audio track fed only into createMediaStreamSource() gives digital silence
(getFloatFrequencyData all -Infinity) in headless Chromium. Also attach the remote stream to
a media element and play it: ``el = new Audio(); el.muted = true; el.srcObject = stream;
await el.play()`` - muted is enough, the WebAudio branch then carries the tone.

Also: getUserMedia({audio: true}) runs noise suppression / AGC, which fade a steady test
tone by about 20 dB within 3 s (the frequency stays right). For stable levels ask for
{echoCancellation: false, noiseSuppression: false, autoGainControl: false}.
"""


def _find(candidates: Sequence[str], name: str) -> str | None:
    for c in candidates:
        if os.access(c, os.X_OK):
            return c
    return shutil.which(name)


def chromium_path() -> str | None:
    return _find(CHROMIUM_CANDIDATES, "chromium")


def chromedriver_path() -> str | None:
    return _find(CHROMEDRIVER_CANDIDATES, "chromedriver")


def available() -> bool:
    """True when chromium, chromedriver and selenium are all there."""
    if chromium_path() is None or chromedriver_path() is None:
        return False
    try:
        import selenium.webdriver  # noqa: F401
    except ImportError:
        return False
    return True


# -- fake microphone -----------------------------------------------------------------
def tone_wav(path: str | Path, freq_hz: float, seconds: float = 30, rate: int = 48000) -> Path:
    """Write a mono 16-bit WAV of one sine (half scale) to ``path``; sox, else numpy."""
    path = Path(path)
    sox = shutil.which("sox")
    if sox is not None:
        subprocess.run(
            [
                sox,
                "-n",
                "-r",
                str(rate),
                "-c",
                "1",
                "-b",
                "16",
                str(path),
                "synth",
                str(seconds),
                "sine",
                str(freq_hz),
                "vol",
                "0.5",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        return path
    import numpy as np

    n = int(round(seconds * rate))
    t = np.arange(n, dtype=np.float64) / rate
    pcm = (0.5 * 32767 * np.sin(2.0 * np.pi * freq_hz * t)).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


# -- the browser -----------------------------------------------------------------------
class Browser(WebDriverBrowser):
    """Headless Chromium with a fake mic playing ``wav`` (looped) and WebRTC on loopback.

    ``with Browser(wav) as b: b.open(url); b.wait_for("return window.ready")``.
    """

    def __init__(
        self,
        wav: str | Path | None = None,
        *,
        lang: str | None = None,
        extra_args: Sequence[str] = (),
        page_load_timeout: float = 20.0,
        microphone: str = "granted",
    ) -> None:
        if not available():
            raise RuntimeError("chromium, chromedriver or selenium missing")
        super().__init__()
        self.wav = Path(wav).resolve() if wav is not None else None
        self.lang = lang
        self.extra_args = list(extra_args)
        self.page_load_timeout = page_load_timeout
        #: "granted" (fake device, permission given), "denied" (the user says no) or
        #: "missing" (no capture device at all).
        self.microphone = microphone

    # -- lifecycle -------------------------------------------------------------------
    def arguments(self, user_data_dir: str) -> list[str]:
        args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-dev-shm-usage",
            "--disable-gpu",
            "--autoplay-policy=no-user-gesture-required",
            "--no-first-run",
            "--no-default-browser-check",
            # WebRTC on loopback with real addresses (see CANDIDATES)
            "--allow-loopback-in-peer-connection",
            f"--user-data-dir={user_data_dir}",
        ]
        if self.microphone == "denied":
            args += ["--use-fake-device-for-media-stream", "--deny-permission-prompts"]
        elif self.microphone == "missing":
            args.append("--use-fake-ui-for-media-stream")  # no device: nothing to capture
        else:
            args += ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"]
        if self.wav is not None and self.microphone != "missing":
            args.append(f"--use-file-for-fake-audio-capture={self.wav}")
        if self.lang:
            args.append(f"--lang={self.lang}")
        # Chromium honours only the last --disable-features: merge the caller's into ours.
        disabled = list(DISABLE_FEATURES)
        for a in self.extra_args:
            if a.startswith("--disable-features="):
                disabled += [f for f in a.split("=", 1)[1].split(",") if f and f not in disabled]
            else:
                args.append(a)
        args.append("--disable-features=" + ",".join(disabled))
        return args

    def start(self) -> Browser:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        self._tmp = tempfile.TemporaryDirectory(prefix="chromium-test-")
        profile = os.path.join(self._tmp.name, "profile")
        os.makedirs(profile)
        options = webdriver.ChromeOptions()
        binary = chromium_path()
        assert binary is not None
        options.binary_location = binary
        for a in self.arguments(profile):
            options.add_argument(a)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        options.add_experimental_option("prefs", PREFS)
        self._service = Service(
            executable_path=chromedriver_path(),
            log_output=os.path.join(self._tmp.name, "chromedriver.log"),
        )
        try:
            self._driver = webdriver.Chrome(service=self._service, options=options)
        except BaseException:
            self._stop_service()
            self._cleanup_tmp()
            raise
        self._driver.set_page_load_timeout(self.page_load_timeout)
        self._driver.set_script_timeout(30)
        return self

    def console_log(self) -> list[dict[str, Any]]:
        """Browser console entries since the last call (``level``, ``message``, ``timestamp``)."""
        return list(self.driver.get_log("browser"))
