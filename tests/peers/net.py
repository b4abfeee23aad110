"""Free-port helpers; everything binds to 127.0.0.1 only."""

from __future__ import annotations

import socket
import time
from typing import Literal

LOCALHOST = "127.0.0.1"

_recent: set[int] = set()


def free_port(kind: Literal["udp", "tcp"] = "udp") -> int:
    """Return a port that is currently free on 127.0.0.1 for ``kind``.

    Ports handed out earlier in this process are not handed out again (best effort),
    so two peers started back to back do not race for the same number.
    """
    sock_type = socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM
    for _ in range(200):
        with socket.socket(socket.AF_INET, sock_type) as s:
            s.bind((LOCALHOST, 0))
            port = int(s.getsockname()[1])
        if port in _recent:
            continue
        if not _port_free(port, "tcp" if kind == "udp" else "udp"):
            # SIP peers often listen on both UDP and TCP on the same number.
            continue
        _recent.add(port)
        return port
    raise RuntimeError("no free port found")


def free_rtp_port_pair() -> int:
    """Return an even UDP port ``p`` such that ``p`` and ``p + 1`` are free (RTP + RTCP)."""
    for _ in range(500):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((LOCALHOST, 0))
            port = int(s.getsockname()[1])
        if port % 2:
            port += 1
        if port + 1 > 65535 or port in _recent or port + 1 in _recent:
            continue
        if _port_free(port, "udp") and _port_free(port + 1, "udp"):
            _recent.update((port, port + 1))
            return port
    raise RuntimeError("no free even RTP port pair found")


def free_port_range(
    count: int, kinds: tuple[Literal["udp", "tcp"], ...] = ("udp", "tcp"), even: bool = False
) -> int:
    """First port ``p`` of ``count`` consecutive ports that are all free for every kind in ``kinds``.

    baresip, for instance, listens on UDP+TCP ``p`` and TLS ``p + 1``; sipp binds ``-mp``
    and ``-mp + 2``.
    """
    for _ in range(500):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.bind((LOCALHOST, 0))
            port = int(s.getsockname()[1])
        if even and port % 2:
            port += 1
        ports = range(port, port + count)
        if ports[-1] > 65535 or any(p in _recent for p in ports):
            continue
        if all(_port_free(p, k) for p in ports for k in kinds):
            _recent.update(ports)
            return port
    raise RuntimeError(f"no {count} consecutive free ports found")


def _port_free(port: int, kind: Literal["udp", "tcp"]) -> bool:
    sock_type = socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM
    with socket.socket(socket.AF_INET, sock_type) as s:
        try:
            s.bind((LOCALHOST, port))
        except OSError:
            return False
    return True


def wait_port_open(port: int, timeout: float = 5.0, host: str = LOCALHOST) -> None:
    """Wait (bounded) until a TCP listener accepts on ``host:port``."""
    deadline = time.monotonic() + timeout
    last: OSError | None = None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError as exc:
            last = exc
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s ({last})")
