"""Run sipp (3.6.1) as a UAC against a target and collect its call statistics.

Scenario files in ``tests/peers/scenarios/`` use ``[name]`` keys. sipp itself substitutes
keys only inside message text, so :func:`run_uac` copies a custom scenario into its work
directory with every given key already substituted everywhere (also in attributes such as
``response="[status]"``, ``play_pcap_audio="[pcap]"`` or ``milliseconds="[pause_ms]"``)
and passes the keys with ``-key`` as well. Run those scenarios through this module, not by
hand, unless you replace the placeholders yourself.
"""

from __future__ import annotations

import csv
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .net import LOCALHOST, free_port, free_port_range
from .proc import ManagedProcess

SIPP = shutil.which("sipp") or "/usr/bin/sipp"
SCENARIOS = Path(__file__).resolve().parent / "scenarios"


def scenario(name: str) -> Path:
    """Path of a bundled scenario, e.g. ``scenario("uac_options")``."""
    p = SCENARIOS / (name if name.endswith(".xml") else f"{name}.xml")
    if not p.exists():
        raise FileNotFoundError(p)
    return p


@dataclass
class SippResult:
    successful: int
    failed: int
    returncode: int | None
    stdout: str
    stderr: str
    stat_csv: str
    argv: list[str] = field(default_factory=list)
    timed_out: bool = False
    stats: dict[str, str] = field(default_factory=dict)  # last CSV row, column -> value
    errors: str = ""  # contents of the -trace_err log, if any

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and self.failed == 0 and self.successful > 0 and not self.timed_out

    def summary(self) -> str:
        return (
            f"sipp rc={self.returncode} successful={self.successful} failed={self.failed} "
            f"timed_out={self.timed_out}\nargv: {' '.join(self.argv)}\n--- stderr ---\n{self.stderr[-3000:]}"
            f"\n--- errors ---\n{self.errors[-4000:]}"
        )


def parse_stat_csv(text: str) -> dict[str, str]:
    """Last data row of a ``-trace_stat`` CSV as a dict (``;``-separated, header first)."""
    rows = [r for r in csv.reader(text.splitlines(), delimiter=";") if r]
    if len(rows) < 2:
        return {}
    header, last = rows[0], rows[-1]
    return {h: v for h, v in zip(header, last, strict=False) if h}


def _count(stats: Mapping[str, str], column: str) -> int:
    try:
        return int(stats.get(column, "0") or 0)
    except ValueError:
        return 0


