"""pytest fixtures: every peer a test starts is stopped at teardown, pass or fail.

Either import the ready fixture into a test module or conftest (the parameter shadows the
import, hence the noqa)::

    from peers.fixtures import PeerFactory, sip_peers  # noqa: F401

    def test_x(sip_peers: PeerFactory) -> None:  # noqa: F811
        bob = sip_peers.baresip("bob", tone_hz=700)
        alice = sip_peers.pjsua_call(bob.uri, play=sip_peers.tone(440),
                                     record=sip_peers.path("a.wav"), seconds=3)

or write your own fixture around the context manager::

    @pytest.fixture
    def peers(tmp_path: Path) -> Iterator[PeerFactory]:
        with PeerFactory(tmp_path) as factory:
            yield factory
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest

from .audio import make_tone
from .baresip import Baresip
from .pjsua import PjsuaPeer
from .stub_uas import StubUas


class _Stoppable(Protocol):
    def __exit__(self, *exc: Any) -> Any: ...


class PeerFactory:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self._started: list[_Stoppable] = []

    def path(self, name: str) -> Path:
        return self.tmp_path / name

    def tone(self, freq_hz: float, seconds: float = 30.0, rate: int = 16000) -> Path:
        p = self.tmp_path / f"tone{freq_hz:g}_{rate}.wav"
        return p if p.exists() else make_tone(p, freq_hz, seconds, rate)

    def baresip(self, name: str = "baresip", **kw: Any) -> Baresip:
        kw.setdefault("user", name)
        b = Baresip(self.tmp_path / name, **kw)
        self._started.append(b)
        return b.start()

    def pjsua_answer(self, **kw: Any) -> PjsuaPeer:
        p = PjsuaPeer.answer(**kw)
        self._started.append(p)
        return p.start()

    def pjsua_call(self, uri: str, **kw: Any) -> PjsuaPeer:
        p = PjsuaPeer.call(uri, **kw)
        self._started.append(p)
        return p.start()

    def stub_uas(self) -> StubUas:
        s = StubUas()
        self._started.append(s)
        return s.__enter__()

    def __enter__(self) -> PeerFactory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        while self._started:
            peer = self._started.pop()
            try:
                peer.__exit__(None, None, None)
            except Exception:  # keep stopping the others
                pass


@pytest.fixture
def sip_peers(tmp_path: Path) -> Iterator[PeerFactory]:
    with PeerFactory(tmp_path) as factory:
        yield factory
