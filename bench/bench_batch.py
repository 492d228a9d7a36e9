"""`fpreplay batch` over 20 traces with 1 and 2 processes and a Dask LocalCluster: the speed-up.

    python3 bench/bench_batch.py [--traces 20]

The traces are the shipped samples (a, b, d; c with its IFR dump) copied under 20 names into a
temporary folder, so each is a separate file analysed on its own; every run starts from an empty
output directory. Prints wall seconds per way of running and the speed-up over one process.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ["a-paging-storm", "b-pool-ran-dry", "c-purge-during-incident", "d-healthy"]


def _lab(where: Path, n: int) -> Path:
    lab = where / "lab"
    for i in range(n):
        name = SAMPLES[i % len(SAMPLES)]
        folder = lab / f"{i:02d}-{name}"
        folder.mkdir(parents=True)
        for f in ("trace.etl", "ifr.txt"):
            if (ROOT / "traces" / "samples" / name / f).exists():
                shutil.copy(ROOT / "traces" / "samples" / name / f, folder / f)
    return lab


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--traces", type=int, default=20)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        lab = _lab(Path(tmp), args.traces)
        size = sum(p.stat().st_size for p in lab.rglob("*") if p.is_file())
        print(f"{args.traces} traces, {size / 2**20:.1f} MiB, {os.cpu_count()} CPUs")
        runs = [("1 process", ["--jobs", "1"]), ("2 processes", ["--jobs", "2"]),
                ("Dask LocalCluster, 2 workers", ["--jobs", "2", "--scheduler", "local"])]
        base = None
        for label, extra in runs:
            out = Path(tmp) / f"out-{len(extra)}-{extra[1]}"
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "fpreplay", "batch", str(lab), "-o",
                                   str(out), "-q", *extra], capture_output=True, text=True)
            wall = time.perf_counter() - t0
            if proc.returncode != 0:
                print(f"{label}: exit {proc.returncode}: {proc.stderr.strip()[:200]}")
                continue
            base = base or wall
            print(f"{label:30s} {wall:7.1f} s   speed-up {base / wall:4.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