def run_uac(
    target_host: str,
    target_port: int,
    service: str = "1000",
    *,
    transport: Literal["udp", "tcp"] = "udp",
    calls: int = 1,
    rate: float = 5.0,
    local_port: int | None = None,
    media_port: int | None = None,
    scenario_file: str | Path | None = None,
    keys: Mapping[str, str | int | float] | None = None,
    lost_percent: float | None = None,
    call_duration_ms: int | None = None,
    max_concurrent: int | None = None,
    extra_args: Sequence[str] = (),
    extra_files: Sequence[str | Path] = (),
    timeout: float = 30.0,
    workdir: str | Path | None = None,
) -> SippResult:
    """Run ``calls`` calls of sipp's built-in ``uac`` scenario (or ``scenario_file``).

    Returns when sipp exits or after ``timeout`` seconds (sipp is then killed and
    ``timed_out`` set; sipp's own ``-timeout`` is set a little shorter so it normally
    exits by itself and writes its statistics). ``extra_files`` are copied into sipp's
    working directory (e.g. pcaps referenced by relative name).
    """
    local_port = local_port or free_port(transport)
    media_port = media_port or _free_media_block()
    own_tmp = workdir is None
    wd = Path(tempfile.mkdtemp(prefix="sipp-")) if workdir is None else Path(workdir)
    wd.mkdir(parents=True, exist_ok=True)
    key_values: dict[str, str] = {k: str(v) for k, v in (keys or {}).items()}
    stat_path = wd / "stat.csv"
    err_path = wd / "errors.log"
    argv = [SIPP, f"{target_host}:{target_port}", "-s", service]
    if scenario_file is None:
        argv += ["-sn", "uac"]
    else:
        text = Path(scenario_file).read_text()
        for k, v in key_values.items():
            text = text.replace(f"[{k}]", v)
        missing = sorted(set(re.findall(r"\[(status|pcap|pause_ms)\]", text)))
        if missing:
            raise ValueError(f"scenario {scenario_file} needs keys {missing}")
        local_sf = wd / Path(scenario_file).name
        local_sf.write_text(text)
        argv += ["-sf", str(local_sf)]
    for f in extra_files:
        shutil.copy(f, wd / Path(f).name)
    argv += [
        "-i", LOCALHOST, "-p", str(local_port),
        "-mi", LOCALHOST, "-mp", str(media_port),
        "-t", "t1" if transport == "tcp" else "u1",
        "-m", str(calls), "-r", _fmt(rate),
        "-nostdin",
        "-trace_stat", "-stf", str(stat_path), "-fd", "1",
        "-trace_err", "-error_file", str(err_path),
        "-timeout", f"{max(1, int(timeout) - 2)}s", "-timeout_error",
        "-max_recv_loops", "1000",
    ]
    if lost_percent is not None:
        argv += ["-lost", _fmt(lost_percent)]
    if call_duration_ms is not None:
        argv += ["-d", str(call_duration_ms)]
    if max_concurrent is not None:
        argv += ["-l", str(max_concurrent)]
    for k, v in key_values.items():
        argv += ["-key", k, v]
    argv += list(extra_args)

    proc = ManagedProcess(argv, lifetime=timeout + 5, cwd=wd, name="sipp")
    timed_out = False
    with proc:
        try:
            rc: int | None = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            proc.terminate(grace=2.0)
            rc = proc.returncode
    stat_csv = stat_path.read_text(errors="replace") if stat_path.exists() else ""
    errors = err_path.read_text(errors="replace") if err_path.exists() else ""
    stats = parse_stat_csv(stat_csv)
    result = SippResult(
        successful=_count(stats, "SuccessfulCall(C)"),
        failed=_count(stats, "FailedCall(C)"),
        returncode=rc,
        stdout="\n".join(proc.stdout_lines),
        stderr="\n".join(proc.stderr_lines),
        stat_csv=stat_csv,
        argv=argv,
        timed_out=timed_out or proc.killed_by_lifetime,
        stats=stats,
        errors=errors,
    )
    if own_tmp:
        shutil.rmtree(wd, ignore_errors=True)
    return result


def _fmt(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


def _free_media_block() -> int:
    """sipp binds -mp (audio) and -mp + 2 (video): an even port with four free UDP ports."""
    return free_port_range(4, ("udp",), even=True)


# -- bundled scenarios ---------------------------------------------------------------
def run_expect_status(target_host: str, target_port: int, service: str, status: int, **kw: Any) -> SippResult:
    """INVITE ``service``; the call succeeds only if the final response is ``status``."""
    return run_uac(target_host, target_port, service, scenario_file=scenario("uac_expect_status"),
                   keys={"status": str(status)}, **kw)


def run_options(target_host: str, target_port: int, service: str = "options", **kw: Any) -> SippResult:
    """OPTIONS, expecting 200."""
    return run_uac(target_host, target_port, service, scenario_file=scenario("uac_options"), **kw)


def run_pcap_call(
    target_host: str,
    target_port: int,
    service: str,
    pcap: str | Path,
    pause_ms: int,
    **kw: Any,
) -> SippResult:
    """INVITE (PCMU/PCMA/G722 + telephone-event), ACK, play ``pcap``, wait ``pause_ms``, BYE.

    The pcap's payload type must match what the callee picks (PCMU first in our offer).
    """
    pcap = Path(pcap)
    return run_uac(target_host, target_port, service, scenario_file=scenario("uac_pcap_audio"),
                   keys={"pcap": pcap.name, "pause_ms": str(pause_ms)}, extra_files=[pcap], **kw)


def run_hold_unhold(target_host: str, target_port: int, service: str, hold_ms: int = 1000, **kw: Any) -> SippResult:
    """INVITE, re-INVITE a=sendonly (answer must be recvonly/inactive), re-INVITE sendrecv, BYE."""
    return run_uac(target_host, target_port, service, scenario_file=scenario("uac_reinvite_hold"),
                   keys={"pause_ms": str(hold_ms)}, **kw)


def run_delayed_offer(target_host: str, target_port: int, service: str, **kw: Any) -> SippResult:
    """INVITE without SDP; 200 must carry an offer; the ACK carries the answer (PCMU)."""
    return run_uac(target_host, target_port, service, scenario_file=scenario("uac_delayed_offer"), **kw)
