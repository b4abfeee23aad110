"""Drive a headless baresip 1.0.0 from a config folder via its ctrl_tcp interface.

Quirks of baresip 1.0.0 (Debian) that this wrapper handles:

* ``dial``/``hangup``/``sndcode``/``accept`` are commands of the ``menu`` module; without
  ``module_app menu.so`` ctrl_tcp answers "command not found".
* SIP listens on UDP and TCP ``sip_listen`` and on TLS at the port + 1 (always): keep
  both numbers free.
* media binds to the "default" interface unless ``net_interface 127.0.0.1`` is set
  (``net_interface lo`` fails: it wants an address).
* no audio device is needed: ``audio_player aubridge,nil`` is a player that goes nowhere;
  ``audio_source aufile,FILE.wav`` plays a WAV whose rate must equal ``ausrc_srate``
  (set here from the file, baresip resamples to the codec rate).
* ``module sndfile.so`` writes ``dump-YYYY-MM-DD-hh-mm-ss-enc.wav`` (what we send) and
  ``...-dec.wav`` (what we hear) into ``snd_path``; the name has one-second resolution, so
  two calls started in the same second overwrite each other. libsndfile completes the WAV
  header when the call closes (:meth:`Baresip.wait_recordings_final`).
* ``audio_codecs=PCMU,...`` on the account line restricts and orders the offered codecs.
"""

from __future__ import annotations

import json
import queue
import shutil
import socket
import struct
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from .audio import make_tone
from .net import LOCALHOST, free_port, free_port_range, wait_port_open
from .proc import ManagedProcess

BARESIP = shutil.which("baresip") or "/usr/bin/baresip"
MODULE_PATH = "/usr/lib/baresip/modules"

Event = dict[str, Any]

# baresip reads a bare "G722" as G722/8000/1 and finds nothing: give the full specs.
_CODEC_SPECS = {"PCMU": "PCMU/8000/1", "PCMA": "PCMA/8000/1", "G722": "G722/16000/1"}


class BaresipError(RuntimeError):
    pass


