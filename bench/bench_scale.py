"""Time and peak memory of `fpreplay compare` (3 policies) against trace size, with the floor.

    python3 bench/bench_scale.py                       # 100 MB and 1 GB traces
    python3 bench/bench_scale.py --big                 # and 10 GB (written first: ~10 minutes)
    python3 bench/bench_scale.py --before /path/to/other/venv/bin/fpreplay   # beside another build

The traces are written by bench/make_gb_trace.py into bench/out/ (never committed) when missing.
Each row: wall seconds, CPU seconds (user + system) and peak RSS of the whole command, from
`/usr/bin/time -v`, best of --runs; and the floor on the same file, read + decompress (every
buffer through parsers.etl.stream, nothing decoded), wall seconds. On a shared machine compare
CPU seconds rather than wall seconds.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
POLICIES = ["--policy", "always:8", "--policy", "paging:8",
            "--policy", "examine:8:paging OR major = 4"]


def trace_of(size_mb: int) -> Path:
    path = OUT / ("gb.etl" if size_mb == 1024 else f"{size_mb}mb.etl")
    if not path.exists():
        subprocess.run([sys.executable, str(ROOT / "bench" / "make_gb_trace.py"),
                        "--size-mb", str(size_mb), "-o", str(path)], check=True)
    return path


def timed(command: list[str]) -> tuple[float, float, float]:
    """(wall s, user+system CPU s, peak RSS MiB) of one run under /usr/bin/time -v."""
    p = subprocess.run(["/usr/bin/time", "-v", *command], stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True, check=True)

    def field(name: str) -> str:
        return re.search(rf"{re.escape(name)}: (.+)", p.stderr).group(1).strip()

    *hm, s = field("Elapsed (wall clock) time (h:mm:ss or m:ss)").split(":")
    wall = float(s) + sum(int(x) * 60 ** (len(hm) - i) for i, x in enumerate(hm))
    cpu = float(field("User time (seconds)")) + float(field("System time (seconds)"))
    return wall, cpu, int(field("Maximum resident set size (kbytes)")) / 1024


def floor(path: Path) -> float:
    """Read + decompress every buffer (parsers.etl.stream), in a fresh process; wall seconds."""
    code = ("import sys,time\nfrom pathlib import Path\n"
            "from fpreplay.diagnostics import Diagnostics\n"
            "from fpreplay.parsers.etl.stream import iter_buffers, unpack_buffer\n"
            "p=Path(sys.argv[1]); d=Diagnostics(); t=time.perf_counter()\n"
            "for off, i, data in iter_buffers(p, d): unpack_buffer(p, off, data, d)\n"
            "print(time.perf_counter()-t)\n")
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True,
                         text=True, check=True)
    return float(out.stdout.strip())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--big", action="store_true", help="also a 10 GB trace")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--fpreplay", default=str(Path(sys.executable).parent / "fpreplay"))
    ap.add_argument("--before", help="another build's fpreplay, measured in the same run")
    args = ap.parse_args()
    sizes = [100, 1024] + ([10240] if args.big else [])
    builds = [("this", args.fpreplay)] + ([("before", args.before)] if args.before else [])
    print(f"{'trace':>9} {'build':>6} {'wall s':>7} {'CPU s':>7} {'peak MiB':>9} "
          f"{'MB/s':>6} {'floor s':>8}")
    for size in sizes:
        path = trace_of(size)
        mb = path.stat().st_size / 1e6
        fl = min(floor(path) for _ in range(args.runs))
        for name, exe in builds:
            runs = [timed([exe, "compare", str(path), *POLICIES, "--json"])
                    for _ in range(args.runs)]
            wall = min(r[0] for r in runs)
            cpu = min(r[1] for r in runs)
            peak = min(r[2] for r in runs)
            print(f"{mb:7.0f}MB {name:>6} {wall:7.1f} {cpu:7.1f} {peak:9,.0f} {mb / wall:6.1f} "
                  f"{fl:8.1f}", flush=True)
    return 0


if __name__ == "__main__":
    t0 = time.perf_counter()
    rc = main()
    print(f"({time.perf_counter() - t0:.0f} s)", file=sys.stderr)
    sys.exit(rc)
