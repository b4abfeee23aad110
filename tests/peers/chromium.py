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
import signal
import subprocess
import tempfile
import time
import wave
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

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


# -- process tree ----------------------------------------------------------------------
def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
        except OSError:
            continue
        # "pid (comm) state ppid ..." - comm may contain spaces and parentheses
        rest = stat[stat.rfind(")") + 2 :].split()
        if len(rest) < 2 or rest[0] in ("Z", "X"):  # zombies are dead already
            continue
        children.setdefault(int(rest[1]), []).append(int(entry))
    return children


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (not ``pid`` itself); psutil if installed."""
    try:
        import psutil
    except ImportError:
        pass
    else:
        out_ps: list[int] = []
        try:
            kids = psutil.Process(pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []
        for p in kids:
            try:
                if p.status() != psutil.STATUS_ZOMBIE:
                    out_ps.append(p.pid)
            except psutil.NoSuchProcess:
                pass
        return out_ps
    tree = _children_map()
    out: list[int] = []
    todo = list(tree.get(pid, []))
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(tree.get(p, []))
    return out


# -- the browser -----------------------------------------------------------------------
class Browser:
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
        self.wav = Path(wav).resolve() if wav is not None else None
        self.lang = lang
        self.extra_args = list(extra_args)
        self.page_load_timeout = page_load_timeout
        #: "granted" (fake device, permission given), "denied" (the user says no) or
        #: "missing" (no capture device at all).
        self.microphone = microphone
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._driver: Any = None
        self._service: Any = None
        self.killed = False

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

    def __enter__(self) -> Browser:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def driver(self) -> Any:
        if self._driver is None:
            raise RuntimeError("browser not started")
        return self._driver

    def browser_pids(self) -> list[int]:
        """The chromium processes: every descendant of the chromedriver process."""
        proc = getattr(self._service, "process", None)
        if proc is None:
            return []
        return descendants(int(proc.pid))

    def kill(self) -> None:
        """SIGKILL the whole chromium process tree, pages still open (a vanishing browser)."""
        self.killed = True
        for _ in range(3):
            pids = self.browser_pids()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)

    def close(self) -> None:
        if self._driver is not None:
            driver, self._driver = self._driver, None
            if not self.killed:
                try:
                    driver.quit()
                except Exception:
                    self.kill()
        if self.browser_pids():
            self.kill()
        self._stop_service()
        self._cleanup_tmp()

    def _stop_service(self) -> None:
        if self._service is None:
            return
        service, self._service = self._service, None
        proc = getattr(service, "process", None)
        try:
            service.stop()
        except Exception:
            pass
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)

    def _cleanup_tmp(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    # -- page helpers ----------------------------------------------------------------
    def open(self, url: str) -> None:
        self.driver.get(url)

    def js(self, script: str, *args: Any) -> Any:
        """``execute_script``: ``script`` is a function body; use ``return`` for a value.

        A body that returns a Promise is awaited by chromedriver.
        """
        return self.driver.execute_script(script, *args)

    def wait_for(
        self,
        predicate: str | Callable[[], Any],
        timeout: float = 10.0,
        interval: float = 0.1,
    ) -> Any:
        """Poll ``predicate`` (JS body or Python callable) until truthy; return its value."""
        deadline = time.monotonic() + timeout
        last_exc: Exception | None = None
        while True:
            try:
                value = self.js(predicate) if isinstance(predicate, str) else predicate()
            except Exception as e:  # page still loading, element missing, ...
                value, last_exc = None, e
            if value:
                return value
            if time.monotonic() >= deadline:
                what = predicate if isinstance(predicate, str) else repr(predicate)
                raise TimeoutError(f"not true after {timeout:.1f} s: {what}") from last_exc
            time.sleep(interval)

    def _element(self, css: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def text(self, css: str) -> str:
        return str(self._element(css).text)

    def click(self, css: str) -> None:
        self._element(css).click()

    def type(self, css: str, text: str) -> None:
        el = self._element(css)
        el.clear()
        el.send_keys(text)

    def console_log(self) -> list[dict[str, Any]]:
        """Browser console entries since the last call (``level``, ``message``, ``timestamp``)."""
        return list(self.driver.get_log("browser"))
