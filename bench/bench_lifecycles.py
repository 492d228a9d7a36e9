"""Peak memory and time of the lifecycle stage: a trace read into lifecycles, in a fresh process.

    python3 bench/bench_lifecycles.py [TRACE] [--table | --floor]

Default TRACE: bench/out/gb.etl (written by bench/make_gb_trace.py when missing). The default
reads into an IRP spool (read_lifecycles_spooled) and reads it back once in chunks; --table
builds the whole table in memory (read_lifecycles), as the CLI did before the spool; --floor only
reads, keeping what read_lifecycles keeps besides lifecycles (the side events): the stage's own
cost is the difference. Prints wall seconds, CPU seconds, peak RSS (MiB) and the IRP count.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trace", nargs="?", type=Path, default=ROOT / "bench" / "out" / "gb.etl")
    ap.add_argument("--table", action="store_true", help="the whole table (read_lifecycles)")
    ap.add_argument("--floor", action="store_true", help="read only, no lifecycles")
    args = ap.parse_args()
    if not args.trace.exists():
        subprocess.run([sys.executable, str(ROOT / "bench" / "make_gb_trace.py"),
                        "-o", str(args.trace)], check=True)
    from fpreplay.parsers import InputStream

    t0, c0 = time.perf_counter(), time.process_time()
    if args.floor:
        from fpreplay.lifecycles.incidents import side_events

        stream = InputStream([args.trace])
        stream.result(kept=[side_events(batch) for batch in stream])
        n = 0
    elif args.table:
        from fpreplay.lifecycles import read_lifecycles

        _, irps = read_lifecycles(InputStream([args.trace]))
        n = irps.height
    else:
        from fpreplay.lifecycles import read_lifecycles_spooled

        _, spool = read_lifecycles_spooled(InputStream([args.trace]))
        with spool:
            n = sum(chunk.height for chunk in spool.chunks())
            assert n == spool.height
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{args.trace.name}: {'floor' if args.floor else 'table' if args.table else 'spool'} {wall:.1f} s wall, "
          f"{cpu:.1f} s CPU, peak {peak:.0f} MiB, {n} IRPs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
