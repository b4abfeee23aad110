"""``make bench``: run every benchmark, then rewrite the figures section of docs/benchmarks.md.

Each benchmark prints its own figure beside the reference it ran in the same run (sipp's
uas and Kamailio for call setups, a bare asyncio + numpy loop for media, a bare aiohttp
handler for REST, the codec alone for browser legs...). This script runs them one after the
other (never two at once: they would share the two cores), keeps the last lines of each
(where the figures and the ratios are) and writes them, with the machine they ran on, between
the ``<!-- bench:begin -->`` and ``<!-- bench:end -->`` markers of ``docs/benchmarks.md``.
The hand-written analysis around the markers (what is measured, why, where the time goes)
stays as it is.

Run: ``python bench/run_all.py [--only mixer,sip_calls] [--no-write]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


@dataclass(frozen=True)
class Bench:
    name: str
    title: str
    args: tuple[str, ...] = ()
    tail: int = 12  # lines of its output kept


BENCHES = (
    Bench("media_capacity", "Media capacity with real sockets (the headline)", tail=12),
    Bench("sip_calls", "SIP call setups per second", tail=5),
    Bench("mixer", "Mixer without sockets", tail=8),
    Bench("dtmf_detector", "In-band DTMF detector", tail=10),
    Bench("webrtc", "Browser legs (WebRTC)", tail=10),
    Bench("rest", "REST room creation", tail=4),
    Bench(
        "soak",
        "Memory over 10 minutes at about half capacity (120 legs, rooms of 10)",
        args=("--minutes", "10", "--legs", "120", "--rooms", "12"),
        tail=6,
    ),
)


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem_kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{mem_kib / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        memory = "? GiB"
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory}, Linux {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def run(bench: Bench) -> tuple[str, float, int]:
    started = time.monotonic()
    proc = subprocess.run(
        [sys.executable, str(ROOT / "bench" / f"{bench.name}.py"), *bench.args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    out = (proc.stdout + ("\n" + proc.stderr if proc.returncode else "")).strip()
    lines = [line for line in out.splitlines() if line.strip()]
    return "\n".join(lines[-bench.tail :]), time.monotonic() - started, proc.returncode


def old_blocks(doc: Path) -> dict[str, str]:
    """The blocks of the section now in ``doc``, by bench name (kept for benches not rerun)."""
    text = doc.read_text()
    if BEGIN not in text or END not in text:
        return {}
    body = text.split(BEGIN, 1)[1].split(END, 1)[0]
    blocks: dict[str, str] = {}
    for chunk in body.split("\n#### ")[1:]:
        found = re.search(r"`bench/(\w+)\.py`", chunk.split("\n", 1)[0])
        if found:
            blocks[found.group(1)] = "#### " + chunk.strip()
    return blocks


def section(results: list[tuple[Bench, str, float, int]], kept: dict[str, str]) -> str:
    parts = [
        BEGIN,
        "",
        f"**Last run**: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"{machine()}. Each block is the end of one benchmark's output: its figure beside the "
        "reference it measured in the same run. Rerun: `make bench` (about 35 minutes, the 10-minute soak included), or "
        "`python bench/run_all.py --only NAME` for one (the others' blocks are kept, with the "
        "date of their own run).",
        "",
    ]
    ran = {bench.name: (bench, text, seconds, code) for bench, text, seconds, code in results}
    for bench in BENCHES:
        if bench.name not in ran:
            if bench.name in kept:
                parts += [kept[bench.name], ""]
            continue
        _, text, seconds, code = ran[bench.name]
        status = "" if code == 0 else f" (exit status {code})"
        day = time.strftime("%Y-%m-%d", time.gmtime())
        parts += [
            f"#### {bench.title}: `bench/{bench.name}.py`{status}, {seconds:.0f} s, {day}",
            "",
            "```",
            text or "(no output)",
            "```",
            "",
        ]
    parts.append(END)
    return "\n".join(parts)


def write(doc: Path, text: str) -> None:
    current = doc.read_text()
    if BEGIN in current and END in current:
        head, rest = current.split(BEGIN, 1)
        tail = rest.split(END, 1)[1]
        doc.write_text(head + text + tail)
    else:  # first run: the section goes right after the title
        title, _, body = current.partition("\n")
        doc.write_text(f"{title}\n\n{text}\n{body}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="comma-separated bench names")
    parser.add_argument("--no-write", action="store_true", help="print, do not rewrite docs")
    args = parser.parse_args()
    wanted = {n.strip() for n in args.only.split(",") if n.strip()}
    chosen = [b for b in BENCHES if not wanted or b.name in wanted]
    results = []
    for bench in chosen:
        print(f"== {bench.name}", flush=True)
        text, seconds, code = run(bench)
        print(text, flush=True)
        results.append((bench, text, seconds, code))
    if not args.no_write:
        write(DOC, section(results, old_blocks(DOC)))
        print(f"rewrote the figures section of {DOC.relative_to(ROOT)}")
    if any(code for *_, code in results):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
