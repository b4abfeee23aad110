"""`python -m gateway` start-up: a bad setting stops it with one line naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("GATEWAY_SIP_PORT", "70000"),
        ("GATEWAY_RTP_PORTS", "30000-20000"),
        ("GATEWAY_DATABASE_URL", "mysql://nope"),
        ("GATEWAY_DIALIN_NUMBERS", "+33 not a number"),
        ("GATEWAY_PUBLIC_URL", "ftp://example.org"),
    ],
)
def test_bad_setting_stops_start_up_with_one_line(
    tmp_path: Path, variable: str, value: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env[variable] = value
    done = subprocess.run(
        [sys.executable, "-m", "gateway"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and variable in lines[0], done.stderr
    assert not (tmp_path / "gateway.db").exists()  # stopped before touching the database


def test_bad_setting_in_dotenv_file(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("GATEWAY_HTTP_PORT=eighty\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    done = subprocess.run(
        [sys.executable, "-m", "gateway"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "GATEWAY_HTTP_PORT" in done.stderr and len(done.stderr.strip().splitlines()) == 1
