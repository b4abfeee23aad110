"""A subprocess that is always killed: bounded lifetime, bounded waits, line capture."""

from __future__ import annotations

import atexit
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

_live: set[ManagedProcess] = set()
_live_lock = threading.Lock()


class ManagedProcess:
    """Run ``argv`` in its own process group; kill it after ``lifetime`` seconds at the latest.

    stdout/stderr are read by daemon threads: every stdout line is kept in ``stdout_lines``
    and also queued for :meth:`wait_line`; stderr lines go to ``stderr_lines``.
    """

    def __init__(
        self,
        argv: Sequence[str],
        *,
        lifetime: float,
        cwd: str | Path | None = None,
        env: Mapping[str, str] | None = None,
        name: str | None = None,
    ) -> None:
        self.argv = [str(a) for a in argv]
        self.name = name or Path(self.argv[0]).name
        self.lifetime = lifetime
        self.cwd = cwd
        self.env = dict(env) if env is not None else None
        self.stdout_lines: list[str] = []
        self.stderr_lines: list[str] = []
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._proc: subprocess.Popen[bytes] | None = None
        self._killer: threading.Timer | None = None
        self._readers: list[threading.Thread] = []
        self.killed_by_lifetime = False

    # -- lifecycle -------------------------------------------------------------------
    def start(self) -> ManagedProcess:
        self._proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=self.cwd,
            env=self.env,
            start_new_session=True,
        )
        with _live_lock:
            _live.add(self)
        assert self._proc.stdout is not None and self._proc.stderr is not None
        for stream, sink, q in (
            (self._proc.stdout, self.stdout_lines, self._lines),
            (self._proc.stderr, self.stderr_lines, None),
        ):
            t = threading.Thread(
                target=_pump, args=(stream, sink, q), name=f"{self.name}-reader", daemon=True
            )
            t.start()
            self._readers.append(t)
        self._killer = threading.Timer(self.lifetime, self._lifetime_expired)
        self._killer.daemon = True
        self._killer.start()
        return self

    def _lifetime_expired(self) -> None:
        self.killed_by_lifetime = True
        self.kill()

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    @property
    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def wait(self, timeout: float) -> int:
        """Wait (bounded) for exit; raise ``subprocess.TimeoutExpired`` if it does not."""
        assert self._proc is not None
        rc = self._proc.wait(timeout=timeout)
        self._join_readers(2.0)
        return rc

    def terminate(self, grace: float = 3.0) -> int | None:
        """SIGTERM the process group, then SIGKILL after ``grace`` seconds. Idempotent."""
        if self._proc is None:
            return None
        if self._proc.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.kill()
        else:
            # the leader is gone; make sure no child of its group lingers
            self._signal(signal.SIGKILL)
        return self._finish()

    def kill(self) -> None:
        if self._proc is None:
            return
        self._signal(signal.SIGKILL)
        try:
            self._proc.wait(timeout=5.0)
        except subprocess.TimeoutExpired:  # pragma: no cover - the kernel did not reap it
            pass

    def _signal(self, sig: signal.Signals) -> None:
        assert self._proc is not None
        try:
            os.killpg(self._proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def _finish(self) -> int | None:
        if self._killer is not None:
            self._killer.cancel()
        self._join_readers(2.0)
        with _live_lock:
            _live.discard(self)
        return self.returncode

    def drain(self, timeout: float = 2.0) -> None:
        """After the process exited: wait until its output is read to the end (the reader
        threads may lag behind the exit)."""
        self._join_readers(timeout)

    def _join_readers(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for t in self._readers:
            t.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> ManagedProcess:
        return self.start() if self._proc is None else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.terminate()

    # -- output ----------------------------------------------------------------------
    def wait_line(
        self,
        predicate: Callable[[str], bool],
        timeout: float,
    ) -> str:
        """Return the next stdout line (not yet consumed) for which ``predicate`` is true.

        Raises ``TimeoutError`` after ``timeout`` seconds, or ``EOFError`` if the process
        closed stdout first.
        """
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(
                    f"{self.name}: no matching line within {timeout}s\n{self.output()}"
                )
            try:
                line = self._lines.get(timeout=min(left, 0.2))
            except queue.Empty:
                continue
            if line is None:
                self._lines.put(None)  # keep EOF visible for later callers
                raise EOFError(f"{self.name} closed stdout (rc={self.returncode})\n{self.output()}")
            if predicate(line):
                return line

    def output(self, tail: int = 60) -> str:
        out = "\n".join(self.stdout_lines[-tail:])
        err = "\n".join(self.stderr_lines[-tail:])
        return f"--- {self.name} stdout ---\n{out}\n--- {self.name} stderr ---\n{err}"


def _pump(stream: object, sink: list[str], q: queue.Queue[str | None] | None) -> None:
    try:
        for raw in iter(stream.readline, b""):  # type: ignore[attr-defined]
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            sink.append(line)
            if q is not None:
                q.put(line)
    except (OSError, ValueError):
        pass
    finally:
        if q is not None:
            q.put(None)


def kill_all_live() -> None:
    """Kill every ManagedProcess still running (for an atexit / session-finish hook)."""
    with _live_lock:
        procs = list(_live)
    for p in procs:
        p.terminate(grace=0.5)


atexit.register(kill_all_live)
