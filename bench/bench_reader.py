"""Reader speed and memory: fpreplay against dissect.etl's bare header walk, in one run.

    python3 bench/bench_reader.py                   # net.4.5.2.x64 (179,474 records)
    python3 bench/bench_reader.py --big             # also the ~1 GB trace: time and peak RSS
    python3 bench/bench_reader.py --trace PATH
    python3 bench/bench_reader.py --gb /tmp/gb.etl  # reading a trace from bench/make_gb_trace.py
    python3 bench/bench_reader.py --skip-dissect    # without the (slow) dissect.etl walk

fpreplay's figure is the whole reader: every record walked and counted, the IRP-bearing ones
decoded into the event table (read_inputs, as `fpreplay events` does). dissect.etl's is a bare
walk that only materialises each record header (it is a test-only oracle, AGPL: bench/ and
tests/ only). Best of N runs; the machine's CPU model and load average are printed with the
figures.

Beside each figure: the floor (the same file read, decompressed and walked record by record with
nothing decoded: scan.py's walk) and the same read through the pure-Python walk
(FPREPLAY_PURE_PYTHON_WALK=1, in a child process), so the compiled walk's gain is measured in the
same run. `--all` is `fpreplay events --all` (every record a row).
"""

from __future__ import annotations

import argparse
import io
import json
import os
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


def bench_fpreplay(path: Path, runs: int, all_records: bool = False,
                   cpu: list | None = None) -> tuple[float, int, int]:
    """(best wall seconds, records, rows); the best CPU seconds (all threads) go into `cpu`."""
    from fpreplay.parsers.api import ReadOptions, read_inputs

    best, best_cpu, records, rows = float("inf"), float("inf"), 0, 0
    for _ in range(runs):
        t, c = time.perf_counter(), time.process_time()
        read = read_inputs([path], ReadOptions(all_records=all_records))
        best = min(best, time.perf_counter() - t)
        best_cpu = min(best_cpu, time.process_time() - c)
        records, rows = read.records, read.events.height
    if cpu is not None:
        cpu.append(best_cpu)
    return best, records, rows


def bench_floor(path: Path, runs: int) -> tuple[float, int]:
    """Read + decompress + bare record walk (scan.py's, C when built), nothing decoded."""
    from fpreplay.diagnostics import Diagnostics
    from fpreplay.parsers.etl.scan import scan
    from fpreplay.parsers.etl.stream import iter_buffers, unpack_buffer

    best, records = float("inf"), 0
    for _ in range(runs):
        t = time.perf_counter()
        d, records = Diagnostics(), 0
        for offset, _, data in iter_buffers(path, d):
            unpacked = unpack_buffer(path, offset, data, d)
            if unpacked is not None:
                records += len(scan(unpacked[2], unpacked[3], unpacked[4])[0])
        best = min(best, time.perf_counter() - t)
    return best, records


def streamed_read(path: Path, all_records: bool = False) -> dict:
    """One streamed read (batches dropped as they come, as `compare` reads): wall and CPU."""
    from fpreplay.diagnostics import Diagnostics
    from fpreplay.parsers.api import ReadOptions, iter_input_batches

    stats, rows = {}, 0
    t, c = time.perf_counter(), time.process_time()
    for batch in iter_input_batches(path, ReadOptions(all_records=all_records), Diagnostics(),
                                    stats):
        rows += batch.height
    return {"wall": time.perf_counter() - t, "cpu": time.process_time() - c,
            "records": stats["records"], "rows": rows}


