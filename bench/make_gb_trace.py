"""Write a ~1 GB synthesized trace into bench/out/ for the speed figures (not committed).

    python bench/make_gb_trace.py                     # bench/out/gb.etl, ~1 GiB, uncompressed
    python bench/make_gb_trace.py --size-mb 200 --compressed

The scenario (default: traces/samples/a-paging-storm/scenario.toml, a storm inside background
I/O) is simulated once; its records are built once and then written again and again, each
repetition shifted by the scenario's duration, until the file reaches the size asked for. So the
trace stays a real one (per-CPU buffers, interleaved timestamps, IRP addresses reused across
repetitions as lookaside lists do) while writing runs at disk speed rather than at simulation
speed. Compression is the synthesizer's pure-Python LZ77 encoder: about 1-2 MB/s.
"""

from __future__ import annotations

import argparse
import struct
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SCENARIO = ROOT / "traces" / "samples" / "a-paging-storm" / "scenario.toml"

# Offset of the 64-bit raw timestamp in each record header kind (etw-formats.md 1.8).
_TS_OFFSET = {0x02: 0x10, 0x11: 0x08, 0x13: 0x10}


def main(argv: list[str] | None = None) -> int:
    from fpreplay.synth import emit, model, scenario
    from fpreplay.synth.etlwriter import EtlWriter

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", type=Path, default=DEFAULT_SCENARIO)
    ap.add_argument("--size-mb", type=int, default=1024)
    ap.add_argument("--compressed", action="store_true")
    ap.add_argument("-o", "--output", type=Path, default=ROOT / "bench" / "out" / "gb.etl")
    args = ap.parse_args(argv)

    sc = scenario.load(args.scenario)
    sc.lost_events = 0            # every repetition must be whole
    sim = model.simulate(sc)
    base = []
    for e in sorted((e for e in sim.emissions if e.what != "ifr"), key=lambda e: (e.ts_ns, e.seq)):
        rec = emit._record(e, sc.provider, sc.kernel)
        if rec is not None:
            base.append((e.cpu, emit.raw(e.ts_ns) - emit.T0_RAW, bytearray(rec),
                         _TS_OFFSET[rec[2]]))
    period = sc.duration_ns * emit.PERF_FREQ // 1_000_000_000
    target = args.size_mb * 1024 * 1024
    args.output.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    reps = 0
    with open(args.output, "wb") as fh:
        w = EtlWriter(fh, start_unix_ns=sc.start_unix_ns, t0_raw=emit.T0_RAW,
                      perf_freq=emit.PERF_FREQ, ncpu=sc.cpus, buffer_size=sc.buffer_size,
                      compressed=args.compressed, logger_name="FpReplay Synth",
                      log_file_name=args.output.name)
        pack = struct.pack_into
        while fh.tell() < target:
            shift = emit.T0_RAW + reps * period
            for cpu, rel, rec, off in base:
                ts = shift + rel
                pack("<q", rec, off, ts)
                w.write(cpu, ts, bytes(rec))
            reps += 1
        w.close()
        size = fh.tell()
    dt = time.perf_counter() - t0
    irps = len(sim.irps) * reps
    print(f"{args.output}: {size / 2**20:.0f} MiB, {w.records:,} records, {irps:,} IRPs, "
          f"{reps} x {sc.duration_ns / 1e9:g} s, written in {dt:.1f} s "
          f"({size / 2**20 / dt:.0f} MiB/s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
