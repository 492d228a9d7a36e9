"""Time and peak memory of `analyze`, `compare` (3 policies) and `report` against trace size,
with the floor (read + decompress + bare walk) measured alongside, in one run.

    python3 bench/bench_scale.py                                  # 100 MB and 1 GB traces
    python3 bench/bench_scale.py --sizes 100MB,1GB,10GB           # and 10 GB (written first)
    python3 bench/bench_scale.py --before-python /work/venv-old/bin/python   # beside another build
    python3 bench/bench_scale.py --commands compare --runs 3

The traces are written by bench/make_gb_trace.py into bench/out/ (never committed) when missing.
Each row: wall seconds, CPU seconds (user + system) and peak RSS of the whole command, from
`/usr/bin/time -v`, best of --runs, and MB of trace per wall second. `--before-python` runs the
same commands with the fpreplay installed beside another Python (a venv of an older commit), so
"before" and "this" figures come from the same run on the same load. The floor, on the same file
in a fresh process: every buffer read and decompressed (parsers.etl.stream) and every record's
header walked by its size (headers.WALK), nothing decoded. The load average is printed at the
start and the end: on a shared machine compare CPU seconds rather than wall seconds.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
POLICIES = ["--policy", "always:8", "--policy", "paging:8",
            "--policy", "examine:8:paging OR major = 4"]
COMMANDS = {
    "analyze": lambda trace, tmp: ["analyze", trace, "--json"],
    "compare": lambda trace, tmp: ["compare", trace, *POLICIES, "--json"],
    "report": lambda trace, tmp: ["report", trace, *POLICIES, "-o", f"{tmp}/report.html"],
}


def size_mb(text: str) -> int:
    """'100MB' / '1GB' / '10GB' / '250' (MB) -> MiB, as make_gb_trace.py counts them."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(MB|M|GB|G)?\s*", text, re.IGNORECASE)
    if m is None:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (say 100MB, 1GB, 10GB)")
    n = float(m.group(1))
    return int(n * 1024 if (m.group(2) or "MB").upper().startswith("G") else n)


def trace_of(mb: int) -> Path:
    path = OUT / ("gb.etl" if mb == 1024 else f"{mb}mb.etl")
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(ROOT / "bench" / "make_gb_trace.py"),
                        "--size-mb", str(mb), "-o", str(path)], check=True)
    return path


def timed(command: list[str]) -> tuple[float, float, float]:
    """(wall s, user+system CPU s, peak RSS MiB) of one run under /usr/bin/time -v."""
    p = subprocess.run(["/usr/bin/time", "-v", *command], stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True, env={**os.environ,
                                                               "FPREPLAY_PROGRESS": "0"})
    if p.returncode != 0:
        tail = "\n".join(p.stderr.splitlines()[-25:])
        raise SystemExit(f"{' '.join(command)} failed (exit {p.returncode}):\n{tail}")

    def field(name: str) -> str:
        return re.search(rf"{re.escape(name)}: (.+)", p.stderr).group(1).strip()

    *hm, s = field("Elapsed (wall clock) time (h:mm:ss or m:ss)").split(":")
    wall = float(s) + sum(int(x) * 60 ** (len(hm) - i) for i, x in enumerate(hm))
    cpu = float(field("User time (seconds)")) + float(field("System time (seconds)"))
    return wall, cpu, int(field("Maximum resident set size (kbytes)")) / 1024


def floor_walk(path: Path) -> int:
    """Read + decompress every buffer and walk every record's header by its size; the records
    walked. (Runs inside the measured process: see main's --floor-of.)"""
    from fpreplay.diagnostics import Diagnostics
    from fpreplay.parsers.etl.headers import BY_HOOK, NO_MARKER, PREFIX_WORDS, WALK
    from fpreplay.parsers.etl.stream import iter_buffers, unpack_buffer

    d, records = Diagnostics(), 0
    prefix = PREFIX_WORDS.unpack_from
    for off, _, data in iter_buffers(path, d):
        got = unpack_buffer(path, off, data, d)
        if got is None:
            continue
        _cpu, _flag, events, at, end, _base = got
        limit = end - 8
        while at <= limit:
            w0, type_marker, w2, _w3 = prefix(events, at)
            kind, smallest, lookup = WALK[type_marker]
            size = (w2 if lookup is BY_HOOK else w0 if lookup is not NO_MARKER
                    else kind.size(w0, w2, type_marker))
            if size is None or size < max(smallest, 8) or at + size > end:
                break
            at += (size + 7) & ~7
            records += 1
    return records


def row(mb: float, command: str, build: str, wall: float, cpu: float, peak: float) -> str:
    return (f"{mb:7.0f}MB {command:>8} {build:>6} {wall:7.1f} {cpu:7.1f} {peak:9,.0f} "
            f"{mb / wall:6.1f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=lambda t: [size_mb(x) for x in t.split(",") if x.strip()],
                    default=[100, 1024], help="trace sizes, e.g. 100MB,1GB,10GB")
    ap.add_argument("--commands", default=",".join(COMMANDS),
                    help=f"which of {','.join(COMMANDS)}")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--python", default=sys.executable,
                    help="the Python whose fpreplay is 'this' build (default: this one)")
    ap.add_argument("--before-python", help="another build's Python (its venv's bin/python), "
                    "measured in the same run as 'before'")
    ap.add_argument("--floor-of", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.floor_of is not None:          # the floor, in the process /usr/bin/time measures
        print(floor_walk(args.floor_of))
        return 0
    commands = [c.strip() for c in args.commands.split(",") if c.strip()]
    unknown = [c for c in commands if c not in COMMANDS]
    if unknown:
        ap.error(f"unknown command(s) {unknown}; choose from {list(COMMANDS)}")
    builds = [("this", args.python)] + ([("before", args.before_python)]
                                         if args.before_python else [])
    print("load average at start: %.2f %.2f %.2f" % os.getloadavg(), flush=True)
    print(f"{'trace':>9} {'command':>8} {'build':>6} {'wall s':>7} {'CPU s':>7} "
          f"{'peak MiB':>9} {'MB/s':>6}")
    with tempfile.TemporaryDirectory(prefix="bench_scale") as tmp:
        for mb_asked in args.sizes:
            path = trace_of(mb_asked)
            mb = path.stat().st_size / 1e6
            floor = [timed([sys.executable, __file__, "--floor-of", str(path)])
                     for _ in range(args.runs)]
            print(row(mb, "floor", "-", *(min(r[i] for r in floor) for i in range(3))),
                  flush=True)
            for command in commands:
                for name, python in builds:
                    exe = str(Path(python).parent / "fpreplay")
                    runs = [timed([exe, *COMMANDS[command](str(path), tmp)])
                            for _ in range(args.runs)]
                    print(row(mb, command, name, *(min(r[i] for r in runs) for i in range(3))),
                          flush=True)
    print("load average at end: %.2f %.2f %.2f" % os.getloadavg())
    return 0


if __name__ == "__main__":
    t0 = time.perf_counter()
    rc = main()
    print(f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    sys.exit(rc)