def in_python_walk(args: list[str]) -> dict:
    """This script's figure with the pure-Python walk, from a child process."""
    env = {**os.environ, "FPREPLAY_PURE_PYTHON_WALK": "1"}
    out = subprocess.run([sys.executable, __file__, "--child", *args], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def walk_name() -> str:
    from fpreplay.parsers.etl.scan import COMPILED
    return "C walk" if COMPILED else "Python walk"


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


def child(argv: list[str]) -> None:
    """--child KIND PATH RUNS: one figure as JSON (run under FPREPLAY_PURE_PYTHON_WALK=1)."""
    kind, path, runs = argv[0], Path(argv[1]), int(argv[2])
    if kind == "gb":
        print(json.dumps(streamed_read(path)))
        return
    secs, records, rows = bench_fpreplay(path, runs, all_records=kind == "all")
    print(json.dumps({"wall": secs, "records": records, "rows": rows}))


def small_trace_figures(plain: Path, runs: int) -> None:
    """IRP rows only and --all, C walk against Python walk, beside the floor."""
    fl_secs, fl_records = bench_floor(plain, runs)
    print(f"floor      {plain.name:28} {fl_records:>9,} records {'':>18}"
          f"{fl_secs:7.3f} s  {fl_records / fl_secs:>12,.0f} records/s  "
          "(read + decompress + bare walk)")
    for kind in ("irp", "all"):
        cpu: list = []
        secs, records, rows = bench_fpreplay(plain, runs, all_records=kind == "all", cpu=cpu)
        py = in_python_walk([kind, str(plain), str(runs)])
        label = "events --all" if kind == "all" else "events"
        print(f"fpreplay   {plain.name:28} {records:>9,} records {rows:>7,} event rows "
              f"{secs:7.3f} s  {records / secs:>12,.0f} records/s  ({label}, {walk_name()}; "
              f"CPU {cpu[0]:.3f} s, {records / cpu[0]:,.0f} records per CPU second; "
              f"Python walk {py['records'] / py['wall']:,.0f}/s)")


def gb_figures(path: Path) -> None:
    """A ~1 GB trace read streamed, C walk and Python walk, beside the floor."""
    fl_secs, fl_records = bench_floor(path, 1)
    r = streamed_read(path)
    py = in_python_walk(["gb", str(path), "1"])
    size = path.stat().st_size / 1e6
    print(f"floor      {path.name:28} {fl_records:>9,} records {fl_secs:7.1f} s wall "
          f"({size / fl_secs:,.0f} MB/s)")
    for label, fig in ((walk_name(), r), ("Python walk", py)):
        print(f"fpreplay   {path.name:28} {fig['records']:>9,} records {fig['rows']:>9,} rows "
              f"{fig['wall']:7.1f} s wall {fig['cpu']:6.1f} s CPU ({size / fig['wall']:,.0f} "
              f"MB/s, {label})")


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2:])
        return
    ap = argparse.ArgumentParser(description="fpreplay .etl reader benchmark")
    ap.add_argument("--trace", type=Path, default=REAL / "etl" / "net.4.5.2.x64.etl.zip")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--big", action="store_true", help="also time the ~1 GB trace "
                    "(built by bench/make_big_trace.py if absent)")
    ap.add_argument("--gb", type=Path, help="also read this trace (bench/make_gb_trace.py -o "
                    "PATH builds one) streamed: wall and CPU time beside the floor")
    ap.add_argument("--skip-dissect", action="store_true", help="leave out dissect.etl's walk")
    args = ap.parse_args()
    if not args.trace.exists():
        raise SystemExit(f"{args.trace} not found")
    print(f"CPU: {cpu_model()}, {os.cpu_count()} cores, load average {load_average()}, "
          f"{walk_name()}")
    plain = plain_etl(args.trace)
    if plain != args.trace:
        secs, records, rows = bench_fpreplay(args.trace, args.runs)
        print(f"fpreplay   {args.trace.name:28} {records:>9,} records {rows:>7,} event rows "
              f"{secs:7.3f} s  {records / secs:>12,.0f} records/s  (zip)")
    small_trace_figures(plain, args.runs)
    if not args.skip_dissect:
        fp_secs, fp_records, _ = bench_fpreplay(plain, args.runs)
        ds_secs, ds_records = bench_dissect(plain, max(1, args.runs // 2))
        print(f"dissect    {plain.name:28} {ds_records:>9,} records {'':>18}"
              f"{ds_secs:7.3f} s  {ds_records / ds_secs:>12,.0f} records/s  (bare header walk)")
        print(f"fpreplay / dissect.etl: {(fp_records / fp_secs) / (ds_records / ds_secs):.1f}x")
    if args.gb:
        gb_figures(args.gb)
    if args.big:
        big = OUT / "big.etl"
        if not big.exists():
            subprocess.run([sys.executable, str(ROOT / "bench" / "make_big_trace.py"),
                            "-o", str(big)], check=True)
        r = big_run(big)
        print(f"big trace  {big.name:28} {r['records']:>9,} records {r['rows']:>7,} event rows "
              f"{r['seconds']:7.1f} s  {r['records'] / r['seconds']:>12,.0f} records/s  "
              f"{r['bytes'] / 2**20:,.0f} MiB, peak RSS {r['peak_rss_mb']:,.0f} MB")
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
