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
        return (
            self.returncode == 0 and self.failed == 0 and self.successful > 0 and not self.timed_out
        )

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
        "-i",
        LOCALHOST,
        "-p",
        str(local_port),
        "-mi",
        LOCALHOST,
        "-mp",
        str(media_port),
        "-t",
        "t1" if transport == "tcp" else "u1",
        "-m",
        str(calls),
        "-r",
        _fmt(rate),
        "-nostdin",
        "-trace_stat",
        "-stf",
        str(stat_path),
        "-fd",
        "1",
        "-trace_err",
        "-error_file",
        str(err_path),
        "-timeout",
        f"{max(1, int(timeout) - 2)}s",
        "-timeout_error",
        "-max_recv_loops",
        "1000",
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
def run_expect_status(
    target_host: str, target_port: int, service: str, status: int, **kw: Any
) -> SippResult:
    """INVITE ``service``; the call succeeds only if the final response is ``status``."""
    return run_uac(
        target_host,
        target_port,
        service,
        scenario_file=scenario("uac_expect_status"),
        keys={"status": str(status)},
        **kw,
    )


def run_options(
    target_host: str, target_port: int, service: str = "options", **kw: Any
) -> SippResult:
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
    return run_uac(
        target_host,
        target_port,
        service,
        scenario_file=scenario("uac_pcap_audio"),
        keys={"pcap": pcap.name, "pause_ms": str(pause_ms)},
        extra_files=[pcap],
        **kw,
    )


def run_hold_unhold(
    target_host: str, target_port: int, service: str, hold_ms: int = 1000, **kw: Any
) -> SippResult:
    """INVITE, re-INVITE a=sendonly (answer must be recvonly/inactive), re-INVITE sendrecv, BYE."""
    return run_uac(
        target_host,
        target_port,
        service,
        scenario_file=scenario("uac_reinvite_hold"),
        keys={"pause_ms": str(hold_ms)},
        **kw,
    )


def run_delayed_offer(target_host: str, target_port: int, service: str, **kw: Any) -> SippResult:
    """INVITE without SDP; 200 must carry an offer; the ACK carries the answer (PCMU)."""
    return run_uac(
        target_host, target_port, service, scenario_file=scenario("uac_delayed_offer"), **kw
    )


# -- phone menu (dial-in) scenarios ----------------------------------------------------
def run_dialin_dtmf(
    target_host: str,
    target_port: int,
    service: str,
    pcap: str | Path,
    pause_ms: int,
    te_pt: int = 101,
    lead_ms: int = 0,
    **kw: Any,
) -> SippResult:
    """INVITE offering telephone-event with payload type ``te_pt`` (the answer must use it),
    ACK, ``lead_ms`` later play ``pcap`` (RFC 4733 events with that payload type), wait
    ``pause_ms``, BYE.

    sipp's ``play_pcap_audio`` sends the pcap's first packet at once and keeps only the gaps
    between packets: a pcap whose first digit is at 1.0 s starts it right after the ACK.
    Give that delay as ``lead_ms`` instead. A BYE from the far end before the end fails the call.
    """
    pcap = Path(pcap)
    return run_uac(
        target_host,
        target_port,
        service,
        scenario_file=scenario("uac_dialin_dtmf"),
        keys={
            "pcap": pcap.name,
            "pause_ms": str(pause_ms),
            "te_pt": str(te_pt),
            "lead_ms": str(lead_ms),
        },
        extra_files=[pcap],
        **kw,
    )


def run_dialin_inband(
    target_host: str, target_port: int, service: str, pcap: str | Path, pause_ms: int, **kw: Any
) -> SippResult:
    """INVITE offering PCMU only (no telephone-event; the answer must have none), ACK, play
    the PCMU ``pcap`` (in-band DTMF tones), wait ``pause_ms``, BYE."""
    pcap = Path(pcap)
    return run_uac(
        target_host,
        target_port,
        service,
        scenario_file=scenario("uac_dialin_inband"),
        keys={"pcap": pcap.name, "pause_ms": str(pause_ms)},
        extra_files=[pcap],
        **kw,
    )


