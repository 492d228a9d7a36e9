"""Reader speed and memory: fpreplay against dissect.etl's bare header walk, in one run.

    python3 bench/bench_reader.py                   # net.4.5.2.x64 (179,474 records)
    python3 bench/bench_reader.py --big             # also the ~1 GB trace: time and peak RSS
    python3 bench/bench_reader.py --trace PATH

fpreplay's figure is the whole reader: every record walked and counted, the IRP-bearing ones
decoded into the event table (read_inputs, as `fpreplay events` does). dissect.etl's is a bare
walk that only materialises each record header (it is a test-only oracle, AGPL: bench/ and
tests/ only). Best of N runs; the machine's CPU model is printed with the figures.
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REAL = ROOT.parent / "shared" / "traces" / "real"
OUT = ROOT / "bench" / "out"


def cpu_model() -> str:
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def plain_etl(path: Path) -> Path:
    """The .etl inside a .zip, extracted once into bench/out (so both readers see one file)."""
    if path.suffix != ".zip":
        return path
    OUT.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path) as z:
        name = next(n for n in z.namelist() if n.lower().endswith(".etl"))
        target = OUT / Path(name).name
        if not target.exists():
            target.write_bytes(z.read(name))
    return target


def bench_fpreplay(path: Path, runs: int) -> tuple[float, int, int]:
    from fpreplay.parsers.api import ReadOptions, read_inputs

    best, records, rows = float("inf"), 0, 0
    for _ in range(runs):
        t = time.perf_counter()
        read = read_inputs([path], ReadOptions())
        best = min(best, time.perf_counter() - t)
        records, rows = read.records, read.events.height
    return best, records, rows


def bench_dissect(path: Path, runs: int) -> tuple[float, int]:
    from dissect.etl.etl import ETL

    data = path.read_bytes()
    best, n = float("inf"), 0
    for _ in range(runs):
        t = time.perf_counter()
        n = sum(1 for rec in ETL(io.BytesIO(data)) if rec.header is not None)
        best = min(best, time.perf_counter() - t)
    return best, n


def big_run(path: Path) -> dict:
    """`fpreplay events` on the big trace in a child process: wall time and peak RSS."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "events.parquet"
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "fpreplay.replay", "events", str(path),
                               "-o", str(out), "--json", "--quiet"], capture_output=True, text=True)
        wall = time.perf_counter() - t
    if proc.returncode:
        raise SystemExit(f"fpreplay failed on {path}: {proc.stderr.strip()}")
    doc = json.loads(proc.stdout)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"bytes": path.stat().st_size, "records": doc["records"], "rows": doc["rows"],
            "seconds": wall, "peak_rss_mb": peak_mb}


def main() -> None:
    ap = argparse.ArgumentParser(description="fpreplay .etl reader benchmark")
    ap.add_argument("--trace", type=Path, default=REAL / "etl" / "net.4.5.2.x64.etl.zip")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--big", action="store_true", help="also time the ~1 GB trace "
                    "(built by bench/make_big_trace.py if absent)")
    args = ap.parse_args()
    if not args.trace.exists():
        raise SystemExit(f"{args.trace} not found")
    print(f"CPU: {cpu_model()}")
    plain = plain_etl(args.trace)
    for label, path in (("zip", args.trace), ("etl", plain)) if plain != args.trace else \
            (("etl", plain),):
        secs, records, rows = bench_fpreplay(path, args.runs)
        print(f"fpreplay   {path.name:28} {records:>9,} records {rows:>7,} event rows "
              f"{secs:7.3f} s  {records / secs:>12,.0f} records/s  ({label})")
    fp_secs, fp_records, _ = bench_fpreplay(plain, args.runs)
    ds_secs, ds_records = bench_dissect(plain, max(1, args.runs // 2))
    print(f"dissect    {plain.name:28} {ds_records:>9,} records {'':>18}"
          f"{ds_secs:7.3f} s  {ds_records / ds_secs:>12,.0f} records/s  (bare header walk)")
    print(f"fpreplay / dissect.etl: {(fp_records / fp_secs) / (ds_records / ds_secs):.1f}x")
    if args.big:
        big = OUT / "big.etl"
        if not big.exists():
            subprocess.run([sys.executable, str(ROOT / "bench" / "make_big_trace.py"),
                            "-o", str(big)], check=True)
        r = big_run(big)
        print(f"big trace  {big.name:28} {r['records']:>9,} records {r['rows']:>7,} event rows "
              f"{r['seconds']:7.1f} s  {r['records'] / r['seconds']:>12,.0f} records/s  "
              f"{r['bytes'] / 2**20:,.0f} MiB, peak RSS {r['peak_rss_mb']:,.0f} MB")


if __name__ == "__main__":
    main()
