"""What the test browsers (:mod:`tests.peers.chromium`, :mod:`tests.peers.firefox`) share: a
selenium driver and its driver service, their process tree, and the page helpers the tests use.

A subclass's ``start()`` makes ``self._tmp`` (a temporary directory), ``self._service`` and
``self._driver``, and returns ``self``.
"""

from __future__ import annotations

import os
import signal
import tempfile
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

__all__ = ["WebDriverBrowser", "descendants"]


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


class WebDriverBrowser:
    """A started browser: ``with SomeBrowser(...) as b: b.open(url); b.wait_for("return x")``."""

    page_load_timeout: float = 20.0

    def __init__(self) -> None:
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._driver: Any = None
        self._service: Any = None
        self.killed = False

    def start(self) -> Self:
        raise NotImplementedError

    def console_log(self) -> list[Any]:
        """The page's console output since the last call (the form is the browser's)."""
        raise NotImplementedError

    def __enter__(self) -> Self:
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
        """The browser's processes: every descendant of the driver service's process."""
        proc = getattr(self._service, "process", None)
        if proc is None:
            return []
        return descendants(int(proc.pid))

    def kill(self) -> None:
        """SIGKILL the browser's whole process tree, pages still open (a vanishing browser)."""
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

        A body that returns a Promise is awaited (WebDriver).
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
