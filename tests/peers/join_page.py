"""Driving the join page in a test browser (:mod:`tests.peers.chromium` or
:mod:`tests.peers.firefox`): its link on a test gateway, joining, and what the page hears."""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

from tests.gateway_proc import GatewayProcess
from tests.peers.webdriver import WebDriverBrowser

__all__ = ["join", "link", "measured_peak"]


def link(gateway: GatewayProcess, room: dict[str, Any], role: str) -> str:
    """The room's join link for ``role``, on this gateway's own address."""
    parts = urlsplit(room["links"][role])
    return f"{gateway.base_url}{parts.path}?{parts.query}"


def join(browser: WebDriverBrowser, url: str, name: str, status: str = "joined") -> None:
    """Open the page, type a name, click Join and wait for ``#status`` to say ``status``."""
    browser.open(url)
    browser.type("#name", name)
    browser.click("#join")
    try:
        browser.wait_for(f'return document.getElementById("status").textContent === "{status}"', 20)
    except TimeoutError as e:
        state = browser.js("return [window.gatewayState, document.body.innerText]")
        raise AssertionError(f"{e}: {state}\n{browser.console_log()}") from e


def measured_peak(browser: WebDriverBrowser, seconds: float = 4.0) -> list[float]:
    """The page's own analysis of what it hears, sampled every 0.25 s."""
    peaks = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        m = browser.js("return window.gatewayMeasure()")
        if m["level_db"] > -70:
            peaks.append(float(m["peak_hz"]))
        time.sleep(0.25)
    return peaks