class Baresip:
    """One baresip user agent on 127.0.0.1.

    Usage::

        with Baresip(tmp_path / "alice", tone_hz=440) as alice:
            alice.dial("sip:bob@127.0.0.1:5070")
            alice.wait_event("CALL_ESTABLISHED", timeout=10)
            time.sleep(3)
            alice.hangup()
            alice.wait_event("CALL_CLOSED", timeout=10)
            heard = alice.last_recording("dec")
    """

    def __init__(
        self,
        workdir: str | Path,
        *,
        source_wav: str | Path | None = None,
        tone_hz: float | Sequence[float] | None = None,
        tone_rate: int = 16000,
        tone_seconds: float = 120.0,
        user: str = "tester",
        sip_port: int | None = None,
        ctrl_port: int | None = None,
        answermode: Literal["auto", "manual", "early"] = "auto",
        codecs: Sequence[str] | None = None,
        transport: Literal["udp", "tcp"] | None = None,
        extra_config: Mapping[str, str] | None = None,
        extra_account_params: str = "",
        lifetime: float = 180.0,
    ) -> None:
        """``source_wav`` (or a generated ``tone_hz`` sine) is what this peer sends.

        ``codecs`` restricts/orders the codecs, e.g. ``["PCMU"]``, ``["G722", "PCMA"]``.
        ``transport`` adds ``;transport=`` to the account (outgoing calls over TCP).
        """
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_dir = self.workdir / "config"
        self.record_dir = self.workdir / "recordings"
        self.user = user
        # UDP+TCP on sip_port and (compiled in, not switchable in 1.0.0) TLS on sip_port + 1
        self.sip_port = sip_port or free_port_range(2)
        self.ctrl_port = ctrl_port or free_port("tcp")
        self.answermode = answermode
        self.codecs = list(codecs) if codecs else None
        self.transport = transport
        self.extra_config = dict(extra_config or {})
        self.extra_account_params = extra_account_params
        self.lifetime = lifetime
        if source_wav is None:
            source_wav = make_tone(
                self.workdir / "source.wav",
                tone_hz if tone_hz is not None else 440.0,
                tone_seconds,
                tone_rate,
            )
        self.source_wav = Path(source_wav)
        self.events: list[Event] = []
        self._event_cv = threading.Condition()
        self._consumed: set[int] = set()
        self._responses: queue.Queue[Event] = queue.Queue()
        self._token = 0
        self._sock: socket.socket | None = None
        self._reader: threading.Thread | None = None
        self._proc: ManagedProcess | None = None
        self._cmd_lock = threading.Lock()

    # -- addresses -----------------------------------------------------------------------
    @property
    def uri(self) -> str:
        """The URI other peers call to reach this one."""
        tp = ";transport=tcp" if self.transport == "tcp" else ""
        return f"sip:{self.user}@{LOCALHOST}:{self.sip_port}{tp}"

    # -- lifecycle -----------------------------------------------------------------------
    def write_config(self) -> None:
        import wave

        with wave.open(str(self.source_wav), "rb") as w:
            rate = w.getframerate()
        self.config_dir.mkdir(parents=True, exist_ok=True)
        self.record_dir.mkdir(parents=True, exist_ok=True)
        cfg: dict[str, str] = {
            "poll_method": "epoll",
            "sip_listen": f"{LOCALHOST}:{self.sip_port}",
            "net_interface": LOCALHOST,
            "call_local_timeout": "120",
            "call_max_calls": "4",
            "audio_player": "aubridge,nil",
            "audio_alert": "aubridge,nil",
            "audio_source": f"aufile,{self.source_wav}",
            "ausrc_srate": str(rate),
            "auplay_srate": str(rate),
            "ausrc_channels": "1",
            "auplay_channels": "1",
            "audio_buffer": "20-160",
            "jitter_buffer_delay": "1-10",
            "rtp_timeout": "0",
            "module_path": MODULE_PATH,
            "ctrl_tcp_listen": f"{LOCALHOST}:{self.ctrl_port}",
            "snd_path": str(self.record_dir),
            "ringback_disabled": "yes",
            "statmode_default": "off",
            "menu_bell": "no",
        }
        cfg.update(self.extra_config)
        modules = ["g711.so", "g722.so", "aufile.so", "aubridge.so", "sndfile.so", "ctrl_tcp.so"]
        lines = [f"{k}\t{v}" for k, v in cfg.items()]
        lines += [f"module\t{m}" for m in modules]
        lines += ["module_tmp\taccount.so", "module_app\tmenu.so"]
        (self.config_dir / "config").write_text("\n".join(lines) + "\n")
        params = f";regint=0;answermode={self.answermode}"
        if self.codecs:
            params += ";audio_codecs=" + ",".join(
                _CODEC_SPECS.get(c.upper(), c) for c in self.codecs
            )
        params += self.extra_account_params
        tp = f";transport={self.transport}" if self.transport else ""
        account = f"<sip:{self.user}@{LOCALHOST}:{self.sip_port}{tp}>{params}\n"
        (self.config_dir / "accounts").write_text(account)
        (self.config_dir / "contacts").write_text("")

    def start(self, timeout: float = 10.0) -> Baresip:
        self.write_config()
        self._proc = ManagedProcess(
            [BARESIP, "-f", str(self.config_dir)],
            lifetime=self.lifetime,
            cwd=self.workdir,
            name=f"baresip-{self.user}",
        ).start()
        try:
            self._proc.wait_line(lambda s: "baresip is ready" in s, timeout)
            wait_port_open(self.ctrl_port, timeout)
            self._sock = socket.create_connection((LOCALHOST, self.ctrl_port), timeout=timeout)
            self._sock.settimeout(0.2)
        except BaseException:
            self.stop()
            raise
        self._reader = threading.Thread(target=self._read_loop, name="baresip-ctrl", daemon=True)
        self._reader.start()
        return self

    def stop(self) -> None:
        """Hang up (best effort), quit, and make sure the process is gone."""
        if self._proc is not None and self._proc.running() and self._sock is not None:
            try:
                self._send({"command": "quit", "token": "quit"})
            except OSError:
                pass
            try:
                self._proc.wait(3.0)
            except Exception:
                pass
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None
        if self._proc is not None:
            self._proc.terminate(grace=2.0)
        if self._reader is not None:
            self._reader.join(1.0)

    def __enter__(self) -> Baresip:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def output(self) -> str:
        return self._proc.output() if self._proc else ""

    # -- ctrl_tcp ------------------------------------------------------------------------
    def _send(self, obj: Mapping[str, Any]) -> None:
        if self._sock is None:
            raise BaresipError("not started")
        data = json.dumps(obj).encode()
        self._sock.sendall(str(len(data)).encode() + b":" + data + b",")

    def _read_loop(self) -> None:
        buf = b""
        while self._sock is not None:
            try:
                chunk = self._sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
            while True:
                colon = buf.find(b":")
                if colon < 0:
                    break
                try:
                    n = int(buf[:colon])
                except ValueError:
                    buf = b""
                    break
                if len(buf) < colon + 1 + n + 1:
                    break
                payload = buf[colon + 1 : colon + 1 + n]
                buf = buf[colon + 1 + n + 1 :]
                try:
                    msg = json.loads(payload)
                except ValueError:
                    continue
                if msg.get("event"):
                    with self._event_cv:
                        self.events.append(msg)
                        self._event_cv.notify_all()
                elif msg.get("response"):
                    self._responses.put(msg)

    def command(self, command: str, params: str | None = None, timeout: float = 5.0) -> Event:
        """Send a ctrl_tcp command, return its response; raise if it is not ``ok``."""
        with self._cmd_lock:
            self._token += 1
            token = f"t{self._token}"
            msg: dict[str, Any] = {"command": command, "token": token}
            if params is not None:
                msg["params"] = params
            self._send(msg)
            deadline = time.monotonic() + timeout
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"baresip: no response to {command!r}\n{self.output()}")
                try:
                    resp = self._responses.get(timeout=left)
                except queue.Empty:
                    continue
                if resp.get("token") == token:
                    break
        if not resp.get("ok"):
            raise BaresipError(f"baresip {command} {params!r}: {resp.get('data')}")
        return resp

    def dial(self, uri: str) -> Event:
        return self.command("dial", uri)

    def hangup(self) -> Event:
        return self.command("hangup")

    def accept(self) -> Event:
        return self.command("accept")

    def send_dtmf(self, digits: str) -> Event:
        """RFC 4733 telephone-events for ``digits`` (menu's ``sndcode``)."""
        return self.command("sndcode", digits)

    # -- events --------------------------------------------------------------------------
    def wait_event(
        self,
        type_: str,
        timeout: float = 10.0,
        predicate: Callable[[Event], bool] | None = None,
    ) -> Event:
        """Return the oldest not-yet-returned event of ``type_`` (e.g. ``CALL_ESTABLISHED``,
        ``CALL_CLOSED``, ``CALL_INCOMING``, ``CALL_RINGING``), waiting up to ``timeout`` s."""
        deadline = time.monotonic() + timeout
        with self._event_cv:
            while True:
                for i, ev in enumerate(self.events):
                    if i in self._consumed or ev.get("type") != type_:
                        continue
                    if predicate is None or predicate(ev):
                        self._consumed.add(i)
                        return ev
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [e.get("type") for e in self.events]
                    raise TimeoutError(
                        f"baresip {self.user}: no {type_} within {timeout}s; events: {seen}\n{self.output()}"
                    )
                self._event_cv.wait(min(left, 0.2))

    def received_dtmf(self) -> str:
        """Digits received so far (``CALL_DTMF_START`` events)."""
        with self._event_cv:
            return "".join(
                str(e.get("param", "")) for e in self.events if e.get("type") == "CALL_DTMF_START"
            )

    def event_types(self) -> list[str]:
        with self._event_cv:
            return [str(e.get("type")) for e in self.events]

    # -- recordings ----------------------------------------------------------------------
    def recordings(self, kind: Literal["dec", "enc"] = "dec") -> list[Path]:
        """All sndfile dumps of ``kind`` (``dec``: what we heard, ``enc``: what we sent), oldest first."""
        return sorted(self.record_dir.glob(f"dump-*-{kind}.wav"))

    def last_recording(self, kind: Literal["dec", "enc"] = "dec") -> Path:
        recs = self.recordings(kind)
        if not recs:
            raise FileNotFoundError(
                f"baresip {self.user}: no {kind} recording in {self.record_dir}"
            )
        return recs[-1]

    def wait_recordings_final(self, timeout: float = 5.0) -> list[Path]:
        """Wait until every dump's WAV header matches its file size (written after hang-up)."""
        deadline = time.monotonic() + timeout
        while True:
            recs = self.recordings("dec") + self.recordings("enc")
            if recs and all(wav_header_complete(p) for p in recs):
                return recs
            if time.monotonic() > deadline:
                raise TimeoutError(f"baresip {self.user}: recordings not finalised: {recs}")
            time.sleep(0.05)


def wav_header_complete(path: str | Path) -> bool:
    """RIFF size and data chunk size agree with the file's length (the writer has closed it)."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError:
        return False
    if len(data) < 44 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return False
    if struct.unpack("<I", data[4:8])[0] != len(data) - 8:
        return False
    pos = 12
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        if cid == b"data":
            return pos + 8 + size <= len(data) and size > 0
        pos += 8 + size + (size & 1)
    return False
