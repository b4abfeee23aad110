"""What the benchmark drivers share: a free loopback port and a call to a gateway's REST API.

Imported as ``benchlib`` (each driver runs as ``python bench/NAME.py``, so this directory is
on ``sys.path``).
"""

from __future__ import annotations

import json
import socket
import urllib.request
from typing import Any


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    """A port free on 127.0.0.1 now (UDP by default; ``socket.SOCK_STREAM`` for TCP)."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def api(
    base: str, token: str, method: str, path: str, body: dict[str, object] | None = None
) -> Any:
    """One JSON request to the gateway at ``base`` with the admin ``token``; the JSON answer."""
    request = urllib.request.Request(
        base + path,
        data=json.dumps(body).encode() if body is not None else None,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read() or b"null")