def run_dialin_expect_bye(
    target_host: str,
    target_port: int,
    service: str,
    pcap: str | Path,
    bye_ms: int,
    te_pt: int = 101,
    lead_ms: int = 0,
    **kw: Any,
) -> SippResult:
    """INVITE, ACK, ``lead_ms`` later play ``pcap``; the far end must then send BYE within
    ``bye_ms`` (answered 200), otherwise the call fails (as it does for a BYE during the lead)."""
    pcap = Path(pcap)
    kw.setdefault("timeout", (lead_ms + bye_ms) / 1000.0 + 10)
    return run_uac(
        target_host,
        target_port,
        service,
        scenario_file=scenario("uac_dialin_expect_bye"),
        keys={
            "pcap": pcap.name,
            "bye_ms": str(bye_ms),
            "te_pt": str(te_pt),
            "lead_ms": str(lead_ms),
        },
        extra_files=[pcap],
        **kw,
    )


INFO_TYPES = {
    "dtmf-relay": "application/dtmf-relay",
    "dtmf": "application/dtmf",
}


def info_body(digit: str, kind: str) -> str:
    """Body of one SIP INFO for ``digit``: ``Signal=5`` + ``Duration=160`` (dtmf-relay) or
    just the digit (application/dtmf)."""
    if kind == "dtmf-relay":
        return f"Signal={digit}\nDuration=160"
    if kind == "dtmf":
        return digit
    raise ValueError(f"unknown INFO kind {kind!r}")


def dialin_info_scenario(digits: str, kind: str, path: str | Path) -> Path:
    """Write ``uac_dialin_info.xml`` to ``path`` with its digit block repeated per digit."""
    text = scenario("uac_dialin_info").read_text()
    begin, end = "  <!-- digit -->\n", "  <!-- /digit -->\n"
    head, rest = text.split(begin, 1)
    block, tail = rest.split(end, 1)
    blocks = []
    for i, digit in enumerate(digits):
        body = info_body(digit, kind).replace("\n", "\n      ")
        blocks.append(
            block.replace("[info_cseq]", str(2 + i))
            .replace("[info_type]", INFO_TYPES[kind])
            .replace("[info_body]", body)
        )
    out = Path(path)
    out.write_text(head + "".join(blocks) + tail.replace("[bye_cseq]", str(2 + len(digits))))
    return out


def run_dialin_info(
    target_host: str,
    target_port: int,
    service: str,
    digits: str,
    *,
    kind: Literal["dtmf-relay", "dtmf"] = "dtmf-relay",
    silence: str | Path,
    start_ms: int = 1000,
    gap_ms: int = 250,
    pause_ms: int = 10000,
    **kw: Any,
) -> SippResult:
    """INVITE, ACK, play ``silence`` (a G.711 pcap), after ``start_ms`` one INFO per digit
    (``kind``), each answered 200, ``gap_ms`` apart, then ``pause_ms`` and BYE."""
    silence = Path(silence)
    with tempfile.TemporaryDirectory(prefix="sipp-info-") as tmp:
        sf = dialin_info_scenario(digits, kind, Path(tmp) / "uac_dialin_info.xml")
        return run_uac(
            target_host,
            target_port,
            service,
            scenario_file=sf,
            keys={
                "pcap": silence.name,
                "pause_ms": str(pause_ms),
                "te_pt": "101",
                "start_ms": str(start_ms),
                "gap_ms": str(gap_ms),
            },
            extra_files=[silence],
            **kw,
        )


def in_background(fn: Any, *args: Any, **kw: Any) -> Any:
    """Run a blocking ``run_*`` helper in a thread; returns its ``concurrent.futures.Future``
    (call ``.result(timeout)``), so a test can look at the gateway while the call is up."""
    import concurrent.futures

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="sipp")
    future = pool.submit(fn, *args, **kw)
    pool.shutdown(wait=False)
    return future
